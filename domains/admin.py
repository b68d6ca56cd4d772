from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import render

from domains import services
from domains.models import Domain, Membership, Team
from meshportal.admin import (
    AuditedDeleteMixin,
    ObjectPermissionsAdminMixin,
    PortalInlineMixin,
    PortalPermissionAdmin,
)
from meshportal.permissions import MANAGE_TEAM, TRANSFER, can, is_platform


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.pk is None:
            return
        owners = [
            f
            for f in self.forms
            if f.cleaned_data
            and not f.cleaned_data.get("DELETE")
            and f.cleaned_data.get("role") == Membership.Role.OWNER
        ]
        if not owners:
            raise ValidationError(
                "A team keeps at least one owner: the last owner cannot be removed or demoted."
            )


class MembershipInline(PortalInlineMixin, admin.TabularInline):
    grants_rights = True  # team owners manage their team on its page, not in the console
    formset = MembershipFormSet
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


def _save_memberships(formset) -> None:
    team = formset.instance
    # The admin's change message reads these; the services did the saving.
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk:
            services.membership_remove(team=team, user=form.instance.user)
    for form in formset.forms:
        if form in formset.deleted_forms or not form.has_changed() or not form.cleaned_data:
            continue
        services.membership_set(
            team=team, user=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )


@admin.register(Team)
class TeamAdmin(AuditedDeleteMixin, PortalPermissionAdmin):  # saves: the services
    edit_action = MANAGE_TEAM
    list_display = ("name", "slug", "contact_email", "member_count")
    search_fields = ("name", "slug", "contact_email")
    prepopulated_fields = {"slug": ("name",)}
    exclude = ("group", "members")
    inlines = [MembershipInline]

    @admin.display(description="Members")
    def member_count(self, obj):
        return obj.memberships.count()

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("name", "slug", "description", "contact_email")}
        if change:
            services.team_update(team=Team.objects.get(pk=obj.pk), **data)
        else:
            obj.pk = services.team_create(**data).pk

    def save_formset(self, request, form, formset, change):
        # Rules were checked by the formset; a service refusing now (a race) aborts the
        # admin's transaction, so nothing is half-saved.
        _save_memberships(formset)


class TransferForm(forms.Form):
    to_team = forms.ModelChoiceField(queryset=Team.objects.all(), label="New owner team")


@admin.register(Domain)
class DomainAdmin(AuditedDeleteMixin, ObjectPermissionsAdminMixin, PortalPermissionAdmin):  # type: ignore[misc]
    list_display = ("name", "slug", "owner_team", "parent")
    list_filter = ("owner_team", "parent")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("owner_team", "parent")
    actions = ["transfer"]

    def get_readonly_fields(self, request, obj=None):
        # Ownership moves only through the confirmed transfer action.
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "owner_team") if obj is not None else fields

    def save_model(self, request, obj, form, change):
        data = {
            k: v
            for k, v in form.cleaned_data.items()
            if k in ("name", "slug", "description", "parent")
        }
        if change:
            services.domain_update(domain=Domain.objects.get(pk=obj.pk), **data)
        else:
            obj.pk = services.domain_create(owner_team=form.cleaned_data["owner_team"], **data).pk

    @admin.action(description="Transfer selected domains to another team…")
    def transfer(self, request, queryset):
        if not is_platform(request.user) or not all(
            can(request.user, TRANSFER, d) for d in queryset
        ):
            self.message_user(request, "Only platform staff move domains.", messages.ERROR)
            return None
        form = TransferForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            moved = 0
            try:
                with transaction.atomic():
                    for domain in queryset:
                        services.domain_transfer(
                            domain=domain, to_team=form.cleaned_data["to_team"]
                        )
                        moved += 1
            except ValidationError as e:
                self.message_user(request, " ".join(e.messages), messages.ERROR)
                return None
            self.message_user(
                request, f"Moved {moved} domain(s) to {form.cleaned_data['to_team']}."
            )
            return None
        return render(
            request,
            "admin/domains/transfer.html",
            {
                **self.admin_site.each_context(request),
                "title": "Transfer domains",
                "objects": queryset,
                "form": form,
                "action": "transfer",
                "submit": "Yes, transfer",
                "opts": self.model._meta,
            },
        )
