"""Region codes (STANDARDS.md): district 6, street 9, community 12, grid 15 digits.

A region's subtree is every code that starts with its code.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

LEVELS = ("district", "street", "community", "grid")
LEVEL_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
LENGTH_LEVEL = {length: level for level, length in LEVEL_LENGTH.items()}
LEGACY_GRID_LENGTH = 14
_DIGITS = re.compile(r"^[0-9]+$")
#: The level as a noun inside a sentence ("a street code"); ``Level`` holds the title-case labels.
LEVEL_NOUNS = {
    "district": gettext_lazy("district"),
    "street": gettext_lazy("street"),
    "community": gettext_lazy("community"),
    "grid": gettext_lazy("grid"),
}


def level_noun(level: str) -> str:
    """The translated noun of a level (``district`` -> 区), or the level itself if unknown."""
    return str(LEVEL_NOUNS.get(level, level))


class CodeError(ValueError):
    pass


def normalise_code(raw: object, *, expect_level: str | None = None) -> str:
    """Return a canonical region code, converting a legacy 14-digit grid code to 15 digits.

    Raises ``CodeError`` with a message that names the problem.
    """
    if raw is None:
        raise CodeError(_("the code is missing"))
    code = str(raw).strip()
    if isinstance(raw, float):
        raise CodeError(
            _("the code %(code)s is a number with a fraction; write codes as text")
            % {"code": repr(raw)}
        )
    if not _DIGITS.match(code):
        raise CodeError(_("the code %(code)s must contain digits only") % {"code": repr(code)})
    if len(code) == LEGACY_GRID_LENGTH:
        # legacy grid code: community (12) + 2-digit sequence -> community + 3-digit sequence
        code = code[:12] + "0" + code[12:]
    level = LENGTH_LEVEL.get(len(code))
    if level is None:
        raise CodeError(
            _(
                "the code %(code)s has %(digits)s digits; region codes have 6, 9, 12 or 15 "
                "(or 14 for a legacy grid code)"
            )
            % {"code": repr(code), "digits": len(code)}
        )
    if expect_level is not None and level != expect_level:
        raise CodeError(
            _("the code %(code)s is a %(level)s code, expected a %(expected)s code")
            % {"code": repr(code), "level": level_noun(level), "expected": level_noun(expect_level)}
        )
    return code


def level_of(code: str) -> str:
    level = LENGTH_LEVEL.get(len(code))
    if level is None:
        raise CodeError(_("the code %(code)s is not a region code") % {"code": repr(code)})
    return level


def parent_code(code: str) -> str | None:
    """The code of the parent region, or None for a district."""
    level = level_of(code)
    index = LEVELS.index(level)
    if index == 0:
        return None
    return code[: LEVEL_LENGTH[LEVELS[index - 1]]]


def ancestor_codes(code: str) -> list[str]:
    """Codes of all ancestors, district first."""
    level = level_of(code)
    index = LEVELS.index(level)
    return [code[: LEVEL_LENGTH[LEVELS[i]]] for i in range(index)]


def child_level(level: str) -> str | None:
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def grid_code(community_code: str, sequence: int) -> str:
    if not 1 <= sequence <= 999:
        raise CodeError(
            _("a grid sequence must be 1 to 999, got %(sequence)s") % {"sequence": sequence}
        )
    return f"{community_code}{sequence:03d}"


def community_short_name(name: str) -> str:
    """尧化社区居委会 -> 尧化社区, 兴隆村村委会 -> 兴隆村, 孟北村委会 -> 孟北村."""
    for ending in ("居民委员会", "居委会", "村民委员会", "村委会", "委员会"):
        if name.endswith(ending):
            short = name[: -len(ending)]
            if ending in ("村民委员会", "村委会") and not short.endswith("村"):
                short += "村"
            return short
    return name
