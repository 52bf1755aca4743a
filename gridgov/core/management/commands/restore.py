"""``gridgov restore PATH``: restore a backup made by ``gridgov backup``.

    gridgov restore PATH [--yes] [--no-files] [--database-url URL] [--media-root DIR]

Stop the web server and the worker first. The backup's checksums are verified before anything
is changed; a database that already has tables is replaced only with ``--yes``.
``--database-url`` and ``--media-root`` restore elsewhere (a monthly restore test beside the
running site). See ``gridgov.core.backup`` and docs/operations.md ("Backups").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridgov.core.backup import BackupError, Database, backup_restore


class Command(BaseCommand):
    help = "Restore a backup made by `gridgov backup` (stop the server and the worker first)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path, help="the backup folder")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="replace a database that already has tables (everything in it is lost)",
        )
        parser.add_argument("--no-files", action="store_true", help="restore the database only")
        parser.add_argument(
            "--database-url",
            default=None,
            metavar="URL",
            help="restore into this database instead of DATABASE_URL's",
        )
        parser.add_argument(
            "--media-root",
            type=Path,
            default=None,
            metavar="DIR",
            help="restore the uploaded files here instead of GRIDGOV_MEDIA_ROOT",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["database_url"]
        try:
            target = Database.from_url(url) if url else Database.from_alias("default")
            result = backup_restore(
                path=options["path"],
                target=target,
                media_root=options["media_root"],
                overwrite=options["yes"],
                include_files=not options["no_files"],
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        manifest = result.manifest
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "restored the backup of %(when)s: %(tables)s tables with the row counts of "
                    "the manifest; %(restored)s files written, %(same)s already in place"
                )
                % {
                    "when": manifest["created_at"],
                    "tables": len(manifest["tables"]),
                    "restored": f"{result.files_restored:,}",
                    "same": f"{result.files_unchanged:,}",
                }
            )
        )
        for note in result.notes:
            self.stdout.write(note)
