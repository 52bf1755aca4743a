"""Ledger (台账) import: a dry run that checks every row, then an all-or-nothing commit.

- ``ledger_check(actor=…, file=…, file_name=…)`` opens the upload (``ledger.readers``; a file
  that is no spreadsheet, a zip bomb or one larger than ``GRIDGOV_LEDGER_MAX_MB`` is refused and
  nothing is stored), stores it under ``ledger/``, maps its columns (an explicit ``mapping``, a
  named ``template``, the ``LedgerTemplate`` remembered for the same headers, or the suggestion
  of ``ledger.columns``) and checks every row without writing base data: names, id numbers
  (GB 11643, and agreeing with the birth date and sex), phones, dates, codes, tags, the row's
  grid (it must exist and lie in the importer's scope), the same id number twice in the file,
  one head per household. An id number already registered makes the row an update of that
  person. Bad rows go to an error sheet (row, column, value masked, problem). The mapping is
  remembered for the next ledger with the same headers.
- ``ledger_commit(actor=…, ledger_import=…)`` imports a checked ledger in one transaction:
  the file is streamed again, every row validated again, and buildings, rooms, households and
  people are inserted in batches of prepared tuples (``executemany``; ``COPY`` on PostgreSQL)
  with their ids allocated up front, id and phone numbers encrypted, hashed and masked in
  Python. People made by the import carry ``import_batch``/``import_row`` and get no create row
  in the history; people updated get a ``RecordChange`` each. Any problem rolls everything back
  and marks the import failed with the message.
- ``ledger_recheck`` checks a stored upload again with another mapping (the mapping step);
  ``ledger_preview`` shows its headers, the mapping and a few rows with personal values masked.

De-duplication: people by the keyed hash of their id number (looked up in the database batch
by batch; a long ledger first loads the registry's hashes once, as 64-bit prefixes in a sorted
array, and asks only about those it finds there); buildings by normalised address (estate +
building number) within their community; rooms by (building, unit, number); a household is the
people of one room, or of one household number. Empty cells never erase what the registry holds.

A ledger of 1,000,000 rows streams: rows are read, checked and written in batches of ``BATCH``;
what stays in memory are the keys of the buildings, rooms and households met so far and, in a
dry run, two integer arrays of id numbers for the duplicate check. A commit writes each batch on
a second thread (``_Writer``, same connection and transaction) while the next one is read
(``GRIDGOV_LEDGER_WRITER_THREAD``, on by default), and past ``FEED_AFTER_ROWS`` rows the rest of
the file is read, checked and sealed in a second process (``ledger.feed``,
``GRIDGOV_LEDGER_SECOND_PROCESS``, on by default) while this one places and writes the rows.

Progress (rows processed) is written to the import every ``PROGRESS_EVERY`` rows in its own
small transaction while checking; while committing (inside the big transaction) it goes to a
small file under ``var/ledger-progress/`` and, on PostgreSQL, through a second connection too;
``import_progress`` reads it from there.

Settings: ``GRIDGOV_LEDGER_MAX_MB`` (upload limit, default 200), ``GRIDGOV_LEDGER_SQLITE_CACHE_MB``
(SQLite page cache while committing, default 256), ``GRIDGOV_LEDGER_WRITER_THREAD`` and
``GRIDGOV_LEDGER_SECOND_PROCESS`` (default True).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import unicodedata
import uuid as uuid_module
from array import array
from binascii import b2a_base64
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache
from heapq import merge
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.accounts.models import User
from gridgov.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from gridgov.core.ids import random_bytes, uuid7_bytes
from gridgov.core.jobs import wake_workers
from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.core.scope import Scope
from gridgov.geo.models import Level, Region
from gridgov.privacy import crypto
from gridgov.privacy.errors import ValidationFailed
from gridgov.privacy.selectors import clearance_of

from .. import history
from ..actions import edit_scope
from ..models import (
    Building,
    BuildingType,
    ChangeAction,
    Household,
    ImportStatus,
    LedgerImport,
    LedgerKind,
    LedgerTemplate,
    Person,
    PersonTag,
    PersonType,
    RecordChange,
    RecordType,
    Relation,
    Room,
    RoomUse,
    Sex,
    TagAppliesTo,
    TagType,
    Verification,
    normalise_address,
)
from ..validators import (
    ID_CHECK_CHARS,
    ID_MIN_YEAR,
    ID_WEIGHTS,
    PROVINCES,
    FieldProblem,
    IdNumberFacts,
    check_id_consistent,
    check_id_number,
    check_phone,
    parse_date,
)
from . import feed
from .columns import (
    PERSON_FIELDS,
    header_signature,
    parse_person_type,
    parse_relation,
    parse_room_use,
    parse_sex,
    parse_verification,
    split_tags,
    suggest_mapping,
)
from .error_sheet import MASKED_FIELDS, Problem, write_error_sheet
from .readers import LedgerFileError, LedgerReader, open_ledger

log = logging.getLogger("gridgov.registry.ledger")

#: Rows between two progress reports.
PROGRESS_EVERY = 5000
#: Rows read, checked and written together.
BATCH = 2000
#: Problems kept on the import itself (the error sheet has them all).
SUMMARY_PROBLEMS = 200
#: Upload limit when ``GRIDGOV_LEDGER_MAX_MB`` is not set.
DEFAULT_MAX_MB = 200
#: Keys taken from a PostgreSQL sequence at a time (unused ones are merely a gap).
ID_BLOCK = 50_000
#: Rows of a commit read and checked in this process before the rest of a long ledger goes to
#: a second one (``ledger.feed``): ledgers small enough for a web request never fork.
FEED_AFTER_ROWS = 20_000
#: Batches looked up in the database one by one before the registry's hashes are loaded.
KNOWN_AFTER_BATCHES = 5
KNOWN_CHUNK = 50_000
#: Rows shown by ``ledger_preview``.
PREVIEW_ROWS = 5
#: SQLite page cache of the committing connection (``GRIDGOV_LEDGER_SQLITE_CACHE_MB``): the
#: look-up hash and uuid indexes take random inserts, which crawl once they outgrow the cache.
DEFAULT_SQLITE_CACHE_MB = 256

ProgressCallback = Callable[[LedgerImport], None]
Source = str | os.PathLike[str] | IO[bytes] | File


def max_upload_bytes() -> int:
    return int(float(getattr(settings, "GRIDGOV_LEDGER_MAX_MB", DEFAULT_MAX_MB)) * 2**20)


# --------------------------------------------------------------------------- who and where


def _require_importer(actor: Any) -> Scope:
    scope = edit_scope(actor)
    if scope.is_empty:
        raise PermissionDenied(_("you may not import base data"))
    return scope


def _common_prefix(codes: Iterable[str]) -> str:
    items = list(codes)
    if not items:
        return ""
    prefix = items[0]
    for code in items[1:]:
        while not code.startswith(prefix):
            prefix = prefix[:-1]
    # a region code's levels are 6, 9, 12 and 15 digits
    for size in (15, 12, 9, 6):
        if len(prefix) >= size:
            return prefix[:size]
    return ""


def _import_region(actor: Any, scope: Scope, region: Region | str | None) -> str:
    """The import's region: the one chosen (inside the actor's scope), else the actor's."""
    if region not in (None, ""):
        code = region.code if isinstance(region, Region) else str(region).strip()
        if not Region.objects.filter(code=code).exists():
            message = _("no region with code %(code)s") % {"code": code[:20]}
            raise ValidationFailed(message, detail={"region": message})
        if not scope.covers(code):
            raise PermissionDenied(
                _("you may not import base data into %(region)s") % {"region": code},
                detail={"region": code},
            )
        return code
    if scope.everything:
        return ""
    return _common_prefix(scope.prefixes)


# --------------------------------------------------------------------------- selectors


def imports_visible_to(user: Any) -> QuerySet[LedgerImport]:
    """Imports ``user`` may look at: their own, and those of a region they may edit."""
    qs = LedgerImport.objects.select_related("created_by", "template")
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    scope = edit_scope(user)
    own = qs.filter(created_by=user)
    if scope.is_empty:
        return own
    regional = qs.exclude(region_code="").filter(scope.q("region_code"))
    return (own | regional).distinct()


def import_get(actor: Any, key: uuid_module.UUID | str) -> LedgerImport:
    """An import the actor may see; NotFound otherwise."""
    try:
        found = uuid_module.UUID(str(key))
    except (TypeError, ValueError):
        found = None
    li = imports_visible_to(actor).filter(uuid=found).first() if found else None
    if li is None:
        raise NotFound(_("no such import"), detail={"uuid": str(key)[:40]})
    return li


def _progress_file(li: LedgerImport) -> Path:
    return Path(settings.VAR_DIR) / "ledger-progress" / f"{li.uuid.hex}"


def import_progress(li: LedgerImport) -> int:
    """Rows processed so far; during a commit also from the progress file (see the module)."""
    done = int(li.progress)
    if li.status == ImportStatus.IMPORTING:
        with contextlib.suppress(OSError, ValueError):
            done = max(done, int(_progress_file(li).read_text(encoding="ascii").strip() or 0))
    return done


# --------------------------------------------------------------------------- storage


def _size_of(fh: IO[bytes]) -> int:
    position = fh.tell()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(position)
    return int(size)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[IO[bytes]]:
    """A seekable binary handle on ``source`` (a path, a file object or a Django file)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as opened:
            yield opened
        return
    fh: Any = source
    if isinstance(source, File) and getattr(source, "file", None) is not None:
        fh = source.file
    if not fh.seekable():
        spool: Any = tempfile.SpooledTemporaryFile(max_size=16 * 2**20)  # noqa: SIM115
        with spool:
            while chunk := fh.read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
            yield spool
        return
    fh.seek(0)
    yield fh


@contextlib.contextmanager
def _stored(li: LedgerImport) -> Iterator[IO[bytes] | str]:
    """The stored upload: its path on local storage, else an open file."""
    name = li.file.name
    if not name:
        raise Conflict(_("the upload of this import is gone"))
    try:
        path = default_storage.path(name)
    except NotImplementedError:
        path = None
    if path is not None:
        if not os.path.exists(path):
            raise Conflict(_("the upload of this import is gone"))
        yield path
        return
    with default_storage.open(name, "rb") as fh:
        yield fh


def _open_stored(li: LedgerImport, source: IO[bytes] | str) -> LedgerReader:
    header_row = li.template.header_row if li.template_id and li.template else None
    try:
        return open_ledger(source, file_name=li.file_name, header_row=header_row)
    except LedgerFileError:
        if header_row is None:
            raise
        return open_ledger(source, file_name=li.file_name)


# --------------------------------------------------------------------------- mapping


def _template_of(value: LedgerTemplate | str | None) -> LedgerTemplate | None:
    if value is None or value == "":
        return None
    if isinstance(value, LedgerTemplate):
        return value
    text = str(value).strip()
    found = (
        LedgerTemplate.objects.filter(name=text).order_by("-last_used_at").first()
        or LedgerTemplate.objects.filter(signature=text).first()
    )
    if found is None:
        message = _("no ledger template called “%(name)s”") % {"name": text[:60]}
        raise ValidationFailed(message, detail={"template": message})
    return found


def _checked_mapping(headers: list[str], mapping: Mapping[str, Any]) -> dict[str, str | None]:
    """The mapping over every header, or ValidationFailed naming what is wrong with it."""
    result: dict[str, str | None] = dict.fromkeys(headers)
    problems: list[str] = []
    used: dict[str, str] = {}
    for header, target in mapping.items():
        if header not in result:
            problems.append(_("the ledger has no column “%(header)s”") % {"header": header})
            continue
        if target in (None, ""):
            continue
        if target not in PERSON_FIELDS:
            problems.append(
                _("“%(field)s” is not a field a column can be mapped to") % {"field": target}
            )
            continue
        if target in used:
            problems.append(
                _("the columns “%(first)s” and “%(second)s” are both mapped to %(field)s")
                % {"first": used[target], "second": header, "field": target}
            )
            continue
        used[target] = header
        result[header] = str(target)
    if problems:
        message = "; ".join(problems)
        raise ValidationFailed(message, detail={"mapping": message})
    return result


def _mapping_for(
    reader: LedgerReader,
    *,
    mapping: Mapping[str, Any] | None,
    template: LedgerTemplate | None,
) -> tuple[dict[str, str | None], LedgerTemplate | None]:
    """(mapping over every header, the template it came from) for an opened ledger."""
    headers = list(reader.headers)
    if mapping:
        return _checked_mapping(headers, mapping), template
    if template is not None:
        known = {h: f for h, f in template.mapping.items() if h in headers}
        return _checked_mapping(headers, known), template
    remembered = LedgerTemplate.objects.filter(signature=header_signature(headers)).first()
    if remembered is not None:
        known = {h: f for h, f in remembered.mapping.items() if h in headers}
        with contextlib.suppress(ValidationFailed):
            return _checked_mapping(headers, known), remembered
    return dict(suggest_mapping(headers)), None


def _remember(
    li: LedgerImport, reader: LedgerReader, mapping: dict[str, str | None], actor: Any
) -> LedgerTemplate:
    """Remember the mapping for ledgers with the same headers."""
    signature = header_signature(reader.headers)
    now = timezone.now()
    template = LedgerTemplate.objects.filter(signature=signature).first()
    stored = {h: f for h, f in mapping.items() if f}
    if template is None:
        template = LedgerTemplate.objects.create(
            signature=signature,
            name=Path(li.file_name).stem[:200],
            kind=li.kind,
            mapping=stored,
            header_row=reader.header_row,
            created_by=actor if isinstance(actor, User) else None,
            last_used_at=now,
        )
    else:
        template.mapping = stored
        template.header_row = reader.header_row
        template.last_used_at = now
        template.save(update_fields=["mapping", "header_row", "last_used_at"])
    return template


def _ordered_mapping(reader: LedgerReader, mapping: Mapping[str, Any]) -> dict[str, str | None]:
    """The mapping in the file's column order (JSON columns may not keep the order)."""
    return {h: (mapping.get(h) or None) for h in reader.headers}


# --------------------------------------------------------------------------- fast crypto


_URLSAFE = bytes.maketrans(b"+/", b"-_")


class _Sealer:
    """Encryption and look-up hashes with the key ring fetched once per run.

    Produces exactly what ``crypto.encrypt`` and ``crypto.lookup_hash`` produce (checked when it
    starts; it falls back to them otherwise) without their per-call key-ring look-up."""

    def __init__(self) -> None:
        ring = crypto.key_ring()
        self._cipher = ring.current
        self._prefix = f"{crypto.TOKEN_PREFIX}{ring.current_kid}$"
        # HMAC-SHA256 (RFC 2104) with its inner and outer states computed once
        key = ring.lookup_key
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._fast = True
        samples = ((crypto.ID_NUMBER, "11010519491231002X"), (crypto.PHONE, "13912345678"))
        try:
            for kind, value in samples:
                if self.hash(kind, value) != crypto.lookup_hash(kind, value):
                    raise ValueError("hash")
                if crypto.decrypt(self.seal(value)) != value:
                    raise ValueError("seal")
            if self.hash(crypto.PHONE, "02585551234") != crypto.lookup_hash(
                crypto.PHONE, "02585551234"
            ):
                raise ValueError("hash")
        except (ValueError, crypto.PersonalDataKeyError):  # pragma: no cover - format drift
            log.warning("ledger import: fast encryption disagrees with gridgov.privacy.crypto")
            self._fast = False

    def seal(self, text: str) -> str:
        if not text:
            return ""
        if not self._fast:  # pragma: no cover
            return crypto.encrypt(text)
        nonce = random_bytes(12)
        sealed = self._cipher.encrypt(nonce, text.encode("utf-8"), None)
        encoded = b2a_base64(nonce + sealed, newline=False).translate(_URLSAFE)
        return self._prefix + encoded.rstrip(b"=").decode("ascii")

    def hash(self, kind: str, normal: str) -> str:
        """The look-up hash of an already normalised value."""
        if not normal:
            return ""
        if not self._fast:  # pragma: no cover
            return crypto.lookup_hash(kind, normal)
        inner = self._inner.copy()
        inner.update(f"{kind}\0{normal}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


# --------------------------------------------------------------------------- rows


_ID_DIGITS = re.compile(r"^[0-9]{17}[0-9X]$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_FLOOR = re.compile(r"^(-?\d{1,3})\s*(层|楼|f|F)?$")
_ID_WEIGHT_SUM = 48 * sum(ID_WEIGHTS)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class _Region:
    pk: int
    code: str
    level: str
    name: str
    lon: float | None
    lat: float | None


class _Row:
    """One ledger row, checked: what the registry would hold. ``None``: not given.

    Class attributes are the defaults; a row sets only what its cells give."""

    name = ""
    sex: str | None = None
    birth: date | None = None
    id_text = ""
    id_key = 0
    phone: str | None = None
    ethnicity: str | None = None
    person_type: str | None = None
    relation: str | None = None
    verification: str | None = None
    moved_in: date | None = None
    household_number = ""
    tags: tuple[int, ...] = ()
    region: _Region | None = None
    explicit_grid = False
    estate = ""
    building = ""
    unit = ""
    room = ""
    floor: int | None = None
    room_use: str | None = None
    #: street, community and grid cells on one line each (``_RowParser.locate`` reads them)
    place: tuple[str, str, str] = ("", "", "")
    #: the keyed hash of the id number
    id_hash = ""
    #: for a commit, the person's cells that need no database (``_Run._prepare``): uuid, birth
    #: date, id number sealed and masked, phone sealed, hashed and masked, moving-in date
    cells: tuple[Any, ...] | None = None

    def __init__(self, number: int) -> None:
        self.number = number


#: (field, value as in the ledger, message)
RowProblem = tuple[str, str, str]


def _one_line(text: str) -> str:
    return " ".join(text.split()) if text else ""


class _Regions:
    """The grid (or community) of a row from its street, community and grid cells."""

    def __init__(self, default: _Region | None) -> None:
        self.default = default
        self.gate: Callable[[], None] = _no_gate
        self._cache: dict[tuple[str, str, str], tuple[_Region | None, bool] | FieldProblem] = {}
        self._by_code: dict[str, _Region | None] = {}

    def _get(self, **filters: Any) -> list[_Region]:
        self.gate()
        rows = Region.objects.filter(**filters).values_list(
            "pk", "code", "level", "name", "label_lon", "label_lat"
        )[:3]
        return [_Region(*row) for row in rows]

    def preload(self, base: str) -> None:
        """Know every region under ``base`` (its codes) without asking again."""
        if len(base) < 6:
            return
        rows = Region.objects.filter(code__startswith=base).values_list(
            "pk", "code", "level", "name", "label_lon", "label_lat"
        )
        for row in rows.iterator(chunk_size=5000):
            self._by_code[row[1]] = _Region(*row)

    def by_code(self, code: str) -> _Region | None:
        if code not in self._by_code:
            found = self._get(code=code)
            self._by_code[code] = found[0] if found else None
        return self._by_code[code]

    def resolve(self, street: str, community: str, grid: str) -> tuple[_Region | None, bool]:
        """(region, whether a grid or community was named), or FieldProblem."""
        key = (street, community, grid)
        found = self._cache.get(key)
        if found is None:
            try:
                found = self._resolve(street, community, grid)
            except FieldProblem as exc:
                found = exc
            self._cache[key] = found
        if isinstance(found, FieldProblem):
            raise found
        return found

    def _named(self, field: str, text: str, level: str, within: str, what: str) -> _Region:
        filters: dict[str, Any] = {"level": level, "name": text}
        if within:
            filters["code__startswith"] = within
        found = self._get(**filters)
        if len(found) == 1:
            return found[0]
        if not found:
            raise FieldProblem(
                field,
                "unknown",
                _("There is no %(what)s called “%(name)s”.") % {"what": what, "name": text},
            )
        raise FieldProblem(
            field,
            "ambiguous",
            _(
                "More than one %(what)s is called “%(name)s”; write its code, or add the "
                "street and community columns."
            )
            % {"what": what, "name": text},
        )

    def _resolve(self, street: str, community: str, grid: str) -> tuple[_Region | None, bool]:
        within = ""
        if street:
            if street.isdigit() and len(street) == 9:
                found = self.by_code(street)
                if found is None or found.level != Level.STREET:
                    raise FieldProblem(
                        "street",
                        "unknown",
                        _("There is no street with code %(code)s.") % {"code": street},
                    )
            else:
                found = self._named("street", street, Level.STREET, "", _("street"))
            within = found.code
        place: _Region | None = None
        if community:
            if community.isdigit() and len(community) == 12:
                place = self.by_code(community)
                if place is None or place.level != Level.COMMUNITY:
                    raise FieldProblem(
                        "community",
                        "unknown",
                        _("There is no community with code %(code)s.") % {"code": community},
                    )
                if within and not place.code.startswith(within):
                    raise FieldProblem(
                        "community",
                        "street",
                        _("Community %(community)s does not belong to street %(street)s.")
                        % {"community": community, "street": street},
                    )
            else:
                place = self._named("community", community, Level.COMMUNITY, within, _("community"))
            within = place.code
        if grid:
            if grid.isdigit() and len(grid) == 15:
                found = self.by_code(grid)
                if found is None or found.level != Level.GRID:
                    raise FieldProblem(
                        "grid_code",
                        "unknown",
                        _("There is no grid with code %(code)s.") % {"code": grid},
                    )
            elif grid.isdigit() and len(grid) <= 3 and place is not None:
                code = f"{place.code}{int(grid):03d}"
                found = self.by_code(code)
                if found is None or found.level != Level.GRID:
                    raise FieldProblem(
                        "grid_code",
                        "unknown",
                        _("There is no grid with code %(code)s.") % {"code": code},
                    )
            else:
                found = self._named("grid_code", grid, Level.GRID, within, _("grid"))
            if within and not found.code.startswith(within):
                raise FieldProblem(
                    "grid_code",
                    "community",
                    _("Grid %(grid)s does not lie in %(region)s.")
                    % {"grid": found.code, "region": within},
                )
            return found, True
        if place is not None:
            return place, True
        return self.default, False


class _RowParser:
    """From a ledger row (one text per column) to a ``_Row`` and its problems."""

    def __init__(
        self,
        *,
        mapping: Mapping[str, str | None],
        headers: list[str],
        regions: _Regions,
        actor: Any,
    ) -> None:
        self.cols = {field: headers.index(h) for h, field in mapping.items() if field}
        #: each field's column; -1 (the blank cell ``parse`` appends) when it has none
        self.ix = {field: self.cols.get(field, -1) for field in PERSON_FIELDS}
        self.regions = regions
        self._labels = {
            "name": _("The name"),
            "ethnicity": _("The ethnicity"),
            "household_number": _("The household number"),
            "estate": _("The estate"),
            "building": _("The building number"),
            "unit": _("The unit"),
            "room": _("The room number"),
        }
        self._missing_name = _("The name is missing.")
        self._moved_before_birth = _("The date of moving in lies before the birth date.")
        self.today = timezone.localdate()
        self._caches: dict[str, dict[str, Any]] = {f: {} for f in PERSON_FIELDS}
        self._births: dict[str, date | None] = {}
        self._tags = self._tag_index()
        self._level = clearance_of(actor)[0]

    @staticmethod
    def _tag_index() -> dict[str, TagType]:
        index: dict[str, TagType] = {}
        for tag in TagType.objects.all():
            for word in (tag.code, tag.name_zh, tag.name_en):
                if word:
                    index.setdefault(unicodedata.normalize("NFKC", word).lower(), tag)
        return index

    def _cache(self, name: str) -> dict[str, Any]:
        return self._caches[name]

    def _get(self, values: list[str], field: str) -> str:
        index = self.cols.get(field)
        return values[index] if index is not None else ""

    # -- single fields

    def _text(
        self, problems: list[RowProblem], field: str, raw: str, limit: int, label: str
    ) -> str:
        text = _one_line(raw)
        if _CONTROL.search(text):
            problems.append(
                (field, raw, _("%(field)s contains control characters.") % {"field": label})
            )
            return ""
        if len(text) > limit:
            problems.append(
                (
                    field,
                    raw,
                    _("%(field)s has %(length)d characters; at most %(limit)d are allowed.")
                    % {"field": label, "length": len(text), "limit": limit},
                )
            )
            return ""
        return text

    def _date(self, problems: list[RowProblem], field: str, raw: str) -> date | None:
        if not raw:
            return None
        cache = self._caches[field]
        found = cache.get(raw)
        if found is None:
            found = (None, None)
            try:
                day = parse_date(raw, field=field)
            except FieldProblem as exc:
                found = (None, (field, raw, exc.message))
            else:
                if day > self.today:
                    found = (None, (field, raw, _("The date lies in the future.")))
                elif day.year < ID_MIN_YEAR:
                    message = _("The date lies before %(year)d.") % {"year": ID_MIN_YEAR}
                    found = (None, (field, raw, message))
                else:
                    found = (day, None)
            if len(cache) < 200_000:
                cache[raw] = found
        if found[1] is not None:
            problems.append(found[1])
        return found[0]

    def _choice(
        self, problems: list[RowProblem], field: str, raw: str, parse: Callable[[str], str]
    ) -> str | None:
        if not raw:
            return None
        cache = self._caches[field]
        found = cache.get(raw)
        if found is None:
            try:
                found = (parse(raw) or None, None)
            except FieldProblem as exc:
                found = (None, (field, raw, exc.message))
            if len(cache) < 200_000:
                cache[raw] = found
        if found[1] is not None:
            problems.append(found[1])
        return found[0]

    def _birth_of(self, digits: str) -> date | None:
        if digits in self._births:
            return self._births[digits]
        try:
            day: date | None = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            day = None
        if day is not None and (day > self.today or day.year < ID_MIN_YEAR):
            day = None
        self._births[digits] = day
        return day

    def id_facts(self, raw: str) -> tuple[str, IdNumberFacts]:
        """(normalised id number, its facts); FieldProblem when it is not valid."""
        s = raw
        if _ID_DIGITS.match(s) and s[:2] in PROVINCES:
            birth = self._birth_of(s[6:14])
            if birth is not None:
                total = sum(map(int.__mul__, s[:17].encode("ascii"), ID_WEIGHTS)) - _ID_WEIGHT_SUM
                if ID_CHECK_CHARS[total % 11] == s[17]:
                    sex = Sex.MALE if (ord(s[16]) - 48) % 2 else Sex.FEMALE
                    return s, IdNumberFacts(birth_date=birth, sex=sex, region6=s[:6])
        facts = check_id_number(raw, field="id_number", today=self.today)
        return crypto.normalise_id_number(raw), facts

    def _tags_of(self, problems: list[RowProblem], raw: str) -> tuple[int, ...]:
        found: list[int] = []
        for word in split_tags(raw):
            tag = self._tags.get(word.lower())
            if tag is None:
                problems.append(("tags", raw, _("“%(tag)s” is no known tag.") % {"tag": word}))
                continue
            if tag.sensitivity > self._level:
                problems.append(
                    ("tags", raw, _("Your role may not set the tag “%(tag)s”.") % {"tag": word})
                )
                continue
            if not tag.active or tag.applies_to != TagAppliesTo.PERSON:
                problems.append(
                    (
                        "tags",
                        raw,
                        _("The tag “%(tag)s” cannot be given to a person.") % {"tag": word},
                    )
                )
                continue
            if tag.pk not in found:
                found.append(tag.pk)
        return tuple(found)

    def _floor(self, problems: list[RowProblem], raw: str) -> int | None:
        if not raw:
            return None
        match = _FLOOR.match(unicodedata.normalize("NFKC", raw).strip())
        if match is None or not -10 <= int(match.group(1)) <= 300:
            problems.append(("floor", raw, _("The floor is a whole number such as 3 or -1.")))
            return None
        return int(match.group(1))

    # -- a row

    def _place_text(self, problems: list[RowProblem], field: str, raw: str, limit: int) -> str:
        """A place cell (estate, building, unit, room): NFKC, one line; remembered."""
        cache = self._cache(field)
        found = cache.get(raw)
        if found is None:
            found_problems: list[RowProblem] = []
            text = self._text(
                found_problems,
                field,
                unicodedata.normalize("NFKC", raw),
                limit,
                self._labels[field],
            )
            found = (text, found_problems[0] if found_problems else None)
            if len(cache) < 200_000:
                cache[raw] = found
        if found[1] is not None:
            problems.append(found[1])
        return found[0]

    # -- a row

    def check(self, number: int, values: list[str]) -> tuple[_Row, list[RowProblem]]:
        """The row checked, all but its region (no database: this may run in a second process);
        ``values`` gets a blank cell appended (unmapped fields read it)."""
        row = _Row(number)
        problems: list[RowProblem] = []
        ix = self.ix
        values.append("")

        raw = values[ix["name"]]
        if raw:
            row.name = self._text(problems, "name", raw, 100, self._labels["name"])
        else:
            problems.append(("name", raw, self._missing_name))

        sex = self._choice(problems, "sex", values[ix["sex"]], parse_sex)
        birth = self._date(problems, "birth_date", values[ix["birth_date"]])
        raw = values[ix["id_number"]]
        if raw:
            try:
                row.id_text, facts = self.id_facts(raw)
            except FieldProblem as exc:
                problems.append(("id_number", raw, exc.message))
            else:
                row.id_key = int(row.id_text[:17])
                if (birth is not None and birth != facts.birth_date) or (
                    sex in (Sex.MALE, Sex.FEMALE) and sex != facts.sex
                ):
                    try:
                        check_id_consistent(
                            facts, birth, sex if sex in (Sex.MALE, Sex.FEMALE) else None
                        )
                    except FieldProblem as exc:
                        problems.append((exc.field, values[ix[exc.field]], exc.message))
                birth = birth or facts.birth_date
                if sex is None or sex == Sex.UNKNOWN:
                    sex = facts.sex
        row.sex, row.birth = sex, birth

        raw = values[ix["phone"]]
        if raw:
            if _MOBILE.match(raw):
                row.phone = raw
            else:
                try:
                    row.phone = check_phone(raw, field="phone")
                except FieldProblem as exc:
                    problems.append(("phone", raw, exc.message))
        raw = values[ix["ethnicity"]]
        if raw:
            row.ethnicity = self._place_text(problems, "ethnicity", raw, 20)
        raw = values[ix["person_type"]]
        if raw:
            row.person_type = self._choice(problems, "person_type", raw, parse_person_type)
        raw = values[ix["relation"]]
        if raw:
            row.relation = self._choice(problems, "relation", raw, parse_relation)
        raw = values[ix["verification"]]
        if raw:
            row.verification = self._choice(problems, "verification", raw, parse_verification)
        raw = values[ix["moved_in_on"]]
        if raw:
            row.moved_in = moved_in = self._date(problems, "moved_in_on", raw)
            if moved_in is not None and row.birth is not None and moved_in < row.birth:
                problems.append(("moved_in_on", raw, self._moved_before_birth))
        raw = values[ix["household_number"]]
        if raw:
            row.household_number = self._place_text(problems, "household_number", raw, 40)
        raw = values[ix["tags"]]
        if raw:
            row.tags = self._tags_of(problems, raw)

        # the place
        raw = values[ix["estate"]]
        if raw:
            row.estate = self._place_text(problems, "estate", raw, 100)
        raw = values[ix["building"]]
        if raw:
            row.building = self._place_text(problems, "building", raw, 30)
        raw = values[ix["unit"]]
        if raw:
            row.unit = self._place_text(problems, "unit", raw, 10)
        raw = values[ix["room"]]
        if raw:
            row.room = self._place_text(problems, "room", raw, 20)
        raw = values[ix["floor"]]
        if raw:
            row.floor = self._floor(problems, raw)
        raw = values[ix["room_use"]]
        if raw:
            row.room_use = self._choice(problems, "room_use", raw, parse_room_use)
        street, community, grid = (
            values[ix["street"]],
            values[ix["community"]],
            values[ix["grid_code"]],
        )
        if street or community or grid:
            row.place = (_one_line(street), _one_line(community), _one_line(grid))
        return row, problems

    def locate(self, row: _Row, values: list[str], problems: list[RowProblem]) -> None:
        """The row's region (grid or community) from its place cells."""
        try:
            row.region, row.explicit_grid = self.regions.resolve(*row.place)
        except FieldProblem as exc:
            problems.append((exc.field, values[self.ix[exc.field]], exc.message))


# --------------------------------------------------------------------------- ids and writing


#: a row as ``_Run._prepare`` hands it on: (cells, the row checked, its problems so far)
_Prepared = tuple[list[str], _Row, list[RowProblem]]


#: the fields whose cells problems found after ``_RowParser.check`` quote (``locate``, ``_row``
#: and the planner): the only cells a row brings back from the second process
_QUOTED_AFTER_CHECK = frozenset(
    ("id_number", "relation", "street", "community", "grid_code", "room")
)


def _unpacked(batch: list[tuple[list[str], dict[str, Any], list[RowProblem]]]) -> list[_Prepared]:
    """Rows from the second process: each travels as its attributes (only those a cell set;
    the class holds the defaults), which cross at half the cost of the objects."""
    new = _Row.__new__
    prepared: list[_Prepared] = []
    for values, attributes, problems in batch:
        row = new(_Row)
        row.__dict__ = attributes
        prepared.append((values, row, problems))
    return prepared


def _no_gate() -> None:
    """The gate of a dry run: nothing is written behind the main thread's back."""
    return None


class _Ids:
    """Primary keys for new rows: negative placeholders in a dry run, real ones in a commit.

    A commit allocates keys up front so that rows can point at each other before they are
    written: PostgreSQL hands out a block of its sequence, SQLite counts on from the table's
    largest key (the commit holds SQLite's write lock)."""

    def __init__(
        self, model: type[Model], *, real: bool, gate: Callable[[], None] = _no_gate
    ) -> None:
        self.model = model
        self.real = real
        self.gate = gate
        self.sequence = real and connection.vendor == "postgresql"
        self._next = 0
        self._block: list[int] = []
        self._size = 500
        table = model._meta.db_table
        if real and not self.sequence:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT max(id) FROM {connection.ops.quote_name(table)}")  # noqa: S608
                top = cursor.fetchone()[0] or 0
                with contextlib.suppress(Exception):
                    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                    found = cursor.fetchone()
                    if found and found[0]:
                        top = max(top, int(found[0]))
            self._next = int(top)

    def new(self) -> int:
        if not self.real:
            self._next -= 1
            return self._next
        if not self.sequence:
            self._next += 1
            return self._next
        if not self._block:
            table = self.model._meta.db_table
            self.gate()
            # blocks grow (1,000, 2,000, … up to ID_BLOCK): a small ledger takes few numbers
            self._size = min(ID_BLOCK, max(1000, 2 * self._size))
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, self._size],
                )
                self._block = [r[0] for r in cursor.fetchall()]
                self._block.reverse()
        return self._block.pop()


class _Table:
    """Rows of one model as tuples in a fixed column order, written in bulk.

    ``columns`` are attribute names; every other concrete field gets its default."""

    def __init__(self, model: type[Model], columns: list[str]) -> None:
        self.model = model
        fields = {f.attname: f for f in model._meta.concrete_fields}
        missing = [c for c in columns if c not in fields]
        if missing:  # pragma: no cover - a model changed under the importer
            raise RuntimeError(f"{model.__name__} has no columns {missing}")
        self.extra = tuple(
            _db_default(f) for name, f in fields.items() if name not in columns and name != "id"
        )
        names = columns + [n for n in fields if n not in columns and n != "id"]
        self.names = names
        self.rows: list[tuple[Any, ...]] = []
        quote = connection.ops.quote_name
        self.sql_table = quote(model._meta.db_table)
        self.sql_columns = ", ".join(quote(str(fields[n].column)) for n in names)
        # PostgreSQL: binary COPY (no text to parse on the server) unless a column is JSON
        types = [str(fields[n].db_type(connection) or "").split("(")[0] for n in names]
        self.binary = connection.vendor == "postgresql" and not any(
            t in ("json", "jsonb") for t in types
        )
        self.types = types

    def add(self, values: tuple[Any, ...]) -> None:
        self.rows.append(values + self.extra if self.extra else values)

    def job(self) -> _Job | None:
        """A job writing the rows queued so far (handed to the ``_Writer``), or None."""
        rows, self.rows = self.rows, []
        if not rows:
            return None
        if connection.vendor == "postgresql":
            binary = self.binary
            sql = f"COPY {self.sql_table} ({self.sql_columns}) FROM STDIN"
            if binary:
                sql += " (FORMAT BINARY)"
            types = self.types

            def copy(raw: Any) -> None:
                with raw.cursor() as cursor, cursor.copy(sql) as out:
                    if binary:
                        out.set_types(types)
                    for values in rows:
                        out.write_row(values)

            return copy
        marks = ", ".join(["?"] * len(self.names))
        insert = f"INSERT INTO {self.sql_table} ({self.sql_columns}) VALUES ({marks})"  # noqa: S608
        return _executemany(insert, rows)


_Job = Callable[[Any], None]


def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> _Job:
    """A job running ``sql`` (DB-API placeholders of the database) for every row."""

    def run(raw: Any) -> None:
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    return run


def _placeholder() -> str:
    return "%s" if connection.vendor == "postgresql" else "?"


class _Writer:
    """Runs the bulk writes of a commit on a second thread, on the commit's own connection, so
    that the database inserts one batch while the next is read and checked (psycopg and
    sqlite3 release the GIL while the database works).

    The main thread calls ``wait()`` (the ``gate``) before any query of its own; a failed write
    raises there. On by default (``GRIDGOV_LEDGER_WRITER_THREAD``): a million people committed
    on two cores in 96 s instead of 110 s on PostgreSQL (the server works while the next batch
    is read) and 70 s instead of 75 s on SQLite (bench/RESULTS.md)."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.wrapper = connections[DEFAULT_DB_ALIAS]
        self.raw = self.wrapper.connection
        threaded = bool(getattr(settings, "GRIDGOV_LEDGER_WRITER_THREAD", True))
        self.pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
            if threaded
            else None
        )
        self.pending: Future[None] | None = None

    def _run(self, jobs: list[_Job]) -> None:
        with self.wrapper.wrap_database_errors:
            for job in jobs:
                job(self.raw)

    def submit(self, jobs: Iterable[_Job | None]) -> None:
        todo = [j for j in jobs if j is not None]
        self.wait()
        if not todo:
            return
        if self.pool is None:
            self._run(todo)
        else:
            self.pending = self.pool.submit(self._run, todo)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last write (its error is dropped: something else already failed)."""
        with contextlib.suppress(Exception):
            self.wait()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _db_default(field: Any) -> Any:
    value = field.get_default()
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool) and connection.vendor != "postgresql":
        return int(value)
    return value


class _Adapt:
    """Python values as the database driver takes them in bulk writes."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.now = timezone.now()
        self.stamp: Any = (
            self.now if self.postgres else connection.ops.adapt_datetimefield_value(self.now)
        )

    def uuid(self) -> Any:
        """A time-ordered (version 7) uuid, so that a bulk write appends to the uuid index:
        32 hex digits for SQLite, a ``UUID`` for PostgreSQL."""
        raw = uuid7_bytes()
        if self.postgres:
            return uuid_module.UUID(bytes=raw)
        return raw.hex()

    def day(self, value: date | None) -> Any:
        if value is None or self.postgres:
            return value
        return value.isoformat()

    def json(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- planning places


_UNIT_SUFFIX = re.compile(r"(单元|单|unit)$", re.I)
_ROOM_SUFFIX = re.compile(r"(室|号|房)$")


@lru_cache(maxsize=65536)
def _unit_key(text: str) -> str:
    return _UNIT_SUFFIX.sub("", normalise_address(text))


@lru_cache(maxsize=65536)
def _room_key(text: str) -> str:
    return _ROOM_SUFFIX.sub("", normalise_address(text))


@lru_cache(maxsize=65536)
def _address_key(text: str) -> str:
    return normalise_address(text)


class _Abort(Exception):
    """A commit meets a problem: everything is rolled back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Planner:
    """Finds or plans the building, room and household of each row, and their heads.

    Existing records are loaded lazily: a community's open buildings when a row first names
    it, a building's open rooms and their households when a row first uses the building. In a
    commit, new records get real keys and are queued for writing."""

    def __init__(
        self,
        *,
        real: bool,
        importer: Any,
        batch: LedgerImport,
        gate: Callable[[], None] = _no_gate,
    ) -> None:
        self.gate = gate
        self.real = real
        self.adapt = _Adapt()
        self.importer_id = importer.pk if isinstance(importer, User) else None
        self.batch = batch
        self.building_ids = _Ids(Building, real=real, gate=gate)
        self.room_ids = _Ids(Room, real=real, gate=gate)
        self.household_ids = _Ids(Household, real=real, gate=gate)
        # community|address key -> building id; building id -> its region code
        self.buildings: dict[str, int] = {}
        self.building_region: dict[int, str] = {}
        self.communities: set[str] = set()
        self.loaded_buildings: set[int] = set()
        # building id|unit|room -> room id; room id -> household id
        self.rooms: dict[str, int] = {}
        self.room_household: dict[int, int] = {}
        # community|number -> household id
        self.numbered: dict[str, int] = {}
        self.numbered_loaded: set[str] = set()
        self.household_region: dict[int, str] = {}
        # household id -> its head: > 0 a row of this file, < 0 minus an existing person's key
        self.heads: dict[int, int] = {}
        # households that existed before the import
        self.existing_households: set[int] = set()
        self.new_buildings = 0
        self.new_rooms = 0
        self.new_households = 0
        if real:
            stamp = self.adapt.stamp
            self.building_rows = _Table(
                Building,
                [
                    "id",
                    "created_at",
                    "updated_at",
                    "uuid",
                    "region_code",
                    "version",
                    "estate",
                    "number",
                    "address",
                    "address_key",
                    "kind",
                    "households",
                    "lon",
                    "lat",
                    "community_code",
                    "grid_id",
                ],
            )
            self.room_rows = _Table(
                Room,
                [
                    "id",
                    "created_at",
                    "updated_at",
                    "uuid",
                    "region_code",
                    "version",
                    "building_id",
                    "unit",
                    "floor",
                    "number",
                    "use",
                ],
            )
            self.household_rows = _Table(
                Household,
                [
                    "id",
                    "created_at",
                    "updated_at",
                    "uuid",
                    "region_code",
                    "version",
                    "room_id",
                    "number",
                    "head_id",
                ],
            )
            self.changes = _Table(
                RecordChange,
                [
                    "id",
                    "record_type",
                    "record_uuid",
                    "region_code",
                    "version",
                    "action",
                    "actor_id",
                    "at",
                    "reason",
                    "changes",
                    "sensitivity",
                    "import_batch_id",
                ],
            )
            self.change_ids = _Ids(RecordChange, real=True, gate=gate)
            self._stamp = stamp
            # new households not written yet: id -> index in household_rows.rows
            self.pending_households: dict[int, int] = {}
            # heads of households already written: (head id, household id)
            self.late_heads: list[tuple[int, int]] = []
            self.existing_head_changes: list[tuple[int, int]] = []

    # -- loading what exists

    def _load_community(self, community: str) -> None:
        self.communities.add(community)
        self.gate()
        rows = Building.objects.filter(
            community_code=community, closed_at__isnull=True
        ).values_list("pk", "address_key", "estate", "number", "region_code")
        for pk, address_key, estate, number, region_code in rows:
            self.building_region[pk] = region_code
            for key in (address_key, normalise_address(f"{estate}{number}")):
                if key:
                    self.buildings.setdefault(f"{community}|{key}", pk)

    def _load_building(self, building_id: int) -> None:
        self.loaded_buildings.add(building_id)
        if building_id < 0 or building_id not in self.building_region:
            return
        self.gate()
        rooms = Room.objects.filter(building_id=building_id, closed_at__isnull=True).values_list(
            "pk", "unit", "number"
        )
        room_ids = []
        for pk, unit, number in rooms:
            self.rooms.setdefault(f"{building_id}|{_unit_key(unit)}|{_room_key(number)}", pk)
            room_ids.append(pk)
        if room_ids:
            self._load_households(room__in=room_ids)

    def _load_households(self, **filters: Any) -> None:
        self.gate()
        rows = Household.objects.filter(closed_at__isnull=True, **filters).values_list(
            "pk", "room_id", "number", "head_id", "region_code"
        )
        for pk, room_id, number, head_id, region_code in rows.order_by("pk"):
            self.existing_households.add(pk)
            self.household_region[pk] = region_code
            if room_id is not None:
                self.room_household.setdefault(room_id, pk)
            if number:
                self.numbered.setdefault(f"{region_code[:12]}|{number}", pk)
            if head_id is not None:
                self.heads.setdefault(pk, -head_id)

    # -- planning a row

    def place(
        self, row: _Row, problems: list[RowProblem], values: Callable[[str], str]
    ) -> tuple[int | None, str] | None:
        """(household id or None, region code) of a person's row, or None with problems."""
        region = row.region
        has_building = bool(row.estate or row.building)
        if region is None:
            if has_building or row.room or row.household_number:
                problems.append(
                    (
                        "grid_code",
                        values("grid_code"),
                        _("The row names no grid or community; add the grid column."),
                    )
                )
            return None, ""
        community = region.code[:12] if len(region.code) >= 12 else ""
        building_id: int | None = None
        region_code = region.code
        if has_building:
            if not community:
                problems.append(
                    (
                        "community",
                        values("community"),
                        _("Give the community or grid of the building."),
                    )
                )
                return None
            if community not in self.communities:
                self._load_community(community)
            address = f"{row.estate}{row.building}"
            key = f"{community}|{_address_key(address)}"
            building_id = self.buildings.get(key)
            if building_id is None:
                if region.lon is None or region.lat is None:
                    problems.append(
                        (
                            "grid_code",
                            values("grid_code"),
                            _("%(region)s has no location to place a new building at.")
                            % {"region": region.code},
                        )
                    )
                    return None
                building_id = self._new_building(row, region, community, address, key)
            region_code = self.building_region[building_id]
            if row.explicit_grid and region.level == Level.GRID and region_code != region.code:
                problems.append(
                    (
                        "grid_code",
                        values("grid_code"),
                        _("The building %(building)s lies in grid %(actual)s, not %(given)s.")
                        % {"building": address, "actual": region_code, "given": region.code},
                    )
                )
                return None
        room_id: int | None = None
        if row.room:
            if building_id is None:
                problems.append(
                    ("room", values("room"), _("Give the estate and building of the room."))
                )
                return None
            if building_id not in self.loaded_buildings:
                self._load_building(building_id)
            key = f"{building_id}|{_unit_key(row.unit)}|{_room_key(row.room)}"
            room_id = self.rooms.get(key)
            if room_id is None:
                room_id = self._new_room(row, building_id, region_code, key)
        elif row.unit:
            problems.append(("room", values("room"), _("Give the room number of the unit.")))
            return None
        household_id: int | None = None
        if row.household_number:
            number_key = f"{region_code[:12]}|{row.household_number}"
            if region_code[:12] not in self.numbered_loaded:
                self.numbered_loaded.add(region_code[:12])
                self._load_households(region_code__startswith=region_code[:12], number__gt="")
            household_id = self.numbered.get(number_key)
            if household_id is None:
                household_id = self._new_household(room_id, region_code, row.household_number)
                self.numbered[number_key] = household_id
                if room_id is not None:
                    self.room_household.setdefault(room_id, household_id)
        elif room_id is not None:
            household_id = self.room_household.get(room_id)
            if household_id is None:
                household_id = self._new_household(room_id, region_code, "")
                self.room_household[room_id] = household_id
        if household_id is not None:
            region_code = self.household_region.get(household_id, region_code)
        return household_id, region_code

    def claim_head(
        self, household_id: int, row: _Row, person_id: int, existing_pk: int | None
    ) -> str | None:
        """Make the row's person the household's head; a message when it has another."""
        marker = self.heads.get(household_id)
        me = -existing_pk if existing_pk else row.number
        if marker is None:
            self.heads[household_id] = me
            if self.real:
                self._set_head(household_id, person_id)
            return None
        if marker == me:
            return None
        if marker > 0:
            return _("The household already has a head (row %(row)d).") % {"row": marker}
        return _("The household already has a head in the registry.")

    def _set_head(self, household_id: int, person_id: int) -> None:
        index = self.pending_households.get(household_id)
        if index is not None:
            values = self.household_rows.rows[index]
            self.household_rows.rows[index] = (*values[:8], person_id, *values[9:])
        elif household_id in self.existing_households:
            self.existing_head_changes.append((person_id, household_id))
        else:
            self.late_heads.append((person_id, household_id))

    # -- new records

    def _new_building(
        self, row: _Row, region: _Region, community: str, address: str, key: str
    ) -> int:
        pk = self.building_ids.new()
        self.buildings[key] = pk
        self.building_region[pk] = region.code
        self.loaded_buildings.add(pk)
        self.new_buildings += 1
        if self.real:
            a = self.adapt
            building_uuid = a.uuid()
            self.building_rows.add(
                (
                    pk,
                    self._stamp,
                    self._stamp,
                    building_uuid,
                    region.code,
                    1,
                    row.estate,
                    row.building,
                    address[:200],
                    normalise_address(address),
                    BuildingType.RESIDENTIAL,
                    0,
                    region.lon,
                    region.lat,
                    community,
                    region.pk if region.level == Level.GRID else None,
                )
            )
            self.change(
                record_type=RecordType.BUILDING,
                record_uuid=building_uuid,
                region_code=region.code,
                version=1,
                action=ChangeAction.CREATE,
                changes=history.created(
                    {
                        "estate": row.estate,
                        "number": row.building,
                        "address": address[:200],
                        "region_code": region.code,
                    }
                ),
            )
        return pk

    def _new_room(self, row: _Row, building_id: int, region_code: str, key: str) -> int:
        pk = self.room_ids.new()
        self.rooms[key] = pk
        self.new_rooms += 1
        if self.real:
            self.room_rows.add(
                (
                    pk,
                    self._stamp,
                    self._stamp,
                    self.adapt.uuid(),
                    region_code,
                    1,
                    building_id,
                    row.unit,
                    row.floor,
                    row.room,
                    row.room_use or RoomUse.SELF_OCCUPIED,
                )
            )
        return pk

    def _new_household(self, room_id: int | None, region_code: str, number: str) -> int:
        pk = self.household_ids.new()
        self.household_region[pk] = region_code
        self.new_households += 1
        if self.real:
            self.pending_households[pk] = len(self.household_rows.rows)
            self.household_rows.add(
                (
                    pk,
                    self._stamp,
                    self._stamp,
                    self.adapt.uuid(),
                    region_code,
                    1,
                    room_id,
                    number,
                    None,
                )
            )
        return pk

    def change(
        self,
        *,
        record_type: str,
        record_uuid: Any,
        region_code: str,
        version: int,
        action: str,
        changes: dict[str, Any],
        sensitivity: int = 0,
        reason: str = "",
    ) -> None:
        self.changes.add(
            (
                self.change_ids.new(),
                record_type,
                record_uuid,
                region_code,
                version,
                action,
                self.importer_id,
                self._stamp,
                reason,
                self.adapt.json(changes),
                sensitivity,
                self.batch.pk,
            )
        )

    def jobs(self) -> list[_Job | None]:
        """Jobs writing the queued buildings, rooms, households and changes."""
        self.pending_households = {}
        return [
            self.building_rows.job(),
            self.room_rows.job(),
            self.household_rows.job(),
            self.changes.job(),
        ]


# --------------------------------------------------------------------------- progress


class _Progress:
    """Reports rows processed: to the callback, and to where other processes read it."""

    def __init__(
        self, li: LedgerImport, callback: ProgressCallback | None, *, committing: bool
    ) -> None:
        self.li = li
        self.callback = callback
        self.committing = committing
        self.every = PROGRESS_EVERY
        self.next_at = self.every
        self.last = -1
        self.side: Any = None
        self.path: Path | None = None
        if committing and connection.vendor == "postgresql":
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        # the file is also the step's heartbeat (``ledger_fail_stale``)
        self.path = _progress_file(li)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("0", encoding="ascii")

    def __call__(self, done: int, *, final: bool = False) -> None:
        if (done < self.next_at and not final) or done == self.last:
            return
        self.next_at = done + self.every
        self.last = done
        self.li.progress = done
        if not self.committing:
            LedgerImport.objects.filter(pk=self.li.pk).update(progress=done)
        self._side_write(done)
        if self.callback is not None:
            self.callback(self.li)

    def _side_write(self, done: int) -> None:
        """Outside the commit's transaction: a second connection (PostgreSQL), and a file."""
        if self.side is not None:
            try:
                with self.side.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {LedgerImport._meta.db_table} SET progress = %s "  # noqa: S608
                        "WHERE id = %s",
                        [done, self.li.pk],
                    )
            except Exception:  # progress is a courtesy: never fail the import for it
                log.warning("ledger import %s: progress not written", self.li.uuid)
        if self.path is not None:
            with contextlib.suppress(OSError):
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(str(done), encoding="ascii")
                tmp.replace(self.path)

    def close(self) -> None:
        if self.side is not None:
            with contextlib.suppress(Exception):
                self.side.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


# --------------------------------------------------------------------------- problems


class _Problems:
    """Problems of a check, kept on disk in row order (values masked), counted per row."""

    def __init__(self, mapping: Mapping[str, str | None]) -> None:
        self.headers = {field: header for header, field in mapping.items() if field}
        self.file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def column(self, field: str) -> str:
        return self.headers.get(field, field)

    def add(self, row: int, field: str, value: str, message: str) -> None:
        mask = MASKED_FIELDS.get(field)
        shown = mask(value) if mask and value else (value or "")
        self.file.write(json.dumps([row, self.column(field), shown[:200], message]) + "\n")
        self.count += 1

    def read(self) -> Iterator[Problem]:
        self.file.flush()
        self.file.seek(0)
        for line in self.file:
            row, column, value, message = json.loads(line)
            yield Problem(row=row, column=column, value=value, message=message)

    def close(self) -> None:
        self.file.close()


# --------------------------------------------------------------------------- the check


@dataclass
class _Outcome:
    rows: int = 0
    ok: int = 0
    bad: int = 0
    created: int = 0
    updated: int = 0
    buildings: int = 0
    rooms: int = 0
    households: int = 0


def _existing(hashes: list[str], *, full: bool) -> dict[str, Any]:
    """People registered with these id number hashes (closed ones too), by hash: tuples
    (hash, pk, region_code, closed_at, household_id), or with ``full`` the people."""
    if not hashes:
        return {}
    quote = connection.ops.quote_name
    fields = {f.attname: quote(str(f.column)) for f in Person._meta.concrete_fields}
    column = fields["id_number_hash"]
    # the partial unique index serves the look-up only when the query repeats its condition,
    # written as the index writes it (SQLite compares the expressions)
    params: list[Any]
    if connection.vendor == "postgresql":  # one array parameter: planned once, quickly
        where, params = f"{column} = ANY(%s)", [hashes]
    else:
        where, params = f"{column} IN ({', '.join(['%s'] * len(hashes))})", list(hashes)
    sql = (
        f"SELECT {column}, {fields['id']}, {fields['region_code']}, {fields['closed_at']}, "  # noqa: S608
        f"{fields['household_id']} FROM {quote(Person._meta.db_table)} "
        f"WHERE {where} AND NOT ({column} = '')"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = {r[0]: r for r in cursor.fetchall()}
    if not full or not rows:
        return rows
    people = Person.objects.filter(pk__in=[r[1] for r in rows.values()]).only(*_UPDATE_READ)
    return {p.id_number_hash: p for p in people}


class _Known:
    """The id number hashes already registered, as a sorted array of their first 64 bits.

    A small ledger asks the database about each batch's hashes; once a ledger has gone on for
    ``KNOWN_AFTER_BATCHES`` batches (or a commit knows it is long), the registry's hashes are
    loaded once, in chunks, and only the hashes found among them are looked up: importing a
    million people into an empty registry asks the database nothing."""

    def __init__(self, *, preload: bool, gate: Callable[[], None] = _no_gate) -> None:
        self.batches = 0
        self.prefixes: Any = None
        self.gate = gate
        if preload:
            self._load()

    def _load(self) -> None:
        self.gate()
        quote = connection.ops.quote_name
        column = quote(str(Person._meta.get_field("id_number_hash").column))
        table = quote(Person._meta.db_table)
        found = array("Q")
        last = 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    f"SELECT id, {column} FROM {table} WHERE id > %s AND NOT ({column} = '') "  # noqa: S608
                    "ORDER BY id LIMIT %s",
                    [last, KNOWN_CHUNK],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                found.extend(int(h[:16], 16) for _pk, h in rows)
                last = rows[-1][0]
        self.prefixes = (
            np.sort(np.frombuffer(found, dtype=np.uint64))
            if found
            else np.array([], dtype=np.uint64)
        )

    def candidates(self, hashes: list[str]) -> list[str]:
        """The hashes that may be registered (all of them until the registry's are loaded)."""
        self.batches += 1
        if self.prefixes is None:
            if self.batches <= KNOWN_AFTER_BATCHES:
                return hashes
            self._load()
        if not hashes or not len(self.prefixes):
            return []
        wanted = np.array([int(h[:16], 16) for h in hashes], dtype=np.uint64)
        at = np.searchsorted(self.prefixes, wanted)
        at[at >= len(self.prefixes)] = 0
        hits = self.prefixes[at] == wanted
        return [h for h, hit in zip(hashes, hits.tolist(), strict=True) if hit]


def _scope_allows(scope: Scope, base: str, code: str) -> bool:
    return code.startswith(base) and scope.covers(code)


def _outside_message(code: str) -> str:
    return _("%(region)s lies outside the region you may import into.") % {"region": code}


_collector_lock = threading.Lock()
_collector_users = [0, False]  # runs under way, whether the collector was on before the first


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while ledgers are read: a pass allocates millions
    of short-lived rows, tuples and strings (freed by reference counting, no cycles), which set
    the collector off again and again over everything the process holds: a fifth of a long
    commit's time. Runs in several threads of one process share the pause; the last one
    restores the collector as the first found it."""
    with _collector_lock:
        if _collector_users[0] == 0:
            _collector_users[1] = gc.isenabled()
            gc.disable()
        _collector_users[0] += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_users[0] -= 1
            if _collector_users[0] == 0 and _collector_users[1]:
                gc.enable()


class _Run:
    """One pass over a ledger, as a dry run (``real=False``) or as the commit."""

    def __init__(
        self,
        li: LedgerImport,
        reader: LedgerReader,
        *,
        actor: Any,
        scope: Scope,
        real: bool,
        progress: _Progress,
    ) -> None:
        self.li = li
        self.reader = reader
        self.actor = actor
        self.scope = scope
        self.base = li.region_code
        self.real = real
        self.progress = progress
        self.mapping = _ordered_mapping(reader, li.mapping)
        default = None
        if self.base and len(self.base) >= 12:
            found = Region.objects.filter(code=self.base).values_list(
                "pk", "code", "level", "name", "label_lon", "label_lat"
            )
            default = next((_Region(*r) for r in found), None)
        self.writer = _Writer() if real else None
        self.gate: Callable[[], None] = self.writer.wait if self.writer else _no_gate
        regions = _Regions(default)
        regions.preload(self.base)
        regions.gate = self.gate
        self.parser = _RowParser(
            mapping=self.mapping, headers=list(reader.headers), regions=regions, actor=actor
        )
        self.planner = _Planner(real=real, importer=actor, batch=li, gate=self.gate)
        self.outcome = _Outcome()
        self.sealer = _Sealer()
        self.adapt = self.planner.adapt
        self.person_ids = _Ids(Person, real=real, gate=self.gate)
        self._allowed: dict[str, bool] = {}
        self.known = _Known(
            preload=real and li.rows_total > KNOWN_AFTER_BATCHES * BATCH, gate=self.gate
        )
        # dry run: id numbers seen (first 17 digits) with their row, and each row's fate
        self.keys = array("q")
        self.key_rows = array("q")
        self.key_fates = array("q")
        self.fates = bytearray()  # 0 created, 1 updated, 2 bad
        self.problems: _Problems | None = None if real else _Problems(self.mapping)
        if real:
            self.people = _Table(Person, _PERSON_COLUMNS)
            self.tags = _Table(
                PersonTag,
                [
                    "created_at",
                    "updated_at",
                    "person_id",
                    "tag_type_id",
                    "since",
                    "note",
                    "created_by_id",
                ],
            )
            self.tag_sensitivity = dict(TagType.objects.values_list("pk", "sensitivity"))
            self.tag_code = dict(TagType.objects.values_list("pk", "code"))
            self.updates: list[tuple[Any, ...]] = []
            self.moved_heads: list[int] = []

    # -- the pass

    def run(self) -> _Outcome:
        done = 0
        # closed on the way out whatever happens: a second process stops at once
        with _collector_paused(), contextlib.closing(self._prepared()) as batches:
            for prepared in batches:
                self._batch(prepared)
                done += len(prepared)
                self.progress(done)
        if self.real:
            self._finish_commit()
        self.progress(done, final=True)
        self.outcome.rows = done
        self.outcome.buildings = self.planner.new_buildings
        self.outcome.rooms = self.planner.new_rooms
        self.outcome.households = self.planner.new_households
        return self.outcome

    def _prepared(self) -> Generator[list[_Prepared], None, None]:
        """The ledger's rows checked, batch by batch. A commit hands the rest of a long ledger
        (after ``FEED_AFTER_ROWS`` rows) to a second process (``ledger.feed``), which reads,
        checks and seals the rows while this one places and writes them. (A dry run does not:
        its own share of the work is too small to be worth the rows' journey.)"""
        rows = self.reader.rows()
        batch: list[tuple[int, list[str]]] = []
        done = 0
        for item in rows:
            batch.append(item)
            if len(batch) < BATCH:
                continue
            yield self._prepare(batch)
            done += len(batch)
            batch = []
            if self.real and done >= FEED_AFTER_ROWS and feed.available():
                self.gate()  # no write under way while the process forks
                with feed.Feed(rows, self._packed, _unpacked, size=BATCH) as rest:
                    yield from rest
                return
        if batch:
            yield self._prepare(batch)

    def _packed(
        self, batch: list[tuple[int, list[str]]]
    ) -> list[tuple[list[str], dict[str, Any], list[RowProblem]]]:
        """``_prepare`` in the second process, the rows made ready to travel: their attributes,
        and of their cells only those this process may still quote in a message."""
        keep = self._quoted_columns
        packed = []
        for values, row, problems in self._prepare(batch):
            cells = [values[i] if i in keep else "" for i in range(len(values))]
            packed.append((cells, row.__dict__, problems))
        return packed

    @cached_property
    def _quoted_columns(self) -> frozenset[int]:
        cols = self.parser.cols
        return frozenset(cols[field] for field in _QUOTED_AFTER_CHECK if field in cols)

    def _prepare(self, batch: list[tuple[int, list[str]]]) -> list[_Prepared]:
        """Rows checked, id numbers hashed and, for a commit, id and phone numbers sealed and
        masked: everything that needs no database (this may run in the second process)."""
        check = self.parser.check
        sealer = self.sealer
        seal, hash_of = sealer.seal, sealer.hash
        id_kind, phone_kind = crypto.ID_NUMBER, crypto.PHONE
        uuid, day = self.adapt.uuid, self.adapt.day
        real = self.real
        prepared: list[_Prepared] = []
        for number, values in batch:
            row, problems = check(number, values)
            id_text = row.id_text
            if id_text:
                row.id_hash = hash_of(id_kind, id_text)
            if real and not problems:
                phone = row.phone or ""
                row.cells = (
                    uuid(),
                    day(row.birth),
                    seal(id_text),
                    mask_id_number(id_text),
                    seal(phone),
                    hash_of(phone_kind, phone),
                    mask_phone(phone),
                    day(row.moved_in),
                )
            prepared.append((values, row, problems))
        return prepared

    def _batch(self, prepared: list[_Prepared]) -> None:
        locate = self.parser.locate
        for values, row, problems in prepared:
            locate(row, values, problems)
        candidates = self.known.candidates([row.id_hash for _v, row, _p in prepared if row.id_hash])
        if candidates:
            self.gate()
        existing = _existing(candidates, full=self.real)
        for values, row, problems in prepared:
            found = existing.get(row.id_hash) if row.id_hash else None
            self._row(values, row, problems, found)
        if self.real:
            self._flush()

    def _row(
        self,
        values: list[str],
        row: _Row,
        problems: list[RowProblem],
        found: Any,
    ) -> None:
        parser = self.parser

        def value(field: str) -> str:
            if field not in _QUOTED_AFTER_CHECK:  # pragma: no cover - a new quote must travel
                raise RuntimeError(f"add {field} to _QUOTED_AFTER_CHECK")
            return parser._get(values, field)

        existing_pk: int | None = None
        current_region = ""
        if found is not None:
            if self.real:
                existing_pk, current_region, closed = found.pk, found.region_code, found.closed_at
            else:
                existing_pk, current_region, closed = found[1], found[2], found[3]
            if closed is not None:
                problems.append(
                    (
                        "id_number",
                        value("id_number"),
                        _(
                            "This id number belongs to a closed record (moved out, deceased or "
                            "a duplicate); reopen that record first."
                        ),
                    )
                )
            elif not self.allowed(current_region):
                problems.append(
                    (
                        "id_number",
                        value("id_number"),
                        _(
                            "This id number is registered outside the region you may import "
                            "into; ask that region to move the person."
                        ),
                    )
                )
        person_id = existing_pk or (self.person_ids.new() if not problems else 0)
        place: tuple[int | None, str] | None = None
        if not problems or not self.real:
            place = self.planner.place(row, problems, value)
        household_id, region_code = place if place is not None else (None, "")
        moves = False
        if existing_pk is not None:
            current_household = found.household_id if self.real else found[4]
            moves = household_id is not None or (
                current_household is None and row.explicit_grid and bool(region_code)
            )
            if not moves:
                region_code = current_region
        elif place is not None and not region_code:
            problems.append(
                (
                    "grid_code",
                    value("grid_code"),
                    _("The row names no grid or community; add the grid column."),
                )
            )
        if region_code and (existing_pk is None or moves) and not self.allowed(region_code):
            field = "grid_code" if self.parser.cols.get("grid_code") is not None else "community"
            problems.append((field, value(field), _outside_message(region_code)))
        if household_id is not None and row.relation == Relation.HEAD and not problems:
            message = self.planner.claim_head(household_id, row, person_id, existing_pk)
            if message:
                problems.append(("relation", value("relation"), message))
        if self.real:
            if problems:
                field, raw, message = problems[0]
                mask = MASKED_FIELDS.get(field)
                raise _Abort(
                    _("Row %(row)d, %(column)s (%(value)s): %(problem)s")
                    % {
                        "row": row.number,
                        "column": self.problems_column(field),
                        "value": (mask(raw) if mask and raw else raw) or "—",
                        "problem": message,
                    }
                )
            if existing_pk is not None:
                self._update(found, row, household_id, region_code, moves)
                self.outcome.updated += 1
            else:
                self._create(row, person_id, household_id, region_code)
                self.outcome.created += 1
            self.outcome.ok += 1
            return
        assert self.problems is not None
        if row.id_key:
            self.keys.append(row.id_key)
            self.key_rows.append(row.number)
            self.key_fates.append(len(self.fates))
        if problems:
            seen: set[str] = set()
            for field, raw, message in problems:
                if field in seen:
                    continue
                seen.add(field)
                self.problems.add(row.number, field, raw, message)
            self.fates.append(2)
        else:
            self.fates.append(1 if existing_pk is not None else 0)

    def allowed(self, code: str) -> bool:
        """Whether rows of region ``code`` may be imported (remembered per code)."""
        found = self._allowed.get(code)
        if found is None:
            found = self._allowed[code] = _scope_allows(self.scope, self.base, code)
        return found

    def problems_column(self, field: str) -> str:
        for header, target in self.mapping.items():
            if target == field:
                return header
        return field

    # -- commit: people

    def _create(
        self,
        row: _Row,
        person_id: int,
        household_id: int | None,
        region_code: str,
    ) -> None:
        a = self.adapt
        cells = row.cells
        if cells is None:  # pragma: no cover - _prepare fills them for every row of a commit
            raise RuntimeError(f"row {row.number} was not prepared")
        uuid, birth, id_enc, id_mask, phone_enc, phone_hash, phone_mask, moved_in = cells
        self.people.add(
            (
                person_id,
                a.stamp,
                a.stamp,
                uuid,
                region_code,
                1,
                row.name,
                row.sex or Sex.UNKNOWN,
                birth,
                id_enc,
                row.id_hash,
                id_mask,
                phone_enc,
                phone_hash,
                phone_mask,
                row.ethnicity or "",
                row.person_type or PersonType.REGISTERED,
                household_id,
                row.relation or "",
                row.verification or Verification.UNVERIFIED,
                moved_in,
                self.li.pk,
                row.number,
            )
        )
        for tag_id in row.tags:
            self.tags.add((a.stamp, a.stamp, person_id, tag_id, None, "", self.planner.importer_id))

    def _update(
        self,
        person: Person,
        row: _Row,
        household_id: int | None,
        region_code: str,
        moves: bool,
    ) -> None:
        """An existing person: the row's non-empty cells change them; one RecordChange."""
        given: dict[str, Any] = {"name": row.name}
        for name, value in (
            ("sex", row.sex),
            ("birth_date", row.birth),
            ("phone", row.phone),
            ("ethnicity", row.ethnicity),
            ("person_type", row.person_type),
            ("relation", row.relation),
            ("verification", row.verification),
            ("moved_in_on", row.moved_in),
        ):
            if value is not None:
                given[name] = value
        if given.get("sex") == Sex.UNKNOWN and person.sex != Sex.UNKNOWN:
            given.pop("sex")
        if moves and household_id is not None:
            given["household_id"] = household_id
        if moves:
            given["region_code"] = region_code
        before = {name: getattr(person, name) for name in given}
        changes = history.diff(before, given)
        if "household_id" in changes:
            changes.pop("household_id")
            changes["household"] = [
                self._household_uuid(person.household_id),
                self._household_uuid(household_id),
            ]
            if person.household_id is not None:
                self.moved_heads.append(person.pk)
        new_tags = [t for t in row.tags if t not in self._tags_of(person.pk)]
        a = self.adapt
        if changes:
            phone = given.get("phone", person.phone) or ""
            version = person.version + 1
            self.updates.append(
                (
                    given.get("name", person.name),
                    given.get("sex", person.sex),
                    a.day(given.get("birth_date", person.birth_date)),
                    self.sealer.seal(phone),
                    self.sealer.hash(crypto.PHONE, phone),
                    mask_phone(phone),
                    given.get("ethnicity", person.ethnicity),
                    given.get("person_type", person.person_type),
                    given.get("household_id", person.household_id),
                    given.get("relation", person.relation),
                    given.get("verification", person.verification),
                    a.day(given.get("moved_in_on", person.moved_in_on)),
                    given.get("region_code", person.region_code),
                    version,
                    a.stamp,
                    person.pk,
                )
            )
            self.planner.change(
                record_type=RecordType.PERSON,
                record_uuid=person.uuid.hex,
                region_code=given.get("region_code", person.region_code),
                version=version,
                action=ChangeAction.UPDATE,
                changes=changes,
                reason=self._reason(),
            )
        for tag_id in new_tags:
            self.tags.add((a.stamp, a.stamp, person.pk, tag_id, None, "", self.planner.importer_id))
            self.planner.change(
                record_type=RecordType.PERSON_TAG,
                record_uuid=person.uuid.hex,
                region_code=given.get("region_code", person.region_code),
                version=person.version + (1 if changes else 0),
                action=ChangeAction.TAG,
                changes={"tag": [None, self.tag_code.get(tag_id, "")]},
                sensitivity=self.tag_sensitivity.get(tag_id, 0),
                reason=self._reason(),
            )

    def _reason(self) -> str:
        cached: str | None = getattr(self, "_reason_text", None)
        if cached is None:
            cached = _("ledger import %(file)s") % {"file": self.li.file_name[:200]}
            self._reason_text = cached
        return cached

    def _tags_of(self, person_pk: int) -> set[int]:
        self.gate()
        return set(
            PersonTag.objects.filter(person_id=person_pk).values_list("tag_type_id", flat=True)
        )

    def _household_uuid(self, pk: int | None) -> str | None:
        if pk is None:
            return None
        index = self.planner.pending_households.get(pk)
        if index is not None:  # new in this batch, not written yet
            value = self.planner.household_rows.rows[index][3]
            return str(value if isinstance(value, uuid_module.UUID) else uuid_module.UUID(value))
        self.gate()
        found = Household.objects.filter(pk=pk).values_list("uuid", flat=True).first()
        return str(found) if found else None

    def _flush(self) -> None:
        """Hand this batch's rows to the writer (which first finishes the previous batch)."""
        assert self.writer is not None
        jobs = [*self.planner.jobs(), self.people.job(), self.tags.job()]
        if self.updates:
            names = (
                "name",
                "sex",
                "birth_date",
                "phone",
                "phone_hash",
                "phone_mask",
                "ethnicity",
                "person_type",
                "household_id",
                "relation",
                "verification",
                "moved_in_on",
                "region_code",
                "version",
                "updated_at",
            )
            quote = connection.ops.quote_name
            fields = {f.attname: str(f.column) for f in Person._meta.concrete_fields}
            mark = _placeholder()
            sets = ", ".join(f"{quote(fields[n])} = {mark}" for n in names)
            table = quote(Person._meta.db_table)
            sql = f"UPDATE {table} SET {sets} WHERE id = {mark}"  # noqa: S608
            jobs.append(_executemany(sql, self.updates))
            self.updates = []
        self.writer.submit(jobs)

    def close(self) -> None:
        """Let the last write finish (a commit that failed must not roll back under it)."""
        if self.writer is not None:
            self.writer.close()

    def _finish_commit(self) -> None:
        """Heads of households written in an earlier batch; heads who moved away."""
        planner = self.planner
        assert self.writer is not None
        self.writer.wait()
        quote = connection.ops.quote_name
        table = quote(Household._meta.db_table)
        with connection.cursor() as cursor:
            if planner.late_heads:
                cursor.executemany(
                    f"UPDATE {table} SET head_id = %s WHERE id = %s",  # noqa: S608
                    planner.late_heads,
                )
        for start in range(0, len(self.moved_heads), 500):
            chunk = self.moved_heads[start : start + 500]
            for household in Household.objects.select_for_update().filter(head_id__in=chunk):
                if not Person.objects.filter(
                    pk=household.head_id or 0, household_id=household.pk
                ).exists():
                    self._head_change(household, None)
        for person_id, household_id in planner.existing_head_changes:
            household = Household.objects.select_for_update().get(pk=household_id)
            if household.head_id is None:
                self._head_change(household, person_id)
        self.writer.submit(planner.jobs())
        self.writer.wait()

    def _head_change(self, household: Household, person_id: int | None) -> None:
        before = household.head_id
        household.head_id = person_id
        household.version += 1
        household.save(update_fields=["head", "version", "updated_at"])
        self.planner.change(
            record_type=RecordType.HOUSEHOLD,
            record_uuid=household.uuid.hex,
            region_code=household.region_code,
            version=household.version,
            action=ChangeAction.UPDATE,
            changes={"head": [_person_uuid(before), _person_uuid(person_id)]},
            reason=self._reason(),
        )

    # -- dry run: the id numbers seen twice

    def duplicates(self) -> list[Problem]:
        """Problems for every row whose id number an earlier row of the file already has."""
        if len(self.keys) < 2:
            return []
        keys = np.frombuffer(self.keys, dtype=np.int64)
        rows = np.frombuffer(self.key_rows, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.empty(len(ordered), dtype=bool)
        starts[0] = True
        starts[1:] = ordered[1:] != ordered[:-1]
        if starts.all():
            return []
        first_at = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0))
        column = self.problems.column("id_number") if self.problems else "id_number"
        found = []
        for j in np.flatnonzero(~starts):
            self.fates[self.key_fates[int(order[j])]] = 2
            row = int(rows[order[j]])
            first = int(rows[order[first_at[j]]])
            first17 = f"{int(ordered[j]):017d}"
            found.append(
                Problem(
                    row=row,
                    column=column,
                    value=mask_id_number(first17 + _check_char(first17)),
                    message=_("The same id number is in row %(first)d and row %(row)d.")
                    % {"first": first, "row": row},
                )
            )
        found.sort(key=lambda p: p.row)
        return found


def _check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def _person_uuid(pk: int | None) -> str | None:
    if pk is None:
        return None
    found = Person.objects.filter(pk=pk).values_list("uuid", flat=True).first()
    return str(found) if found else None


_PERSON_COLUMNS = [
    "id",
    "created_at",
    "updated_at",
    "uuid",
    "region_code",
    "version",
    "name",
    "sex",
    "birth_date",
    "id_number",
    "id_number_hash",
    "id_number_mask",
    "phone",
    "phone_hash",
    "phone_mask",
    "ethnicity",
    "person_type",
    "household_id",
    "relation",
    "verification",
    "moved_in_on",
    "import_batch_id",
    "import_row",
]

_UPDATE_READ = (
    "uuid",
    "id_number_hash",
    "region_code",
    "version",
    "closed_at",
    "name",
    "sex",
    "birth_date",
    "phone",
    "ethnicity",
    "person_type",
    "household_id",
    "relation",
    "verification",
    "moved_in_on",
)


# --------------------------------------------------------------------------- public functions


def _file_problem(li: LedgerImport, mapping: Mapping[str, str | None]) -> str:
    """What makes the whole ledger unreadable with this mapping ("" when nothing does)."""
    fields = {f for f in mapping.values() if f}
    if "name" not in fields:
        return _("No column is mapped to the name: map the column that holds the names.")
    place = {"grid_code", "community"} & fields
    if not place and not (li.region_code and len(li.region_code) >= 12):
        return _(
            "No column is mapped to the grid or the community, and the import is not for one "
            "grid or community: map the grid column, or choose the grid when uploading."
        )
    return ""


def _summary(outcome: _Outcome) -> str:
    return _(
        "%(rows)d rows checked: %(created)d people to add, %(updated)d already registered "
        "to update. New: %(buildings)d buildings, %(rooms)d rooms, %(households)d households."
    ) % {
        "rows": outcome.rows,
        "created": outcome.created,
        "updated": outcome.updated,
        "buildings": outcome.buildings,
        "rooms": outcome.rooms,
        "households": outcome.households,
    }


def _failed_summary(outcome: _Outcome) -> str:
    return ngettext(
        "%(bad)d of %(rows)d rows has problems; nothing was imported. Download the error "
        "sheet, correct the rows and upload the ledger again.",
        "%(bad)d of %(rows)d rows have problems; nothing was imported. Download the error "
        "sheet, correct the rows and upload the ledger again.",
        outcome.bad,
    ) % {"bad": outcome.bad, "rows": outcome.rows}


def _write_errors(li: LedgerImport, problems: Iterable[Problem], headers: dict[str, Any]) -> None:
    """The error sheet into storage, and the first problems on the import."""
    summary: list[dict[str, Any]] = []

    def kept() -> Iterator[Problem]:
        for problem in problems:
            if len(summary) < SUMMARY_PROBLEMS:
                summary.append(
                    {
                        "row": problem.row,
                        "column": problem.column,
                        "value": problem.value,
                        "message": problem.message,
                    }
                )
            yield problem

    with tempfile.TemporaryFile(suffix=".xlsx") as handle:
        write_error_sheet(kept(), handle, headers=headers)
        handle.seek(0)
        li.error_sheet.save(f"{li.uuid.hex}-errors.xlsx", File(handle), save=False)
    li.error_summary = summary


def _drop_error_sheet(li: LedgerImport) -> None:
    if li.error_sheet:
        with contextlib.suppress(OSError, NotImplementedError):
            li.error_sheet.delete(save=False)
    li.error_sheet = ""
    li.error_summary = []


def _check(
    li: LedgerImport, *, actor: Any, scope: Scope, on_progress: ProgressCallback | None
) -> LedgerImport:
    """The dry run of a stored upload: every row checked, nothing written but the import."""
    now = timezone.now()
    _drop_error_sheet(li)
    li.status = ImportStatus.CHECKING
    li.started_at, li.finished_at = now, None
    li.rows_total = li.rows_ok = li.rows_bad = li.created = li.updated = li.progress = 0
    li.message = ""
    li.save()
    progress = _Progress(li, on_progress, committing=False)
    run: _Run | None = None
    try:
        with _stored(li) as source, _open_stored(li, source) as reader:
            li.encoding = reader.encoding
            mapping = _ordered_mapping(reader, li.mapping)
            problem = _file_problem(li, mapping)
            li.template = _remember(li, reader, mapping, actor)
            if problem:
                li.status, li.message = ImportStatus.FAILED_CHECK, problem
            else:
                run = _Run(li, reader, actor=actor, scope=scope, real=False, progress=progress)
                outcome = run.run()
                assert run.problems is not None
                duplicates = run.duplicates()
                fates = run.fates
                outcome.bad = fates.count(2)
                outcome.created = fates.count(0)
                outcome.updated = fates.count(1)
                outcome.ok = outcome.created + outcome.updated
                li.rows_total, li.rows_ok, li.rows_bad = outcome.rows, outcome.ok, outcome.bad
                li.created, li.updated = outcome.created, outcome.updated
                if outcome.bad:
                    problems = merge(run.problems.read(), duplicates, key=lambda p: p.row)
                    _write_errors(li, problems, mapping)
                    li.status, li.message = ImportStatus.FAILED_CHECK, _failed_summary(outcome)
                elif not outcome.rows:
                    li.status = ImportStatus.FAILED_CHECK
                    li.message = _("The ledger has no rows below its header.")
                else:
                    li.status, li.message = ImportStatus.CHECKED, _summary(outcome)
    except LedgerFileError as exc:
        li.status, li.message = ImportStatus.FAILED_CHECK, exc.message
    except BaseException:
        li.status = ImportStatus.FAILED_CHECK
        li.message = _("The check stopped unexpectedly; try again or ask an administrator.")
        li.finished_at = timezone.now()
        li.save()
        raise
    finally:
        progress.close()
        if run is not None and run.problems is not None:
            run.problems.close()
    li.finished_at = timezone.now()
    li.save()
    return li


def ledger_check(
    *,
    actor: User,
    file: Source,
    file_name: str,
    template: LedgerTemplate | str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    region: Region | str | None = None,
    on_progress: ProgressCallback | None = None,
    background: bool = False,
) -> LedgerImport:
    """Store an uploaded ledger and check every row of it (a dry run: no base data changes).

    ``background``: store it and leave the check to ``gridgov worker`` (status
    ``check_queued``; see ``ledger_run_queued``) — for ledgers too large to check within a
    request (``runs_in_background``).

    ``mapping`` ({header: field or None}) or ``template`` (a ``LedgerTemplate`` or its name)
    choose the columns; otherwise the template remembered for the same headers, else the
    suggested mapping. ``region`` narrows the import to a region inside the actor's scope (and
    places rows that name no grid there, when it is a grid or community).

    A file that cannot be read as a ledger (not a spreadsheet, damaged, a zip bomb, larger
    than ``GRIDGOV_LEDGER_MAX_MB``) raises a ``DomainError`` naming the problem, and nothing is
    stored. Otherwise the answer is the ``LedgerImport``: ``checked`` (ready to commit) or
    ``failed_check`` with its ``message``, ``error_summary`` and error sheet.
    """
    scope = _require_importer(actor)
    base = _import_region(actor, scope, region)
    chosen = _template_of(template)
    name = (os.path.basename(str(file_name or "")) or _("ledger"))[:255]
    with _opened(file) as fh:
        size, limit = _size_of(fh), max_upload_bytes()
        if size > limit:
            raise DomainError(
                _("%(name)s is %(size).1f MB; a ledger may be at most %(limit)d MB.")
                % {"name": name, "size": size / 2**20, "limit": limit // 2**20},
                status=413,
                detail={"size": size, "limit": limit},
            )
        reader = _open_upload(fh, name, chosen)
        with reader:
            columns, used = _mapping_for(reader, mapping=mapping, template=chosen)
            kind, encoding = reader.kind, reader.encoding
        li = LedgerImport(
            kind=LedgerKind.PERSON,
            created_by=actor,
            file_name=name,
            encoding=encoding,
            region_code=base,
            mapping=columns,
            template=used,
            status=ImportStatus.UPLOADED,
        )
        if background:
            li.status, li.queued_by, li.queued_at = ImportStatus.CHECK_QUEUED, actor, timezone.now()
        li.save()
        li.file.save(f"{li.uuid.hex}.{kind}", File(fh), save=True)
    if background:
        wake_workers()
        return li
    return _check(li, actor=actor, scope=scope, on_progress=on_progress)


def _open_upload(
    source: IO[bytes] | str, name: str, template: LedgerTemplate | None
) -> LedgerReader:
    """The ledger opened at the template's header row (if it has one there), else as found."""
    if template is not None:
        with contextlib.suppress(LedgerFileError):
            return open_ledger(source, file_name=name, header_row=template.header_row)
    return open_ledger(source, file_name=name)


def _require_own(actor: Any, li: LedgerImport, scope: Scope) -> None:
    """The actor may act on the import: theirs, or of a region they may edit."""
    if li.created_by_id == getattr(actor, "pk", None) or scope.covers(li.region_code):
        return
    if not li.region_code and scope.everything:
        return
    raise PermissionDenied(_("you may not change this import"))


def ledger_recheck(
    *,
    actor: User,
    ledger_import: LedgerImport,
    mapping: Mapping[str, str | None] | None = None,
    template: LedgerTemplate | str | None = None,
    on_progress: ProgressCallback | None = None,
    background: bool = False,
) -> LedgerImport:
    """Check a stored upload again, with another mapping or template (the mapping step);
    ``background`` as for ``ledger_check``."""
    scope = _require_importer(actor)
    li = LedgerImport.objects.select_related("template").get(pk=ledger_import.pk)
    _require_own(actor, li, scope)
    if li.status in BUSY or li.status == ImportStatus.IMPORTED:
        raise Conflict(
            _("this import is %(status)s and cannot be checked again")
            % {"status": li.get_status_display()},
            detail={"status": li.status},
        )
    chosen = _template_of(template)
    if mapping or chosen is not None:
        with _stored(li) as source:
            reader = _open_upload(source, li.file_name, chosen)
            with reader:
                li.mapping, li.template = _mapping_for(reader, mapping=mapping, template=chosen)
    if background:
        li.status, li.queued_by, li.queued_at = ImportStatus.CHECK_QUEUED, actor, timezone.now()
        li.message = ""
        li.save()
        wake_workers()
        return li
    return _check(li, actor=actor, scope=scope, on_progress=on_progress)


@contextlib.contextmanager
def bulk_session() -> Iterator[None]:
    """A larger page cache for SQLite while a bulk write runs (restored afterwards)."""
    if connection.vendor != "sqlite":
        yield
        return
    size = int(getattr(settings, "GRIDGOV_LEDGER_SQLITE_CACHE_MB", DEFAULT_SQLITE_CACHE_MB))
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = {-max(2, size) * 1024}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {before}")


def _fail(li: LedgerImport, message: str) -> None:
    LedgerImport.objects.filter(pk=li.pk).update(
        status=ImportStatus.FAILED, message=message[:4000], finished_at=timezone.now()
    )


def ledger_commit(
    *,
    actor: User,
    ledger_import: LedgerImport,
    on_progress: ProgressCallback | None = None,
    background: bool = False,
) -> LedgerImport:
    """Import a checked ledger, all or nothing; answers the import (``imported`` or ``failed``).

    Only a ``checked`` import can be committed (else ``Conflict``); the first commit claims it,
    so two at once cannot both run. The file is read and every row checked again: a row that
    no longer passes (the registry changed since the check) stops the import, rolls it back and
    leaves it ``failed`` with a message naming the row.

    ``background``: claim it for ``gridgov worker`` instead (status ``commit_queued``) and
    answer at once.
    """
    scope = _require_importer(actor)
    li = LedgerImport.objects.select_related("template").get(pk=ledger_import.pk)
    _require_own(actor, li, scope)
    now = timezone.now()
    if background:
        claim: dict[str, Any] = {"status": ImportStatus.COMMIT_QUEUED}
        claim.update(queued_by=actor, queued_at=now)
    else:
        claim = {"status": ImportStatus.IMPORTING, "started_at": now, "progress": 0}
    claimed = LedgerImport.objects.filter(pk=li.pk, status=ImportStatus.CHECKED).update(
        finished_at=None, **claim
    )
    if not claimed:
        raise Conflict(
            _("only a checked ledger without problems can be imported; this one is %(status)s")
            % {"status": li.get_status_display()},
            detail={"status": li.status},
        )
    li.refresh_from_db()
    if background:
        wake_workers()
        return li
    return _commit_claimed(li, actor=actor, scope=scope, on_progress=on_progress)


def _commit_claimed(
    li: LedgerImport, *, actor: User, scope: Scope, on_progress: ProgressCallback | None
) -> LedgerImport:
    """The commit of an import this process claimed (status ``importing``)."""
    progress = _Progress(li, on_progress, committing=True)
    try:
        with transaction.atomic(), bulk_session():
            with _stored(li) as source, _open_stored(li, source) as reader:
                run = _Run(li, reader, actor=actor, scope=scope, real=True, progress=progress)
                try:
                    outcome = run.run()
                finally:
                    run.close()
            message = _(
                "%(rows)d rows imported: %(created)d people added, %(updated)d updated. New: "
                "%(buildings)d buildings, %(rooms)d rooms, %(households)d households."
            ) % {
                "rows": outcome.rows,
                "created": outcome.created,
                "updated": outcome.updated,
                "buildings": outcome.buildings,
                "rooms": outcome.rooms,
                "households": outcome.households,
            }
            LedgerImport.objects.filter(pk=li.pk).update(
                status=ImportStatus.IMPORTED,
                rows_total=outcome.rows,
                rows_ok=outcome.ok,
                rows_bad=0,
                created=outcome.created,
                updated=outcome.updated,
                progress=outcome.rows,
                finished_at=timezone.now(),
                message=message,
            )
    except _Abort as exc:
        _fail(li, _("Nothing was imported. %(problem)s") % {"problem": exc.message})
    except DomainError as exc:
        _fail(li, _("Nothing was imported. %(problem)s") % {"problem": exc.message})
    except IntegrityError:
        _fail(
            li,
            _(
                "Nothing was imported: the registry changed while the ledger was imported (an id "
                "number was registered meanwhile). Check the ledger again."
            ),
        )
    except BaseException as exc:
        _fail(
            li,
            _("Nothing was imported: the import stopped unexpectedly (%(error)s).")
            % {"error": type(exc).__name__},
        )
        raise
    finally:
        progress.close()
    li.refresh_from_db()
    if on_progress is not None:
        on_progress(li)
    return li


# --------------------------------------------------------------------------- in the background

#: statuses of an import whose step (check or commit) has not ended yet
BUSY = (
    ImportStatus.CHECK_QUEUED,
    ImportStatus.CHECKING,
    ImportStatus.COMMIT_QUEUED,
    ImportStatus.IMPORTING,
)


def runs_in_background(size: int) -> bool:
    """Whether a ledger of ``size`` bytes is checked and committed by ``gridgov worker`` rather
    than within the web or API request (``GRIDGOV_LEDGER_INLINE_MB``, default 2 MB: about
    15,000 rows, a few seconds of work; a million rows take minutes, longer than a request may
    run)."""
    limit = float(getattr(settings, "GRIDGOV_LEDGER_INLINE_MB", 2.0))
    return size > limit * 2**20


def import_size(li: LedgerImport) -> int:
    """The stored upload's size in bytes (0 when it is gone)."""
    try:
        return int(li.file.size) if li.file else 0
    except OSError:
        return 0


def ledger_claim_queued() -> LedgerImport | None:
    """Claim the oldest queued step for this worker, with one conditional UPDATE (so two
    workers never run the same step); None when nothing waits."""
    waiting = LedgerImport.objects.filter(
        status__in=(ImportStatus.CHECK_QUEUED, ImportStatus.COMMIT_QUEUED)
    ).order_by("queued_at", "pk")
    for li in waiting[:10]:
        running = (
            ImportStatus.CHECKING
            if li.status == ImportStatus.CHECK_QUEUED
            else ImportStatus.IMPORTING
        )
        claimed = LedgerImport.objects.filter(pk=li.pk, status=li.status).update(
            status=running, started_at=timezone.now(), progress=0, finished_at=None
        )
        if claimed:
            li.refresh_from_db()
            return li
    return None


def ledger_run_claimed(*, ledger_import: LedgerImport) -> LedgerImport:
    """Run the step a worker claimed (``ledger_claim_queued``): the check, as the uploader, or
    the commit, as the user who asked for it. Their rights are checked again now."""
    li = LedgerImport.objects.select_related("template", "created_by", "queued_by").get(
        pk=ledger_import.pk
    )
    if li.queued_at is None or li.status not in (ImportStatus.CHECKING, ImportStatus.IMPORTING):
        raise Conflict(
            _("this import has no step waiting for the background worker; it is %(status)s")
            % {"status": li.get_status_display()},
            detail={"status": li.status},
        )
    actor = li.queued_by or li.created_by
    checking = li.status == ImportStatus.CHECKING
    try:
        scope = _require_importer(actor)
        _require_own(actor, li, scope)
    except DomainError as exc:
        LedgerImport.objects.filter(pk=li.pk).update(
            status=ImportStatus.FAILED_CHECK if checking else ImportStatus.CHECKED,
            message=exc.message[:4000],
            finished_at=timezone.now(),
            queued_at=None,
        )
        li.refresh_from_db()
        return li
    try:
        if checking:
            return _check(li, actor=actor, scope=scope, on_progress=None)
        return _commit_claimed(li, actor=actor, scope=scope, on_progress=None)
    finally:
        LedgerImport.objects.filter(pk=li.pk).update(queued_at=None)
        li.queued_at = None


def ledger_fail_stale() -> int:
    """Fail the steps that stopped without ending — their process was killed (a web request
    past its time, a worker stopped): nothing of a commit is left (its transaction died with
    it). A step is stale when neither its start nor its progress file moved for
    ``GRIDGOV_LEDGER_STALE_MINUTES`` (default 30). Answers how many failed."""
    limit = timedelta(minutes=float(getattr(settings, "GRIDGOV_LEDGER_STALE_MINUTES", 30)))
    now = timezone.now()
    failed = 0
    running = LedgerImport.objects.filter(
        status__in=(ImportStatus.CHECKING, ImportStatus.IMPORTING)
    )
    for li in running:
        beat = li.started_at or li.created_at
        with contextlib.suppress(OSError, ValueError, OverflowError):
            moved = datetime.fromtimestamp(_progress_file(li).stat().st_mtime, tz=UTC)
            beat = max(beat, moved)
        if now - beat <= limit:
            continue
        checking = li.status == ImportStatus.CHECKING
        message = (
            _("The check stopped unexpectedly; check the ledger again.")
            if checking
            else _("Nothing was imported: the import stopped unexpectedly. Check the ledger again.")
        )
        failed += LedgerImport.objects.filter(pk=li.pk, status=li.status).update(
            status=ImportStatus.FAILED_CHECK if checking else ImportStatus.FAILED,
            message=message,
            finished_at=now,
            queued_at=None,
        )
        with contextlib.suppress(OSError):
            _progress_file(li).unlink()
    return failed


_ID_LIKE = re.compile(r"^[0-9]{17}[0-9Xx]$")
_PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 -]{6,}$")


def _masked_cell(field: str | None, text: str) -> str:
    mask = MASKED_FIELDS.get(field or "")
    if mask is not None:
        return mask(text)
    if _ID_LIKE.match(text):
        return mask_id_number(text)
    if _PHONE_LIKE.match(text):
        return mask_phone(text)
    return text


def ledger_preview(*, actor: User, ledger_import: LedgerImport) -> dict[str, Any]:
    """The upload's headers in order, its mapping, the suggested one, and a few rows (masked)."""
    li = import_get(actor, ledger_import.uuid)
    with _stored(li) as source, _open_stored(li, source) as reader:
        mapping = _ordered_mapping(reader, li.mapping)
        rows: list[dict[str, Any]] = []
        for number, values in reader.rows():
            rows.append(
                {
                    "row": number,
                    "cells": [
                        _masked_cell(mapping.get(h), v)
                        for h, v in zip(reader.headers, values, strict=False)
                    ],
                }
            )
            if len(rows) >= PREVIEW_ROWS:
                break
        return {
            "headers": list(reader.headers),
            "mapping": mapping,
            "suggested": dict(suggest_mapping(reader.headers)),
            "fields": list(PERSON_FIELDS),
            "sheet": reader.sheet_name,
            "header_row": reader.header_row,
            "rows": rows,
        }
