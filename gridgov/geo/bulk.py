"""Files in bulk, without writing to the database.

* ``locate_csv``: stream a CSV ledger (UTF-8 with or without BOM, or GBK) in chunks, find the
  grid of each row's point with the spatial index, and write the rows back out with
  ``grid_code``, ``grid_name`` and ``community_code`` appended. Memory stays bounded by the
  chunk size, whatever the length of the file.
* Staging uploads: an uploaded import file is kept under ``MEDIA_ROOT/imports/`` between the
  dry run and the commit, named by a signed, expiring token (see ``stage_upload``).
"""

from __future__ import annotations

import codecs
import csv
import math
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from django.conf import settings
from django.core import signing
from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.core.errors import DomainError
from gridgov.formats.cells import safe_text
from gridgov.geo.crs import to_wgs84
from gridgov.geo.index import grid_index
from gridgov.geo.models import Level, Region

#: Rows located per call of the spatial index (and held in memory at once).
CHUNK_ROWS = 20_000
#: How many line numbers of bad rows the summary names.
BAD_LINES_SHOWN = 10
#: Columns appended to every row.
OUTPUT_COLUMNS = ("grid_code", "grid_name", "community_code")
#: Column names tried when the default ``lat``/``lon`` columns are missing.
LAT_ALIASES = ("lat", "latitude", "纬度", "y")
LON_ALIASES = ("lon", "lng", "long", "longitude", "经度", "x")
_BLOCK = 1 << 18


# --- reading CSV ---------------------------------------------------------------------------------


def sniff_encoding(path: Path) -> str:
    """``utf-8-sig`` or ``utf-8`` when the whole file is valid UTF-8, else ``gb18030`` (GBK).

    One pass over the bytes in blocks (constant memory): a GBK ledger is often plain ASCII for
    thousands of rows before its first Chinese name, so a sample is not enough.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        first = handle.read(_BLOCK)
        bom = first.startswith(codecs.BOM_UTF8)
        block = first
        try:
            while block:
                decoder.decode(block)
                block = handle.read(_BLOCK)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig" if bom else "utf-8"


def encoding_label(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "gb18030": "GBK"}.get(
        encoding, encoding
    )


def _find_column(header: list[str], wanted: str, aliases: tuple[str, ...]) -> int | None:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    if wanted.strip().lower() in names:
        return names.index(wanted.strip().lower())
    if wanted.strip().lower() in aliases:
        for alias in aliases:
            if alias in names:
                return names.index(alias)
    return None


class TextSink(Protocol):
    def write(self, text: str, /) -> int: ...


@dataclass
class LocateSummary:
    """What ``locate_csv`` did: counts, and the line numbers of the first bad rows."""

    encoding: str = ""
    rows: int = 0
    located: int = 0
    outside: int = 0
    bad: int = 0
    bad_lines: list[int] = field(default_factory=list)
    chunks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "rows": self.rows,
            "located": self.located,
            "outside": self.outside,
            "bad": self.bad,
            "bad_lines": self.bad_lines,
        }

    def text(self) -> str:
        lines = [
            _(
                "%(rows)s rows (%(encoding)s): %(located)s located in a grid, %(outside)s "
                "outside every grid, %(bad)s with bad coordinates"
            )
            % {
                "rows": f"{self.rows:,}",
                "encoding": encoding_label(self.encoding),
                "located": f"{self.located:,}",
                "outside": f"{self.outside:,}",
                "bad": f"{self.bad:,}",
            }
        ]
        if self.bad_lines:
            shown = ", ".join(str(n) for n in self.bad_lines)
            if self.bad > len(self.bad_lines):
                shown = _("%(shown)s and %(count)s more") % {
                    "shown": shown,
                    "count": f"{self.bad - len(self.bad_lines):,}",
                }
            lines.append(
                ngettext(
                    "bad coordinates on line %(lines)s (kept with an empty grid)",
                    "bad coordinates on lines %(lines)s (kept with an empty grid)",
                    self.bad,
                )
                % {"lines": shown}
            )
        return "\n".join(lines)


def _coordinate(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _chunks(reader: Any, size: int) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    for values in reader:
        chunk.append((reader.line_num, values))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _GridNames:
    """Grid code -> name, fetched for the codes met, a few hundred at a time."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def fetch(self, codes: set[str]) -> None:
        missing = sorted(c for c in codes if c not in self.names)
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            self.names.update(
                Region.objects.filter(level=Level.GRID, code__in=part).values_list("code", "name")
            )

    def __getitem__(self, code: str) -> str:
        return self.names.get(code, "")


def locate_csv(
    *,
    path: str | Path,
    out: TextSink,
    lat_column: str = "lat",
    lon_column: str = "lon",
    crs: str = "wgs84",
    encoding: str | None = None,
    chunk_rows: int | None = None,
) -> LocateSummary:
    """Append the grid of every row's point to a CSV, streaming it ``chunk_rows`` at a time.

    A row whose coordinates are missing, not numbers or out of range is written with empty
    grid columns and counted (its line number noted), never fatal. Points are in ``crs``
    (``wgs84`` or ``gcj02``). Raises DomainError for an unreadable file or a missing column.
    """
    source = Path(path)
    size = chunk_rows or CHUNK_ROWS
    if crs.lower() not in ("wgs84", "gcj02"):
        raise DomainError(_("unknown coordinate system %(crs)s; use wgs84 or gcj02") % {"crs": crs})
    try:
        chosen = encoding or sniff_encoding(source)
        handle: IO[str] = source.open("r", encoding=chosen, newline="", errors="strict")
    except OSError as exc:
        raise DomainError(
            _("cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror or exc}
        ) from exc
    except LookupError as exc:
        raise DomainError(_("unknown encoding %(name)s") % {"name": encoding}) from exc
    summary = LocateSummary(encoding=chosen)
    names = _GridNames()
    index = grid_index()
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as exc:
            raise DomainError(
                _("the file is not %(encoding)s text") % {"encoding": encoding_label(chosen)}
            ) from exc
        if header is None:
            raise DomainError(_("%(file)s is empty") % {"file": source.name})
        lat_i = _find_column(header, lat_column, LAT_ALIASES)
        lon_i = _find_column(header, lon_column, LON_ALIASES)
        for wanted, found in ((lat_column, lat_i), (lon_column, lon_i)):
            if found is None:
                raise DomainError(
                    _("%(file)s has no column %(column)s; its columns are %(header)s")
                    % {
                        "file": source.name,
                        "column": repr(wanted),
                        "header": ", ".join(h.strip() for h in header),
                    }
                )
        assert lat_i is not None and lon_i is not None
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*(h.lstrip("\ufeff") for h in header), *OUTPUT_COLUMNS])
        try:
            for chunk in _chunks(reader, size):
                _locate_chunk(
                    chunk,
                    lat_i=lat_i,
                    lon_i=lon_i,
                    crs=crs.lower(),
                    index=index,
                    names=names,
                    writer=writer,
                    summary=summary,
                )
        except UnicodeDecodeError as exc:
            raise DomainError(
                _("the file is not %(encoding)s text (after line %(line)s)")
                % {"encoding": encoding_label(chosen), "line": reader.line_num}
            ) from exc
    return summary


def _locate_chunk(
    chunk: list[tuple[int, list[str]]],
    *,
    lat_i: int,
    lon_i: int,
    crs: str,
    index: Any,
    names: _GridNames,
    writer: Any,
    summary: LocateSummary,
) -> None:
    summary.chunks += 1
    n = len(chunk)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    good = np.zeros(n, dtype=bool)
    for i, (line, values) in enumerate(chunk):
        try:
            y = _coordinate(values[lat_i])
            x = _coordinate(values[lon_i])
            if not (-90 <= y <= 90 and -180 <= x <= 180):
                raise ValueError(values)
        except (IndexError, ValueError):
            summary.bad += 1
            if len(summary.bad_lines) < BAD_LINES_SHOWN:
                summary.bad_lines.append(line)
            continue
        if crs != "wgs84":
            x, y = to_wgs84(x, y, crs)
        lon[i], lat[i] = x, y
        good[i] = True
    codes: list[str | None] = [None] * n
    if good.any():
        found = index.locate_many(lon[good], lat[good])
        for i, code in zip(np.flatnonzero(good).tolist(), found, strict=True):
            codes[i] = code
    names.fetch({c for c in codes if c})
    for i, (_line, values) in enumerate(chunk):
        code = codes[i]
        if code:
            summary.located += 1
            # the ledger's own cells go back as they came; the grid's name is ours to neutralise
            writer.writerow([*values, code, safe_text(names[code]), code[:12]])
        else:
            if good[i]:
                summary.outside += 1
            writer.writerow([*values, "", "", ""])
    summary.rows += n


# --- staging an upload between the dry run and the commit ----------------------------------------

_SALT = "gridgov.geo.import-upload"
#: How long a dry run may wait for its commit.
STAGE_MAX_AGE_SECONDS = 3600


def imports_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def safe_upload_name(name: str, default: str = "upload") -> str:
    """The base name of an upload, reduced to letters, digits, ``-``, ``_`` and ``.``."""
    base = Path(str(name).replace("\\", "/")).name[-100:]
    try:
        cleaned = get_valid_filename(base)
    except SuspiciousFileOperation:  # "", "." and ".."
        cleaned = ""
    return cleaned.lstrip(".") or default


def read_upload(upload: Any, *, limit: int | None = None) -> bytes:
    """The bytes of an uploaded file; DomainError (413) past ``GRIDGOV_UPLOAD_MAX_BYTES``."""
    limit = int(limit if limit is not None else settings.GRIDGOV_UPLOAD_MAX_BYTES)
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise DomainError(
            _("the file has %(size)s bytes; at most %(limit)s bytes are accepted")
            % {"size": f"{size:,}", "limit": f"{limit:,}"},
            detail={"size": size, "limit": limit},
            status=413,
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise DomainError(
            _("the file is larger than %(limit)s bytes") % {"limit": f"{limit:,}"},
            detail={"limit": limit},
            status=413,
        )
    return bytes(data)


@dataclass(frozen=True)
class StagedUpload:
    """An upload kept on disk; ``token`` names it (signed, so it cannot point elsewhere)."""

    id: str
    name: str
    path: Path
    token: str

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def stage_upload(*, data: bytes, name: str, meta: dict[str, Any]) -> StagedUpload:
    """Keep ``data`` as ``MEDIA_ROOT/imports/<random id>/<name>`` and sign a token naming it.

    ``meta`` (the options of the dry run, the user) travels signed in the token, so the commit
    runs with exactly what was previewed. Old staged files are swept on the way.
    """
    sweep_staged()
    ident = uuid.uuid4().hex
    safe = safe_upload_name(name)
    folder = imports_dir() / ident
    folder.mkdir(parents=True, exist_ok=False)
    target = folder / safe
    target.write_bytes(data)
    token = signing.dumps({"id": ident, "name": safe, **meta}, salt=_SALT, compress=True)
    return StagedUpload(id=ident, name=safe, path=target, token=token)


def staged_upload(token: str) -> tuple[StagedUpload, dict[str, Any]]:
    """The staged upload a token names and the meta signed with it.

    DomainError when the token is forged, older than ``STAGE_MAX_AGE_SECONDS``, or its file is
    gone (already committed).
    """
    try:
        payload = signing.loads(token, salt=_SALT, max_age=STAGE_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise DomainError(_("this preview has expired; upload the file again")) from exc
    except signing.BadSignature as exc:
        raise DomainError(_("this preview is not valid; upload the file again")) from exc
    ident = str(payload.get("id", ""))
    name = str(payload.get("name", ""))
    if not (len(ident) == 32 and ident.isalnum()) or name != safe_upload_name(name):
        raise DomainError(_("this preview is not valid; upload the file again"))
    path = imports_dir() / ident / name
    if not path.is_file():
        raise DomainError(
            _("this preview was already committed or has expired; upload the file again")
        )
    meta = {k: v for k, v in payload.items() if k not in ("id", "name")}
    return StagedUpload(id=ident, name=name, path=path, token=token), meta


def sweep_staged(*, max_age: float = STAGE_MAX_AGE_SECONDS) -> int:
    """Remove staged uploads older than ``max_age`` seconds; answer how many."""
    root = imports_dir()
    if not root.is_dir():
        return 0
    cutoff = time.time() - max_age
    removed = 0
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def detect_import_kind(data: bytes) -> str:
    """``geojson`` when the bytes start like a JSON object or array, else ``divisions`` (CSV)."""
    head = data[:4096].lstrip(codecs.BOM_UTF8).lstrip()
    return "geojson" if head[:1] in (b"{", b"[") else "divisions"


__all__ = [
    "CHUNK_ROWS",
    "LocateSummary",
    "StagedUpload",
    "detect_import_kind",
    "locate_csv",
    "read_upload",
    "stage_upload",
    "staged_upload",
    "sweep_staged",
]
