from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from gridgov.core.errors import DomainError
from gridgov.geo.models import Level, Region


class GenerateGridsForm(forms.Form):
    households_per_grid = forms.IntegerField(
        label=_("Households per grid"),
        min_value=1,
        max_value=1_000_000,
        required=False,
        help_text=_("Balance the grids on the households of the community's buildings."),
    )
    area_m2 = forms.FloatField(
        label=_("Area per grid (m²)"),
        min_value=1,
        max_value=1e10,
        required=False,
        help_text=_("Or cut grids of about this area."),
    )
    replace = forms.BooleanField(
        label=_("Replace the existing grids"),
        required=False,
        help_text=_("Needed when the community already has grids."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("households_per_grid") is None) == (data.get("area_m2") is None):
            raise forms.ValidationError(_("Give either households per grid or area per grid."))
        return data


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "area_m2", "target_households", "grid_type"]
    list_filter = ["level", "grid_type"]
    search_fields = ["code", "name"]
    readonly_fields = [
        "min_lon",
        "min_lat",
        "max_lon",
        "max_lat",
        "label_lon",
        "label_lat",
        "area_m2",
        "generate_grids_link",
    ]
    autocomplete_fields = ["parent", "responsible_unit"]

    @admin.display(description=_("Grids"))
    def generate_grids_link(self, obj: Region | None) -> str:
        if obj is None or obj.pk is None or obj.level != Level.COMMUNITY:
            return "–"
        url = reverse("admin:geo_region_generate_grids", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, gettext("Generate grids"))

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/generate-grids/",
                self.admin_site.admin_view(self.generate_grids_view),
                name="geo_region_generate_grids",
            ),
        ]
        return custom + super().get_urls()

    def _may_generate(self, request: HttpRequest, community: Region) -> bool:
        from gridgov.accounts.selectors import is_administrator

        if not self.has_change_permission(request, community):
            return False
        user: Any = request.user
        return bool(user.is_superuser) or is_administrator(user, region_code=community.code)

    def generate_grids_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from gridgov.geo.actions import grids_generate

        community = self.get_object(request, unquote(object_id))
        if community is None:
            messages.warning(request, gettext("That region does not exist."))
            return HttpResponseRedirect(reverse("admin:geo_region_changelist"))
        if not self._may_generate(request, community):
            raise PermissionDenied
        change_url = reverse("admin:geo_region_change", args=[community.pk])
        if community.level != Level.COMMUNITY:
            messages.error(request, gettext("Grids are generated for a community only."))
            return HttpResponseRedirect(change_url)

        result = None
        if request.method == "POST":
            form = GenerateGridsForm(request.POST)
            if form.is_valid():
                save = "_save" in request.POST
                try:
                    result = grids_generate(
                        community=community,
                        households_per_grid=form.cleaned_data["households_per_grid"],
                        area_m2=form.cleaned_data["area_m2"],
                        replace=form.cleaned_data["replace"],
                        dry_run=not save,
                    )
                except DomainError as exc:
                    form.add_error(None, exc.message)
                else:
                    if save:
                        messages.success(
                            request,
                            gettext("%(count)d grids were saved for %(community)s.")
                            % {"count": len(result.grids), "community": community.name},
                        )
                        changelist = reverse("admin:geo_region_changelist")
                        return HttpResponseRedirect(
                            f"{changelist}?{urlencode({'q': community.code})}"
                        )
        else:
            has_buildings = _community_households(community) > 0
            form = GenerateGridsForm(
                initial={"households_per_grid": 300} if has_buildings else {"area_m2": 10000}
            )

        existing = Region.objects.filter(level=Level.GRID, code__startswith=community.code).count()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": community,
            "community": community,
            "title": gettext("Generate grids for %(name)s") % {"name": community.name},
            "form": form,
            "result": result,
            "existing_grids": existing,
            "households": _community_households(community),
            "preview_geojson": result.feature_collection() if result else None,
            "community_geojson": community.geometry,
            "tile_url": settings.GRIDGOV_TILE_URL,
            "tile_attribution": settings.GRIDGOV_TILE_ATTRIBUTION,
            "change_url": change_url,
            "can_save": result is not None and not result.blockers,
        }
        return TemplateResponse(request, "admin/geo/generate_grids.html", context)


def _community_households(community: Region) -> int:
    from django.db.models import Sum

    from gridgov.registry.models import Building

    total = Building.objects.filter(community_code=community.code).aggregate(n=Sum("households"))
    return int(total["n"] or 0)
