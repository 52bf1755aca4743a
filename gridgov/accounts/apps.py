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


def _roles_changed(sender: Any, **kwargs: Any) -> None:
    """Role assignments or units changed: every process reloads them (see ``user_assignments``)."""
    if kwargs.get("raw") or str(kwargs.get("action", "post")).startswith("pre"):
        return
    from gridgov.accounts.selectors import roles_changed
    from gridgov.core.stamps import in_transaction

    in_transaction(roles_changed)
