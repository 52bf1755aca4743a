"""Authorization rules of the case screens.

The screens (to-do, list, exports, intake, dispatch, report) are open to every logged-in user
and show only what the user's scope holds: someone without an intake or command role gets an
empty queue and a note, never another district's cases. The case page is "scoped": the path
function below makes one case in the persona's region (an urgent case, dispatched at once to
the street office that persona unit_handler works for, so that the unit sees it; a resident's
own report in their community) and one in the other district.

Acting on a case and its photos are called with a case nobody has, so every user gets 404 (and
an anonymous visitor the login); who may act and see photos is tested in
tests/cases/test_views.py.
"""

from __future__ import annotations

from tests.authz._base import Rule, static

NOBODYS_CASE = "320199-20000101-00001"
NOBODYS_PHOTO = "00000000-0000-4000-8000-000000000000"
MARK = "authorization matrix"

#: A point inside each grid of tests/world.py.
POINTS = {
    "320113003001001": (32.05, 118.82),
    "320113003001002": (32.05, 118.87),
    "320113003002001": (32.15, 118.85),
    "320113005001001": (32.10, 118.95),
    "320114001001001": (31.95, 118.75),
}


def case_page(code: str) -> str:
    """The page of a case in region ``code`` (made on first use; see the module's docstring)."""
    from gridgov.accounts.models import User
    from gridgov.cases.actions import case_report
    from gridgov.cases.models import Case
    from tests.cases.factories import act, category

    found = Case.objects.filter(address=f"{MARK} {code}").first()
    if found is None:
        resident = len(code) == 12  # the resident's community: their own report
        lat, lon = POINTS["320113003001001" if resident else code]
        found = case_report(
            actor=User.objects.get(username="resident" if resident else "admin"),
            category=category(),
            description=MARK,
            lat=lat,
            lon=lon,
            address=f"{MARK} {code}",
            urgency="urgent",
        )
        if not resident and code.startswith("320113"):
            found = act(
                found,
                User.objects.get(username="dispatcher"),
                "urgent_dispatch",
                lead_unit="street-office-003",
            )
    return f"/cases/{found.number}/"


RULES: dict[str, list[Rule]] = {
    "cases:list": [Rule("GET", static("/cases/?state=open&light=red"), "login")],
    "cases:todo": [Rule("GET", static("/cases/todo/"), "login")],
    "cases:todo_count": [Rule("GET", static("/cases/todo/count/"), "login")],
    "cases:export_xlsx": [Rule("GET", static("/cases/export.xlsx"), "login")],
    "cases:export_csv": [Rule("GET", static("/cases/export.csv?source=hotline"), "login")],
    "cases:intake": [Rule("GET", static("/cases/intake/"), "login")],
    "cases:dispatch": [Rule("GET", static("/cases/dispatch/"), "login")],
    "cases:report": [Rule("GET", static("/cases/report/"), "login")],
    "cases:detail": [Rule("GET", case_page, "scoped", region_object=True)],
    "cases:act": [
        Rule(
            "POST",
            static(f"/cases/{NOBODYS_CASE}/act/accept/"),
            "login",
            data={"version": "1", "token": "matrix"},
        )
    ],
    "cases:photo": [Rule("GET", static(f"/cases/{NOBODYS_CASE}/photos/{NOBODYS_PHOTO}"), "login")],
    "cases:photo_thumb": [
        Rule("GET", static(f"/cases/{NOBODYS_CASE}/photos/{NOBODYS_PHOTO}/thumb"), "login")
    ],
}
