from django.contrib import admin

from meshportal.permissions import is_platform

from .models import DataSource


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "host", "database")
    list_filter = ("kind",)
    search_fields = ("name", "slug", "database")
    prepopulated_fields = {"slug": ("name",)}

    def has_module_permission(self, request):
        return is_platform(request.user)

    has_view_permission = has_change_permission = has_add_permission = has_delete_permission = (
        lambda self, request, obj=None: is_platform(request.user)
    )


# -- policies (platform staff; writes to terms and policies go through the services' audit) ------
from meshportal import audit  # noqa: E402

from .models import EvaluationRun, GlossaryTerm, Policy, Waiver  # noqa: E402


class _PlatformOnly(admin.ModelAdmin):
    def has_module_permission(self, request):
        return is_platform(request.user)

    has_view_permission = has_change_permission = has_add_permission = has_delete_permission = (
        lambda self, request, obj=None: is_platform(request.user)
    )


class _AuditedAdmin(_PlatformOnly):
    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        audit.record(action="update" if change else "create", obj=obj,
                     changes=audit.diff(before, audit.snapshot(obj)))

    def delete_model(self, request, obj):
        audit.record(action="delete", obj=obj, changes=audit.diff(audit.snapshot(obj), {}))
        super().delete_model(request, obj)


@admin.register(Policy)
class PolicyAdmin(_AuditedAdmin):
    list_display = ("key", "title", "rule_type", "severity", "domain", "status")
    list_filter = ("status", "severity", "rule_type")
    search_fields = ("key", "title")


@admin.register(GlossaryTerm)
class GlossaryTermAdmin(_AuditedAdmin):
    list_display = ("name", "domain", "status")
    list_filter = ("status",)
    search_fields = ("name", "synonyms")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Waiver)
class WaiverAdmin(_PlatformOnly):
    list_display = ("policy", "product", "status", "expires_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Waiver._meta.fields]

    has_change_permission = has_add_permission = lambda self, request, obj=None: False  # noqa: E731


@admin.register(EvaluationRun)
class EvaluationRunAdmin(_PlatformOnly):
    list_display = ("pk", "trigger", "started_at", "finished_at", "products", "policies", "changed")
    has_change_permission = has_add_permission = lambda self, request, obj=None: False  # noqa: E731
