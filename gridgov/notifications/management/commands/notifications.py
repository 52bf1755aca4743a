"""``gridgov notifications …``: a delivery pass by hand, and a test notification."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gridgov.accounts.models import User
from gridgov.notifications import actions
from gridgov.notifications.delivery import deliver_pending


class Command(BaseCommand):
    help = "Deliver pending notifications, or send a test notification."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser(
            "deliver", help="one delivery pass: send pending notifications by e-mail and SMS"
        )
        p = sub.add_parser("send-test", help="put a test notification in a user's inbox")
        p.add_argument("--user", required=True, help="username")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "do_" + options["action"].replace("-", "_"))(options)

    def do_deliver(self, o: dict[str, Any]) -> None:
        report = deliver_pending()
        self.stdout.write(f"notifications: {report.summary()}")

    def do_send_test(self, o: dict[str, Any]) -> None:
        user = User.objects.filter(username=o["user"]).first()
        if user is None:
            raise CommandError(f"no user {o['user']!r}")
        if not user.is_active:
            raise CommandError(f"{user.username} is inactive and gets no notifications")
        actions.notification_send_test(user=user)
        self.stdout.write(
            f"test notification created for {user.username}; "
            "run `gridgov notifications deliver` to send it by e-mail or SMS now"
        )
