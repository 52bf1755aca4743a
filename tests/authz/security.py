"""Authorization rules of the sign-in and security pages and API (two-factor sign-in, the
password): every user for their own account; resetting another user's two-factor sign-in is
for the administrators who administer that user."""

from __future__ import annotations

from tests.authz._base import Rule, static

RULES: dict[str, list[Rule]] = {
    "accounts:security": [Rule("GET", static("/accounts/security/"), "login")],
    "accounts:password_change": [
        Rule("GET", static("/accounts/password/"), "login"),
        # a wrong old password: the form answers with its errors, nothing changes
        Rule(
            "POST",
            static("/accounts/password/"),
            "login",
            data={"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
        ),
    ],
    "accounts:two_factor_enrol": [Rule("GET", static("/accounts/two-factor/"), "login")],
    "accounts:two_factor_verify": [Rule("GET", static("/accounts/two-factor/verify/"), "public")],
    "accounts:two_factor_recovery_codes": [
        Rule("POST", static("/accounts/two-factor/recovery-codes/"), "login")
    ],
    "accounts:two_factor_disable": [
        Rule("POST", static("/accounts/two-factor/disable/"), "login", data={"password": "no"})
    ],
    "api:two_factor_status": [Rule("GET", static("/api/v1/accounts/two-factor"), "login")],
    "api:user_two_factor_reset": [
        Rule(
            "POST",
            lambda o: (
                f"/api/v1/accounts/users/{'grid_worker_a' if o == 'in' else 'leader'}"
                "/two-factor/reset"
            ),
            "region_admin",
        )
    ],
}
