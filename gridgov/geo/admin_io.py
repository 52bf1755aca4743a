"""The admin's import and export pages of a model (the regions, the category catalogue).

An import is a dry run first: the upload is checked, its report shown, and the file staged
under a signed token (``gridgov.geo.bulk.stage_upload``) that carries the kind of import, its
options and the user; the commit runs exactly what was previewed, for that user and that kind
only, and removes the staged file. An export is a form on a page that downloads a file.

A model admin takes ``ImportExportAdmin`` as its base, names its forms, titles and templates,
and writes ``_may_import``, ``_import_preview``, ``_import_commit`` and ``_export``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext

from gridgov.core.errors import DomainError
from gridgov.geo.bulk import StagedUpload, stage_upload, staged_upload


class ImportExportAdmin(admin.ModelAdmin):
    """The import page (dry run → signed token → commit) and the export page of a model."""

    import_form: type[forms.Form]
    import_title: str | Promise
    import_template: str
    #: The kinds of import the commit accepts: a token staged by another import page is refused.
    import_kinds: tuple[str, ...]
    export_form: type[forms.Form]
    export_title: str | Promise
    export_template: str

    # --- what each model admin writes

    def _may_import(self, request: HttpRequest) -> bool:
        raise NotImplementedError

    def _may_export(self, request: HttpRequest) -> bool:
        return self._may_import(request)

    def _import_preview(self, request: HttpRequest, form: Any) -> dict[str, Any]:
        """The dry run of a valid upload form: the page's context (``stage`` "preview" with the
        ``token`` of ``_stage``, or "errors"); problems of the file go on the form."""
        raise NotImplementedError

    def _import_commit(
        self, request: HttpRequest, staged: StagedUpload, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Import the staged file with the options of its dry run (``meta``): the report's
        context, with ``ok``. A DomainError is shown above the upload form."""
        raise NotImplementedError

    def _export(self, request: HttpRequest, form: Any) -> HttpResponseBase | None:
        """The download a valid export form asks for; None with the form's errors added."""
        raise NotImplementedError

    # --- shared

    def get_urls(self) -> list[URLPattern]:
        """``import/`` and ``export/``, named ``admin:<app>_<model>_import`` and ``_export``."""
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        custom = [
            path("import/", self.admin_site.admin_view(self.import_view), name=f"{name}_import"),
            path("export/", self.admin_site.admin_view(self.export_view), name=f"{name}_export"),
        ]
        return custom + super().get_urls()

    def _page(self, request: HttpRequest, title: str, **context: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "changelist_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
            ),
            **context,
        }

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file, see the dry run's report, then commit it."""
        if not self._may_import(request):
            raise PermissionDenied
        form = self.import_form()
        context: dict[str, Any] = {}
        if request.method == "POST" and "_commit" in request.POST:
            context = self._commit(request)
        elif request.method == "POST":
            form = self.import_form(request.POST, request.FILES)
            if form.is_valid():
                context = self._import_preview(request, form)
        context = self._page(
            request,
            str(self.import_title),
            form=form,
            upload_limit=int(settings.GRIDGOV_UPLOAD_MAX_BYTES),
            **context,
        )
        return TemplateResponse(request, self.import_template, context)

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """Choose what to export; download it."""
        if not self._may_export(request):
            raise PermissionDenied
        form = self.export_form(request.GET if "_export" in request.GET else None)
        if form.is_bound and form.is_valid():
            response = self._export(request, form)
            if response is not None:
                return response
        context = self._page(request, str(self.export_title), form=form)
        return TemplateResponse(request, self.export_template, context)

    def _stage(
        self, request: HttpRequest, *, data: bytes, name: str, kind: str, **options: Any
    ) -> StagedUpload:
        """Keep a checked upload for its commit, with its kind, options and user signed."""
        meta = {"kind": kind, **options, "user": request.user.pk}
        return stage_upload(data=data, name=name, meta=meta)

    def _staged(self, request: HttpRequest) -> tuple[StagedUpload, dict[str, Any]]:
        """The staged upload the commit form names, with the meta of its dry run; DomainError
        for a token that is forged, expired, used, another user's or another import's."""
        staged, meta = staged_upload(request.POST.get("token", ""))
        if meta.get("user") != request.user.pk:
            raise DomainError(gettext("This preview belongs to another user; upload the file."))
        if meta.get("kind") not in self.import_kinds:
            raise DomainError(gettext("this preview is not valid; upload the file again"))
        return staged, meta

    def _commit(self, request: HttpRequest) -> dict[str, Any]:
        try:
            staged, meta = self._staged(request)
        except DomainError as exc:
            return {"import_error": exc.message}
        try:
            report = self._import_commit(request, staged, meta)
        except DomainError as exc:
            return {"import_error": exc.message}
        finally:
            staged.discard()
        stage = "committed" if report["ok"] else "errors"
        return {"stage": stage, "file_name": staged.name, **report}
