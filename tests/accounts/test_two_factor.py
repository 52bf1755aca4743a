"""Two-factor sign-in: enrolment with an authenticator app (QR code and secret), the code step
after the password, recovery codes, resets by administrators, and the roles that must enrol."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from gridgov.accounts import actions, selectors
from gridgov.core import security
from tests.world import PASSWORD, World


def code_for(key: bytes, *, steps_ahead: int = 0) -> str:
    """The authenticator's code now (or ``steps_ahead`` 30-second steps later)."""
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def enrolled(user: Any) -> tuple[bytes, list[str]]:
    """Set up an authenticator for ``user`` through the actions: its key and recovery codes."""
    device = actions.two_factor_begin(user=user)
    _device, codes = actions.two_factor_confirm(user=user, code=code_for(device.bin_key))
    return device.bin_key, codes


def password_step(username: str, client: Client | None = None) -> tuple[Client, Any]:
    client = client or Client(headers={"Accept-Language": "en"})
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    return client, response


def is_logged_in(client: Client) -> bool:
    return client.get("/map/").status_code == 200


# --- enrolment ------------------------------------------------------------------------------


def test_the_enrolment_page_shows_a_qr_code_image_and_the_secret(world: World) -> None:
    client = Client()
    client.force_login(world.dispatcher)
    page = client.get("/accounts/two-factor/").content.decode()
    assert re.search(r'<img class="enrol__qr" src="data:image/svg\+xml', page)
    secret = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', page)
    assert secret is not None
    key = base64.b32decode(secret.group(1).replace(" ", ""))
    device = TOTPDevice.objects.get(user=world.dispatcher)
    assert key == device.bin_key and not device.confirmed
    # reloading keeps the secret the user may have scanned already
    again = client.get("/accounts/two-factor/").content.decode()
    assert secret.group(1) in again
    assert TOTPDevice.objects.filter(user=world.dispatcher).count() == 1


def test_a_right_code_turns_two_factor_on_and_shows_ten_recovery_codes_once(world: World) -> None:
    client = Client()
    client.force_login(world.dispatcher)
    client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=world.dispatcher)
    response = client.post("/accounts/two-factor/", {"code": code_for(device.bin_key)})
    assert response.status_code == 200
    codes = re.findall(
        r'<code class="code">([a-z2-7]{4}-[a-z2-7]{4})</code>', response.content.decode()
    )
    assert len(codes) == 10
    assert selectors.has_authenticator(world.dispatcher)
    assert selectors.recovery_codes_left(world.dispatcher) == 10
    # this session gave its code: it goes on without another
    assert is_logged_in(client)
    assert codes[0] not in client.get("/accounts/security/").content.decode()


def test_a_wrong_code_does_not_turn_two_factor_on(world: World) -> None:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.dispatcher)
    client.get("/accounts/two-factor/")
    response = client.post("/accounts/two-factor/", {"code": "000000"})
    assert response.status_code == 422
    assert "the code is wrong or has expired" in response.content.decode()
    assert not selectors.has_authenticator(world.dispatcher)


# --- the code step after the password -------------------------------------------------------


def test_with_an_authenticator_the_password_alone_does_not_log_in(world: World) -> None:
    enrolled(world.supervisor)
    client, response = password_step("supervisor")
    assert response["Location"] == "/accounts/two-factor/verify/"
    assert "_auth_user_id" not in client.session
    assert not is_logged_in(client)


def test_the_password_and_a_code_log_in_and_return_to_the_page_asked_for(world: World) -> None:
    key, _codes = enrolled(world.supervisor)
    client = Client(headers={"Accept-Language": "en"})
    client.post(
        "/accounts/login/?next=/cases/",
        {"username": "supervisor", "password": PASSWORD, "next": "/cases/"},
    )
    assert "Signing in as supervisor" in client.get("/accounts/two-factor/verify/").content.decode()
    response = client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    assert is_logged_in(client)


def test_a_wrong_code_is_refused_and_leaves_the_user_logged_out(
    world: World, settings: Any
) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # a wrong code: an hour before the next try
    key, _codes = enrolled(world.supervisor)
    client, _ = password_step("supervisor")
    response = client.post("/accounts/two-factor/verify/", {"code": "123456"})
    assert response.status_code == 422
    assert "The code is wrong or has expired" in response.content.decode()
    assert not is_logged_in(client)
    # after a wrong code the device makes the next try wait (django-otp's throttling)
    too_soon = client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    assert too_soon.status_code == 422


def test_a_code_is_good_only_once(world: World) -> None:
    key, _codes = enrolled(world.supervisor)
    first, _ = password_step("supervisor")
    code = code_for(key, steps_ahead=1)
    assert first.post("/accounts/two-factor/verify/", {"code": code}).status_code == 302
    second, _ = password_step("supervisor")
    assert second.post("/accounts/two-factor/verify/", {"code": code}).status_code == 422


def test_a_recovery_code_logs_in_once(world: World) -> None:
    _key, codes = enrolled(world.supervisor)
    first, _ = password_step("supervisor")
    typed = f"{codes[3][:4]}-{codes[3][4:].upper()}"  # as printed, in capitals
    response = first.post("/accounts/two-factor/verify/", {"code": typed}, follow=True)
    assert "You used a recovery code; 9 are left" in response.content.decode()
    assert is_logged_in(first)
    second, _ = password_step("supervisor")
    assert second.post("/accounts/two-factor/verify/", {"code": codes[3]}).status_code == 422


def test_the_password_step_expires_after_five_minutes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _codes = enrolled(world.supervisor)
    client, _ = password_step("supervisor")
    later = time.time() + 301
    monkeypatch.setattr(security, "now", lambda: later)
    response = client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not is_logged_in(client)


def test_the_code_step_without_a_password_sends_to_the_login(world: World) -> None:
    response = Client().get("/accounts/two-factor/verify/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_a_session_logged_in_without_a_code_must_give_one(world: World) -> None:
    key, _codes = enrolled(world.supervisor)
    client = Client()
    client.force_login(world.supervisor)  # e.g. through the admin's login form
    response = client.get("/cases/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/verify/?next=%2Fcases%2F"
    api = client.get("/api/v1/accounts/me")
    assert api.status_code == 403 and api.json()["detail"]["two_factor"] == "verify"
    client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    assert client.get("/cases/").status_code == 200


# --- roles that must enrol ------------------------------------------------------------------


def test_a_role_listed_in_the_setting_must_enrol_before_anything_else(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_2FA_ROLES = ["administrator", "leader"]
    client, response = password_step("leader")
    assert response.status_code == 302
    page = client.get("/map/")
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/two-factor/?next=")
    assert client.get("/admin/").status_code == 302
    session_api = client.get("/api/v1/accounts/me", headers={"Accept-Language": "en"})
    assert session_api.status_code == 403
    assert session_api.json()["detail"] == {
        "two_factor": "enrol",
        "url": "/accounts/two-factor/",
    }
    # enrolling lets the user in
    client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=world.leader)
    client.post("/accounts/two-factor/", {"code": code_for(device.bin_key)})
    assert is_logged_in(client)


def test_roles_not_listed_log_in_with_the_password_alone(world: World, settings: Any) -> None:
    settings.GRIDGOV_2FA_ROLES = ["administrator"]
    client, _ = password_step("grid_worker_a")
    assert is_logged_in(client)


def test_api_tokens_are_not_affected_by_the_enrolment_rule(world: World, settings: Any) -> None:
    settings.GRIDGOV_2FA_ROLES = ["administrator"]
    _token, raw = actions.token_create(user=world.admin, name="sync")
    response = Client().get("/api/v1/accounts/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200


def test_a_required_role_cannot_turn_two_factor_off(world: World, settings: Any) -> None:
    settings.GRIDGOV_2FA_ROLES = ["leader"]
    key, _codes = enrolled(world.leader)
    client, _ = password_step("leader")
    client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    response = client.post("/accounts/two-factor/disable/", {"password": PASSWORD}, follow=True)
    assert "your role requires two-factor sign-in" in response.content.decode()
    assert selectors.has_authenticator(world.leader)


# --- the user's own settings ----------------------------------------------------------------


def test_a_user_turns_two_factor_off_with_their_password(world: World) -> None:
    enrolled(world.dispatcher)
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.dispatcher)
    device = TOTPDevice.objects.get(user=world.dispatcher)
    client.post("/accounts/two-factor/verify/", {"code": code_for(device.bin_key, steps_ahead=1)})
    wrong = client.post("/accounts/two-factor/disable/", {"password": "nope"}, follow=True)
    assert "the password is wrong" in wrong.content.decode()
    assert selectors.has_authenticator(world.dispatcher)
    client.post("/accounts/two-factor/disable/", {"password": PASSWORD})
    assert not selectors.has_authenticator(world.dispatcher)
    assert not StaticDevice.objects.filter(user=world.dispatcher).exists()


def test_new_recovery_codes_replace_the_old_ones(world: World) -> None:
    key, old = enrolled(world.dispatcher)
    client = Client()
    client.force_login(world.dispatcher)
    client.post("/accounts/two-factor/verify/", {"code": code_for(key, steps_ahead=1)})
    page = client.post("/accounts/two-factor/recovery-codes/").content.decode()
    new = [
        c.replace("-", "")
        for c in re.findall(r'<code class="code">([a-z2-7]{4}-[a-z2-7]{4})</code>', page)
    ]
    assert len(new) == 10 and not set(new) & set(old)
    assert actions.two_factor_check(user=world.dispatcher, code=new[0]) is not None
    assert actions.two_factor_check(user=world.dispatcher, code=old[0]) is None


def test_the_security_page_and_the_api_tell_the_state(world: World, settings: Any) -> None:
    settings.GRIDGOV_2FA_ROLES = ["dispatcher"]
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.grid_worker_a)
    page = client.get("/accounts/security/").content.decode()
    assert 'id="two-factor-status">Off<' in page
    assert client.get("/api/v1/accounts/two-factor").json() == {
        "enrolled": False,
        "required": False,
        "recovery_codes_left": 0,
    }
    enrolled(world.grid_worker_a)
    _token, raw = actions.token_create(user=world.grid_worker_a, name="t")
    status = Client().get("/api/v1/accounts/two-factor", headers={"Authorization": f"Bearer {raw}"})
    assert status.json() == {"enrolled": True, "required": False, "recovery_codes_left": 10}


# --- resets by administrators ---------------------------------------------------------------


def test_an_administrator_resets_a_lost_phone_from_the_command_line(
    world: World, capsys: Any
) -> None:
    enrolled(world.supervisor)
    call_command("accounts", "otp-reset", "supervisor")
    assert "two-factor sign-in reset for supervisor (2 devices removed)" in capsys.readouterr().out
    client, _ = password_step("supervisor")
    assert is_logged_in(client)


def test_an_administrator_resets_two_factor_in_the_admin(world: World) -> None:
    enrolled(world.supervisor)
    admin = Client()
    admin.force_login(world.admin)
    response = admin.post(
        "/admin/accounts/user/",
        {"action": "reset_two_factor", "_selected_action": [world.supervisor.pk]},
    )
    assert response.status_code == 302
    assert not selectors.has_authenticator(world.supervisor)
    assert not StaticDevice.objects.filter(user=world.supervisor).exists()


def test_an_administrator_resets_two_factor_through_the_api(world: World) -> None:
    enrolled(world.grid_worker_a)
    _token, raw = actions.token_create(user=world.admin, name="admin")
    response = Client().post(
        "/api/v1/accounts/users/grid_worker_a/two-factor/reset",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200
    assert response.json() == {"username": "grid_worker_a", "removed": 2}
    assert not selectors.has_authenticator(world.grid_worker_a)
    # others may not
    _token, theirs = actions.token_create(user=world.grid_leader, name="x")
    refused = Client().post(
        "/api/v1/accounts/users/grid_worker_a/two-factor/reset",
        headers={"Authorization": f"Bearer {theirs}"},
    )
    assert refused.status_code == 403
