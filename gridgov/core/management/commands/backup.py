"""``gridgov backup``: back up the database and the uploaded files; ``--verify`` checks one.

    gridgov backup [--output DIR] [--no-files] [--keep-daily 7 --keep-weekly 4]
    gridgov backup --verify PATH

See ``gridgov.core.backup`` and docs/operations.md ("Backups").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridgov.core.backup import BackupError, backup_create, backup_prune, backup_verify


class Command(BaseCommand):
    help = "Back up the database and the uploaded files (or check a backup with --verify)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--output",
            type=Path,
            default=None,
            help="folder the backup is written into (default GRIDGOV_BACKUP_DIR, var/backups)",
        )
        parser.add_argument(
            "--no-files", action="store_true", help="the database only, not the uploaded files"
        )
        parser.add_argument(
            "--verify",
            type=Path,
            metavar="PATH",
            default=None,
            help="check the backup at PATH against its manifest instead of making one",
        )
        parser.add_argument(
            "--keep-daily",
            type=int,
            default=None,
            metavar="N",
            help="after the backup, delete older ones but the newest of each of the last N days",
        )
        parser.add_argument(
            "--keep-weekly",
            type=int,
            default=None,
            metavar="N",
            help="… and of each of the last N weeks (with --keep-daily; default 0)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["verify"] is not None:
                self._verify(options["verify"])
            else:
                self._backup(options)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc

    def _verify(self, path: Path) -> None:
        manifest = backup_verify(path)
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "%(path)s is intact: %(files)s files match their checksums (%(engine)s "
                    "database, made %(when)s by gridgov %(version)s)"
                )
                % {
                    "path": path,
                    "files": len(manifest["files"]),
                    "engine": manifest["database"]["engine"],
                    "when": manifest["created_at"],
                    "version": manifest["gridgov_version"],
                }
            )
        )

    def _backup(self, options: dict[str, Any]) -> None:
        output = options["output"] or Path(settings.GRIDGOV_BACKUP_DIR)
        keep_daily, keep_weekly = options["keep_daily"], options["keep_weekly"]
        if keep_weekly is not None and keep_daily is None:
            raise CommandError(_("--keep-weekly goes with --keep-daily"))
        if (keep_daily is not None and keep_daily < 1) or (keep_weekly or 0) < 0:
            raise CommandError(_("--keep-daily must be at least 1, --keep-weekly at least 0"))
        result = backup_create(output=output, include_files=not options["no_files"])
        manifest = result.manifest
        media = manifest["media"]
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "backup written to %(path)s: %(engine)s database (%(tables)s tables, "
                    "%(rows)s rows), %(files)s uploaded files"
                )
                % {
                    "path": result.path,
                    "engine": manifest["database"]["engine"],
                    "tables": len(manifest["tables"]),
                    "rows": f"{rows:,}",
                    "files": f"{media.get('files', 0):,}" if media["included"] else _("no"),
                }
            )
        )
        for note in result.notes:
            self.stdout.write(note)
        if keep_daily is not None:
            removed = backup_prune(
                folder=result.path.parent, keep_daily=keep_daily, keep_weekly=keep_weekly or 0
            )
            for path in removed:
                self.stdout.write(_("deleted the older backup %(path)s") % {"path": path})
