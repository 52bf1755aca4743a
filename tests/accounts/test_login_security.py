"""Login throttling: an account is locked after a few failures from anywhere, an address after
many failures across usernames (password spraying); a street office behind one address is not
locked out by a few typos."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.test import Client

from tests.world import PASSWORD, World


def attempt(username: str, password: str, address: str = "127.0.0.1") -> Any:
    client = Client(REMOTE_ADDR=address, headers={"Accept-Language": "en"})
    return client.post("/accounts/login/", {"username": username, "password": password})


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and "/accounts/login/" not in response["Location"]


def test_an_account_is_locked_after_five_failures_even_from_different_addresses(
    world: World,
) -> None:
    for n in range(5):
        attempt("grid_worker_a", "wrong", address=f"10.0.0.{n + 1}")
    refused = attempt("grid_worker_a", PASSWORD, address="10.0.0.99")
    assert not logged_in(refused)
    assert "Account locked" in refused.content.decode()
    # the addresses used are not locked for other accounts
    assert logged_in(attempt("grid_worker_b", PASSWORD, address="10.0.0.1"))


def test_an_address_is_paused_after_many_failures_across_usernames(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_LOGIN_IP_FAILURE_LIMIT = 6
    sprayer = "203.0.113.9"
    for username in ("grid_worker_a", "grid_worker_b", "dispatcher", "leader", "nobody", "ghost"):
        assert not logged_in(attempt(username, "Spring2026!", address=sprayer))
    # even the right password of an account never tried is refused from that address
    refused = attempt("supervisor", PASSWORD, address=sprayer)
    assert not logged_in(refused)
    assert refused.status_code in (403, 429)
    assert "Logins paused" in refused.content.decode()
    # the accounts themselves are not locked: their owners log in from elsewhere
    assert logged_in(attempt("grid_worker_a", PASSWORD, address="198.51.100.4"))
    assert logged_in(attempt("supervisor", PASSWORD, address="198.51.100.5"))


def test_a_few_typos_in_a_shared_office_do_not_pause_the_offices_address(world: World) -> None:
    office = "192.0.2.10"
    for username in ("grid_worker_a", "grid_worker_b", "dispatcher", "leader"):
        attempt(username, "typo", address=office)
        attempt(username, "typo again", address=office)
    assert logged_in(attempt("supervisor", PASSWORD, address=office))
    assert logged_in(attempt("grid_worker_a", PASSWORD, address=office))


def test_an_administrator_lifts_an_address_pause_from_the_command_line(
    world: World, settings: Any, capsys: Any
) -> None:
    settings.GRIDGOV_LOGIN_IP_FAILURE_LIMIT = 3
    sprayer = "203.0.113.20"
    for username in ("a1", "a2", "a3"):
        attempt(username, "guess", address=sprayer)
    assert not logged_in(attempt("supervisor", PASSWORD, address=sprayer))
    call_command("accounts", "unlock", "--ip", sprayer)
    assert "lock-out lifted" in capsys.readouterr().out
    assert logged_in(attempt("supervisor", PASSWORD, address=sprayer))


def test_a_successful_login_clears_only_its_own_accounts_failures(
    world: World, settings: Any
) -> None:
    settings.GRIDGOV_LOGIN_IP_FAILURE_LIMIT = 5
    address = "203.0.113.30"
    for username in ("x1", "x2", "x3"):
        attempt(username, "guess", address=address)
    # the attacker logs into an account of their own: its failure is cleared, not the guesses
    attempt("grid_worker_b", "wrong", address=address)
    assert logged_in(attempt("grid_worker_b", PASSWORD, address=address))
    for username in ("x4", "x5"):
        attempt(username, "guess", address=address)
    assert not logged_in(attempt("supervisor", PASSWORD, address=address))
