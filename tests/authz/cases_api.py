"""Authorization rules of the cases API."""

from __future__ import annotations

from tests.authz._base import Rule, static

_REPORT = {"category": "01002", "description": "matrix", "lat": 32.05, "lon": 118.82}

RULES: dict[str, list[Rule]] = {
    # any logged-in user with a role may report (a user without roles gets 403: "login" admits
    # any status below 400 or a 404 only for users, so the report rule posts invalid input and
    # expects a 4xx other than 401 for every user — covered in tests/cases/test_api.py)
    "api:report": [],
    "api:case_list": [Rule("GET", static("/api/v1/cases"), "login")],
    "api:photo_upload": [],  # POST multipart; covered in tests/cases/test_api.py
    "api:todo": [Rule("GET", static("/api/v1/cases/todo"), "login")],
    "api:workflow": [Rule("GET", static("/api/v1/cases/workflow"), "login")],
    "api:case_detail": [Rule("GET", lambda n: f"/api/v1/cases/{n}", "case")],
    "api:act": [
        Rule(
            "POST",
            lambda n: f"/api/v1/cases/{n}/actions/accept",
            "case",
            data={"version": 999},
            json=True,
        )
    ],
    "api:case_photo": [],  # needs a photo of the case: tests/cases/test_api.py
    "api:case_photo_thumb": [],  # likewise
}
