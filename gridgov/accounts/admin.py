"""The admin site for users, their roles, units and API tokens.

Forms check what the actions check (a role is held in a region or for a unit), so a mistake
reads as a form error, not a database error; saving goes through the actions, so deactivating
a user here revokes their API tokens as it does in the API and on the command line.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from gridgov.accounts import actions
from gridgov.accounts.models import ALL_SCOPES, ApiToken, RoleAssignment, TokenScope, Unit, User


class RoleAssignmentForm(forms.ModelForm):
    """A role assignment, checked like ``actions.role_assign``: the error names the field."""

    class Meta:
        model = RoleAssignment
        fields = ["user", "role", "region", "unit"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        role = cleaned.get("role")
        if role and "region" not in self.errors and "unit" not in self.errors:
            problem = actions.role_placement_problem(
                role=role, region=cleaned.get("region"), unit=cleaned.get("unit")
            )
            if problem is not None:
                field, message = problem
                # an error on region or unit also spares the user the database constraint's
                # own, less helpful message
                self.add_error(field if field in self.fields else None, message)
        return cleaned


class RoleAssignmentFormSet(BaseInlineFormSet):
    """No role twice in the same place, held everywhere included (which Django's own check of
    unique fields skips, as it ignores rows with an empty field)."""

    def clean(self) -> None:
        super().clean()
        seen: set[tuple[Any, ...]] = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            data = form.cleaned_data
            if self.can_delete and data.get("DELETE"):
                continue
            key = (data.get("role"), data.get("region"), data.get("unit"))
            if key in seen:
                form.add_error(None, _("This role is listed twice for the same place."))
            seen.add(key)


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    form = RoleAssignmentForm
    formset = RoleAssignmentFormSet
    extra = 0
    autocomplete_fields = ["region", "unit"]


class UserChangeForm(BaseUserChangeForm):
    #: the administrator using the form (set per request by ``UserAdmin.get_form``)
    actor: Any = None

    def clean_is_active(self) -> bool:
        active = bool(self.cleaned_data.get("is_active"))
        actor = self.actor
        if not active and actor is not None and self.instance.pk == actor.pk:
            raise forms.ValidationError(_("You cannot deactivate your own account."))
        return active


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeForm
    inlines = [RoleAssignmentInline]
    list_display = ["username", "display_name", "is_active", "last_login"]
    list_filter = ["is_active", "is_staff", "assignments__role"]
    search_fields = ["username", "display_name", "email"]
    actions = ["deactivate_users", "reset_two_factor"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("gridgov", {"fields": ("display_name", "work_phone")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "display_name",
                    "work_phone",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # saved as it was; the action deactivates and revokes tokens
        super().save_model(request, obj, form, change)
        if deactivating:
            actions.user_deactivate(user=obj, actor=request.user)  # type: ignore[arg-type]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not RoleAssignment:
            super().save_formset(request, form, formset, change)
            return
        changed = formset.save(commit=False)
        for assignment in formset.deleted_objects:
            actions.role_revoke(assignment=assignment)
        for assignment in changed:
            if assignment.pk is not None:
                actions.role_revoke(assignment=RoleAssignment.objects.get(pk=assignment.pk))
            saved = actions.role_assign(
                user=form.instance,
                role=assignment.role,
                region=assignment.region,
                unit=assignment.unit,
            )
            assignment.pk = saved.pk

    @admin.action(description=_("Deactivate the selected users and revoke their API tokens"))
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(
                    request, _("You cannot deactivate your own account."), messages.WARNING
                )
                continue
            actions.user_deactivate(user=user, actor=request.user)  # type: ignore[arg-type]
            done += 1
        self.message_user(
            request,
            ngettext("%(count)d user deactivated.", "%(count)d users deactivated.", done)
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Reset two-factor sign-in (remove the authenticator and recovery codes)")
    )
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset:
            if actions.two_factor_reset(user=user):
                done += 1
        self.message_user(
            request,
            ngettext(
                "Two-factor sign-in reset for %(count)d user.",
                "Two-factor sign-in reset for %(count)d users.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    filter_horizontal = ["regions"]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin):
    form = RoleAssignmentForm
    list_display = ["user", "role", "region", "unit"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__display_name", "region__code", "region__name"]
    autocomplete_fields = ["user", "region", "unit"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            actions.role_revoke(assignment=RoleAssignment.objects.get(pk=obj.pk))
        saved = actions.role_assign(user=obj.user, role=obj.role, region=obj.region, unit=obj.unit)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        actions.role_revoke(assignment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RoleAssignment]) -> None:
        for assignment in queryset.select_related("user"):
            actions.role_revoke(assignment=assignment)


class ApiTokenForm(forms.ModelForm):
    """Scopes as checkboxes; an administrator narrows a token here (tokens are created by
    their users, on the web, through the API or with ``gridgov accounts token-create``)."""

    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("what the token may do, never more than its user's roles allow"),
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "expires_at", "revoked_at", "scopes"]

    def clean_scopes(self) -> list[str]:
        chosen = set(self.cleaned_data.get("scopes") or [])
        return [s for s in ALL_SCOPES if s in chosen]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = [
        "name",
        "user",
        "prefix",
        "scope_list",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token's secret exists only where it is created and shown once

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)
