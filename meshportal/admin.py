from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from guardian.admin import (
    AdminGroupObjectPermissionsForm,
    AdminUserObjectPermissionsForm,
    GuardedModelAdminMixin,
)

from meshportal import audit
from meshportal.models import ApiToken, AuditEntry, Notification, PendingTask
from meshportal.permissions import DELETE, EDIT, VIEW, can, is_platform, may_grant, visible
from meshportal.queue import send_pending


class NamedFieldsMixin:
    """Tabular inlines whose every input assistive technology can name
    (tests/test_browser_a11y_admin.py): their column headers are not <label>s, so each input,
    the Delete box too, is named after its column. (Autocomplete boxes: static/js/admin_a11y.js.)"""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if not isinstance(self, admin.TabularInline):
            return formset

        def add_fields(self, form, index):
            formset.add_fields(self, form, index)
            for field in form.fields.values():
                # the widget itself, not its related-links wrapper (whose attrs a copy loses)
                widget = getattr(field.widget, "widget", field.widget)
                widget.attrs.setdefault("aria-label", str(field.label))

        return type(formset.__name__, (formset,), {"add_fields": add_fields})


class ConsoleAdmin(admin.ModelAdmin):
    """Base of every ModelAdmin in the console: who opens which page is decided here, once.

    Platform staff open every page (`permissions.may_grant`). Other staff open only the
    portal's own records (`platform_only = False`: PortalPermissionAdmin), where they see and
    change what the portal's pages would let them, and never anything that gives rights:
    platform-only admins (users, groups, tokens, data sources, ...) answer 403, `rights_fields`
    are read-only to them, membership inlines too, and guardian's object-permission pages
    (ObjectPermissionsAdminMixin) answer 403.
    """

    platform_only = True
    rights_fields: tuple[str, ...] = ()  # fields that give rights: read-only unless may_grant

    def opens(self, request) -> bool:
        user = request.user
        return bool(
            user.is_active and user.is_staff and (may_grant(user) or not self.platform_only)
        )

    def has_module_permission(self, request):
        return self.opens(request)

    def has_view_permission(self, request, obj=None):
        return self.opens(request)

    def has_add_permission(self, request):
        return self.opens(request) and may_grant(request.user)

    def has_change_permission(self, request, obj=None):
        return self.opens(request) and may_grant(request.user)

    def has_delete_permission(self, request, obj=None):
        return self.opens(request) and may_grant(request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if may_grant(request.user):
            return fields
        return fields + tuple(f for f in self.rights_fields if f not in fields)

    def delete_queryset(self, request, queryset):
        # The changelist's "delete selected" deletes one by one through delete_model, so a bulk
        # delete takes the same service (and audit entry) as the object's own delete page.
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


class PortalPermissionAdmin(ConsoleAdmin):
    """Admin pages ask the same permission model as the portal's pages and API.

    Writes go through the app services (subclasses override save_model / delete_model).
    """

    platform_only = False
    edit_action = EDIT
    delete_action = DELETE

    def get_queryset(self, request):
        return visible(request.user, super().get_queryset(request))

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.opens(request)
        return self.opens(request) and can(request.user, VIEW, obj)

    def has_add_permission(self, request):
        return self.opens(request) and is_platform(request.user)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.opens(request)
        return self.opens(request) and can(request.user, self.edit_action, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return self.opens(request) and is_platform(request.user)
        return self.opens(request) and can(request.user, self.delete_action, obj)


class PlatformOnlyAdmin(ConsoleAdmin):
    """The platform team's own records: only platform staff see or change them. Subclasses
    turn off what nobody may do (e.g. edit the audit log)."""

    platform_only = True

    def _nobody(self, request, obj=None) -> bool:
        return False


class AuditedDeleteMixin:
    """For records no service deletes (teams, domains, tags, ...): the admin's own delete, in
    the audit log with what the record held (audit.record masks secrets)."""

    def delete_model(self, request, obj):
        audit.record(action="delete", obj=obj, changes=audit.diff(audit.snapshot(obj), {}))
        super().delete_model(request, obj)


class AuditedSaveMixin(AuditedDeleteMixin):
    """For records no service writes (data sources, tags, a policy's wording): the admin's own
    save too, in the audit log with a before/after diff."""

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        audit.record(
            action="update" if change else "create",
            obj=obj,
            changes=audit.diff(before, audit.snapshot(obj)),
        )


# -- object permissions (guardian): platform staff only, every grant audited -------------------


class _AuditedGrant:
    """Record each change of someone's object permissions. Scoped to the grantee, so that the
    object's Activity tab (which everyone who sees the object reads) does not list who holds
    rights on it; platform staff find it in the audit log under the object."""

    obj: Any
    cleaned_data: dict

    def grantee(self) -> tuple[Any, str]:
        raise NotImplementedError

    def save_obj_perms(self) -> None:
        before = sorted(self.get_obj_perms_field_initial())  # type: ignore[attr-defined]
        super().save_obj_perms()  # type: ignore[misc]
        after = sorted(self.cleaned_data[self.get_obj_perms_field_name()])  # type: ignore[attr-defined]
        if before != after:
            who, label = self.grantee()
            audit.record(
                action="update",
                obj=self.obj,
                scope=who,
                changes={f"object permissions of {label}": [before, after]},
            )


class _UserGrantForm(_AuditedGrant, AdminUserObjectPermissionsForm):
    def grantee(self):
        return self.user, f"user {self.user.get_username()}"


class _GroupGrantForm(_AuditedGrant, AdminGroupObjectPermissionsForm):
    def grantee(self):
        return self.group, f"group {self.group.name}"


class ObjectPermissionsAdminMixin(GuardedModelAdminMixin):
    """guardian's per-object permission pages, for platform staff only (403 for other staff:
    they would grant themselves rights), each grant in the audit log."""

    change_form_template = "admin/meshportal/change_form_object_permissions.html"

    def _require_grant(self, request) -> None:
        if not may_grant(request.user):
            raise PermissionDenied("Only platform staff manage object permissions.")

    def obj_perms_manage_view(self, request, object_pk):
        self._require_grant(request)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._require_grant(request)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._require_grant(request)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def get_obj_perms_manage_user_form(self, request):
        return _UserGrantForm

    def get_obj_perms_manage_group_form(self, request):
        return _GroupGrantForm

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_grant": may_grant(request.user)}
        return super().change_view(request, object_id, form_url, extra_context)


# -- users and groups: platform staff only; rights given here are audited ----------------------

User = get_user_model()


def _user_rights(user) -> dict:
    return {
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


def _group_rights(group) -> dict:
    return {
        "name": group.name,
        "permissions": sorted(
            f"{app}.{codename}"
            for app, codename in group.permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


class _AuditedRights(admin.ModelAdmin):
    """Audit the rights a user or group holds before and after an admin save (m2m included,
    hence in save_related). Never the password hash."""

    def rights(self, obj) -> dict:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        obj._rights_before = self.rights(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        changes = audit.diff(getattr(obj, "_rights_before", {}), self.rights(obj))
        audit.record(action="update" if change else "create", obj=obj, changes=changes)


if admin.site.is_registered(User):
    admin.site.unregister(User)
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(User)
class PortalUserAdmin(_AuditedRights, PlatformOnlyAdmin, UserAdmin):
    def rights(self, obj) -> dict:
        return _user_rights(obj)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # Platform staff run the console; only a superuser makes another superuser.
        return fields if request.user.is_superuser else (*fields, "is_superuser")

    def has_change_permission(self, request, obj=None):
        # …and only a superuser changes a superuser's account (password, flags, groups).
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    has_delete_permission = has_change_permission


@admin.register(Group)
class PortalGroupAdmin(_AuditedRights, PlatformOnlyAdmin, GroupAdmin):
    def rights(self, obj) -> dict:
        return _group_rights(obj)


# -- sign-in throttling (django-axes): lifting a lock-out is the platform team's -----------------

for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class PortalAccessAttemptAdmin(PlatformOnlyAdmin, axes_admin.AccessAttemptAdmin):
    has_add_permission = PlatformOnlyAdmin._nobody


@admin.register(AccessLog)
class PortalAccessLogAdmin(PlatformOnlyAdmin, axes_admin.AccessLogAdmin):
    has_add_permission = PlatformOnlyAdmin._nobody


@admin.register(AccessFailureLog)
class PortalAccessFailureLogAdmin(PlatformOnlyAdmin, axes_admin.AccessFailureLogAdmin):
    has_add_permission = PlatformOnlyAdmin._nobody


@admin.register(AuditEntry)
class AuditEntryAdmin(PlatformOnlyAdmin):
    list_display = ("timestamp", "actor_name", "door", "action", "content_type", "object_repr")
    list_filter = (
        "door",
        "action",
        "content_type",
        "timestamp",
        ("actor", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("object_repr", "actor_name", "request_id")
    date_hierarchy = "timestamp"
    # The diff as a table of field, before and after (referenced objects by name), not JSON.
    readonly_fields = [f.name for f in AuditEntry._meta.fields if f.name != "changes"] + [
        "changes_table"
    ]
    list_select_related = ("content_type",)

    @admin.display(description="Changes")
    def changes_table(self, obj):
        from django.utils.html import format_html, format_html_join

        from meshportal.audit import with_names

        changes = with_names([obj])[0].changes or {}
        if not changes:
            return "—"

        def shown(value):
            return "—" if value is None else value

        rows = format_html_join(
            "",
            "<tr><th scope='row'><code>{}</code></th><td>{}</td><td>{}</td></tr>",
            (
                (key, *(shown(v) for v in (values if isinstance(values, list) else [None, values])))
                for key, values in changes.items()
            ),
        )
        return format_html(
            "<table><thead><tr><th scope='col'>Field</th><th scope='col'>Before</th>"
            "<th scope='col'>After</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    has_add_permission = has_change_permission = has_delete_permission = PlatformOnlyAdmin._nobody


@admin.register(Notification)
class NotificationAdmin(PlatformOnlyAdmin):
    list_display = ("created_at", "user", "kind", "title", "read_at")
    list_filter = ("kind", "created_at")
    search_fields = ("title", "user__username")

    has_add_permission = has_change_permission = PlatformOnlyAdmin._nobody


@admin.register(ApiToken)
class ApiTokenAdmin(PlatformOnlyAdmin):
    """Platform staff create tokens for service accounts here; the secret is shown once."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    fields = ("user", "name")
    actions = ["revoke"]

    has_change_permission = has_delete_permission = PlatformOnlyAdmin._nobody

    def save_model(self, request, obj, form, change):
        from django.contrib import messages

        from meshportal.api.auth import token_create

        token, key = token_create(user=obj.user, name=obj.name, created_by=request.user)
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {obj.user}: {key} — copy it now, it is not shown again."
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from meshportal.api.auth import token_revoke

        for token in queryset:
            token_revoke(token=token)


class PortalInlineMixin(NamedFieldsMixin):
    """Inline rows may be changed by whoever may edit the parent object (`can(EDIT, parent)`);
    rows that give rights (`grants_rights`, e.g. team memberships) only by platform staff."""

    parent_action = EDIT
    grants_rights = False

    def _may(self, request, obj) -> bool:
        if obj is None or self.grants_rights:
            return may_grant(request.user)
        return can(request.user, self.parent_action, obj)

    def has_view_permission(self, request, obj=None):
        return obj is None or can(request.user, VIEW, obj)

    def has_add_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)


@admin.register(PendingTask)
class PendingTaskAdmin(PlatformOnlyAdmin):
    """Tasks kept while the broker was down; beat sends them every minute, staff can push."""

    list_display = ("created_at", "task_name", "attempts", "sent_at", "last_error")
    list_filter = (("sent_at", admin.EmptyFieldListFilter), "task_name")
    readonly_fields = [f.name for f in PendingTask._meta.fields]
    actions = ["send_now"]

    has_add_permission = PlatformOnlyAdmin._nobody

    @admin.action(description="Send all pending tasks now")
    def send_now(self, request, queryset):
        result = send_pending()
        if result["failed"]:
            self.message_user(
                request,
                f"The task queue is still unreachable; {result['sent']} sent. "
                "Beat retries every minute.",
                messages.WARNING,
            )
        else:
            self.message_user(request, f"{result['sent']} pending tasks sent.", messages.SUCCESS)
