"""A dispatcher turns on two-factor sign-in in the browser: scans (here: reads) the secret,
enters the app's code, keeps the recovery codes; logs out; logs in again with the password and
a code, after a wrong code is refused."""

from __future__ import annotations

import base64
import time
from typing import Any

from django_otp.oath import TOTP

from gridgov.accounts.selectors import has_authenticator
from tests.e2e.conftest import login, screenshot
from tests.world import PASSWORD, World


def code_for(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for ``secret`` (base32, as on the page)."""
    totp = TOTP(base64.b32decode(secret.replace(" ", "")), step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_a_dispatcher_enrols_then_logs_in_with_password_and_code(
    world: World, page: Any, settings: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no pause after the wrong code below
    login(page, "dispatcher")
    page.goto(page.base_url + "/accounts/security/")
    page.click("a[href='/accounts/two-factor/']")
    page.wait_for_selector("img.enrol__qr")
    assert page.get_attribute("img.enrol__qr", "src").startswith("data:image/svg+xml")
    secret = page.inner_text("#two-factor-secret").strip()
    screenshot(page, "two-factor-enrol")
    page.fill("#id_code", code_for(secret))
    page.click("button[type=submit]")
    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    assert has_authenticator(world.dispatcher)
    page.click("a.btn--primary")
    page.wait_for_url(lambda url: "/accounts/two-factor" not in url)

    page.click(".logout-form button")
    page.wait_for_url("**/accounts/login/")

    page.fill("#id_username", "dispatcher")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/two-factor/verify/")
    screenshot(page, "two-factor-verify")

    page.fill("#id_code", "000000" if code_for(secret) != "000000" else "111111")
    page.click("button[type=submit]")
    page.wait_for_selector("#code-error")
    assert "/accounts/two-factor/verify/" in page.url
    assert page.get_attribute("#id_code", "aria-invalid") == "true"
    assert page.goto(page.base_url + "/cases/todo/").url.endswith(
        "/accounts/login/?next=/cases/todo/"
    )

    page.fill("#id_username", "dispatcher")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/two-factor/verify/")
    page.fill("#id_code", code_for(secret, steps_ahead=1))
    page.click("button[type=submit]")
    page.wait_for_url("**/cases/todo/")
    assert page.locator(".logout-form").count() == 1
