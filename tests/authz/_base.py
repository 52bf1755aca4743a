"""The rule type of the authorization matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """How one route is reached and who gets in.

    access: "public" (anyone; never 401/403), "login" (any logged-in user), "scoped"
    (in-scope object only), "serve" (in-scope object only, refused with 403 outside), "admin"
    (administrators only), "own" (the user's own object only), "region_admin" (administrators
    only, and an administrator of street 320113003 only for the object "in" their street, not
    for the one "out" of it: the path is called with obj "in" and "out"), "case" (the path is
    called with the number of a case in grid A dispatched to street-office-003, and of one in
    another district: whoever may see the case (gridgov.cases.selectors.case_visible) gets no
    404 and, for a GET, a 200; everyone else 404 or 403; anonymous must log in).
    """

    method: str
    path: Callable[[str], str]
    access: str
    data: dict[str, Any] | None = None
    json: bool = False
    region_object: bool = False


def static(path: str) -> Callable[[str], str]:
    return lambda _obj: path
