"""Authorization rules of the category catalogue API and the public Open311 service discovery.

The catalogue is read by every signed-in user; importing changes the platform-wide catalogue
(administrators of every region only, see tests/cases/test_catalogue_api.py for the regional
administrator) and exporting is for administrators. Open311 discovery is public, as the
GeoReport v2 specification has it.
"""

from __future__ import annotations

from tests.authz._base import Rule, static

API = "/api/v1/categories"
OPEN311 = "/api/open311/v2"

RULES: dict[str, list[Rule]] = {
    "api:category_list": [Rule("GET", static(f"{API}?scheme=legacy&q=0102"), "login")],
    "api:category_detail": [Rule("GET", static(f"{API}/legacy/0102"), "login")],
    "api:categories_export": [Rule("GET", static(f"{API}/export?format=xlsx"), "admin")],
    # without a file: 400 for administrators, 403 for everyone else; writes nothing
    "api:categories_import": [Rule("POST", static(f"{API}/import?dry_run=true"), "admin")],
    "open311:discovery": [Rule("GET", static(f"{OPEN311}/discovery.json"), "public")],
    "open311:services": [Rule("GET", static(f"{OPEN311}/services.json"), "public")],
    "open311:service_definition": [
        Rule("GET", static(f"{OPEN311}/services/legacy:0102.json"), "public")
    ],
}
