"""``gridgov registry …``: ledger import and export from the command line.

Every subcommand runs as a named user (``--as USERNAME``) and sees and does exactly what that
user could on the web or through the API (the same actions and selectors, the same scope):

    gridgov registry import LEDGER.xlsx --as wang [--mapping JSON | --template NAME]
                            [--region CODE] [--dry-run] [--errors PATH]
    gridgov registry commit UUID --as wang          # import a ledger checked earlier
    gridgov registry imports --as wang [--limit N] [--json]
    gridgov registry export --as wang --kind people --format csv [--region CODE] … -o FILE

``import`` checks every row (a dry run), prints progress and the summary; with bad rows it
prints the first problems and the error sheet's path and exits with status 1, importing
nothing; otherwise (unless ``--dry-run``) it commits, all or nothing. Personal values are
never printed: problems show them masked.

Subcommands are declared in ``SUBCOMMANDS`` (name → arguments, handler): add one there.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from gridgov.privacy.models import Channel

from ...ledger.columns import PERSON_FIELDS
from ...ledger.exporter import FORMATS, KINDS, ledger_export
from ...ledger.importer import (
    import_get,
    import_progress,
    imports_visible_to,
    ledger_check,
    ledger_commit,
)
from ...models import ImportStatus, LedgerImport

#: Rows between two progress lines when the output is not a terminal.
PROGRESS_LINES = 50_000
PROBLEMS_SHOWN = 10


def _import_arguments(p: CommandParser) -> None:
    p.add_argument("file", help="the ledger: .xlsx, .xls or .csv (UTF-8 or GBK)")
    p.add_argument("--as", dest="username", required=True, help="import as this user")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--mapping",
        help='the column mapping as JSON {"header": "field", …} (or @file.json); fields: '
        + ", ".join(PERSON_FIELDS),
    )
    how.add_argument("--template", help="a remembered mapping (ledger template) by name")
    p.add_argument("--region", help="import into this region only (a code in your scope)")
    p.add_argument("--dry-run", action="store_true", help="check every row, import nothing")
    p.add_argument("--errors", help="copy the error sheet (xlsx) to this path")
    p.add_argument(
        "--progress-every",
        type=int,
        default=PROGRESS_LINES,
        help=f"rows between progress lines when not on a terminal (default {PROGRESS_LINES:,})",
    )


def _commit_arguments(p: CommandParser) -> None:
    p.add_argument("uuid", help="the import (see `gridgov registry imports`)")
    p.add_argument("--as", dest="username", required=True)
    p.add_argument("--progress-every", type=int, default=PROGRESS_LINES)


def _imports_arguments(p: CommandParser) -> None:
    p.add_argument("--as", dest="username", required=True)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _export_arguments(p: CommandParser) -> None:
    p.add_argument("--as", dest="username", required=True)
    p.add_argument("--kind", choices=KINDS, default="people")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="xlsx")
    p.add_argument("-o", "--output", help="the file to write (default: a name in this folder)")
    p.add_argument("--region", help="a region code (its subtree)")
    p.add_argument("--q", help="a part of the name (of the address for buildings)")
    p.add_argument("--person-type", dest="person_type")
    p.add_argument("--sex")
    p.add_argument("--tag", help="a tag code")
    p.add_argument("--verification")
    p.add_argument("--relation")
    p.add_argument("--building-kind", dest="building_kind", help="kind of building or organisation")
    p.add_argument("--include-closed", action="store_true")


class Command(BaseCommand):
    help = "Base data: import a ledger (台账), list imports, export a ledger."

    #: name → (help, add arguments, handler method name)
    SUBCOMMANDS: dict[str, tuple[str, Callable[[CommandParser], None], str]] = {
        "import": ("check a ledger and import it, all or nothing", _import_arguments, "do_import"),
        "commit": ("import a ledger checked earlier", _commit_arguments, "do_commit"),
        "imports": ("the imports a user may see", _imports_arguments, "do_imports"),
        "export": (
            "export people, households, buildings or organisations",
            _export_arguments,
            "do_export",
        ),
    }

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command_name", required=True)
        for name, (text, arguments, _handler) in self.SUBCOMMANDS.items():
            arguments(sub.add_parser(name, help=text))

    def handle(self, *args: Any, **options: Any) -> None:
        _text, _arguments, handler = self.SUBCOMMANDS[options["command_name"]]
        try:
            getattr(self, handler)(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    # --- helpers ----------------------------------------------------------------------------

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        return user

    def _progress(self, every: int, verb: str) -> Callable[[LedgerImport], None]:
        tty = sys.stderr.isatty()
        state = {"next": every}

        def show(li: LedgerImport) -> None:
            done = import_progress(li)
            total = li.rows_total if li.status == ImportStatus.IMPORTING else 0
            of = f" / {total:,}" if total else ""
            if tty:
                sys.stderr.write(f"\r  {done:,}{of} rows {verb}")
                sys.stderr.flush()
            elif done >= state["next"]:
                state["next"] = done + max(1, every)
                self.stdout.write(f"  {done:,}{of} rows {verb}")

        return show

    def _end_progress(self) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")

    def _sheet_path(self, li: LedgerImport) -> str:
        if not li.error_sheet:
            return ""
        try:
            return str(default_storage.path(str(li.error_sheet.name)))
        except NotImplementedError:
            return str(li.error_sheet.name)

    def _report_problems(self, li: LedgerImport, errors: str | None) -> None:
        for problem in li.error_summary[:PROBLEMS_SHOWN]:
            value = f" ({problem['value']})" if problem.get("value") else ""
            self.stdout.write(
                f"  row {problem['row']}, {problem['column']}{value}: {problem['message']}"
            )
        more = li.rows_bad - min(len(li.error_summary), PROBLEMS_SHOWN)
        if li.error_summary and len(li.error_summary) > PROBLEMS_SHOWN:
            self.stdout.write(f"  … see the error sheet for the others ({li.rows_bad:,} bad rows)")
        elif more > 0:
            self.stdout.write(f"  … {more:,} more bad rows in the error sheet")
        path = self._sheet_path(li)
        if errors and li.error_sheet:
            with li.error_sheet.open("rb") as source, open(errors, "wb") as target:
                shutil.copyfileobj(source, target)
            path = str(Path(errors).resolve())
        if path:
            self.stdout.write(f"error sheet: {path}")

    def _mapping(self, text: str | None) -> dict[str, str | None] | None:
        if not text:
            return None
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--mapping is not JSON: {exc}") from exc
        if not isinstance(mapping, dict):
            raise CommandError('--mapping must be a JSON object {"header": "field", …}')
        return {str(k): (str(v) if v else None) for k, v in mapping.items()}

    def _commit(self, user: User, li: LedgerImport, every: int) -> None:
        self.stdout.write(f"importing {li.rows_total:,} rows …")
        li = ledger_commit(
            actor=user, ledger_import=li, on_progress=self._progress(every, "imported")
        )
        self._end_progress()
        if li.status != ImportStatus.IMPORTED:
            raise CommandError(li.message or "the import failed", returncode=1)
        self.stdout.write(self.style.SUCCESS(li.message))

    # --- subcommands ------------------------------------------------------------------------

    def do_import(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        path = Path(o["file"])
        if not path.is_file():
            raise CommandError(f"no file {path}")
        self.stdout.write(f"checking {path.name} …")
        li = ledger_check(
            actor=user,
            file=path,
            file_name=path.name,
            template=o.get("template") or None,
            mapping=self._mapping(o.get("mapping")),
            region=o.get("region") or None,
            on_progress=self._progress(o["progress_every"], "checked"),
        )
        self._end_progress()
        encoding = f", {li.encoding}" if li.encoding else ""
        self.stdout.write(f"import {li.uuid} ({li.file_name}{encoding})")
        for header, field in li.mapping.items():
            if field:
                self.stdout.write(f"  {header} → {field}")
        if li.status != ImportStatus.CHECKED:
            self.stdout.write(self.style.ERROR(li.message))
            self._report_problems(li, o.get("errors"))
            raise CommandError("nothing was imported", returncode=1)
        self.stdout.write(li.message)
        if o["dry_run"]:
            self.stdout.write(
                f"dry run: nothing imported (commit later: gridgov registry commit {li.uuid})"
            )
            return
        self._commit(user, li, o["progress_every"])

    def do_commit(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        li = import_get(user, o["uuid"])
        self._commit(user, li, o["progress_every"])

    def do_imports(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        limit = max(1, min(int(o["limit"]), 1000))
        for li in imports_visible_to(user).order_by("-created_at")[:limit]:
            if o["json"]:
                self.stdout.write(
                    json.dumps(
                        {
                            "uuid": str(li.uuid),
                            "file_name": li.file_name,
                            "status": li.status,
                            "created_at": li.created_at.isoformat(),
                            "created_by": li.created_by.username,
                            "rows": li.rows_total,
                            "ok": li.rows_ok,
                            "bad": li.rows_bad,
                            "created": li.created,
                            "updated": li.updated,
                            "progress": import_progress(li),
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                when = timezone.localtime(li.created_at).strftime("%Y-%m-%d %H:%M")
                self.stdout.write(
                    f"{li.uuid}  {when}  {li.status:<12} {li.rows_total:>9,} rows "
                    f"{li.rows_bad:>7,} bad  {li.created:>9,} new {li.updated:>9,} updated  "
                    f"{li.created_by.username}  {li.file_name}"
                )

    def do_export(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        kind = o["kind"]
        f: dict[str, Any] = {
            key: o.get(key)
            for key in ("region", "q", "person_type", "sex", "tag", "verification", "relation")
            if o.get(key)
        }
        if o.get("building_kind"):
            f["kind"] = o["building_kind"]
        if o.get("include_closed"):
            f["include_closed"] = True
        export = ledger_export(
            actor=user,
            kind=kind,
            filter=f,
            fmt=o["fmt"],
            channel=Channel.CLI,
            screen="gridgov registry export",
        )
        target = Path(o.get("output") or export.file_name)
        try:
            with open(target, "wb") as out:
                shutil.copyfileobj(export.handle, out)
        finally:
            export.close()
        self.stdout.write(f"{export.count:,} {kind} written to {target}")
