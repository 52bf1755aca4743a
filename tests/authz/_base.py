"""The rule type of the authorization matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """How one route is reached and who gets in.

    access: "public" (anyone; never 401/403), "probe" (an operator's probe, /readyz and
    /metrics: the same answer whoever is signed in, 200 or 503 "not ready"; /metrics is limited
    by address or token, not by persona, and the test client calls from 127.0.0.1), "login" (any
    logged-in user), "scoped" (in-scope object only), "serve" (in-scope object only, refused
    with 403 outside), "admin" (administrators only), "own" (the user's own object only),
    "region_admin" (administrators only, and an administrator of street 320113003 only for the
    object "in" their street, not for the one "out" of it: the path is called with obj "in" and
    "out"), "case" (the path is called with the number of a case in grid A dispatched to
    street-office-003, and of one in another district: whoever may see the case
    (gridgov.cases.selectors.case_visible) gets no 404 and, for a GET, a 200; everyone else 404
    or 403; anonymous must log in), "registry" (base data: the path is called with obj "in" (a
    record or grid in grid A) and "out" (one in the other district); ``region(obj)`` names its
    region. Whoever's registry scope (gridgov.registry.selectors.registry_scope) covers that
    region gets a 200 on a GET, and neither 401 nor 404 on another method; everyone else 404, so
    a grid worker of another grid, a unit handler or a resident learns nothing; anonymous must
    log in), "registry_edit" (as "registry", for a page that changes base data: among those who
    see the region, whoever may edit there (gridgov.registry.actions.edit_scope with ``roles``,
    by default EDIT_ROLES) gets the 200 and the others a 403).
    """

    method: str
    path: Callable[[str], str]
    access: str
    data: dict[str, Any] | None = None
    json: bool = False
    region_object: bool = False
    #: "registry"/"registry_edit": the region code of the object "in" or "out"
    region: Callable[[str], str] | None = None
    #: "registry_edit": the roles that may change the object (None: EDIT_ROLES)
    roles: frozenset[str] | None = None


def static(path: str) -> Callable[[str], str]:
    return lambda _obj: path
