"""The admin site checks roles like the actions do and deactivates users through the action."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.test import Client

from gridgov.accounts import actions
from gridgov.accounts.models import ApiToken, Role, RoleAssignment, User
from tests.world import World


class _FormFields(HTMLParser):
    """The values a browser would submit for the admin's change form (``#…_form``)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.data.append((name, a.get("value") or "on"))
            elif kind not in ("submit", "button", "file"):
                self.data.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select is not None and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data.append((name, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def change_form(client: Client, url: str) -> dict[str, Any]:
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data: dict[str, Any] = {}
    for name, value in parser.data:
        if name in data:
            data[name] = (
                [*data[name], value] if isinstance(data[name], list) else [data[name], value]
            )
        else:
            data[name] = value
    return data


def admin_client(world: World) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(world.admin)
    return client


def user_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_unchecking_active_in_the_admin_revokes_the_users_tokens(world: World) -> None:
    actions.token_create(user=world.grid_worker_a, name="phone")
    client = admin_client(world)
    data = change_form(client, user_url(world.grid_worker_a))
    assert data.pop("is_active") == "on"
    response = client.post(user_url(world.grid_worker_a), data)
    assert response.status_code == 302
    assert not User.objects.get(pk=world.grid_worker_a.pk).is_active
    assert ApiToken.objects.get(user=world.grid_worker_a).revoked_at is not None
    # the rest of the form was saved as it was
    assert RoleAssignment.objects.filter(user=world.grid_worker_a).count() == 1


def test_an_administrator_cannot_deactivate_themself_in_the_admin(world: World) -> None:
    client = admin_client(world)
    data = change_form(client, user_url(world.admin))
    data.pop("is_active")
    response = client.post(user_url(world.admin), data)
    assert response.status_code == 200
    assert "You cannot deactivate your own account." in response.content.decode()
    assert User.objects.get(pk=world.admin.pk).is_active


def test_the_role_inline_names_a_region_given_to_a_unit_role(world: World) -> None:
    client = admin_client(world)
    data = change_form(client, user_url(world.nobody))
    data.update(
        {
            "assignments-TOTAL_FORMS": "1",
            "assignments-0-role": Role.UNIT_HANDLER,
            "assignments-0-region": str(world.grid_a.pk),
            "assignments-0-unit": "",
            "assignments-0-user": str(world.nobody.pk),
        }
    )
    response = client.post(user_url(world.nobody), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "the role Unit handler is held for a unit, not a region" in page
    assert "is violated" not in page  # not the database constraint's own wording
    assert not RoleAssignment.objects.filter(user=world.nobody).exists()


def test_the_role_inline_refuses_the_same_role_twice_even_everywhere(world: World) -> None:
    client = admin_client(world)
    data = change_form(client, user_url(world.nobody))
    data["assignments-TOTAL_FORMS"] = "2"
    for n in (0, 1):
        data |= {
            f"assignments-{n}-role": Role.ADMINISTRATOR,
            f"assignments-{n}-region": "",
            f"assignments-{n}-unit": "",
            f"assignments-{n}-user": str(world.nobody.pk),
        }
    response = client.post(user_url(world.nobody), data)
    assert response.status_code == 200
    assert "This role is listed twice for the same place." in response.content.decode()
    assert not RoleAssignment.objects.filter(user=world.nobody).exists()


def test_the_role_inline_saves_a_valid_role_through_the_action(world: World) -> None:
    client = admin_client(world)
    data = change_form(client, user_url(world.nobody))
    data |= {
        "assignments-TOTAL_FORMS": "1",
        "assignments-0-role": Role.GRID_WORKER,
        "assignments-0-region": str(world.grid_b.pk),
        "assignments-0-unit": "",
        "assignments-0-user": str(world.nobody.pk),
    }
    assert client.post(user_url(world.nobody), data).status_code == 302
    assert RoleAssignment.objects.get(user=world.nobody).region == world.grid_b


def test_a_role_assignment_added_on_its_own_page_is_checked_too(world: World) -> None:
    client = admin_client(world)
    response = client.post(
        "/admin/accounts/roleassignment/add/",
        {"user": str(world.nobody.pk), "role": Role.SUPERVISOR, "region": "", "unit": ""},
    )
    assert response.status_code == 200
    assert "the role Supervisor needs a region" in response.content.decode()
    assert not RoleAssignment.objects.filter(user=world.nobody).exists()


def test_the_deactivate_action_skips_the_administrator_themself(world: World) -> None:
    actions.token_create(user=world.grid_worker_b, name="phone")
    client = admin_client(world)
    response = client.post(
        "/admin/accounts/user/",
        {
            "action": "deactivate_users",
            "_selected_action": [str(world.grid_worker_b.pk), str(world.admin.pk)],
        },
        follow=True,
    )
    page = response.content.decode()
    assert "1 user deactivated." in page
    assert "You cannot deactivate your own account." in page
    assert not User.objects.get(pk=world.grid_worker_b.pk).is_active
    assert User.objects.get(pk=world.admin.pk).is_active
    assert ApiToken.objects.get(user=world.grid_worker_b).revoked_at is not None
