"""``gridgov accounts …``: users, role assignments, units, API tokens and lock-outs."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.accounts import actions
from gridgov.accounts.models import (
    ALL_SCOPES,
    ApiToken,
    Role,
    RoleAssignment,
    Unit,
    UnitKind,
    User,
)
from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_phone
from gridgov.geo.models import Region


class Command(BaseCommand):
    help = "Manage users, their roles, units and API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)

        p = sub.add_parser(
            "create-user", help="create a user (password read from stdin or a prompt)"
        )
        p.add_argument("username")
        p.add_argument("--name", default="", help="display name")
        p.add_argument("--email", default="")
        p.add_argument("--phone", default="", help="work phone")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        p.add_argument(
            "--no-password", action="store_true", help="create without a usable password"
        )

        p = sub.add_parser("update-user", help="change a user's name, e-mail or work phone")
        p.add_argument("username")
        p.add_argument("--name", help="display name")
        p.add_argument("--email")
        p.add_argument("--phone", help="work phone")

        p = sub.add_parser("deactivate", help="deactivate a user and revoke their API tokens")
        p.add_argument("username")

        p = sub.add_parser("activate", help="let a deactivated user log in again")
        p.add_argument("username")

        p = sub.add_parser("assign", help="give a user a role in a region or for a unit")
        p.add_argument("username")
        p.add_argument("role", choices=Role.values)
        p.add_argument("--region", help="region code (district, street, community or grid)")
        p.add_argument("--unit", help="unit code (for unit handlers)")

        p = sub.add_parser("unassign", help="take a role away")
        p.add_argument("username")
        p.add_argument("role", choices=Role.values)
        p.add_argument("--region")
        p.add_argument("--unit")

        p = sub.add_parser("list", help="list users with their roles")
        p.add_argument("--role", choices=Role.values)
        p.add_argument("--region", help="only assignments inside this region's subtree")

        p = sub.add_parser("unit-create", help="create or update a unit")
        p.add_argument("code")
        p.add_argument("name")
        p.add_argument("--kind", choices=UnitKind.values, help="default for a new unit: other")
        p.add_argument(
            "--region",
            action="append",
            default=[],
            help="region served (repeatable; replaces the regions of an existing unit)",
        )
        p.add_argument("--phone", help="duty phone")
        p.add_argument("--inactive", action="store_true", help="mark the unit inactive")

        sub.add_parser("units", help="list units and the regions they serve")

        p = sub.add_parser("token-create", help="create an API token; prints the secret once")
        p.add_argument("username")
        p.add_argument("--name", required=True)
        p.add_argument("--days", type=int, help="lifetime (default GRIDGOV_API_TOKEN_DAYS)")
        p.add_argument(
            "--scope",
            action="append",
            choices=ALL_SCOPES,
            help="what the token may do (repeatable; default: every scope)",
        )

        p = sub.add_parser("tokens", help="list a user's API tokens")
        p.add_argument("username")

        p = sub.add_parser("token-revoke", help="revoke a token by its prefix")
        p.add_argument("username")
        p.add_argument("prefix")

        p = sub.add_parser("unlock", help="lift a lock-out after failed logins")
        p.add_argument("username", nargs="?", help="the locked account")
        p.add_argument("--ip", help="a locked network address (after failures across usernames)")

        p = sub.add_parser(
            "otp-reset",
            help="remove a user's authenticator app and recovery codes (a lost phone)",
        )
        p.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "do_" + options["action"].replace("-", "_"))(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        return user

    def _where(self, options: dict[str, Any]) -> tuple[Region | None, Unit | None]:
        region = unit = None
        if options.get("region"):
            region = Region.objects.filter(code=options["region"]).first()
            if region is None:
                raise CommandError(f"no region with code {options['region']!r}")
        if options.get("unit"):
            unit = Unit.objects.filter(code=options["unit"]).first()
            if unit is None:
                raise CommandError(f"no unit with code {options['unit']!r}")
        return region, unit

    def do_create_user(self, o: dict[str, Any]) -> None:
        password = None
        if o["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        elif not o["no_password"]:
            password = getpass.getpass("password: ")
        user = actions.user_create(
            username=o["username"],
            password=password,
            display_name=o["name"],
            email=o["email"],
            work_phone=o["phone"],
        )
        self.stdout.write(f"created user {user.username}")

    def do_update_user(self, o: dict[str, Any]) -> None:
        user = actions.user_update(
            user=self._user(o["username"]),
            actor=None,
            display_name=o["name"],
            email=o["email"],
            work_phone=o["phone"],
        )
        self.stdout.write(f"updated user {user.username}")

    def do_deactivate(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        revoked = actions.user_deactivate(user=user, actor=None)
        self.stdout.write(f"deactivated {user.username}; {revoked} API tokens revoked")

    def do_activate(self, o: dict[str, Any]) -> None:
        user = actions.user_activate(user=self._user(o["username"]))
        self.stdout.write(f"activated {user.username}")

    def do_assign(self, o: dict[str, Any]) -> None:
        region, unit = self._where(o)
        a = actions.role_assign(
            user=self._user(o["username"]), role=o["role"], region=region, unit=unit
        )
        self.stdout.write(f"assigned: {a}")

    def do_unassign(self, o: dict[str, Any]) -> None:
        region, unit = self._where(o)
        a = RoleAssignment.objects.filter(
            user=self._user(o["username"]), role=o["role"], region=region, unit=unit
        ).first()
        if a is None:
            raise CommandError("no such assignment")
        actions.role_revoke(assignment=a)
        self.stdout.write("removed")

    def do_list(self, o: dict[str, Any]) -> None:
        qs = RoleAssignment.objects.select_related("user", "region", "unit").order_by(
            "user__username", "role"
        )
        if o["role"]:
            qs = qs.filter(role=o["role"])
        if o["region"]:
            qs = qs.filter(region__code__startswith=o["region"])
        for a in qs:
            where = a.unit.code if a.unit else (a.region.code if a.region else "*")
            phone = mask_phone(a.user.work_phone)
            state = "" if a.user.is_active else " (inactive)"
            self.stdout.write(
                f"{a.user.username:<16} {a.user.label:<10} {a.role:<16} {where:<16} {phone}{state}"
            )

    def do_unit_create(self, o: dict[str, Any]) -> None:
        regions = []
        for code in o["region"]:
            region = Region.objects.filter(code=code).first()
            if region is None:
                raise CommandError(f"no region with code {code!r}")
            regions.append(region)
        existing = Unit.objects.filter(code=o["code"]).first()
        if existing is None:
            unit = actions.unit_create(
                code=o["code"],
                name=o["name"],
                kind=o["kind"] or UnitKind.OTHER,
                regions=regions,
                phone=o["phone"] or "",
            )
            if o["inactive"]:
                actions.unit_update(unit=unit, is_active=False)
            self.stdout.write(f"created unit {unit.code} {unit.name}")
        else:
            unit = actions.unit_update(
                unit=existing,
                name=o["name"],
                kind=o["kind"],
                regions=regions or None,
                phone=o["phone"],
                is_active=False if o["inactive"] else None,
            )
            self.stdout.write(f"updated unit {unit.code} {unit.name}")

    def do_units(self, o: dict[str, Any]) -> None:
        for unit in Unit.objects.prefetch_related("regions").order_by("code"):
            codes = ",".join(sorted(r.code for r in unit.regions.all())) or "-"
            state = "" if unit.is_active else " (inactive)"
            self.stdout.write(f"{unit.code:<24} {unit.kind:<20} {unit.name:<20} {codes}{state}")

    def do_token_create(self, o: dict[str, Any]) -> None:
        token, raw = actions.token_create(
            user=self._user(o["username"]), name=o["name"], days=o["days"], scopes=o["scope"]
        )
        self.stdout.write(
            f"token {token.name} (prefix {token.prefix}, expires {token.expires_at:%Y-%m-%d}, "
            f"scopes {' '.join(token.scopes)}):"
        )
        self.stdout.write(raw)

    def do_tokens(self, o: dict[str, Any]) -> None:
        for t in ApiToken.objects.filter(user=self._user(o["username"])):
            state = "revoked" if t.revoked_at else "active"
            self.stdout.write(
                f"{t.prefix}  {t.name:<20} {state:<8} expires {t.expires_at:%Y-%m-%d}  "
                f"scopes {' '.join(t.scopes)}"
            )

    def do_token_revoke(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        token = ApiToken.objects.filter(user=user, prefix=o["prefix"]).first()
        if token is None:
            raise CommandError(f"{user.username} has no token with prefix {o['prefix']!r}")
        actions.token_revoke(user=user, token_uuid=str(token.uuid))
        self.stdout.write("revoked")

    def do_unlock(self, o: dict[str, Any]) -> None:
        if not o["username"] and not o["ip"]:
            raise CommandError("name the username, or the address with --ip")
        count = 0
        if o["username"]:
            count += actions.user_unlock(username=o["username"])
        if o["ip"]:
            count += actions.address_unlock(ip=o["ip"])
        self.stdout.write(f"lock-out lifted ({count} records cleared)")

    def do_otp_reset(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        removed = actions.two_factor_reset(user=user)
        self.stdout.write(
            f"two-factor sign-in reset for {user.username} ({removed} devices removed)"
        )
