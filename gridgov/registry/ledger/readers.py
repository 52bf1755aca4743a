"""Open a ledger file (.xlsx, .xls, .csv) and stream its rows as text.

``open_ledger(path_or_file, file_name=…)`` decides what the file is by its content, never by its
name (``sniff_kind``), refuses what is not a spreadsheet with a ``LedgerFileError`` that says
what it is instead, finds the header row and gives:

- ``encoding`` (CSV: ``utf-8``, ``utf-8-sig``, ``utf-16``, ``utf-32`` or ``gb18030``; a
  workbook: ``""``), ``sheet_name`` and ``sheet_names``;
- ``header_row`` (0-based index of the header row), ``headers`` (one name per column: a
  two-row header joined as "居住地址/小区", a blank header named 列N, a repeated one numbered);
- ``rows()``: ``(row number as Excel shows it, [text of each column])`` for every non-blank
  row after the header, read again from the start at each call.

Cell text: dates as YYYY-MM-DD (with the time when there is one), whole numbers without ".0",
other numbers as Excel shows them and never in scientific notation, TRUE/FALSE, surrounding
spaces stripped, a leading apostrophe and an ="…" wrapper removed.

Formats:

- .xlsx — streamed by this module's own reader (``_XlsxSource``), never loaded whole: the
  sheet's XML is read in 32 KiB pieces, as Excel, WPS, LibreOffice, openpyxl and xlsxwriter
  write it with regular expressions, anything unusual (prefixed names, comments, CDATA) with
  expat from where the fast path stopped; a large shared-string table moves to a memory-mapped
  file. (openpyxl's read-only mode streams too, but without lxml it reads some 35,000 cells a
  second and keeps every shared string in the heap.) Before anything is unpacked, the zip's
  directory is checked: a workbook part must be there, nothing encrypted, and the sizes
  unpacked must stay under a limit (``unpacked_limit``), so a zip bomb is refused unopened.
  Merged cells are not read: the header row is the first row where most cells are non-empty
  text, and the row below (sub-headers under a merged group) or above (group titles) is joined
  when it looks like one.
- .xls — python-calamine (BIFF files are at most 65,536 rows).
- .csv — streamed. Encoding: a byte order mark, else strict UTF-8 on the first 64 KiB that holds
  a non-ASCII byte, else GB18030 (a superset of GBK and GB2312); neither is an error. The
  delimiter is chosen among , ; tab | by which one splits the first lines most consistently.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import math
import mmap
import os
import posixpath
import re
import tempfile
import unicodedata
import zipfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any
from xml.parsers import expat

from django.conf import settings
from django.utils.translation import gettext as _

from gridgov.core.errors import DomainError

from .columns import HEADER_JOINER

#: Bytes read to decide the kind and the encoding of a file.
HEAD_BYTES = 64 * 1024
#: Rows read to find the header.
HEADER_SCAN_ROWS = 30
#: An xlsx may unpack to this many times its own size, and always to FLOOR MiB…
UNPACKED_RATIO = 20
UNPACKED_FLOOR_MB = 100
#: …but never to more than ``GRIDGOV_LEDGER_MAX_UNPACKED_MB`` (this default).
MAX_UNPACKED_MB = 2048
MAX_ZIP_MEMBERS = 10_000
#: Bytes of a worksheet's XML parsed at a time.
PIECE_BYTES = 32 * 1024
#: Shared strings kept in a Python list before the table moves to a memory-mapped file.
SHARED_STRINGS_IN_MEMORY = 50_000
#: CSV: how far to look for the first non-ASCII byte before deciding the encoding.
ENCODING_SCAN_BYTES = 16 * 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_SPREADSHEET_PARTS = (
    b"spreadsheetml.sheet.main+xml",
    b"spreadsheetml.template.main+xml",
    b"ms-excel.sheet.macroEnabled.main+xml",
    b"ms-excel.template.macroEnabled.main+xml",
)
_NUMERIC = re.compile(r"^[+-]?[\d,.:/ -]*\d[\d,.:/ -]*[xX]?$|^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_FORMULA_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)

Source = str | os.PathLike[str] | IO[bytes]


class LedgerFileError(DomainError):
    """A file that cannot be read as a ledger; the message says why, for the person uploading."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


# --------------------------------------------------------------------------- cell text


_PLAIN_EDGES = frozenset(" \t\r\n\v\f\x85\xa0\u2002\u2003\u2009\u200b\u202f\u3000\ufeff'=")


def clean_text(value: str) -> str:
    """A cell's text without surrounding spaces, a leading apostrophe or an ="…" wrapper."""
    if not value or (value[0] not in _PLAIN_EDGES and value[-1] not in _PLAIN_EDGES):
        return value  # the common case, at the cost of two look-ups
    text = value.strip().strip("\u200b\ufeff").strip()
    match = _FORMULA_TEXT.match(text)
    if match:
        text = match.group(1).strip()
    if text.startswith("'"):
        text = text[1:].lstrip()
    return text


def number_text(value: float) -> str:
    """A number as a person reads it: 12 not 12.0, 320102199001011234 not 3.2e+17."""
    if math.isnan(value) or math.isinf(value):
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.15g}"  # Excel keeps and shows 15 significant digits
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def cell_text(value: Any) -> str:
    """The text of one cell value from openpyxl or calamine."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, timedelta):
        return str(value)
    return clean_text(str(value))


def _header_text(value: str) -> str:
    return " ".join(value.split())


def _label_like(text: str) -> bool:
    """Text that could be a column title: not a number, a date or a code, not a sentence."""
    return bool(text) and not _NUMERIC.match(text) and len(text) <= 40


# --------------------------------------------------------------------------- kind


def sniff_kind(head_bytes: bytes, file_name: str = "") -> str:
    """``"xlsx"``, ``"xls"`` or ``"csv"`` from the first bytes of a file, or ``LedgerFileError``.

    The name is only used in messages: a CSV named .xlsx is read as CSV, an HTML page named
    .xls is refused as a web page.
    """
    name = file_name or _("The file")
    if not head_bytes:
        raise LedgerFileError(_("%(name)s is empty.") % {"name": name})
    if head_bytes.startswith(_ZIP):
        return "xlsx"
    if head_bytes.startswith(_OLE2):
        return "xls"
    if head_bytes.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    start = head_bytes.removeprefix(codecs.BOM_UTF8).lstrip()[:2048].lower()
    if start.startswith(b"<"):
        if b"<svg" in start:
            what = _("an SVG image")
        elif b"urn:schemas-microsoft-com:office:spreadsheet" in head_bytes.lower():
            what = _("an Excel 2003 XML spreadsheet")
        elif any(tag in start for tag in (b"<html", b"<!doctype html", b"<table", b"<head")):
            what = _("a web page (HTML)")
        else:
            what = _("an XML document")
        raise _not_spreadsheet(name, what)
    if start.startswith(b"mime-version:"):
        raise _not_spreadsheet(name, _("a saved web page (MHTML)"))
    if start.startswith(b"%pdf"):
        raise _not_spreadsheet(name, _("a PDF document"))
    if b"\x00" in head_bytes:
        raise _not_spreadsheet(name, _("a binary file"))
    return "csv"


def _not_spreadsheet(name: str, what: str) -> LedgerFileError:
    return LedgerFileError(
        _(
            "%(name)s is %(what)s, not a spreadsheet. Open it in Excel or WPS and save it as an "
            "Excel workbook (.xlsx) or as CSV."
        )
        % {"name": name, "what": what}
    )


# --------------------------------------------------------------------------- file handling


class _Borrowed(io.RawIOBase):
    """A read-only view of a binary file that does not close it (for ``io.TextIOWrapper``)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size


def _file_size(fh: IO[bytes]) -> int:
    position = fh.tell()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(position)
    return size


def unpacked_limit(file_size: int) -> int:
    """Bytes an xlsx of ``file_size`` bytes may unpack to."""
    cap = int(getattr(settings, "GRIDGOV_LEDGER_MAX_UNPACKED_MB", MAX_UNPACKED_MB)) * 2**20
    return min(cap, max(UNPACKED_RATIO * file_size, UNPACKED_FLOOR_MB * 2**20))


def check_workbook_zip(fh: IO[bytes], name: str) -> None:
    """Refuse a zip that is not an Excel workbook, is encrypted, or unpacks too large."""
    size = _file_size(fh)
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise LedgerFileError(
            _("%(name)s is a damaged zip file; it cannot be read as a workbook.") % {"name": name}
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise _not_workbook(name)
        total = sum(info.file_size for info in infos)
        limit = unpacked_limit(size)
        if total > limit:
            raise LedgerFileError(
                _(
                    "%(name)s would unpack to %(size)d MB, more than the %(limit)d MB allowed for "
                    "a file of its size; it is refused (it may be a zip bomb)."
                )
                % {"name": name, "size": total // 2**20, "limit": limit // 2**20}
            )
        if any(info.flag_bits & 0x1 for info in infos):
            raise LedgerFileError(
                _("%(name)s is encrypted; remove the password and upload it again.")
                % {"name": name}
            )
        try:
            types = archive.getinfo("[Content_Types].xml")
        except KeyError:
            raise _not_workbook(name) from None
        if types.file_size > 2**20:
            raise _not_workbook(name)
        content = archive.read(types)
    if not any(part in content for part in _SPREADSHEET_PARTS):
        if b"sheet.binary.macroEnabled.main" in content:
            raise LedgerFileError(
                _("%(name)s is a binary Excel workbook (.xlsb); save it as .xlsx and try again.")
                % {"name": name}
            )
        raise _not_workbook(name)


def _not_workbook(name: str) -> LedgerFileError:
    return LedgerFileError(
        _("%(name)s is a zip archive but not an Excel workbook.") % {"name": name}
    )


def _unreadable(name: str) -> LedgerFileError:
    return LedgerFileError(
        _(
            "%(name)s cannot be read as an Excel workbook; open it in Excel or WPS, save it "
            "again as .xlsx and retry."
        )
        % {"name": name}
    )


# --------------------------------------------------------------------------- sources


class _Source:
    """Rows of one sheet as lists of cell text, from row 1 on (blank rows included)."""

    kind = ""
    encoding = ""
    sheet_names: list[str]
    visible: list[str]

    def iter_rows(self, sheet: str) -> Iterator[list[str]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SharedStrings:
    """The shared-string table of a workbook, kept out of the Python heap when it is large.

    The first ``SHARED_STRINGS_IN_MEMORY`` strings stay in a list; past that the table is
    written, UTF-8 encoded, to a temporary file with a second file of offsets, both memory-mapped:
    a ledger of a million distinct names and id numbers costs page cache, not the process's heap.
    """

    def __init__(self) -> None:
        self._list: list[str] | None = []
        self._data: IO[bytes] | None = None
        self._offsets: IO[bytes] | None = None
        self._pending_text: list[bytes] = []
        self._pending = array("Q")
        self._end = 0
        self._maps: list[mmap.mmap] = []
        self._view: Any = None
        self._bytes: mmap.mmap | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, text: str) -> None:
        self._count += 1
        if self._list is not None:
            self._list.append(text)
            if self._count > SHARED_STRINGS_IN_MEMORY:
                self._spill()
            return
        data = text.encode("utf-8")
        self._pending_text.append(data)
        self._end += len(data)
        self._pending.append(self._end)
        if len(self._pending) >= 4096:
            self._flush()

    def _spill(self) -> None:
        assert self._list is not None
        self._data = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._offsets = tempfile.TemporaryFile()  # noqa: SIM115
        self._pending.append(0)
        strings, self._list = self._list, None
        self._count = 0
        for text in strings:
            self.append(text)

    def _flush(self) -> None:
        assert self._data is not None and self._offsets is not None
        self._data.write(b"".join(self._pending_text))
        self._offsets.write(self._pending.tobytes())
        self._pending_text = []
        self._pending = array("Q")

    def finish(self) -> None:
        if self._list is not None or self._data is None or self._offsets is None:
            return
        self._flush()
        self._data.flush()
        self._offsets.flush()
        if self._end:
            self._bytes = mmap.mmap(self._data.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps.append(self._bytes)
        offsets = mmap.mmap(self._offsets.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(offsets)
        self._view = memoryview(offsets).cast("Q")

    def __getitem__(self, index: int) -> str:
        if self._list is not None:
            return self._list[index]
        if index < 0 or index >= self._count:
            raise IndexError(index)
        start, end = self._view[index], self._view[index + 1]
        if self._bytes is None or start == end:
            return ""
        return self._bytes[start:end].decode("utf-8")

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        for m in self._maps:
            m.close()
        self._maps = []
        self._bytes = None
        for f in (self._data, self._offsets):
            if f is not None:
                f.close()


def _local(name: str) -> str:
    """An element's name without its namespace prefix ("x:row" is "row")."""
    return name.rpartition(":")[2]


_COLUMNS: dict[str, int] = {}


def _column_index(ref: str) -> int:
    """0-based column of a cell reference ("AB12" is 27)."""
    letters = ref.rstrip("0123456789$")
    index = _COLUMNS.get(letters)
    if index is None:
        n = 0
        for ch in letters.upper():
            if "A" <= ch <= "Z":
                n = n * 26 + ord(ch) - 64
        index = n - 1
        if len(_COLUMNS) < 20_000:
            _COLUMNS[letters] = index
    return index


#: Built-in number formats that show a date (with or without a time) or only a time; 27–36 and
#: 50–58 are the built-in formats of Chinese, Japanese and Korean Excel (年月日, 时分).
_DATE_FORMAT_IDS = frozenset(
    {14, 15, 16, 17, 22, 27, 28, 29, 30, 31, 36, 50, 51, 52, 53, 54, 57, 58}
)
_TIME_FORMAT_IDS = frozenset({18, 19, 20, 21, 32, 33, 34, 35, 45, 46, 47, 55, 56})
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


def _format_kind(code: str) -> str:
    """ "date", "time" or "" for a custom number format code."""
    from openpyxl.styles.numbers import is_date_format

    if not code or not is_date_format(code):
        return ""
    bare = _QUOTED.sub("", code).lower()
    return "date" if ("y" in bare or "d" in bare) else "time"


@dataclass(frozen=True, slots=True)
class _CellContext:
    """What a cell's text depends on besides the cell: the strings, the date styles, the epoch."""

    strings: _SharedStrings
    dates: dict[int, str]
    epoch: date | None  # None: the 1900 date system


# -- the plain path: SpreadsheetML as spreadsheet programs write it, read with regular expressions


class _NotPlain(Exception):
    """The XML uses something the plain path does not read (prefixes, comments, CDATA …)."""


_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_XML_DECLARATION = re.compile(r'^\s*<\?xml[^>]*?encoding=["\']([^"\']+)["\']')
_SI = re.compile(r"<si>(.*?)</si>|<si/>", re.S)
_T = re.compile(r"<t(?:\s[^>]*)?>(.*?)</t>", re.S)
_RPH = re.compile(r"<rPh\b.*?</rPh>", re.S)
#: A cell as Excel, WPS, LibreOffice, openpyxl and xlsxwriter write it (attributes r, s, t in
#: that order): column letters, row digits, style, type, <v> text, inline <t> text, other content.
_CELLS = re.compile(
    r'<c r="([A-Z]{1,3})(\d+)"(?: s="(\d+)")?(?: t="(\w+)")?'
    r"(?:/>|>(?:<v>([^<]*)</v>|<is><t>([^<]*)</t></is>|(.*?))</c>)",
    re.S,
)
_V = re.compile(r"<v>(.*?)</v>", re.S)
_IS = re.compile(r"<is>(.*?)</is>", re.S)


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name[0] == "#":
        return chr(int(name[2:], 16) if name[1] in "xX" else int(name[1:]))
    return _ENTITIES[name]


def _xml_text(raw: str) -> str:
    """XML character data as the parser would give it: entities replaced, line ends as \\n."""
    if "&" in raw:
        raw = _ENTITY.sub(_entity, raw)
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return raw


def _rich_text(body: str) -> str:
    """The text of a shared or inline string: its <t> runs, without phonetic <rPh> runs."""
    if body.startswith("<t>") and body.endswith("</t>") and body.find("<", 3) == len(body) - 4:
        return _xml_text(body[3:-4])
    if "<rPh" in body:
        body = _RPH.sub("", body)
    return _xml_text("".join(_T.findall(body)))


def _plain_pieces(stream: IO[bytes], root: str, split: str) -> Iterator[str]:
    """The document's text in pieces that end where an element ``split`` starts.

    Raises ``_NotPlain`` for a document the plain path cannot read.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buffer = ""
    first = True
    while True:
        chunk = stream.read(PIECE_BYTES)
        buffer += decoder.decode(chunk, final=not chunk)
        if first:
            first = False
            declared = _XML_DECLARATION.match(buffer)
            if declared and declared.group(1).lower().replace("-", "") != "utf8":
                raise _NotPlain
            if f"<{root}" not in buffer[:4096]:
                raise _NotPlain  # a prefixed root (<x:worksheet>) or no document at all
        if not chunk:
            if "<!" in buffer or "<?" in buffer[1:]:
                raise _NotPlain
            yield buffer
            return
        cut = buffer.rfind(split)
        if cut <= 0:
            continue
        piece, buffer = buffer[:cut], buffer[cut:]
        if "<!" in piece or "<?" in piece[1:]:
            raise _NotPlain  # a comment, CDATA or a processing instruction
        yield piece


def _plain_shared_strings(stream: IO[bytes], strings: _SharedStrings) -> None:
    for piece in _plain_pieces(stream, "sst", "<si"):
        count = 0
        for match in _SI.finditer(piece):
            body = match.group(1)
            strings.append(_rich_text(body) if body else "")
            count += 1
        if count != piece.count("<si>") + piece.count("<si/>") or "<si " in piece:
            raise _NotPlain


def _plain_rows(stream: IO[bytes], context: _CellContext, given: list[int]) -> Iterator[list[str]]:
    """The rows of a worksheet from row 1 on (blank ones included), or ``_NotPlain`` at the
    first piece not in the common form; ``given[0]`` counts the rows given so far, for the
    caller to read on with expat from there."""
    strings, dates = context.strings, context.dates
    width = 0  # the last row's width: a new row starts that wide
    for piece in _plain_pieces(stream, "worksheet", "<row"):
        cells = _CELLS.findall(piece)
        if len(cells) != piece.count("<c ") + piece.count("<c>") + piece.count("<c/>"):
            raise _NotPlain
        digits = ""
        row: list[str] = []
        for letters, row_digits, style, kind, v, inline, body in cells:
            if row_digits != digits:
                if digits:
                    yield from _in_place(row, int(digits), given)
                    width = len(row)
                digits, row = row_digits, [""] * width
            if kind == "s":
                try:
                    value = clean_text(strings[int(v)])
                except (ValueError, IndexError):
                    continue
            elif not kind or kind == "n":
                if not v:
                    if not body:
                        continue
                    match = _V.search(body)
                    v = match.group(1) if match else ""
                if v.isdigit() and len(v) <= 15 and (not style or int(style) not in dates):
                    value = v if v[0] != "0" else str(int(v))
                else:
                    value = _xlsx_cell("n", v, int(style) if style else 0, context)
            elif kind == "inlineStr":
                if inline:
                    value = clean_text(_xml_text(inline))
                else:
                    match = _IS.search(body)
                    value = clean_text(_rich_text(match.group(1))) if match else ""
            else:
                if not v and body:
                    match = _V.search(body)
                    v = match.group(1) if match else ""
                value = _xlsx_cell(kind, _xml_text(v), int(style) if style else 0, context)
            if value:
                column = _column_index(letters)
                if column >= len(row):
                    row.extend([""] * (column + 1 - len(row)))
                row[column] = value
        if digits:
            yield from _in_place(row, int(digits), given)
            width = len(row)


def _in_place(row: list[str], number: int, given: list[int]) -> Iterator[list[str]]:
    """Blank rows up to row ``number``, then the row; a row out of order is dropped."""
    while given[0] + 1 < number:
        given[0] += 1
        yield []
    if given[0] + 1 == number:
        given[0] += 1
        yield row


class _XlsxSource(_Source):
    """The worksheets of an xlsx (SpreadsheetML) file, streamed (see the module docstring).

    Workbook, relationships and styles are small parts read with ElementTree; the sheet and the
    shared strings go through the fast path (``_plain_rows``, ``_plain_shared_strings``) and,
    when that meets XML it does not read, through expat (``_SheetHandler``).
    """

    kind = "xlsx"

    def __init__(self, fh: IO[bytes], name: str) -> None:
        self.name = name
        self._strings: _SharedStrings | None = None
        try:
            self.archive = zipfile.ZipFile(fh)
            self._names = {n.lower(): n for n in self.archive.namelist()}
            root_rels = self._relationships("")
            workbook = next(
                (t for kind, t in root_rels.values() if kind.endswith("/officeDocument")),
                "xl/workbook.xml",
            )
            rels = self._relationships(workbook)
            self._strings_part = next(
                (t for kind, t in rels.values() if kind.endswith("/sharedStrings")), None
            )
            styles = next((t for kind, t in rels.values() if kind.endswith("/styles")), None)
            self._date_styles = self._read_styles(styles) if styles else {}
            self._parts: dict[str, str] = {}
            self.sheet_names = []
            self.visible = []
            root = self._xml(workbook)
            self._date1904 = False
            for element in root.iter():
                tag = _local(element.tag.rpartition("}")[2])
                if tag == "workbookPr":
                    self._date1904 = element.get("date1904", "").lower() in ("1", "true")
                elif tag == "sheet":
                    rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), "")
                    kind, target = rels.get(rid, ("", ""))
                    if not kind.endswith("/worksheet"):
                        continue  # a chart sheet or a dialog sheet holds no rows
                    title = element.get("name", "")
                    self._parts[title] = target
                    self.sheet_names.append(title)
                    if element.get("state", "visible") == "visible":
                        self.visible.append(title)
        except LedgerFileError:
            raise
        except Exception:  # a damaged or foreign file: zip, XML or structure errors
            raise _unreadable(name) from None
        if not self.sheet_names:
            self.archive.close()
            raise _unreadable(name)

    # -- parts

    def _member(self, part: str) -> str:
        member = self._names.get(part.lower().lstrip("/"))
        if member is None:
            raise KeyError(part)
        return member

    def _xml(self, part: str) -> Any:
        from xml.etree import ElementTree

        data = self.archive.read(self._member(part))
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise ValueError("a document type declaration")  # OOXML has none
        return ElementTree.fromstring(data)  # noqa: S314 - no DTD, so no entity to expand

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        folder, _sep, base = part.rpartition("/")
        rels_part = f"{folder}/_rels/{base}.rels" if part else "_rels/.rels"
        try:
            root = self._xml(rels_part)
        except KeyError:
            return {}
        result = {}
        for element in root.iter():
            if _local(element.tag.rpartition("}")[2]) != "Relationship":
                continue
            target = element.get("Target", "")
            if element.get("TargetMode") == "External":
                continue
            if target.startswith("/"):
                path = target.lstrip("/")
            else:
                path = posixpath.normpath(posixpath.join(folder, target)) if folder else target
            result[element.get("Id", "")] = (element.get("Type", ""), path)
        return result

    def _read_styles(self, part: str) -> dict[int, str]:
        """{cell style index: "date" or "time"} for the styles that show numbers as dates."""
        try:
            root = self._xml(part)
        except KeyError:
            return {}
        custom: dict[int, str] = {}
        kinds: dict[int, str] = {}
        for element in root.iter():
            if _local(element.tag.rpartition("}")[2]) == "numFmt":
                with contextlib.suppress(ValueError):
                    custom[int(element.get("numFmtId", ""))] = element.get("formatCode", "")
        for element in root.iter():
            if _local(element.tag.rpartition("}")[2]) != "cellXfs":
                continue
            xfs = [e for e in element if _local(e.tag.rpartition("}")[2]) == "xf"]
            for index, xf in enumerate(xfs):
                try:
                    fmt = int(xf.get("numFmtId", "0"))
                except ValueError:
                    continue
                if fmt in custom:
                    kind = _format_kind(custom[fmt])
                elif fmt in _DATE_FORMAT_IDS:
                    kind = "date"
                elif fmt in _TIME_FORMAT_IDS:
                    kind = "time"
                else:
                    kind = ""
                if kind:
                    kinds[index] = kind
            break
        return kinds

    def _shared_strings(self) -> _SharedStrings:
        if self._strings is not None:
            return self._strings
        self._strings = _SharedStrings()
        if not self._strings_part:
            return self._strings
        try:
            member = self._member(self._strings_part)
        except KeyError:
            return self._strings
        try:
            with self.archive.open(member) as stream:
                _plain_shared_strings(stream, self._strings)
        except _NotPlain:
            self._strings.close()
            self._strings = self._expat_shared_strings(member)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise _unreadable(self.name) from None
        self._strings.finish()
        return self._strings

    def _expat_shared_strings(self, member: str) -> _SharedStrings:
        strings = _SharedStrings()
        parts: list[str] = []
        depth = {"rPh": 0, "t": 0}

        def start(name: str, attrs: dict[str, str]) -> None:
            tag = _local(name)
            if tag == "si":
                parts.clear()
            elif tag in depth:
                depth[tag] += 1

        def end(name: str) -> None:
            tag = _local(name)
            if tag == "si":
                strings.append("".join(parts))
            elif tag in depth:
                depth[tag] -= 1

        def text(data: str) -> None:
            if depth["t"] and not depth["rPh"]:
                parts.append(data)

        for _chunk in _parse_member(self.archive, member, start, end, text, self.name):
            pass
        return strings

    # -- rows

    def iter_rows(self, sheet: str) -> Iterator[list[str]]:
        try:
            member = self._member(self._parts[sheet])
        except KeyError:
            raise _unreadable(self.name) from None
        context = _CellContext(
            self._shared_strings(),
            self._date_styles,
            date(1904, 1, 1) if self._date1904 else None,
        )
        given = [0]  # rows given so far
        try:
            with self.archive.open(member) as stream:
                yield from _plain_rows(stream, context, given)
            return
        except _NotPlain:
            pass  # read it again with expat, from where the plain path stopped
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise _unreadable(self.name) from None
        handler = _SheetHandler(context)
        for _chunk in _parse_member(
            self.archive, member, handler.start, handler.end, handler.text, self.name
        ):
            for number, row in handler.done:
                yield from _in_place(row, number, given)
            handler.done.clear()

    def close(self) -> None:
        if self._strings is not None:
            self._strings.close()
        self.archive.close()


class _SheetHandler:
    """expat callbacks collecting the rows of a worksheet as lists of cell text."""

    def __init__(self, context: _CellContext) -> None:
        self.context = context
        self.done: list[tuple[int, list[str]]] = []
        self.cells: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.row = 0
        self.col = -1
        self.type = "n"
        self.style = 0
        self.in_v = False
        self.in_t = 0
        self.in_rph = 0
        self.tags: dict[str, str] = {}

    def _tag(self, name: str) -> str:
        tag = self.tags[name] = _local(name)
        return tag

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = self.tags.get(name) or self._tag(name)
        if tag == "c":
            ref = attrs.get("r")
            self.col = _column_index(ref) if ref else self.col + 1
            self.type = attrs.get("t", "n")
            style = attrs.get("s")
            self.style = int(style) if style else 0
            self.parts.clear()
        elif tag == "v":
            self.in_v = True
        elif tag == "t":
            self.in_t += 1
        elif tag == "rPh":
            self.in_rph += 1
        elif tag == "row":
            r = attrs.get("r")
            self.row = int(r) if r else self.row + 1
            self.col = -1
            self.cells.clear()

    def end(self, name: str) -> None:
        tag = self.tags.get(name) or self._tag(name)
        if tag == "c":
            parts = self.parts
            raw = parts[0] if len(parts) == 1 else "".join(parts)
            value = _xlsx_cell(self.type, raw, self.style, self.context)
            if value and self.col >= 0:
                self.cells.append((self.col, value))
        elif tag == "v":
            self.in_v = False
        elif tag == "t":
            self.in_t -= 1
        elif tag == "rPh":
            self.in_rph -= 1
        elif tag == "row":
            width = max((c for c, _v in self.cells), default=-1) + 1
            row = [""] * width
            for c, value in self.cells:
                row[c] = value
            self.done.append((self.row, row))

    def text(self, data: str) -> None:
        if self.in_v or (self.in_t and not self.in_rph):
            self.parts.append(data)


def _no_doctype(*args: object) -> None:
    raise ValueError("a document type declaration")


def _parse_member(
    archive: zipfile.ZipFile,
    member: str,
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None],
    text: Callable[[str], None],
    name: str,
) -> Iterator[None]:
    """Feed a zip member to expat in 64 KiB pieces, yielding after each piece."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _no_doctype  # OOXML has none: no entity to expand
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(HEAD_BYTES):
                parser.Parse(chunk, False)
                yield None
            parser.Parse(b"", True)
            yield None
    except (expat.ExpatError, zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise _unreadable(name) from None


def _xlsx_cell(kind: str, raw: str, style: int, context: _CellContext) -> str:
    """The text of one cell from its type attribute, its raw text and its style."""
    if kind == "s":
        try:
            return clean_text(context.strings[int(raw)])
        except (ValueError, IndexError):
            return ""
    if kind in ("inlineStr", "str"):
        return clean_text(raw)
    if kind == "b":
        return "TRUE" if raw.strip() in ("1", "true") else "FALSE"
    if kind == "e":
        return raw.strip()
    if kind == "d":
        text = raw.strip()
        return text[:10] if text[10:].strip("T0:.Z") == "" else text.replace("T", " ")[:19]
    raw = raw.strip()
    if not raw:
        return ""
    try:
        number = float(raw)
    except ValueError:
        return clean_text(raw)
    style_kind = context.dates.get(style)
    if style_kind:
        return _serial_text(number, style_kind, context.epoch)
    if raw.lstrip("-").isdigit() and len(raw.lstrip("-")) <= 15:
        return str(int(raw))
    return number_text(number)


def _serial_text(serial: float, kind: str, epoch: date | None) -> str:
    """A date-formatted number as the date (and time) it shows."""
    whole = math.floor(serial)
    seconds = round((serial - whole) * 86400)
    if seconds >= 86400:
        whole, seconds = whole + 1, 0
    moment = time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    if whole == 0 and epoch is None:
        return moment.isoformat()  # a time of day (Excel's day 0 is no date)
    if whole < 0:
        return number_text(serial)
    try:
        if epoch is not None:
            day = epoch + timedelta(days=whole)
        elif whole < 60:
            day = date(1899, 12, 31) + timedelta(days=whole)
        else:
            day = date(1899, 12, 30) + timedelta(days=whole)
    except OverflowError:
        return number_text(serial)
    return cell_text(datetime.combine(day, moment))


def _encrypted_package(fh: IO[bytes]) -> bool:
    """An OLE2 file holding an encrypted Office document (how Excel saves a password)."""
    fh.seek(0)
    return "EncryptedPackage".encode("utf-16-le") in fh.read(64 * 2**20)


class _CalamineSource(_Source):
    kind = "xls"

    def __init__(self, fh: IO[bytes], name: str) -> None:
        from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

        self.name = name
        try:
            self.workbook = CalamineWorkbook.from_filelike(fh)
        except Exception:
            if _encrypted_package(fh):
                raise LedgerFileError(
                    _("%(name)s is encrypted; remove the password and upload it again.")
                    % {"name": name}
                ) from None
            raise _unreadable(name) from None
        sheets = [m for m in self.workbook.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        self.sheet_names = [m.name for m in sheets]
        self.visible = [m.name for m in sheets if m.visible == SheetVisibleEnum.Visible]

    def iter_rows(self, sheet: str) -> Iterator[list[str]]:
        try:
            data = self.workbook.get_sheet_by_name(sheet)
            start_row, start_col = data.start or (0, 0)
            for _i in range(start_row):
                yield []
            pad = [""] * start_col
            for row in data.iter_rows():
                yield pad + [cell_text(v) for v in row]
        except Exception:
            raise _unreadable(self.name) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.workbook.close()


class _CsvSource(_Source):
    kind = "csv"

    def __init__(self, fh: IO[bytes], name: str) -> None:
        self.fh = fh
        self.name = name
        self.encoding, sample = detect_encoding(fh, name)
        self.delimiter = sniff_delimiter(sample)
        # Lines ended by CR alone ("CSV (Macintosh)") need the text layer's universal newlines.
        self._cr_lines = "\r" in sample and "\n" not in sample
        self.sheet_names = [""]
        self.visible = [""]

    def iter_rows(self, sheet: str) -> Iterator[list[str]]:
        self.fh.seek(0)
        buffered = io.BufferedReader(_Borrowed(self.fh), buffer_size=256 * 1024)
        lines: Iterator[str]
        if self._cr_lines or self.encoding.startswith(("utf-16", "utf-32")):
            text = io.TextIOWrapper(buffered, encoding=self.encoding, errors="strict", newline="")
            lines = iter(text)
        else:
            # A byte 0x0A is a line feed in UTF-8 and GB18030 alike: decoding line by line
            # lets a decoding error name its row.
            text = None
            decode = codecs.getincrementaldecoder(self.encoding)("strict").decode
            lines = (decode(raw) for raw in buffered)
        number = 0
        try:
            for row in csv.reader(lines, delimiter=self.delimiter):
                number += 1
                yield [clean_text(c) for c in row]
        except UnicodeDecodeError:
            raise LedgerFileError(
                _(
                    "Row %(row)d of %(name)s is not %(encoding)s text like the rows before it. "
                    "Save the file again as CSV UTF-8."
                )
                % {"name": self.name, "encoding": self.encoding, "row": number + 1}
            ) from None
        except csv.Error as error:
            raise LedgerFileError(
                _("Row %(row)d of %(name)s cannot be read as CSV (%(error)s).")
                % {"name": self.name, "row": number + 1, "error": error}
            ) from None
        finally:
            (text or buffered).close()  # closes only the borrowed view of the file


def detect_encoding(fh: IO[bytes], name: str = "") -> tuple[str, str]:
    """(encoding, decoded sample of the start) of a text file, or ``LedgerFileError``."""
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", _decode_sample(head, "utf-8-sig", name)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32", _decode_sample(head, "utf-32", name)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", _decode_sample(head, "utf-16", name)
    window, scanned = head, len(head)
    while window.isascii() and scanned < ENCODING_SCAN_BYTES:
        window = fh.read(HEAD_BYTES)
        if not window:
            break
        scanned += len(window)
    fh.seek(0)
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(window, final=False)
        except UnicodeDecodeError:
            continue
        return encoding, _decode_sample(head, encoding, name)
    raise LedgerFileError(
        _(
            '%(name)s is neither UTF-8 nor GBK text. Save it from Excel as "CSV UTF-8" or as '
            "an Excel workbook (.xlsx)."
        )
        % {"name": name or _("The file")}
    )


def _decode_sample(head: bytes, encoding: str, name: str) -> str:
    try:
        sample = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError:
        sample = head.decode(encoding, errors="replace")
    controls = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\t\r\n")
    if sample and controls > len(sample) / 100:
        raise _not_spreadsheet(name or _("The file"), _("a binary file"))
    return sample


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | that splits the sample's lines most consistently."""
    complete = sample[: sample.rfind("\n") + 1] or sample
    best, best_score = ",", (False, 0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(complete, newline=""), delimiter=delimiter)][
                :50
            ]
        except csv.Error:
            continue
        counts = [len(r) for r in rows if any(c.strip() for c in r)]
        if not counts:
            continue
        mode = max(set(counts), key=lambda n: (counts.count(n), n))
        score = (mode > 1, counts.count(mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# --------------------------------------------------------------------------- header


def _nonempty(row: Sequence[str]) -> int:
    return sum(1 for c in row if c)


def _padded(row: Sequence[str], width: int) -> list[str]:
    return list(row[:width]) + [""] * (width - len(row))


def _last_filled(row: Sequence[str]) -> int:
    for i in range(len(row) - 1, -1, -1):
        if row[i]:
            return i + 1
    return 0


def find_header_row(sample: Sequence[Sequence[str]]) -> int | None:
    """The first row where most cells are non-empty text (0-based), or ``None``."""
    widest = max((_nonempty(r) for r in sample), default=0)
    for index, row in enumerate(sample):
        filled = [c for c in row if c]
        if len(filled) < 2 or len(filled) * 2 < widest:
            continue
        labels = sum(1 for c in filled if _label_like(c))
        if labels * 5 >= len(filled) * 4:
            return index
    return None


def _filled_forward(row: Sequence[str]) -> list[str]:
    """A merged group's title carried over the blank cells to its right."""
    out, current = [], ""
    for cell in row:
        current = cell or current
        out.append(current)
    return out


def _is_sub_header(header: list[str], below: list[str]) -> bool:
    """The row under a header with merged groups: it names the columns of each group."""
    first = next((i for i, c in enumerate(header) if c), 0)
    end = max(_last_filled(header), _last_filled(below))
    gaps = [i for i in range(first + 1, end) if not header[i]]
    filled = [c for c in below if c]
    return (
        bool(gaps)
        and bool(filled)
        and all(below[i] for i in gaps)
        and all(_label_like(c) for c in filled)
        and any(header[i] and not below[i] for i in range(len(header)))
    )


def _is_group_row(above: list[str], header: list[str]) -> bool:
    """The row over a header holding the titles of merged groups of columns."""
    filled = [c for c in above if c]
    return (
        len(filled) >= 2
        and len(filled) < _nonempty(header)
        and all(_label_like(c) and ":" not in c and "：" not in c for c in filled)
    )


def build_headers(
    sample: Sequence[Sequence[str]], header_row: int
) -> tuple[list[str], list[str], int]:
    """(headers, the header row's raw cells, index of the first row after the header)."""
    width = max((_last_filled(r) for r in sample[header_row:]), default=0)
    header = _padded(sample[header_row], width)
    names = list(header)
    after = header_row + 1
    below = _padded(sample[after], width) if after < len(sample) else []
    above = _padded(sample[header_row - 1], width) if header_row > 0 else []
    if below and _is_sub_header(header, below):
        groups = _filled_forward(header)
        names = [
            HEADER_JOINER.join(p for p in (groups[i] if below[i] else header[i], below[i]) if p)
            for i in range(width)
        ]
        after += 1
    elif above and _is_group_row(above, header):
        groups = _filled_forward(above)
        names = [HEADER_JOINER.join(p for p in (groups[i], header[i]) if p) for i in range(width)]
    headers: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = _header_text(raw) or f"列{i + 1}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        headers.append(name)
    return headers, header, after


# --------------------------------------------------------------------------- reader


class LedgerReader:
    """An opened ledger: its header and a stream of its rows (see the module docstring)."""

    def __init__(
        self,
        source: _Source,
        *,
        file_name: str,
        sheet: str | None,
        header_row: int | None,
        close: Callable[[], None],
    ) -> None:
        self._source = source
        self._close = close
        self.file_name = file_name
        self.kind = source.kind
        self.encoding = source.encoding
        self.sheet_names = list(source.sheet_names)
        candidates = [sheet] if sheet is not None else (source.visible or source.sheet_names)
        if sheet is not None and sheet not in source.sheet_names:
            raise LedgerFileError(
                _("%(name)s has no sheet called “%(sheet)s”.") % {"name": file_name, "sheet": sheet}
            )
        for name in candidates:
            sample = self._sample(name)
            index = header_row if header_row is not None else find_header_row(sample)
            if index is not None and index < len(sample) and _nonempty(sample[index]):
                self.sheet_name = name
                self.header_row = index
                self.headers, self._header_cells, data_index = build_headers(sample, index)
                self.first_data_row = data_index + 1
                return
        raise LedgerFileError(
            _(
                "No header row was found in %(name)s: a ledger needs a row of column titles "
                "(姓名, 身份证号 …) within its first %(rows)d rows."
            )
            % {"name": file_name, "rows": HEADER_SCAN_ROWS}
        )

    def _sample(self, sheet: str) -> list[list[str]]:
        sample: list[list[str]] = []
        rows = self._source.iter_rows(sheet)
        try:
            for row in rows:
                sample.append(row)
                if len(sample) >= HEADER_SCAN_ROWS:
                    break
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        return sample

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number as Excel shows it, one text per header) for each non-blank data row."""
        width = len(self.headers)
        rows = self._source.iter_rows(self.sheet_name)
        try:
            for number, row in enumerate(rows, 1):
                if number < self.first_data_row:
                    continue
                # Each source gives a new list per row: it is padded or cut in place. (Cells
                # right of the last header column were blank in the rows the width came from.)
                if len(row) < width:
                    row.extend([""] * (width - len(row)))
                elif len(row) > width:
                    del row[width:]
                if not any(row) or row == self._header_cells:  # blank, or the header repeated
                    continue
                yield number, row
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        self._source.close()
        self._close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ledger(
    path_or_file: Source,
    *,
    file_name: str | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
) -> LedgerReader:
    """Open a ledger for reading; ``LedgerFileError`` when it is not one.

    ``file_name`` is the name the user gave the file (for messages; defaults to the path's
    name). ``sheet`` picks a sheet (default: the first visible sheet with a header row);
    ``header_row`` forces the 0-based header row (a template remembers it).
    A file object must be seekable; a non-seekable one is copied to a temporary file first.
    The reader keeps the file open until ``close()`` (it is a context manager).
    """
    owned: IO[bytes] | None = None
    if isinstance(path_or_file, str | os.PathLike):
        fh: IO[bytes] = open(path_or_file, "rb")  # noqa: SIM115 - closed by the reader
        owned = fh
        name = file_name or os.path.basename(os.fspath(path_or_file))
    else:
        fh = path_or_file
        name = file_name or os.path.basename(str(getattr(fh, "name", ""))) or ""
        if not fh.seekable():
            spool = tempfile.SpooledTemporaryFile(max_size=16 * 2**20)  # noqa: SIM115
            while chunk := fh.read(1 << 20):
                spool.write(chunk)
            fh = owned = spool
        fh.seek(0)
    name = name or _("The file")

    def close() -> None:
        if owned is not None:
            owned.close()

    try:
        head = fh.read(HEAD_BYTES)
        fh.seek(0)
        kind = sniff_kind(head, name)
        source: _Source
        if kind == "xlsx":
            check_workbook_zip(fh, name)
            fh.seek(0)
            source = _XlsxSource(fh, name)
        elif kind == "xls":
            source = _CalamineSource(fh, name)
        else:
            source = _CsvSource(fh, name)
        try:
            return LedgerReader(
                source, file_name=name, sheet=sheet, header_row=header_row, close=close
            )
        except BaseException:
            source.close()
            raise
    except BaseException:
        close()
        raise
