from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "gridgov.core"
    label = "core"
    verbose_name = _("System")

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = _("gridgov administration")
        admin.site.site_title = _("gridgov administration")
        admin.site.index_title = _("Regions, units, people and settings")
