"""``gridgov cases …``: look at cases, take an action as a named user, and the workflow table.

Every command runs as a named user (``--as USERNAME``) and sees and does exactly what that user
could on the web or through the API: the same selectors, the same table, the same actions.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from gridgov.accounts.models import User
from gridgov.core.errors import DomainError
from gridgov.core.masking import mask_phone

from ...actions import Inputs, case_act, case_report
from ...deadlines import light_of
from ...models import CaseEvent, Source, Urgency
from ...permissions import allowed_transitions
from ...selectors import CaseFilter, case_get, cases_filtered
from ...workflow import ACTION_LABELS, TRANSITIONS, State

_LIGHT = {"green": "●", "yellow": "▲", "red": "■", "": " "}


class Command(BaseCommand):
    help = "Cases: list, show, report, act, and print the workflow table."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command_name", required=True)

        p = sub.add_parser("list", help="cases a user may see, filtered")
        p.add_argument("--as", dest="username", required=True, help="list as this user")
        p.add_argument("--state", action="append", default=[], choices=State.values)
        p.add_argument("--category", default="")
        p.add_argument("--region", default="", help="a region code (subtree)")
        p.add_argument("--unit", default="", help="a unit code (lead or assisting)")
        p.add_argument("--light", default="", choices=["", "green", "yellow", "red", "none"])
        p.add_argument("--source", default="", choices=["", *Source.values])
        p.add_argument("--text", default="")
        p.add_argument("--mine", action="store_true", help="only the user's to-do list")
        p.add_argument("--limit", type=int, default=50)
        p.add_argument("--json", action="store_true", help="one JSON object per line")

        p = sub.add_parser("show", help="a case with its timeline and the user's actions")
        p.add_argument("number")
        p.add_argument("--as", dest="username", required=True)

        p = sub.add_parser("report", help="report a problem as a user")
        p.add_argument("--as", dest="username", required=True)
        p.add_argument("--category", required=True, help="category code or scheme:code")
        p.add_argument("--description", required=True)
        p.add_argument("--lat", type=float, required=True)
        p.add_argument("--lon", type=float, required=True)
        p.add_argument("--crs", default="wgs84", choices=["wgs84", "gcj02"])
        p.add_argument("--address", default="")
        p.add_argument("--urgency", default=Urgency.NORMAL, choices=Urgency.values)
        p.add_argument("--source", default=None, choices=Source.values)
        p.add_argument("--attribute", action="append", default=[], help="code=value (repeat)")

        p = sub.add_parser("act", help="take an action of the workflow table as a user")
        p.add_argument("number")
        p.add_argument("action", choices=[t.action for t in TRANSITIONS])
        p.add_argument("--as", dest="username", required=True)
        p.add_argument("--version", type=int, help="the version you saw (default: the current)")
        p.add_argument("--note", default="")
        p.add_argument("--reason", default="")
        p.add_argument("--category")
        p.add_argument("--urgency", choices=Urgency.values)
        p.add_argument("--lead-unit")
        p.add_argument("--assisting-unit", action="append", default=[])
        p.add_argument("--span", default="", help="an extension such as 4h or 2d")
        p.add_argument("--target", help="merge into this case number")
        p.add_argument("--rating", type=int)

        sub.add_parser("workflow", help="print the workflow table")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["command_name"]
        try:
            getattr(self, f"do_{name}")(options)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    # --- helpers --------------------------------------------------------------------------

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        return user

    # --- commands -------------------------------------------------------------------------

    def do_list(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        f = CaseFilter(
            states=tuple(o["state"]),
            category=o["category"],
            region=o["region"],
            unit=o["unit"],
            light=o["light"],
            source=o["source"],
            text=o["text"],
            mine=o["mine"],
        )
        now = timezone.now()
        limit = max(1, min(int(o["limit"]), 10_000))
        rows = cases_filtered(user, f).select_related("category", "lead_unit")[:limit]
        for c in rows:
            light = light_of(c.due_soon_at, c.due_at, now)
            if o["json"]:
                self.stdout.write(
                    json.dumps(
                        {
                            "number": c.number,
                            "state": c.state,
                            "category": c.category.code,
                            "grid": c.region_code,
                            "light": light,
                            "due_at": c.due_at.isoformat() if c.due_at else None,
                            "lead_unit": c.lead_unit.code if c.lead_unit else None,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                due = timezone.localtime(c.due_at).strftime("%m-%d %H:%M") if c.due_at else "-"
                self.stdout.write(
                    f"{_LIGHT[light]} {c.number}  {c.state:<12} {due:<11} "
                    f"{c.category.code:<6} {c.category.name}  {c.region_code}"
                )

    def do_show(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        c = case_get(o["number"], user)
        now = timezone.now()
        w = self.stdout.write
        w(f"{c.number}  {c.get_state_display()}  (version {c.version})")
        w(f"  category   {c.category.code} {c.category.name}")
        w(f"  grid       {c.region_code} {c.grid.name if c.grid else ''}")
        w(f"  where      {c.lat:.6f}, {c.lon:.6f} {c.address}")
        w(f"  reporter   {c.reporter_name} {mask_phone(c.reporter_phone)} ({c.source})")
        w(f"  lead unit  {c.lead_unit.name if c.lead_unit else '-'}")
        if c.due_at:
            due = timezone.localtime(c.due_at).strftime("%Y-%m-%d %H:%M")
            w(f"  step       {c.step} due {due} [{light_of(c.due_soon_at, c.due_at, now)}]")
        w(f"  text       {c.description}")
        w("timeline:")
        for e in CaseEvent.objects.filter(case=c).select_related("actor"):
            at = timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M")
            who = e.actor.label if e.actor else "-"
            label = ACTION_LABELS.get(e.action, e.action)
            w(f"  {e.version:>3} {at} {label} ({e.from_state or '-'} → {e.to_state}) {who}")
            if e.note:
                w(f"      {e.note}")
        allowed = allowed_transitions(c, user)
        w("you may: " + (", ".join(t.action for t in allowed) if allowed else "nothing now"))

    def do_report(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        attributes: dict[str, Any] = {}
        for item in o["attribute"]:
            code, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--attribute {item!r}: write code=value")
            attributes.setdefault(code, [])
            attributes[code].append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in attributes.items()}
        case = case_report(
            actor=user,
            category=o["category"],
            description=o["description"],
            lat=o["lat"],
            lon=o["lon"],
            crs=o["crs"],
            address=o["address"],
            urgency=o["urgency"],
            source=o["source"],
            attributes=flat,
        )
        self.stdout.write(f"reported {case.number} in grid {case.region_code}")

    def do_act(self, o: dict[str, Any]) -> None:
        user = self._user(o["username"])
        case = case_get(o["number"], user)
        version = o["version"] if o["version"] is not None else case.version
        case = case_act(
            case=case,
            actor=user,
            action=o["action"],
            version=version,
            inputs=Inputs(
                note=o["note"],
                reason=o["reason"],
                category=o["category"],
                urgency=o["urgency"],
                lead_unit=o["lead_unit"],
                assisting_units=o["assisting_unit"],
                span=o["span"],
                target=o["target"],
                rating=o["rating"],
            ),
        )
        self.stdout.write(f"{case.number}: {o['action']} → {case.state} (version {case.version})")

    def do_workflow(self, o: dict[str, Any]) -> None:
        for t in TRANSITIONS:
            who = ", ".join(sorted(t.who))
            needs = ", ".join(t.required) or "-"
            src = ",".join(sorted(t.sources)) if len(t.sources) < 6 else "any open"
            self.stdout.write(
                f"{t.action:<20} {src} → {t.target or '(same)'}  by {who}; needs {needs}; "
                f"clock {t.clock}"
            )
