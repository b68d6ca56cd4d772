from django.contrib import admin, messages

from .models import ApiToken, AuditEntry, Notification, PendingTask
from .permissions import DELETE, EDIT, VIEW, can, is_platform, visible
from .queue import send_pending


class PortalPermissionAdmin(admin.ModelAdmin):
    """Admin pages ask the same permission model as the portal's pages and API.

    Writes go through the app services (subclasses override save_model / delete_model).
    """

    edit_action = EDIT
    delete_action = DELETE

    def get_queryset(self, request):
        return visible(request.user, super().get_queryset(request))

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return can(request.user, VIEW, obj)

    def has_add_permission(self, request):
        return is_platform(request.user)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return can(request.user, self.edit_action, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return is_platform(request.user)
        return can(request.user, self.delete_action, obj)


class PlatformOnlyAdmin(admin.ModelAdmin):
    """The platform team's own records: only platform staff see or change them. Subclasses
    turn off what nobody may do (e.g. edit the audit log)."""

    def _platform(self, request, obj=None) -> bool:
        return is_platform(request.user)

    has_module_permission = has_view_permission = _platform
    has_add_permission = has_change_permission = has_delete_permission = _platform

    def _nobody(self, request, obj=None) -> bool:
        return False


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
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    list_select_related = ("content_type",)

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

        from .api_auth import token_create

        token, key = token_create(user=obj.user, name=obj.name, created_by=request.user)
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {obj.user}: {key} — copy it now, it is not shown again."
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from .api_auth import token_revoke

        for token in queryset:
            token_revoke(token=token)


class PortalInlineMixin:
    """Inline rows may be changed by whoever may edit the parent object (`can(EDIT, parent)`)."""

    parent_action = EDIT

    def _may(self, request, obj) -> bool:
        if obj is None:
            return is_platform(request.user)
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
