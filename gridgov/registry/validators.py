"""Validation of the base-data fields: id numbers, credit codes, phones, component codes, dates.

Pure functions, no database: each either returns (the facts it read, or the value in its
normalised form, which callers may ignore) or raises ``FieldProblem`` with the field it is
about, a stable code for programs and a translated message that names the problem for people.

- ``check_id_number`` — resident identity card numbers, GB 11643-1999: 17 digits and a check
  character computed by ISO 7064 MOD 11-2 (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, check
  characters ``10X98765432``); characters 7–14 are the birth date, the 17th is odd for a man.
- ``check_credit_code`` — unified social credit codes, GB 32100-2015: registration authority,
  organisation type, 6-digit region, the 9-character organisation code (GB 11714, with its own
  MOD 11 check character) and a final MOD 31 check character.
- ``check_mobile`` / ``check_phone`` — mainland mobile numbers; landlines with their area code.
- ``check_component_code`` — city component codes (district 6 + category 4 or 5 + sequence 6).
- ``parse_date`` — the ways a ledger writes a date, Excel serial numbers included.

Messages are translated when the problem is raised (``gettext``), so the active language at the
time of the check is the one the user reads.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _


class FieldProblem(ValueError):
    """A value refused for ``field``: ``code`` for programs, ``message`` for people."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"FieldProblem({self.field!r}, {self.code!r}, {self.message!r})"


# --------------------------------------------------------------------------- id numbers

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
#: The earliest birth year accepted in an id number.
ID_MIN_YEAR = 1880
#: First two digits of a mainland province (GB/T 2260), Taiwan, Hong Kong and Macao (residence
#: permits: 83, 81, 82). Permanent residence cards of foreigners (2023 form) start with 9.
PROVINCES = frozenset(
    str(n)
    for n in (
        *(11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37),
        *(41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65),
        *(71, 81, 82, 83),
    )
)

_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$")


@dataclass(frozen=True)
class IdNumberFacts:
    """What an id number says about its holder."""

    birth_date: date
    sex: str  # "male" or "female"
    region6: str


def normalise_id_number(value: str) -> str:
    """Strip spaces (also full-width ones) and upper-case a final x."""
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(text.split()).upper()


def id_check_char(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def check_id_number(
    value: str, *, field: str = "id_number", today: date | None = None
) -> IdNumberFacts:
    """The facts of a valid 18-character id number, or ``FieldProblem``."""
    s = normalise_id_number(value)
    if not s:
        raise FieldProblem(field, "required", _("The id number is missing."))
    if _SCIENTIFIC.match(s):
        raise FieldProblem(
            field,
            "scientific",
            _(
                "The id number was saved as a number in scientific notation and lost its last "
                "digits; format the column as text and enter the number again."
            ),
        )
    if len(s) == 15 and s.isdigit():
        raise FieldProblem(
            field,
            "legacy",
            _("This is an old 15-digit id number; enter the 18-character number instead."),
        )
    if len(s) != 18:
        raise FieldProblem(
            field,
            "length",
            _("An id number has 18 characters, this one has %(count)d.") % {"count": len(s)},
        )
    if not (s[:17].isascii() and s[:17].isdigit()) or s[17] not in "0123456789X":
        raise FieldProblem(
            field,
            "characters",
            _("An id number is 17 digits followed by a digit or X."),
        )
    if s[:2] not in PROVINCES and s[0] != "9":
        raise FieldProblem(
            field,
            "region",
            _("The id number starts with %(code)s, which is no province code.") % {"code": s[:2]},
        )
    birth = _birth_date(s[6:14])
    today = today or timezone.localdate()
    if birth is None or birth > today or birth.year < ID_MIN_YEAR:
        raise FieldProblem(
            field,
            "birth_date",
            _("Characters 7 to 14 of the id number (%(digits)s) are not a possible birth date.")
            % {"digits": s[6:14]},
        )
    expected = id_check_char(s[:17])
    if s[17] != expected:
        raise FieldProblem(
            field,
            "check",
            _("The check character of the id number is wrong (expected %(expected)s).")
            % {"expected": expected},
        )
    sex = "male" if int(s[16]) % 2 == 1 else "female"
    return IdNumberFacts(birth_date=birth, sex=sex, region6=s[:6])


def _birth_date(digits: str) -> date | None:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def check_id_consistent(
    facts: IdNumberFacts, birth_date: date | None = None, sex: str | None = None
) -> None:
    """A birth date and a sex that were entered must agree with the id number."""
    if birth_date is not None and birth_date != facts.birth_date:
        raise FieldProblem(
            "birth_date",
            "id_mismatch",
            _("The birth date does not match the id number, which says %(date)s.")
            % {"date": facts.birth_date.isoformat()},
        )
    if sex in ("male", "female") and sex != facts.sex:
        raise FieldProblem(
            "sex",
            "id_mismatch",
            _("The sex does not match the id number, which says male.")
            if facts.sex == "male"
            else _("The sex does not match the id number, which says female."),
        )


# --------------------------------------------------------------------------- credit codes

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
#: Registration authorities (GB 32100 table 1): 1 institutional establishment, 2 foreign
#: affairs, 3 justice, 4 culture, 5 civil affairs, 6 tourism, 7 religion, 8 trade unions,
#: 9 market regulation, A central military commission, N agriculture, Y others.
CREDIT_AUTHORITIES = frozenset("123456789ANY")


def normalise_credit_code(value: str) -> str:
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(text.split()).upper()


def org_check_char(body8: str) -> str:
    """The GB 11714 check character of the 8 body characters of an organisation code."""
    total = sum(_ORG_VALUES[c] * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character (MOD 31) of the first 17 characters of a credit code."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(value: str, *, field: str = "credit_code") -> str:
    """The normalised unified social credit code, or ``FieldProblem``."""
    s = normalise_credit_code(value)
    if not s:
        raise FieldProblem(field, "required", _("The credit code is missing."))
    if len(s) != 18:
        raise FieldProblem(
            field,
            "length",
            _("A unified social credit code has 18 characters, this one has %(count)d.")
            % {"count": len(s)},
        )
    wrong = [c for c in s if c not in CREDIT_ALPHABET]
    if wrong:
        raise FieldProblem(
            field,
            "characters",
            _(
                "A credit code uses digits and capital letters except I, O, Z, S and V; "
                "“%(char)s” is not allowed."
            )
            % {"char": wrong[0]},
        )
    if s[0] not in CREDIT_AUTHORITIES or not s[1].isdigit() or s[1] == "0":
        raise FieldProblem(
            field,
            "kind",
            _(
                "The first two characters of the credit code (%(chars)s) are no known "
                "registration authority and type."
            )
            % {"chars": s[:2]},
        )
    if not s[2:8].isdigit():
        raise FieldProblem(
            field,
            "region",
            _("Characters 3 to 8 of the credit code must be a 6-digit region code."),
        )
    expected_org = org_check_char(s[8:16])
    if s[16] != expected_org:
        raise FieldProblem(
            field,
            "org_check",
            _(
                "The organisation code inside the credit code (characters 9 to 17) has a wrong "
                "check character (expected %(expected)s)."
            )
            % {"expected": expected_org},
        )
    expected = credit_check_char(s[:17])
    if s[17] != expected:
        raise FieldProblem(
            field,
            "check",
            _("The check character of the credit code is wrong (expected %(expected)s).")
            % {"expected": expected},
        )
    return s


# --------------------------------------------------------------------------- phones

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
#: Area code (0 + 2 or 3 digits) and a 7- or 8-digit subscriber number; 400/800 service lines.
_LANDLINE = re.compile(r"^0\d{2,3}[2-9]\d{6,7}$")
_SERVICE = re.compile(r"^[48]00\d{7}$")


def normalise_phone(value: str) -> str:
    """Digits only, without the country prefix: the look-up hashes' own rule
    (``gridgov.privacy.crypto.normalise_phone``), so what is accepted here hashes alike."""
    from gridgov.privacy.crypto import normalise_phone as rule

    return rule(value)


def check_mobile(value: str, *, field: str = "phone") -> str:
    """A mainland mobile number (11 digits, 1[3-9]…) as digits, or ``FieldProblem``."""
    digits = normalise_phone(value)
    if not digits:
        raise FieldProblem(field, "required", _("The mobile number is missing."))
    if not _MOBILE.match(digits):
        raise FieldProblem(
            field,
            "mobile",
            _("A mobile number has 11 digits and starts with 13 to 19."),
        )
    return digits


def check_phone(value: str, *, field: str = "phone") -> str:
    """A mobile number, a landline with its area code (025-85551234) or a 400/800 line."""
    digits = normalise_phone(value)
    if not digits:
        raise FieldProblem(field, "required", _("The phone number is missing."))
    if _MOBILE.match(digits) or _LANDLINE.match(digits) or _SERVICE.match(digits):
        return digits
    if digits.startswith("1"):
        raise FieldProblem(
            field,
            "mobile",
            _("A mobile number has 11 digits and starts with 13 to 19."),
        )
    if not digits.startswith("0") and 7 <= len(digits) <= 8:
        raise FieldProblem(
            field, "area_code", _("Add the area code to the landline number (e.g. 025).")
        )
    raise FieldProblem(
        field,
        "phone",
        _("This is neither a mobile number nor a landline number with its area code."),
    )


# --------------------------------------------------------------------------- component codes


def check_component_code(
    value: str, category_code: str | None = None, *, field: str = "code"
) -> str:
    """A component code: district 6 + category (4 digits legacy, 5 new) + 6-digit sequence.

    With ``category_code`` the code must carry that category; without it, a 16-digit code is
    read as legacy and a 17-digit one as GB/T 47678.5.
    """
    s = "".join(unicodedata.normalize("NFKC", value or "").split())
    if not s:
        raise FieldProblem(field, "required", _("The component code is missing."))
    if not (s.isascii() and s.isdigit()) or len(s) not in (16, 17):
        raise FieldProblem(
            field,
            "format",
            _("A component code has 16 digits (legacy) or 17 digits (GB/T 47678.5)."),
        )
    if s[:2] not in PROVINCES or s[2:6] == "0000":
        raise FieldProblem(
            field,
            "district",
            _("The component code does not start with a district code (%(code)s).")
            % {"code": s[:6]},
        )
    category_length = len(s) - 12
    if category_code and (
        len(category_code) != category_length or s[6 : 6 + category_length] != category_code
    ):
        raise FieldProblem(
            field,
            "category",
            _("The component code does not carry its category code %(category)s.")
            % {"category": category_code},
        )
    if s[-6:] == "000000":
        raise FieldProblem(
            field,
            "sequence",
            _("The last 6 digits of a component code are a sequence number from 000001."),
        )
    return s


# --------------------------------------------------------------------------- dates

#: Excel's day 0 for the 1900 date system, valid from serial 61 (1900-03-01) on; serials 1–59
#: count from 1899-12-31, and 60 is Excel's nonexistent 1900-02-29.
EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31

_YMD = re.compile(
    r"^(?P<y>\d{4})\s*(?:[-/.]|年)\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
#: A serial number written as text: 5 digits (1927-05-18 to 2173-10-14), so that a year (1990)
#: or a year and month (199005) is never read as a serial.
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")


def parse_date(value: Any, *, field: str = "date") -> date:
    """A date from the ways a ledger writes it, or ``FieldProblem``.

    2026-11-23, 2026/11/23, 2026.11.23, 20261123, 2026年11月23日 (also 2026-1-5 and a trailing
    time 2026-11-23 08:30:00), ``date``/``datetime`` objects and Excel serial numbers
    (46349 or 46349.5 for 2026-11-23).
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise FieldProblem(field, "format", _date_format_message())
    if isinstance(value, int | float):
        return _from_serial(float(value), field)
    text = unicodedata.normalize("NFKC", str(value or "")).strip()
    if not text:
        raise FieldProblem(field, "required", _("The date is missing."))
    match = _YMD.match(text) or _COMPACT.match(text)
    if match:
        y, m, d = int(match["y"]), int(match["m"]), int(match["d"])
        try:
            return date(y, m, d)
        except ValueError:
            raise FieldProblem(
                field,
                "impossible",
                _("There is no such date: %(date)s.") % {"date": f"{y:04d}-{m:02d}-{d:02d}"},
            ) from None
    if _SERIAL.match(text):
        return _from_serial(float(text), field)
    raise FieldProblem(field, "format", _date_format_message())


def _date_format_message() -> str:
    return _("This is not a date; write it as 2026-11-23.")


def _from_serial(serial: float, field: str) -> date:
    days = int(serial)
    if days < 1 or days > EXCEL_MAX_SERIAL or days == 60:
        raise FieldProblem(
            field,
            "impossible",
            _("The number %(number)s is no date of a spreadsheet.") % {"number": _plain(serial)},
        )
    if days < 60:
        return date(1899, 12, 31) + timedelta(days=days)
    return EXCEL_EPOCH + timedelta(days=days)


def excel_serial(day: date) -> int:
    """The Excel serial number of a date from 1900-03-01 on (the inverse of ``parse_date``)."""
    return (day - EXCEL_EPOCH).days


def _plain(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
