"""``gridgov registry …``: ledger import and export, and looking people up, from the command line.

Every subcommand runs as a named user (``--user USERNAME``, or ``--as USERNAME``) and sees and
does exactly what that user could on the web or through the API (the same actions and
selectors, the same scope):

    gridgov registry import LEDGER.xlsx --user wang [--mapping JSON | --template NAME]
                            [--region CODE] [--dry-run] [--errors PATH]
    gridgov registry commit UUID --user wang          # import a ledger checked earlier
    gridgov registry imports --user wang [--limit N] [--json]
    gridgov registry export --user wang --kind people --format csv [--region CODE] … -o FILE
    gridgov registry people --user wang [--name N] [--phone P] [--id-number X] [--grid CODE]
                            [--include-closed] [--limit N] [--format table|json]
    gridgov registry person UUID --user wang [--format table|json]

``import`` checks every row (a dry run), prints progress and the summary; with bad rows it
prints the first problems and the error sheet's path and exits with status 1, importing
nothing; otherwise (unless ``--dry-run``) it commits, all or nothing. Personal values are
never printed: problems show them masked.

``people`` finds people in the user's scope by name (or part of it), phone or id number (exact,
through their keyed hashes; several criteria must all match) like the web and API search
(``selectors.people_search``), optionally within a grid or other region, and prints them with
their numbers masked; the search is recorded in the access log (channel ``cli``) with its
criteria, numbers masked, and the number found. ``person`` shows one person's record, masked,
and records the view in the access log like opening the record on the web.

Subcommands are declared in ``SUBCOMMANDS`` (name → arguments, handler): add one there.
"""

from __future__ import annotations

import json
import shutil
import sys
import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from gridgov.core.scope import prefix_q
from gridgov.privacy import crypto
from gridgov.privacy.actions import access_log_search
from gridgov.privacy.models import Channel, SubjectType

from ... import selectors
from ...api import MAX_PAGE, person_out
from ...ledger.columns import PERSON_FIELDS
from ...ledger.exporter import FILTERS, FORMATS, KINDS, ledger_export
from ...ledger.importer import (
    import_get,
    import_progress,
    imports_visible_to,
    ledger_check,
    ledger_commit,
)
from ...models import Household, ImportStatus, LedgerImport, Person

#: Rows between two progress lines when the output is not a terminal.
PROGRESS_LINES = 50_000
PROBLEMS_SHOWN = 10
#: People a search lists unless ``--limit`` says otherwise.
PEOPLE_SHOWN = 50
#: The search criteria of ``people``: how ``people_search`` must read each, else the refusal.
CRITERIA = {
    "name": ("name", gettext_lazy("--name takes a name or a part of it, not a number")),
    "phone": (crypto.PHONE, gettext_lazy("--phone takes a phone number (7 to 12 digits)")),
    "id_number": (crypto.ID_NUMBER, gettext_lazy("--id-number takes an 18-character id number")),
}


def _user_argument(p: CommandParser) -> None:
    p.add_argument(
        "--user", "--as", dest="username", required=True, help="act as this user (their scope)"
    )


def _import_arguments(p: CommandParser) -> None:
    p.add_argument("file", help="the ledger: .xlsx, .xls or .csv (UTF-8 or GBK)")
    _user_argument(p)
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
    _user_argument(p)
    p.add_argument("--progress-every", type=int, default=PROGRESS_LINES)


def _imports_arguments(p: CommandParser) -> None:
    _user_argument(p)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _export_arguments(p: CommandParser) -> None:
    _user_argument(p)
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


def _people_arguments(p: CommandParser) -> None:
    _user_argument(p)
    p.add_argument("--name", help="a name or a part of it")
    p.add_argument("--phone", help="a phone number (exact)")
    p.add_argument("--id-number", dest="id_number", help="an 18-character id number (exact)")
    p.add_argument("--grid", help="only in this grid (or another region: its subtree)")
    p.add_argument("--include-closed", action="store_true", help="closed records too")
    p.add_argument(
        "--limit", type=int, default=PEOPLE_SHOWN, help=f"at most (default {PEOPLE_SHOWN})"
    )
    p.add_argument("--format", dest="fmt", choices=("table", "json"), default="table")


def _person_arguments(p: CommandParser) -> None:
    p.add_argument("uuid", help="the person's record (see `gridgov registry people`)")
    _user_argument(p)
    p.add_argument("--format", dest="fmt", choices=("table", "json"), default="table")


def _width(text: str) -> int:
    """Columns a text takes on a terminal (Chinese characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _label(name: str, model: type[models.Model] = Person) -> str:
    field = model._meta.get_field(name)
    return capfirst(str(getattr(field, "verbose_name", name)))


def _shown(record: models.Model, name: str) -> str:
    """A field's value as a screen shows it: choices by their label, a record by its name,
    days as YYYY-MM-DD, personal numbers only as the masks these fields hold."""
    field = record._meta.get_field(name)
    value = getattr(record, name)
    if value in (None, ""):
        return ""
    if getattr(field, "choices", None):
        return str(dict(field.flatchoices).get(value, value))  # type: ignore[union-attr]
    return value.isoformat() if isinstance(value, date) else str(value)


def _closed(record: Person) -> str:
    if record.closed_at is None:
        return ""
    day = timezone.localtime(record.closed_at).date()
    return f"{day} {record.get_closed_reason_display()}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Rows aligned in columns under their headers."""
    widths = [max(_width(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(f"{c}{' ' * (w - _width(c))}" for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]


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
        "people": (
            "find people by name, phone or id number (masked)",
            _people_arguments,
            "do_people",
        ),
        "person": ("show one person's record (masked)", _person_arguments, "do_person"),
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
        wanted = set().union(*FILTERS.values()) - {"kind"}
        f = {key: o.get(key) for key in wanted} | {"kind": o.get("building_kind")}
        export = ledger_export(
            actor=user,
            kind=kind,
            filter=f,  # blank filters are left out
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

    def do_people(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        given = {key: str(o.get(key) or "").strip() for key in CRITERIA}
        given = {key: value for key, value in given.items() if value}
        if not given:
            raise CommandError(_("give --name, --phone or --id-number"))
        people = None
        for key, value in given.items():
            kind, refusal = CRITERIA[key]
            if selectors.search_kind(value) != kind:
                raise CommandError(str(refusal))
            found = selectors.people_search(user, value, include_closed=o["include_closed"])
            people = found if people is None else people & found
        assert people is not None
        grid = str(o.get("grid") or "").strip()
        if grid:
            if not grid.isdigit() or len(grid) > 15:
                raise CommandError(_("--grid takes a region code of up to 15 digits"))
            people = people.filter(prefix_q("region_code", grid))
        limit = max(1, min(int(o["limit"]), MAX_PAGE))
        rows = list(
            people.select_related("household")
            .prefetch_related(selectors.tags_prefetch(user))
            .order_by("name", "pk")[:limit]
        )
        criteria: dict[str, Any] = {**given, "grid": grid, "include_closed": o["include_closed"]}
        access_log_search(  # as the web and the API do: the criteria (numbers masked), the count
            actor=user,
            subject_type=SubjectType.PERSON,
            filter={key: value for key, value in criteria.items() if value},
            count=len(rows),
            channel=Channel.CLI,
            screen="gridgov registry people",
        )
        if o["fmt"] == "json":
            for person in rows:
                self._json(person_out(person, selectors.visible_tags(user, person)))
        elif rows:
            columns = ("name", "sex", "birth_date", "id_number_mask", "phone_mask", "household")
            headers = [_label(name) for name in columns]
            headers += [_label("region_code"), _("Closed"), _("Record id")]
            table = [
                [*(_shown(p, name) for name in columns), p.region_code, _closed(p), str(p.uuid)]
                for p in rows
            ]
            self.stdout.write("\n".join(_table(headers, table)))
            if len(rows) == limit:
                self.stdout.write(
                    _("only the first %(count)s: narrow the search") % {"count": limit}
                )
        else:
            self.stdout.write(_("Nobody found."))

    def do_person(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        person = selectors.person_open(
            user, o["uuid"], channel=Channel.CLI, screen="gridgov registry person"
        )
        tags = selectors.visible_tags(user, person)
        if o["fmt"] == "json":
            self._json(person_out(person, tags))
            return
        room = person.household.room if person.household is not None else None
        facts = [(_label(name), _shown(person, name)) for name in selectors.PERSON_DETAIL_FIELDS]
        facts += [
            (_("Tags"), ", ".join(t.tag_type.name for t in tags)),
            (_label("room", Household), str(room or "")),
            (_label("region_code"), person.region_code),
            (_("Closed"), " · ".join(filter(None, (_closed(person), person.closed_note)))),
            (_("Record id"), f"{person.uuid} (v{person.version})"),
        ]
        width = max(_width(label) for label, _value in facts)
        for label, value in facts:
            if value:
                self.stdout.write(f"{label}{' ' * (width - _width(label))}  {value}")

    def _json(self, value: Any) -> None:
        self.stdout.write(json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder))
