from __future__ import annotations

from pathlib import Path
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
from gridgov.geo.admin_io import ImportExportAdmin
from gridgov.geo.bulk import StagedUpload
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


class RegionImportForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "A division CSV (code,name,level,parent_code, or the china-division package's "
            "areas.csv, streets.csv or villages.csv; UTF-8 or GBK) or a GeoJSON "
            "FeatureCollection of polygons matched by properties.code. The kind is detected."
        ),
    )
    repair = forms.BooleanField(
        label=_("Repair invalid polygons"),
        required=False,
        help_text=_("GeoJSON: repair self-intersections and report the change of area."),
    )
    strict = forms.BooleanField(
        label=_("Treat check warnings as errors"),
        required=False,
        help_text=_("GeoJSON: overlaps, gaps and parts outside the parent stop the import."),
    )
    district = forms.CharField(
        label=_("District"),
        required=False,
        max_length=12,
        help_text=_("CSV: keep only this district's subtree (its 6-digit code)."),
    )

    def clean_district(self) -> str | None:
        value = (self.cleaned_data.get("district") or "").strip()
        if value and not value.isdigit():
            raise forms.ValidationError(_("A district code has digits only."))
        return value or None


class RegionExportForm(forms.Form):
    level = forms.ChoiceField(
        label=_("Level"),
        required=False,
        choices=[("", _("any level")), *Level.choices],
    )
    under = forms.CharField(
        label=_("Under"),
        required=False,
        max_length=15,
        help_text=_("Only this region's subtree (its code); empty for every region."),
    )

    def clean_under(self) -> str | None:
        value = (self.cleaned_data.get("under") or "").strip()
        if value and not (value.isdigit() and 6 <= len(value) <= 15):
            raise forms.ValidationError(_("A region code has 6 to 15 digits."))
        return value or None


#: A feature's status as words on the report page.
STATUS_LABELS = {
    "added": _("added"),
    "updated": _("updated"),
    "unchanged": _("unchanged"),
    "error": _("error"),
}
#: Feature rows shown on the report page at most (the problems first when there are more).
REPORT_ROWS = 1000


@admin.register(Region)
class RegionAdmin(ImportExportAdmin):
    import_form = RegionImportForm
    import_title = _("Import regions")
    import_template = "admin/geo/import_regions.html"
    import_kinds = ("geojson", "divisions")
    export_form = RegionExportForm
    export_title = _("Export GeoJSON")
    export_template = "admin/geo/export_regions.html"
    change_list_template = "admin/geo/region/change_list.html"
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
        generate = path(
            "<path:object_id>/generate-grids/",
            self.admin_site.admin_view(self.generate_grids_view),
            name="geo_region_generate_grids",
        )
        return [generate, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"can_import_regions": self._may_import(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def _may_import(self, request: HttpRequest) -> bool:
        """Administrators (of any region; each import checks the regions it touches)."""
        from gridgov.accounts.models import Role
        from gridgov.accounts.selectors import user_has_role

        if not self.has_change_permission(request):
            return False
        user: Any = request.user
        return bool(user.is_superuser) or user_has_role(user, Role.ADMINISTRATOR)

    def _acting_user(self, request: HttpRequest) -> Any:
        """Whom an import is scoped to: nobody for a superuser (as "Generate grids")."""
        user: Any = request.user
        return None if user.is_superuser else user

    def _run_import(
        self, request: HttpRequest, *, kind: str, path: Path, options: dict[str, Any], dry_run: bool
    ) -> Any:
        from gridgov.geo.actions import regions_import_geojson
        from gridgov.geo.api import divisions_import_file, require_divisions_administrator

        if kind == "geojson":
            return regions_import_geojson(
                path=path,
                repair=bool(options.get("repair")),
                strict=bool(options.get("strict")),
                dry_run=dry_run,
                user=self._acting_user(request),
            )
        district = options.get("district") or None
        user = self._acting_user(request)
        if user is not None:
            require_divisions_administrator(user, district)
        return divisions_import_file(path=path, district=district, dry_run=dry_run)

    def _import_preview(self, request: HttpRequest, form: RegionImportForm) -> dict[str, Any]:
        from gridgov.geo.bulk import detect_import_kind, read_upload

        upload = form.cleaned_data["file"]
        try:
            data = read_upload(upload)
        except DomainError as exc:
            form.add_error("file", exc.message)
            return {}
        kind = detect_import_kind(data)
        options = {name: form.cleaned_data[name] for name in ("repair", "strict", "district")}
        staged = self._stage(request, data=data, name=upload.name or "upload", kind=kind, **options)
        try:
            report = self._run_import(
                request, kind=kind, path=staged.path, options=options, dry_run=True
            )
        except DomainError as exc:
            staged.discard()
            form.add_error(None, exc.message)
            return {"kind": kind}
        shown = {"kind": kind, "file_name": staged.name, "options": options}
        if not report.ok:
            staged.discard()
            return {**shown, "stage": "errors", **report_context(kind, report)}
        return {**shown, "stage": "preview", "token": staged.token, **report_context(kind, report)}

    def _import_commit(
        self, request: HttpRequest, staged: StagedUpload, meta: dict[str, Any]
    ) -> dict[str, Any]:
        kind = str(meta["kind"])
        report = self._run_import(request, kind=kind, path=staged.path, options=meta, dry_run=False)
        return {"kind": kind, "options": meta, **report_context(kind, report)}

    def _export(self, request: HttpRequest, form: RegionExportForm) -> HttpResponse | None:
        import json

        from gridgov.geo.actions import regions_export_geojson

        level = form.cleaned_data["level"] or None
        under = form.cleaned_data["under"]
        try:
            data = regions_export_geojson(user=self._acting_user(request), level=level, under=under)
        except DomainError as exc:
            form.add_error(None, exc.message)
            return None
        response = HttpResponse(
            json.dumps(data, ensure_ascii=False),
            content_type="application/geo+json; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{export_file_name(level=level, under=under)}"'
        )
        return response

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


def export_file_name(*, level: str | None, under: str | None) -> str:
    """``regions-320113-grid-20250101.geojson``: the subtree, the level and today's date."""
    from django.utils import timezone

    day = timezone.localdate().strftime("%Y%m%d")
    return "-".join(["regions", under or "all", level or "all-levels", day]) + ".geojson"


def _area_change(m2: float | None, pct: float | None) -> str:
    if m2 is None:
        return ""
    value = "0" if abs(m2) < 0.05 else f"{m2:+,.1f}"
    text = gettext("%(value)s m²") % {"value": value}
    if pct is not None:
        text += " (0 %)" if abs(pct) < 0.00005 else f" ({pct:+.4f} %)"
    return text


def report_context(kind: str, report: Any) -> dict[str, Any]:
    """What the report page shows of a GeoJSON or a divisions import report."""
    from gridgov.geo.codes import level_noun

    if kind != "geojson":
        return {
            "report": report,
            "ok": report.ok,
            "error_count": len(report.errors),
            "sources": list(zip(report.files, report.layouts, report.encodings, strict=False)),
            "row_errors": report.errors[:REPORT_ROWS],
            "more_rows": max(0, len(report.errors) - REPORT_ROWS),
            "added_codes": report.added_codes[:REPORT_ROWS],
            "changed_codes": report.changed_codes[:REPORT_ROWS],
        }
    features = list(report.features)
    if len(features) > REPORT_ROWS:
        features.sort(key=lambda f: (not (f.problems or f.warnings or f.notes), f.index))
    rows = [
        {
            "index": f.index,
            "code": f.code,
            "name": f.name,
            "level": level_noun(f.level) if f.level else "",
            "status": f.status,
            "status_label": STATUS_LABELS.get(f.status, f.status),
            "problems": f.problems,
            "notes": f.notes,
            "warnings": f.warnings,
            "area_m2": f.area_m2,
            "area_change": _area_change(f.area_change_m2, f.area_change_pct),
        }
        for f in features[:REPORT_ROWS]
    ]
    feature_problems = sum(len(f.problems) for f in report.features)
    strict_errors = report.errors[feature_problems:] if report.strict else []
    return {
        "report": report,
        "ok": report.ok,
        "error_count": len(report.errors),
        "summary": report.summary(),
        "rows": rows,
        "more_rows": max(0, len(features) - REPORT_ROWS),
        "checks": [
            {
                "kind": w.kind,
                "label": w.label,
                "message": w.message,
                "codes": w.codes,
                "area_m2": w.area_m2,
                "share_pct": w.share * 100,
            }
            for w in report.warnings
        ],
        "strict_errors": strict_errors,
    }


def _community_households(community: Region) -> int:
    from django.db.models import Sum

    from gridgov.registry.models import Building

    total = Building.objects.filter(community_code=community.code).aggregate(n=Sum("households"))
    return int(total["n"] or 0)
