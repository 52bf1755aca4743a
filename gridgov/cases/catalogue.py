"""The category catalogue: validation, import and export as JSON and xlsx, the standard seed.

A catalogue file is a list of rows, one per category (majors and minors alike)::

    {"scheme": "legacy", "code": "0102", "parent": "01", "class": "component",
     "name_zh": "污水井盖", "name_en": "Sewage manhole cover", "default_unit_kind": "utility",
     "register_limit": "", "urgent_register_limit": "", "sign_limit": "30m",
     "handle_limit": "2h", "check_limit": "", "urgency_levels": ["normal", "urgent"],
     "closing_criteria": "井盖已补齐…", "duplicate_radius_m": 50,
     "duplicate_window_hours": 72, "is_active": true, "order": 2,
     "attributes": [{"code": "damage", "datatype": "singlevaluelist", "required": true,
                     "variable": true, "description": "…", "datatype_description": "",
                     "order": 1, "values": [{"key": "missing", "name": "缺失"}]}]}

Codes. Both standard schemes number components and events (matters) independently, so the
same digits name a component and an event (0102 sewage manhole cover, event 0102 exposed
garbage). ``(scheme, code)`` stays unique by storing event codes with the prefix ``E``
(``E0102``, major ``E01``); ``display_code`` gives the real code back for people. An import
accepts an event's code with or without the prefix when its class says ``event``.

Import is all-or-nothing (any problem writes nothing and the report names the row and the
field of each), idempotent (an upsert on ``(scheme, code)``: importing the same file twice
changes nothing the second time) and never deletes a category (set ``is_active`` false). A key
missing from a row keeps the stored value (or the model's default for a new category); a row
with ``attributes`` replaces that category's attribute set.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from gridgov.accounts.models import UnitKind
from gridgov.core.errors import Conflict, DomainError
from gridgov.formats.cells import needs_quote

from .deadlines import parse_limit
from .models import (
    Category,
    CategoryAttribute,
    CategoryClass,
    Datatype,
    Scheme,
    Urgency,
    default_urgency_levels,
)

#: The standard catalogue shipped with gridgov.
STANDARD_FILE = Path(__file__).resolve().parent / "data" / "categories.json"
FILE_FORMAT = "gridgov-categories"
FILE_VERSION = 1

#: Limits on what one import may hold.
MAX_ROWS = 5000
MAX_ATTRIBUTES = 50
MAX_VALUES = 200
MAX_CRITERIA = 2000
#: {"categories": [row {"attributes": [{"values": [{…}]}]}]} nests 6 deep.
MAX_JSON_DEPTH = 8
#: xlsx: an uncompressed workbook larger than this, or with more parts, is refused.
MAX_XLSX_UNPACKED = 64 * 1024 * 1024
MAX_XLSX_PARTS = 500
MAX_XLSX_RATIO = 200

EVENT_PREFIX = "E"
LIMIT_FIELDS = (
    "register_limit",
    "urgent_register_limit",
    "sign_limit",
    "handle_limit",
    "check_limit",
)
#: The keys of a row, in file order ("class" is the model's ``klass``).
ROW_KEYS = (
    "scheme",
    "code",
    "parent",
    "class",
    "name_zh",
    "name_en",
    "default_unit_kind",
    *LIMIT_FIELDS,
    "urgency_levels",
    "closing_criteria",
    "duplicate_radius_m",
    "duplicate_window_hours",
    "is_active",
    "order",
    "attributes",
)
ATTRIBUTE_KEYS = (
    "code",
    "datatype",
    "required",
    "variable",
    "description",
    "datatype_description",
    "order",
    "values",
)
LIST_DATATYPES = frozenset({Datatype.SINGLEVALUELIST.value, Datatype.MULTIVALUELIST.value})
#: Digits of a major's and a minor's code per coded scheme.
CODE_DIGITS = {Scheme.LEGACY.value: (2, 4), Scheme.GBT47678.value: (2, 5)}

_SOCIAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$")
_ATTRIBUTE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_VALUE_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
_VALUE_SEPARATORS = re.compile(r"[\n;；]")
_URGENCY_SEPARATORS = re.compile(r"[\s,，、;；]+")
_TRUE = {"true", "yes", "y", "1", "是", "t", "x", "✓"}
_FALSE = {"false", "no", "n", "0", "否", "f", ""}


# --- codes -------------------------------------------------------------------------------------


def is_coded(scheme: str) -> bool:
    return scheme in CODE_DIGITS


def display_code(category: Category) -> str:
    """The code people read: ``0102`` for the legacy event stored as ``E0102``."""
    return strip_event_prefix(category.scheme, category.code)


def strip_event_prefix(scheme: str, code: str) -> str:
    if is_coded(scheme) and code.startswith(EVENT_PREFIX):
        return code[len(EVENT_PREFIX) :]
    return code


def service_code(category: Category) -> str:
    """The Open311 ``service_code``: ``legacy:0102``, ``legacy:E0102``, ``social:S0101``."""
    return f"{category.scheme}:{category.code}"


def major_code(scheme: str, code: str) -> str | None:
    """The major a coded minor belongs to (``E0102`` → ``E01``); None for a major or social."""
    if not is_coded(scheme):
        return None
    prefix = EVENT_PREFIX if code.startswith(EVENT_PREFIX) else ""
    digits = code[len(prefix) :]
    return prefix + digits[:2] if len(digits) > 2 else None


# --- the report --------------------------------------------------------------------------------


@dataclass
class Problem:
    """One thing wrong with one row (and field) of the file."""

    row: int
    field: str
    message: str
    code: str = ""
    sheet: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "sheet": self.sheet,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }

    def __str__(self) -> str:
        if self.sheet:
            where = _("row %(row)s of sheet %(sheet)s") % {"row": self.row, "sheet": self.sheet}
        else:
            where = _("row %(row)s") % {"row": self.row}
        code = f" ({self.code})" if self.code else ""
        what = f" {self.field}" if self.field else ""
        return f"{where}{code}{what}: {self.message}"


@dataclass
class Change:
    """What the import does (or would do) to one category."""

    row: int
    scheme: str
    code: str
    name: str
    status: str  # created | changed | unchanged | kept
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "scheme": self.scheme,
            "code": self.code,
            "name": self.name,
            "status": self.status,
            "fields": self.fields,
        }


@dataclass
class ImportReport:
    """What an import did, or would do (``dry_run``), or why it did nothing (``problems``)."""

    rows: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "written": self.written,
            "rows": self.rows,
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "errors": [p.as_dict() for p in self.problems],
            "changes": [c.as_dict() for c in self.changes if c.status != "unchanged"],
        }

    def summary(self) -> str:
        text = _(
            "%(created)s created, %(changed)s changed, %(unchanged)s unchanged (%(rows)s rows read)"
        ) % {
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "rows": self.rows,
        }
        if self.kept:
            text += "; " + ngettext(
                "%(count)s existing category differs from the file and was kept",
                "%(count)s existing categories differ from the file and were kept",
                self.kept,
            ) % {"count": self.kept}
        return text

    def text(self, *, limit: int = 50) -> str:
        if self.problems:
            lines = [
                ngettext(
                    "%(count)s error; nothing was written:",
                    "%(count)s errors; nothing was written:",
                    len(self.problems),
                )
                % {"count": len(self.problems)}
            ]
            lines.extend(f"  {p}" for p in self.problems[:limit])
            if len(self.problems) > limit:
                lines.append(
                    "  " + _("… and %(count)s more") % {"count": len(self.problems) - limit}
                )
            return "\n".join(lines)
        lines = [self.summary()]
        if self.dry_run:
            lines.append(_("dry run: nothing was written"))
        shown = [c for c in self.changes if c.status in ("created", "changed", "kept")]
        for c in shown[:limit]:
            label = {
                "created": _("created"),
                "changed": _("changed"),
                "kept": _("kept"),
            }[c.status]
            fields = f" ({', '.join(c.fields)})" if c.fields and c.status != "created" else ""
            lines.append(f"  {label} {c.scheme}:{c.code} {c.name}{fields}")
        if len(shown) > limit:
            lines.append("  " + _("… and %(count)s more") % {"count": len(shown) - limit})
        return "\n".join(lines)


# --- validating one row ------------------------------------------------------------------------


class _RowProblems:
    """Collects the problems of one row."""

    def __init__(self, row: int, sheet: str) -> None:
        self.row = row
        self.sheet = sheet
        self.code = ""
        self.items: list[Problem] = []

    def add(
        self, field_name: str, message: str, *, row: int | None = None, sheet: str = ""
    ) -> None:
        self.items.append(
            Problem(
                row=row if row is not None else self.row,
                field=field_name,
                message=message,
                code=self.code,
                sheet=sheet or self.sheet,
            )
        )


@dataclass
class _Row:
    """A row after validation: model field values for the keys the row gives."""

    row: int
    sheet: str
    scheme: str
    code: str
    klass: str | None
    parent: str | None  # the major's code; "" for a major; None: not given (keep)
    values: dict[str, Any]
    attributes: list[dict[str, Any]] | None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _has_control(value: Any) -> bool:
    """True when a text in ``value`` (nested lists and objects included) holds a control
    character other than tab and line breaks."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _CONTROL.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(_("write true or false"))


def _int(value: Any, *, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError(_("write a whole number"))
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(_("write a whole number")) from None
    if not number.is_integer():
        raise ValueError(_("write a whole number"))
    if not low <= number <= high:
        raise ValueError(_("must lie between %(low)s and %(high)s") % {"low": low, "high": high})
    return int(number)


def _limit(value: Any) -> str:
    text = re.sub(r"\s+", "", _text(value)).lower()
    if len(text) > 12:  # the field's length; also spares parse_limit absurd numbers
        raise ValueError(
            _("%(value)r is not a time limit: write a number and m, h or d, e.g. 30m, 4h, 1d")
            % {"value": _text(value)[:20]}
        )
    if text:
        try:
            parse_limit(text)
        except OverflowError:
            raise ValueError(
                _("%(value)r is out of range: a limit lies between 1 minute and 365 days")
                % {"value": text}
            ) from None
        except ValidationError:
            try:  # the message quotes the value as it was written
                parse_limit(_text(value))
            except ValidationError as exc:
                raise ValueError(" ".join(exc.messages)) from None
            raise
    return text


def _urgencies(value: Any) -> list[str]:
    if isinstance(value, str):
        items = [v for v in _URGENCY_SEPARATORS.split(value.strip()) if v]
    elif isinstance(value, list | tuple):
        items = [_text(v) for v in value]
    else:
        raise ValueError(_("write a list of urgency levels"))
    known = set(Urgency.values)
    wrong = [v for v in items if v not in known]
    if wrong:
        raise ValueError(
            _("unknown urgency level %(value)s; the levels are %(known)s")
            % {"value": ", ".join(wrong[:3]), "known": ", ".join(Urgency.values)}
        )
    levels = list(dict.fromkeys(items))
    if not levels:
        raise ValueError(_("give at least one urgency level"))
    return levels


def normalise_code(scheme: str, code: str, klass: str | None) -> str:
    """The stored form of a code: ``0102`` of an event becomes ``E0102``; ``e01`` → ``E01``."""
    code = code.strip()
    if not is_coded(scheme):
        return code
    if code[:1] in ("e", "E"):
        return EVENT_PREFIX + code[1:]
    if klass == CategoryClass.EVENT:
        return EVENT_PREFIX + code
    return code


def code_problem(scheme: str, code: str, klass: str | None) -> str | None:
    """Why ``code`` is not a valid stored code of ``scheme`` and ``klass``; None when it is."""
    if not code:
        return _("the code is required")
    if not is_coded(scheme):
        if not _SOCIAL_CODE.match(code):
            return _(
                "a code has 1 to 12 letters, digits, '-' or '_' and starts with a letter or digit"
            )
        return None
    major_digits, minor_digits = CODE_DIGITS[scheme]
    event = code.startswith(EVENT_PREFIX)
    digits = code[1:] if event else code
    if not (digits.isascii() and digits.isdigit() and len(digits) in (major_digits, minor_digits)):
        return _(
            "a %(scheme)s code has %(major)s digits (a major) or %(minor)s digits (a minor); "
            "event codes may carry the prefix E"
        ) % {"scheme": scheme, "major": major_digits, "minor": minor_digits}
    if klass == CategoryClass.COMPONENT and event:
        return _("a code with the prefix E is an event's; this row's class is component")
    return None


def _clean_row(
    raw: Any, index: int, problems: list[Problem], broken: set[tuple[str, str]]
) -> _Row | None:
    """The row checked and normalised, or None (its problems added to ``problems``; its key
    to ``broken`` when the code could be read, so other rows do not also miss it)."""
    row_no = index + 1
    sheet = ""
    if isinstance(raw, dict):
        row_no = raw.get("_row", row_no) if isinstance(raw.get("_row"), int) else row_no
        sheet = str(raw.get("_sheet", "") or "")
    p = _RowProblems(row_no, sheet)
    if not isinstance(raw, dict):
        p.add("", _("a row must be an object of keys and values"))
        problems.extend(p.items)
        return None
    data = {k: v for k, v in raw.items() if not str(k).startswith("_")}
    for key in [k for k, v in data.items() if _has_control(k) or _has_control(v)]:
        # PostgreSQL cannot store a NUL; no name, code or criterion holds a control character
        p.add(str(key)[:40].replace("\x00", ""), _("contains control characters (such as NUL)"))
        del data[key]
    if "klass" in data and "class" not in data:
        data["class"] = data.pop("klass")
    for key in sorted(set(data) - set(ROW_KEYS), key=str):
        p.add(
            str(key)[:40], _("unknown key; the keys are %(keys)s") % {"keys": ", ".join(ROW_KEYS)}
        )

    scheme = _text(data.get("scheme")).lower()
    if scheme not in Scheme.values:
        p.add(
            "scheme",
            _("unknown scheme %(value)r; the schemes are %(known)s")
            % {"value": scheme, "known": ", ".join(Scheme.values)},
        )
        problems.extend(p.items)
        return None

    klass: str | None = None
    if "class" in data:
        klass = _text(data["class"]).lower()
        if klass not in CategoryClass.values:
            p.add(
                "class",
                _("unknown class %(value)r; write component or event") % {"value": klass},
            )
            klass = None
    raw_code = _text(data.get("code"))
    code = normalise_code(scheme, raw_code, klass)
    p.code = f"{scheme}:{code}" if code else ""
    problem = code_problem(scheme, code, klass)
    if problem:
        p.add("code", problem)
        problems.extend(p.items)
        return None
    if is_coded(scheme):
        derived = CategoryClass.EVENT if code.startswith(EVENT_PREFIX) else CategoryClass.COMPONENT
        klass = klass or derived

    parent: str | None = None
    if is_coded(scheme):
        expected = major_code(scheme, code) or ""
        if "parent" in data and data["parent"] not in (None, ""):
            given = normalise_code(scheme, _text(data["parent"]), klass)
            if not expected:
                p.add("parent", _("%(code)s is a major and has no parent") % {"code": code})
            elif given != expected:
                p.add(
                    "parent",
                    _("the major of %(code)s is %(expected)s, not %(given)s")
                    % {"code": code, "expected": expected, "given": given},
                )
        parent = expected
    elif "parent" in data:
        parent = _text(data["parent"])
        if parent and parent == code:
            p.add("parent", _("a category cannot be its own major"))

    values: dict[str, Any] = {}
    if klass is not None and ("class" in data or is_coded(scheme)):
        values["klass"] = klass
    for key, limit in (("name_zh", 100), ("name_en", 120)):
        if key in data:
            text = _text(data[key])
            if key == "name_zh" and not text:
                p.add(key, _("the Chinese name is required"))
            elif len(text) > limit:
                p.add(key, _("longer than %(limit)s characters") % {"limit": limit})
            values[key] = text
    if "default_unit_kind" in data:
        kind = _text(data["default_unit_kind"])
        if kind and kind not in UnitKind.values:
            p.add(
                "default_unit_kind",
                _("unknown unit type %(value)r; the types are %(known)s")
                % {"value": kind, "known": ", ".join(UnitKind.values)},
            )
        values["default_unit_kind"] = kind
    for key in LIMIT_FIELDS:
        if key in data:
            try:
                values[key] = _limit(data[key])
            except ValueError as exc:
                p.add(key, str(exc))
    if "urgency_levels" in data:
        try:
            values["urgency_levels"] = _urgencies(data["urgency_levels"])
        except ValueError as exc:
            p.add("urgency_levels", str(exc))
    if "closing_criteria" in data:
        text = _text(data["closing_criteria"])
        if len(text) > MAX_CRITERIA:
            p.add(
                "closing_criteria", _("longer than %(limit)s characters") % {"limit": MAX_CRITERIA}
            )
        values["closing_criteria"] = text
    for key, high in (
        ("duplicate_radius_m", 100_000),
        ("duplicate_window_hours", 24 * 366),
        ("order", 1_000_000),
    ):
        if key in data:
            try:
                values[key] = _int(data[key], low=0, high=high)
            except ValueError as exc:
                p.add(key, str(exc))
    if "is_active" in data:
        try:
            values["is_active"] = _bool(data["is_active"])
        except ValueError as exc:
            p.add("is_active", str(exc))

    attributes: list[dict[str, Any]] | None = None
    if "attributes" in data:
        attributes = _clean_attributes(data["attributes"], p)

    problems.extend(p.items)
    if p.items:
        broken.add((scheme, code))
        return None
    return _Row(
        row=row_no,
        sheet=sheet,
        scheme=scheme,
        code=code,
        klass=klass,
        parent=parent,
        values=values,
        attributes=attributes,
    )


class _AttributeProblems:
    """Adds problems of one attribute: field ``attributes[code].key``, at the attribute's own
    sheet row when it came from the xlsx attributes sheet."""

    def __init__(self, p: _RowProblems, where: str, row: int | None) -> None:
        self.p = p
        self.where = where
        self.row = row

    def __call__(self, key: str, message: str) -> None:
        self.p.add(
            f"{self.where}.{key}" if key else self.where,
            message,
            row=self.row,
            sheet="attributes" if self.row is not None else "",
        )


def _clean_attributes(raw: Any, p: _RowProblems) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        p.add("attributes", _("write a list of attributes"))
        return []
    if len(raw) > MAX_ATTRIBUTES:
        p.add("attributes", _("at most %(limit)s attributes") % {"limit": MAX_ATTRIBUTES})
        return []
    cleaned: list[dict[str, Any]] = []
    seen_codes: set[str] = set()
    seen_orders: set[int] = set()
    for position, item in enumerate(raw, start=1):
        row = item.get("_row") if isinstance(item, dict) else None
        add = _AttributeProblems(
            p, f"attributes[{position}]", row if isinstance(row, int) else None
        )
        if not isinstance(item, dict):
            add("", _("an attribute must be an object of keys and values"))
            continue
        data = {k: v for k, v in item.items() if not str(k).startswith("_")}
        code = _text(data.get("code"))
        if _ATTRIBUTE_CODE.match(code):
            add.where = f"attributes[{code}]"
        for key in sorted(set(data) - set(ATTRIBUTE_KEYS), key=str):
            add(
                str(key)[:40],
                _("unknown key; the keys are %(keys)s") % {"keys": ", ".join(ATTRIBUTE_KEYS)},
            )
        if not _ATTRIBUTE_CODE.match(code):
            add("code", _("an attribute code has 1 to 40 letters, digits, '-' or '_'"))
        elif code in seen_codes:
            add("code", _("the attribute code %(code)s appears twice") % {"code": code})
        seen_codes.add(code)
        datatype = _text(data.get("datatype")).lower()
        if datatype not in Datatype.values:
            add(
                "datatype",
                _("unknown datatype %(value)r; the datatypes are %(known)s")
                % {"value": datatype, "known": ", ".join(Datatype.values)},
            )
        flags: dict[str, bool] = {}
        for key, default in (("required", False), ("variable", True)):
            try:
                flags[key] = _bool(data[key]) if key in data else default
            except ValueError as exc:
                add(key, str(exc))
                flags[key] = default
        description = _text(data.get("description"))
        if not description:
            add("description", _("the question shown to the reporter is required"))
        elif len(description) > 200:
            add("description", _("longer than %(limit)s characters") % {"limit": 200})
        hint = _text(data.get("datatype_description"))
        if len(hint) > 200:
            add("datatype_description", _("longer than %(limit)s characters") % {"limit": 200})
        order = position
        if data.get("order") not in (None, ""):
            try:
                order = _int(data["order"], low=1, high=10_000)
            except ValueError as exc:
                add("order", str(exc))
        if order in seen_orders:
            add("order", _("the order %(order)s is used by another attribute") % {"order": order})
        seen_orders.add(order)
        values = (
            _attribute_values(data.get("values"), datatype, add)
            if datatype in Datatype.values
            else []
        )
        cleaned.append(
            {
                "code": code,
                "datatype": datatype,
                "required": flags["required"],
                "variable": flags["variable"],
                "description": description,
                "datatype_description": hint,
                "order": order,
                "values": values,
            }
        )
    return cleaned


def _attribute_values(raw: Any, datatype: str, add: _AttributeProblems) -> list[dict[str, str]]:
    if raw in (None, "", []):
        items: list[Any] = []
    elif isinstance(raw, str):
        items = [v.strip() for v in _VALUE_SEPARATORS.split(raw) if v.strip()]
    elif isinstance(raw, list):
        items = raw
    else:
        add("values", _("write a list of values"))
        return []
    if datatype not in LIST_DATATYPES:
        if items:
            add("values", _("only the list datatypes take values"))
        return []
    if not items:
        add("values", _("a list datatype needs at least one value"))
        return []
    if len(items) > MAX_VALUES:
        add("values", _("at most %(limit)s values") % {"limit": MAX_VALUES})
        return []
    values: list[dict[str, str]] = []
    keys: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            key, name = _text(item.get("key")), _text(item.get("name"))
            extra = set(item) - {"key", "name"}
            if extra:
                add("values", _("a value has only key and name"))
        elif isinstance(item, str):
            key, _sep, name = item.partition("=")
            key, name = key.strip(), name.strip()
        else:
            add("values", _('write each value as key=name or {"key": …, "name": …}'))
            continue
        if not _VALUE_KEY.match(key):
            add(
                "values",
                _("the value key %(key)r is not valid: 1 to 40 letters, digits or . : _ -")
                % {"key": key},
            )
            continue
        if key in keys:
            add("values", _("the value key %(key)s appears twice") % {"key": key})
            continue
        name = name or key
        if len(name) > 100 or _VALUE_SEPARATORS.search(name):
            add(
                "values",
                _("the name of %(key)s is longer than 100 characters or holds ; or a line break")
                % {"key": key},
            )
            continue
        keys.add(key)
        values.append({"key": key, "name": name})
    return values


def clean_attribute(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One attribute checked as an import checks it: (cleaned values, problems by key)."""
    p = _RowProblems(0, "")
    cleaned = _clean_attributes([data], p)
    problems: dict[str, str] = {}
    for item in p.items:
        key = item.field.rsplit(".", 1)[-1] if "." in item.field else ""
        problems.setdefault(key, item.message)
    return (cleaned[0] if cleaned else {}), problems


def normalise_limit(value: Any) -> str:
    """``" 4 H"`` → ``"4h"``; ValueError naming the problem for what is not a limit."""
    return _limit(value)


# --- importing ---------------------------------------------------------------------------------


_MODEL_DEFAULTS: dict[str, Any] = {
    "name_en": "",
    "default_unit_kind": "",
    **dict.fromkeys(LIMIT_FIELDS, ""),
    "closing_criteria": "",
    "duplicate_radius_m": 50,
    "duplicate_window_hours": 72,
    "is_active": True,
    "order": 0,
}


def _attribute_dict(a: CategoryAttribute) -> dict[str, Any]:
    return {
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "variable": a.variable,
        "description": a.description,
        "datatype_description": a.datatype_description,
        "order": a.order,
        "values": list(a.values or []),
    }


def _existing(rows: list[_Row]) -> dict[tuple[str, str], Category]:
    keys = {(r.scheme, r.code) for r in rows} | {(r.scheme, r.parent) for r in rows if r.parent}
    found: dict[tuple[str, str], Category] = {}
    by_scheme: dict[str, set[str]] = {}
    for scheme, code in keys:
        by_scheme.setdefault(scheme, set()).add(code)
    for scheme, codes in by_scheme.items():
        wanted = sorted(codes)
        for start in range(0, len(wanted), 500):
            query = (
                Category.objects.filter(scheme=scheme, code__in=wanted[start : start + 500])
                .select_related("parent")
                .prefetch_related("attributes", "children")
            )
            found.update({(c.scheme, c.code): c for c in query})
    return found


def _check_structure(
    rows: list[_Row],
    existing: dict[tuple[str, str], Category],
    problems: list[Problem],
    broken: set[tuple[str, str]],
) -> None:
    """Duplicates, parents that exist and are majors of the same class, majors that stay majors."""
    first: dict[tuple[str, str], _Row] = {}
    for r in rows:
        key = (r.scheme, r.code)
        if key in first:
            problems.append(
                Problem(
                    r.row,
                    "code",
                    _("%(code)s appears twice in the file (first in row %(first)s)")
                    % {"code": r.code, "first": first[key].row},
                    code=f"{r.scheme}:{r.code}",
                    sheet=r.sheet,
                )
            )
        else:
            first[key] = r

    def final_parent(key: tuple[str, str]) -> str | None:
        if key in first and first[key].parent is not None:
            return first[key].parent or None
        found = existing.get(key)
        return found.parent.code if found is not None and found.parent is not None else None

    def final_class(key: tuple[str, str]) -> str | None:
        if key in first and first[key].klass:
            return first[key].klass
        found = existing.get(key)
        return found.klass if found is not None else None

    for r in rows:
        key = (r.scheme, r.code)
        where = {"code": f"{r.scheme}:{r.code}", "sheet": r.sheet}
        found = existing.get(key)
        if found is None:
            if "name_zh" not in r.values:
                problems.append(
                    Problem(r.row, "name_zh", _("a new category needs its Chinese name"), **where)
                )
            if not r.klass:
                problems.append(
                    Problem(r.row, "class", _("a new category needs its class"), **where)
                )
        parent = final_parent(key)
        if parent:
            pkey = (r.scheme, parent)
            if pkey in broken:
                pass  # the major's own row has problems, reported there
            elif pkey not in first and pkey not in existing:
                problems.append(
                    Problem(
                        r.row,
                        "parent",
                        _("the major %(parent)s is neither in the file nor in the catalogue")
                        % {"parent": parent},
                        **where,
                    )
                )
            elif final_parent(pkey):
                problems.append(
                    Problem(
                        r.row,
                        "parent",
                        _("%(parent)s is itself a minor; a minor's parent must be a major")
                        % {"parent": parent},
                        **where,
                    )
                )
            elif final_class(pkey) and final_class(key) and final_class(pkey) != final_class(key):
                problems.append(
                    Problem(
                        r.row,
                        "class",
                        _("the class differs from the class of its major %(parent)s")
                        % {"parent": parent},
                        **where,
                    )
                )
            if found is not None:
                staying = [
                    c.code
                    for c in found.children.all()
                    if (r.scheme, c.code) not in first
                    or first[(r.scheme, c.code)].parent in (None, r.code)
                ]
                if staying:
                    problems.append(
                        Problem(
                            r.row,
                            "parent",
                            _("%(code)s has minors (%(minors)s) and cannot become a minor itself")
                            % {"code": r.code, "minors": ", ".join(staying[:5])},
                            **where,
                        )
                    )
        elif found is not None and r.klass and r.klass != found.klass:
            odd = [
                c.code
                for c in found.children.all()
                if (r.scheme, c.code) not in first and c.klass != r.klass
            ]
            if odd:
                problems.append(
                    Problem(
                        r.row,
                        "class",
                        _("its minors %(minors)s keep the class %(klass)s; change them too")
                        % {"minors": ", ".join(odd[:5]), "klass": found.klass},
                        **where,
                    )
                )


@dataclass
class _Plan:
    row: _Row
    existing: Category | None
    status: str
    fields: list[str]
    values: dict[str, Any]
    parent: str | None
    attributes: list[dict[str, Any]] | None


def _plan(row: _Row, existing: Category | None, *, create_only: bool) -> _Plan:
    if existing is None:
        values = {**_MODEL_DEFAULTS, "urgency_levels": default_urgency_levels(), **row.values}
        values["urgency_levels"] = [str(v) for v in values["urgency_levels"]]
        return _Plan(row, None, "created", [], values, row.parent or None, row.attributes)
    changed = [k for k, v in row.values.items() if getattr(existing, k) != v]
    current_parent = existing.parent.code if existing.parent is not None else ""
    if row.parent is not None and row.parent != current_parent:
        changed.append("parent")
    if row.attributes is not None:
        current = sorted(
            (_attribute_dict(a) for a in existing.attributes.all()), key=lambda a: a["code"]
        )
        if current != sorted(row.attributes, key=lambda a: a["code"]):
            changed.append("attributes")
    fields = ["class" if f == "klass" else f for f in changed]
    if not changed:
        status = "unchanged"
    elif create_only:
        status = "kept"
    else:
        status = "changed"
    return _Plan(
        row,
        existing,
        status,
        fields,
        {k: v for k, v in row.values.items() if k in changed},
        row.parent if "parent" in changed else None,
        row.attributes if "attributes" in changed else None,
    )


def catalogue_import(
    rows: list[dict[str, Any]], *, dry_run: bool = False, create_only: bool = False
) -> ImportReport:
    """Validate every row, then upsert the categories by ``(scheme, code)`` in one transaction.

    Any problem writes nothing; the report names the row, the field and what is wrong.
    ``dry_run`` reports what would change and writes nothing. ``create_only`` adds missing
    categories and leaves existing ones as they are (counted as ``kept`` when they differ).
    """
    report = ImportReport(dry_run=dry_run)
    if not isinstance(rows, list):
        report.problems.append(Problem(0, "", _("the file must hold a list of categories")))
        return report
    report.rows = len(rows)
    if len(rows) > MAX_ROWS:
        report.problems.append(
            Problem(0, "", _("at most %(limit)s categories per file") % {"limit": MAX_ROWS})
        )
        return report
    cleaned: list[_Row] = []
    broken: set[tuple[str, str]] = set()
    for index, raw in enumerate(rows):
        row = _clean_row(raw, index, report.problems, broken)
        if row is not None:
            cleaned.append(row)
    existing = _existing(cleaned)
    _check_structure(cleaned, existing, report.problems, broken)
    if report.problems:
        report.problems.sort(key=lambda p: (p.sheet == "attributes", p.row))
        return report

    plans = [_plan(r, existing.get((r.scheme, r.code)), create_only=create_only) for r in cleaned]
    for plan in plans:
        name = plan.values.get("name_zh") or (plan.existing.name_zh if plan.existing else "")
        report.changes.append(
            Change(
                plan.row.row, plan.row.scheme, plan.row.code, str(name), plan.status, plan.fields
            )
        )
    report.created = sum(p.status == "created" for p in plans)
    report.changed = sum(p.status == "changed" for p in plans)
    report.unchanged = sum(p.status == "unchanged" for p in plans)
    report.kept = sum(p.status == "kept" for p in plans)
    if dry_run or not (report.created or report.changed):
        return report
    try:
        _apply([p for p in plans if p.status in ("created", "changed")], existing)
    except IntegrityError as exc:
        raise Conflict(
            _("the catalogue changed while importing; nothing was written, run the import again")
        ) from exc
    report.written = True
    return report


@transaction.atomic
def _apply(plans: list[_Plan], existing: dict[tuple[str, str], Category]) -> None:
    known: dict[tuple[str, str], Category] = dict(existing)
    # majors first, so a new minor finds its new major
    for plan in sorted(
        plans, key=lambda p: bool(p.parent or (p.existing and p.existing.parent_id))
    ):
        key = (plan.row.scheme, plan.row.code)
        parent = known[(plan.row.scheme, plan.parent)] if plan.parent else None
        if plan.existing is None:
            category = Category(
                scheme=plan.row.scheme, code=plan.row.code, parent=parent, **plan.values
            )
            category.save()
        else:
            category = plan.existing
            updated = list(plan.values)
            for name, value in plan.values.items():
                setattr(category, name, value)
            if "parent" in plan.fields:
                category.parent = parent
                updated.append("parent")
            category.save(update_fields=[*updated, "updated_at"])
        known[key] = category
        if plan.attributes is not None:
            _replace_attributes(category, plan.attributes, is_new=plan.existing is None)


def _replace_attributes(category: Category, wanted: list[dict[str, Any]], *, is_new: bool) -> None:
    current = {} if is_new else {a.code: a for a in category.attributes.all()}
    codes = {a["code"] for a in wanted}
    gone = [a.pk for code, a in current.items() if code not in codes]
    if gone:
        CategoryAttribute.objects.filter(pk__in=gone).delete()
    for data in wanted:
        found = current.get(data["code"])
        if found is None:
            CategoryAttribute.objects.create(category=category, **data)
        elif _attribute_dict(found) != data:
            for name, value in data.items():
                setattr(found, name, value)
            found.save()


def catalogue_load_standard(*, overwrite: bool = False, dry_run: bool = False) -> ImportReport:
    """Load the standard catalogue shipped in ``cases/data/categories.json``.

    Missing categories are added; existing ones keep what administrators changed unless
    ``overwrite`` (then they are reset to the standard's values).
    """
    rows = catalogue_from_json(STANDARD_FILE.read_bytes(), limit=None)
    return catalogue_import(rows, dry_run=dry_run, create_only=not overwrite)


# --- exporting ---------------------------------------------------------------------------------


def category_row(category: Category) -> dict[str, Any]:
    """One category as a file row (attributes nested); ``parent`` must be selected."""
    return {
        "scheme": category.scheme,
        "code": category.code,
        "parent": category.parent.code if category.parent is not None else None,
        "class": category.klass,
        "name_zh": category.name_zh,
        "name_en": category.name_en,
        "default_unit_kind": category.default_unit_kind,
        **{name: getattr(category, name) for name in LIMIT_FIELDS},
        "urgency_levels": [str(u) for u in category.urgency_levels or []],
        "closing_criteria": category.closing_criteria,
        "duplicate_radius_m": category.duplicate_radius_m,
        "duplicate_window_hours": category.duplicate_window_hours,
        "is_active": category.is_active,
        "order": category.order,
        "attributes": [
            _attribute_dict(a)
            for a in sorted(category.attributes.all(), key=lambda a: (a.order, a.code))
        ],
    }


def catalogue_export(*, scheme: str | None = None) -> list[dict[str, Any]]:
    """Every category (of one scheme) as file rows, majors before their minors."""
    query = Category.objects.select_related("parent").prefetch_related("attributes")
    if scheme:
        if scheme not in Scheme.values:
            raise DomainError(
                _("unknown scheme %(value)r; the schemes are %(known)s")
                % {"value": scheme, "known": ", ".join(Scheme.values)},
                status=422,
            )
        query = query.filter(scheme=scheme)
    return [category_row(c) for c in query.order_by("scheme", "code")]


def catalogue_to_json(rows: list[dict[str, Any]]) -> bytes:
    doc = {"format": FILE_FORMAT, "version": FILE_VERSION, "categories": rows}
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


# --- reading files -----------------------------------------------------------------------------


def _size_check(data: bytes, limit: int | None) -> None:
    limit = int(settings.GRIDGOV_UPLOAD_MAX_BYTES) if limit is None else limit
    if limit and len(data) > limit:
        raise DomainError(
            _("the file has %(size)s bytes; at most %(limit)s bytes are accepted")
            % {"size": f"{len(data):,}", "limit": f"{limit:,}"},
            detail={"size": len(data), "limit": limit},
            status=413,
        )


def catalogue_from_json(data: bytes, *, limit: int | None = 0) -> list[dict[str, Any]]:
    """The rows of a JSON catalogue: a list of rows, or ``{"categories": [...]}``.

    ``limit`` is the byte limit (0: ``GRIDGOV_UPLOAD_MAX_BYTES``; None: none).
    """
    if limit is not None:
        _size_check(data, limit or None)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DomainError(
            _("the JSON file is not UTF-8 (byte %(at)s)") % {"at": exc.start}, status=422
        ) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DomainError(
            _("the file is not valid JSON: %(problem)s at line %(line)s, column %(column)s")
            % {"problem": exc.msg, "line": exc.lineno, "column": exc.colno},
            status=422,
        ) from exc
    except RecursionError as exc:
        raise DomainError(
            _("the file is not a catalogue: it is nested too deeply"), status=422
        ) from exc
    except ValueError as exc:  # a 5000-digit number
        raise DomainError(
            _("the file is not a catalogue: %(problem)s") % {"problem": str(exc)[:100]}, status=422
        ) from exc
    if _depth(doc) > MAX_JSON_DEPTH:
        raise DomainError(
            _("the file nests deeper than a catalogue does (%(limit)s levels)")
            % {"limit": MAX_JSON_DEPTH},
            status=422,
        )
    if isinstance(doc, dict):
        doc = doc.get("categories")
    if not isinstance(doc, list):
        raise DomainError(
            _('the JSON file must hold a list of categories, or an object with "categories"'),
            status=422,
        )
    return doc


def _depth(doc: Any) -> int:
    """How deeply lists and objects nest in ``doc`` (iteratively: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _looks_like(data: bytes) -> str:
    head = data[:8]
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _("an old Excel .xls workbook or an encrypted file: save it as .xlsx")
    if head.startswith(b"%PDF"):
        return _("a PDF document")
    if head[:3] in (b"\xff\xd8\xff",) or head.startswith(b"\x89PNG"):
        return _("an image")
    if not data.strip():
        return _("an empty file")
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return _("binary data")
    return _("text (CSV?)")


def catalogue_read(data: bytes, name: str = "") -> list[dict[str, Any]]:
    """The rows of an uploaded catalogue, xlsx or JSON, told apart by their first bytes."""
    _size_check(data, None)
    if data[:4] == b"PK\x03\x04":
        return catalogue_from_xlsx(data)
    head = data[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    if head[:1] in (b"{", b"["):
        return catalogue_from_json(data)
    raise DomainError(
        _("%(name)s is neither an xlsx workbook nor a JSON file (it looks like %(kind)s)")
        % {"name": name or _("the file"), "kind": _looks_like(data)},
        status=422,
    )


def _check_zip(data: bytes) -> None:
    """Refuse what is not a workbook, or would unpack into too much (a zip bomb), before
    openpyxl reads a byte of it."""
    if data[:4] != b"PK\x03\x04":
        raise DomainError(
            _("the file is not an xlsx workbook (it looks like %(kind)s)")
            % {"kind": _looks_like(data)},
            status=422,
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DomainError(
            _("the file is not an xlsx workbook: the zip container is damaged"), status=422
        ) from exc
    names = {p.filename for p in parts}
    if "xl/workbook.xml" not in names:
        raise DomainError(
            _("the file is a zip archive but not an xlsx workbook (no xl/workbook.xml)"),
            status=422,
        )
    unpacked = sum(p.file_size for p in parts)
    packed = max(1, sum(p.compress_size for p in parts))
    if (
        len(parts) > MAX_XLSX_PARTS
        or unpacked > MAX_XLSX_UNPACKED
        or (unpacked > 1024 * 1024 and unpacked / packed > MAX_XLSX_RATIO)
    ):
        raise DomainError(
            _(
                "the workbook would unpack to %(size)s bytes in %(parts)s parts; at most "
                "%(limit)s bytes are accepted"
            )
            % {"size": f"{unpacked:,}", "parts": len(parts), "limit": f"{MAX_XLSX_UNPACKED:,}"},
            status=413,
        )


XLSX_CATEGORY_COLUMNS = tuple(k for k in ROW_KEYS if k != "attributes")
XLSX_ATTRIBUTE_COLUMNS = ("scheme", "category", *ATTRIBUTE_KEYS)
_NUMBER_COLUMNS = {"duplicate_radius_m", "duplicate_window_hours", "order"}
_BOOL_COLUMNS = {"is_active", "required", "variable"}


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    if value is not None and not isinstance(value, bool | int | float):
        return str(value)
    return value


def _padded(value: Any, width: int) -> Any:
    """A code Excel turned into a number (0102 → 102) gets its leading zeros back."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**width:
        return str(value).zfill(width)
    return value


def _sheet_rows(
    sheet: Any, columns: tuple[str, ...], name: str, max_rows: int
) -> list[dict[str, Any]]:
    rows = enumerate(sheet.iter_rows(values_only=True), start=1)
    header: list[str] = []
    for _number, values in rows:
        header = [_text(v).lower() for v in values]
        if any(header):
            break
    while header and not header[-1]:
        header.pop()
    if not header:
        return []
    unknown = [h for h in header if h and h not in columns]
    if unknown or len(set(h for h in header if h)) != len([h for h in header if h]):
        raise DomainError(
            _("sheet %(sheet)s: unknown or repeated columns %(columns)s; the columns are %(known)s")
            % {
                "sheet": name,
                "columns": ", ".join(unknown) or _("(repeated)"),
                "known": ", ".join(columns),
            },
            status=422,
        )
    found: list[dict[str, Any]] = []
    for number, values in rows:
        cells = [_cell(v) for v in values[: len(header)]]
        if all(v is None or v == "" for v in cells):
            continue
        if len(found) >= max_rows:
            raise DomainError(
                _("sheet %(sheet)s has more than %(limit)s rows")
                % {"sheet": name, "limit": max_rows},
                status=413,
            )
        row: dict[str, Any] = {"_row": number, "_sheet": name}
        for key, value in zip(header, cells, strict=False):
            if not key:
                continue
            if value is None or value == "":
                if key in _NUMBER_COLUMNS or key in _BOOL_COLUMNS or key == "urgency_levels":
                    continue  # empty: keep the stored value (or the default)
                value = ""
            elif key == "urgency_levels":
                value = [v for v in _URGENCY_SEPARATORS.split(_text(value)) if v]
            row[key] = value
        found.append(row)
    return found


def _values_from_text(text: str) -> list[dict[str, str]]:
    """``"missing=缺失\nbroken=破损"`` → ``[{"key": "missing", "name": "缺失"}, …]``."""
    values = []
    for item in _VALUE_SEPARATORS.split(text):
        key, _sep, name = item.partition("=")
        if key.strip() or name.strip():
            values.append({"key": key.strip(), "name": name.strip() or key.strip()})
    return values


def catalogue_from_xlsx(data: bytes) -> list[dict[str, Any]]:
    """The rows of a workbook written by ``catalogue_to_xlsx`` (or by hand in its layout).

    Sheet ``categories`` (else the first sheet): one category per row, the header row naming
    the columns. Sheet ``attributes`` (optional): one attribute per row, naming its category by
    ``scheme`` and ``category``; when the sheet exists it sets the attributes of every category
    it or the categories sheet names. Empty rows are ignored.
    """
    import openpyxl

    _size_check(data, None)
    _check_zip(data)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise DomainError(
            _("the workbook cannot be read: %(problem)s") % {"problem": str(exc)[:200]},
            status=422,
        ) from exc
    try:
        names = {n.lower(): n for n in book.sheetnames}
        main = book[names.get("categories", book.sheetnames[0])]
        categories = _sheet_rows(main, XLSX_CATEGORY_COLUMNS, "categories", MAX_ROWS)
        attribute_rows: list[dict[str, Any]] | None = None
        if "attributes" in names:
            attribute_rows = _sheet_rows(
                book[names["attributes"]],
                XLSX_ATTRIBUTE_COLUMNS,
                "attributes",
                MAX_ROWS * 4,
            )
    except DomainError:
        raise
    except Exception as exc:
        raise DomainError(
            _("the workbook cannot be read: %(problem)s") % {"problem": str(exc)[:200]},
            status=422,
        ) from exc
    finally:
        book.close()

    for row in categories:
        width = None
        scheme = _text(row.get("scheme")).lower()
        if scheme in CODE_DIGITS:
            major_digits, minor_digits = CODE_DIGITS[scheme]
            width = minor_digits if row.get("parent") not in (None, "") else major_digits
            row["code"] = _padded(row.get("code"), width)
            if "parent" in row:
                row["parent"] = _padded(row["parent"], major_digits)
    if attribute_rows is None:
        return categories

    def key_of(scheme: Any, code: Any, klass: Any = None) -> tuple[str, str]:
        s = _text(scheme).lower()
        c = _text(_padded(code, CODE_DIGITS[s][1]) if s in CODE_DIGITS else code)
        return s, normalise_code(s, c, _text(klass).lower() or None)

    index = {key_of(r.get("scheme"), r.get("code"), r.get("class")): r for r in categories}
    for row in categories:
        row["attributes"] = []
    for attr in attribute_rows:
        key = key_of(attr.pop("scheme", ""), attr.pop("category", ""))
        target = index.get(key)
        if target is None:
            target = {
                "_row": attr["_row"],
                "_sheet": "attributes",
                "scheme": key[0],
                "code": key[1],
                "attributes": [],
            }
            index[key] = target
            categories.append(target)
        attr.pop("_sheet", None)
        if isinstance(attr.get("values"), str):
            attr["values"] = _values_from_text(attr["values"])
        target["attributes"].append(attr)
    return categories


# --- writing xlsx ------------------------------------------------------------------------------


def _column_help() -> dict[str, str]:
    """What each column holds, shown as the header cell's comment."""
    return {
        "scheme": _("Scheme: %(values)s") % {"values": ", ".join(Scheme.values)},
        "code": _(
            "Code: legacy 2 or 4 digits, gbt47678 2 or 5 digits (events with the prefix E, "
            "e.g. E0102), social letters and digits. Format code cells as text."
        ),
        "parent": _("The major's code (empty for a major)"),
        "class": _("Class: component or event"),
        "name_zh": _("Name (Chinese), required"),
        "name_en": _("Name (English)"),
        "default_unit_kind": _("Default responsible unit type: %(values)s")
        % {"values": ", ".join(UnitKind.values)},
        "register_limit": _("Register and dispatch within, e.g. 30m, 4h, 1d (empty: the major's)"),
        "urgent_register_limit": _("Register and dispatch within when urgent, e.g. 10m"),
        "sign_limit": _("Sign for within, e.g. 24h"),
        "handle_limit": _("Handle within, e.g. 2h, 1d, 5d"),
        "check_limit": _("Check within, e.g. 1h"),
        "urgency_levels": _("Urgency levels, separated by commas: %(values)s")
        % {"values": ", ".join(Urgency.values)},
        "closing_criteria": _("Closing criteria"),
        "duplicate_radius_m": _("Duplicate radius in metres"),
        "duplicate_window_hours": _("Duplicate window in hours"),
        "is_active": _("Active: TRUE or FALSE"),
        "order": _("Display order"),
        "category": _("The category's code"),
        "datatype": _("Datatype: %(values)s") % {"values": ", ".join(Datatype.values)},
        "required": _("Required: TRUE or FALSE"),
        "variable": _("Entered by the reporter: TRUE or FALSE"),
        "description": _("The question shown to the reporter"),
        "datatype_description": _("A hint for the answer"),
        "values": _("List values, one per line as key=name"),
    }


def catalogue_to_xlsx(rows: list[dict[str, Any]]) -> bytes:
    """A workbook with a ``categories`` and an ``attributes`` sheet that reads back the same.

    Every text is written as a string (never a formula); text starting with = + - @ or a
    control character is written with Excel's quote prefix, so neither opening nor editing
    the cell turns it into a formula.
    """
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    bold = book.add_format({"bold": True, "bg_color": "#E8EEF4", "border": 1})
    text = book.add_format({"num_format": "@"})
    quoted = book.add_format({"num_format": "@", "quote_prefix": True})
    wrapped = book.add_format({"num_format": "@", "text_wrap": True, "valign": "top"})
    help_text = _column_help()

    def put(sheet: Any, r: int, c: int, value: Any, fmt: Any = None) -> None:
        if value is None or value == "":
            sheet.write_blank(r, c, None, fmt or text)
        elif isinstance(value, bool):
            sheet.write_boolean(r, c, value)
        elif isinstance(value, int | float):
            sheet.write_number(r, c, value)
        else:
            s = str(value)
            sheet.write_string(r, c, s, quoted if needs_quote(s) else (fmt or text))

    def header(sheet: Any, columns: tuple[str, ...], widths: dict[str, int]) -> None:
        for c, name in enumerate(columns):
            sheet.write_string(0, c, name, bold)
            if name in help_text:
                sheet.write_comment(0, c, help_text[name], {"x_scale": 2, "y_scale": 1.5})
            sheet.set_column(c, c, widths.get(name, 14), text)
        sheet.freeze_panes(1, 2)

    sheet = book.add_worksheet("categories")
    header(
        sheet,
        XLSX_CATEGORY_COLUMNS,
        {"name_zh": 20, "name_en": 30, "closing_criteria": 50, "default_unit_kind": 20},
    )
    for r, row in enumerate(rows, start=1):
        for c, name in enumerate(XLSX_CATEGORY_COLUMNS):
            value = row.get(name)
            if name == "urgency_levels" and isinstance(value, list):
                value = ",".join(str(v) for v in value)
            put(sheet, r, c, value)
    last = max(len(rows), 1) + 500
    for name, choices in (
        ("scheme", list(Scheme.values)),
        ("class", list(CategoryClass.values)),
        ("default_unit_kind", list(UnitKind.values)),
    ):
        c = XLSX_CATEGORY_COLUMNS.index(name)
        sheet.data_validation(1, c, last, c, {"validate": "list", "source": choices})
    sheet.autofilter(0, 0, max(len(rows), 1), len(XLSX_CATEGORY_COLUMNS) - 1)

    attributes = book.add_worksheet("attributes")
    header(attributes, XLSX_ATTRIBUTE_COLUMNS, {"description": 30, "values": 30})
    r = 1
    for row in rows:
        for attr in row.get("attributes") or []:
            values = "\n".join(f"{v['key']}={v['name']}" for v in attr.get("values") or [])
            line = {"scheme": row.get("scheme"), "category": row.get("code"), **attr}
            for c, name in enumerate(XLSX_ATTRIBUTE_COLUMNS):
                if name == "values":
                    put(attributes, r, c, values, wrapped)
                else:
                    put(attributes, r, c, line.get(name))
            r += 1
    c = XLSX_ATTRIBUTE_COLUMNS.index("datatype")
    attributes.data_validation(
        1, c, r + 500, c, {"validate": "list", "source": list(Datatype.values)}
    )
    book.close()
    return buffer.getvalue()


def export_file_name(*, scheme: str | None, extension: str) -> str:
    """``categories-legacy-20261122.xlsx``: the scheme (or all) and today's date."""
    from django.utils import timezone

    day = timezone.localdate().strftime("%Y%m%d")
    return f"categories-{scheme or 'all'}-{day}.{extension}"


def rows_for_display(changes: Iterable[Change]) -> list[Change]:
    """Created, changed and kept rows first, unchanged after."""
    order = {"created": 0, "changed": 1, "kept": 2, "unchanged": 3}
    return sorted(changes, key=lambda c: (order.get(c.status, 9), c.row))


__all__ = [
    "FILE_FORMAT",
    "STANDARD_FILE",
    "Change",
    "ImportReport",
    "Problem",
    "catalogue_export",
    "catalogue_from_json",
    "catalogue_from_xlsx",
    "catalogue_import",
    "catalogue_load_standard",
    "catalogue_read",
    "catalogue_to_json",
    "catalogue_to_xlsx",
    "category_row",
    "display_code",
    "export_file_name",
    "major_code",
    "service_code",
]
