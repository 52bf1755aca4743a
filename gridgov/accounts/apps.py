from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "gridgov.accounts"
    label = "accounts"
    verbose_name = _("Units and people")

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from gridgov.accounts.models import RoleAssignment, Unit

        for model in (RoleAssignment, Unit):
            post_save.connect(_roles_changed, sender=model, dispatch_uid=f"roles-{model.__name__}")
            post_delete.connect(
                _roles_changed, sender=model, dispatch_uid=f"roles-{model.__name__}-d"
            )
        m2m_changed.connect(_roles_changed, sender=Unit.regions.through, dispatch_uid="roles-m2m")

        # the per-process token cache (gridgov/accounts/token_cache.py)
        from gridgov.accounts import token_cache
        from gridgov.accounts.models import ApiToken, User

        for sender, receiver in (
            (ApiToken, token_cache.token_saved_or_deleted),
            (User, token_cache.user_saved_or_deleted),
        ):
            post_save.connect(receiver, sender=sender, dispatch_uid=f"tokens-{sender.__name__}")
            post_delete.connect(receiver, sender=sender, dispatch_uid=f"tokens-{sender.__name__}-d")

        from django.contrib.auth.signals import user_logged_in
        from django.core import checks

        checks.register(check_two_factor_roles, checks.Tags.security)

        user_logged_in.connect(_session_started, dispatch_uid="gridgov-session-started")


def _roles_changed(sender: Any, **kwargs: Any) -> None:
    """Role assignments or units changed: every process reloads them (see ``user_assignments``)."""
    if kwargs.get("raw") or str(kwargs.get("action", "post")).startswith("pre"):
        return
    from gridgov.accounts.selectors import roles_changed
    from gridgov.core.stamps import in_transaction

    in_transaction(roles_changed)


def _session_started(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """A login starts the session's clocks (gridgov.core.security.IdleSessionMiddleware)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    from gridgov.core.security import SEEN_KEY, STARTED_KEY, now

    session[STARTED_KEY] = session[SEEN_KEY] = int(now())


def check_two_factor_roles(**kwargs: Any) -> list[Any]:
    """GRIDGOV_2FA_ROLES names role codes: a typo would silently require nobody to enrol."""
    from django.conf import settings
    from django.core.checks import Error

    from gridgov.accounts.models import Role

    unknown = [r for r in settings.GRIDGOV_2FA_ROLES if r not in Role.values]
    if not unknown:
        return []
    return [
        Error(
            f"GRIDGOV_2FA_ROLES names unknown roles: {', '.join(unknown)}",
            hint=f"role codes are {', '.join(Role.values)}",
            id="gridgov.E001",
        )
    ]
