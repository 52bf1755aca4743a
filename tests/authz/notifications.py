"""Authorization rules of the notifications pages and API: every user, their own inbox only.

The per-notification routes are called with an id nobody owns, so every user gets 404 (and an
anonymous visitor the login); that another user's notification answers 404 and stays unread is
tested in tests/notifications/test_inbox.py and test_notifications_api.py.
"""

from __future__ import annotations

from tests.authz._base import Rule, static

NOBODYS = "00000000-0000-4000-8000-000000000000"
API = "/api/v1/notifications"

RULES: dict[str, list[Rule]] = {
    "notifications:inbox": [Rule("GET", static("/notifications/"), "login")],
    "notifications:badge": [Rule("GET", static("/notifications/badge/"), "login")],
    "notifications:read_all": [Rule("POST", static("/notifications/read-all/"), "login")],
    "notifications:preferences": [
        Rule("GET", static("/notifications/preferences/"), "login"),
        Rule(
            "POST",
            static("/notifications/preferences/"),
            "login",
            data={"digest_threshold": "10"},
        ),
    ],
    "notifications:open": [Rule("GET", static(f"/notifications/{NOBODYS}/open/"), "login")],
    "api:notification_list": [Rule("GET", static(f"{API}?unread=true"), "login")],
    "api:notification_unread_count": [Rule("GET", static(f"{API}/unread-count"), "login")],
    "api:notification_read_all": [Rule("POST", static(f"{API}/read-all"), "login")],
    "api:notification_read": [Rule("POST", static(f"{API}/{NOBODYS}/read"), "login")],
    "api:notification_preferences_get": [Rule("GET", static(f"{API}/preferences"), "login")],
    "api:notification_preferences_put": [  # same path as the GET (PUT); changes nothing
        Rule(
            "PUT",
            static(f"{API}/preferences"),
            "login",
            data={"email": False, "sms": False, "digest_threshold": 10},
            json=True,
        )
    ],
}
