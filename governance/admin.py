from django.contrib import admin, messages

from meshportal.admin import PlatformOnlyAdmin

from . import quality_engine
from .models import DataSource


@admin.action(description="Test connection (read-only)")
def test_connection(modeladmin, request, queryset):
    for source in queryset:
        try:
            messages.success(request, f"{source}: {quality_engine.test_connection(source)}")
        except quality_engine.EngineError as e:
            messages.error(request, f"{source}: {e}")


@admin.register(DataSource)
class DataSourceAdmin(PlatformOnlyAdmin):
    list_display = ("name", "kind", "host", "database", "password_env")
    actions = [test_connection]
    list_filter = ("kind",)
    search_fields = ("name", "slug", "database")
    prepopulated_fields = {"slug": ("name",)}


# -- policies (platform staff; writes to terms and policies go through the services' audit) ------
from meshportal import audit  # noqa: E402

from .models import EvaluationRun, GlossaryTerm, Policy, Waiver  # noqa: E402


class _AuditedAdmin(PlatformOnlyAdmin):
    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        audit.record(
            action="update" if change else "create",
            obj=obj,
            changes=audit.diff(before, audit.snapshot(obj)),
        )

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
class WaiverAdmin(PlatformOnlyAdmin):
    list_display = ("policy", "product", "status", "expires_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Waiver._meta.fields]

    has_change_permission = has_add_permission = PlatformOnlyAdmin._nobody


@admin.register(EvaluationRun)
class EvaluationRunAdmin(PlatformOnlyAdmin):
    list_display = ("pk", "trigger", "started_at", "finished_at", "products", "policies", "changed")
    has_change_permission = has_add_permission = PlatformOnlyAdmin._nobody


# -- quality ---------------------------------------------------------------------------------

from django import forms  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402

from meshportal.forms import apply_errors  # noqa: E402

from . import quality_services  # noqa: E402
from .models import QualityCheck, QualityRun, Webhook, WebhookDelivery  # noqa: E402


class QualityCheckAdminForm(forms.ModelForm):
    class Meta:
        model = QualityCheck
        fields = [
            "port",
            "name",
            "kind",
            "columns",
            "params",
            "enabled",
            "interval_minutes",
            "cron",
            "timeout_seconds",
            "next_run_at",
        ]

    def clean(self):
        data = super().clean()
        try:
            data["columns"], data["params"] = quality_services.validate_check(
                kind=data.get("kind"),
                columns=data.get("columns") or [],
                params=data.get("params") or {},
            )
            quality_services.validate_schedule(
                interval_minutes=data.get("interval_minutes"), cron=data.get("cron", "")
            )
        except ValidationError as e:
            apply_errors(self, e)
        return data


@admin.register(QualityCheck)
class QualityCheckAdmin(PlatformOnlyAdmin):
    form = QualityCheckAdminForm
    list_display = (
        "name",
        "port",
        "kind",
        "enabled",
        "interval_minutes",
        "cron",
        "last_status",
        "next_run_at",
    )
    list_filter = ("kind", "enabled", "last_status")
    list_editable = ("enabled", "interval_minutes", "cron")
    search_fields = ("name", "port__product__name")
    readonly_fields = ("last_status", "last_run_at", "created_by", "created_at")
    raw_id_fields = ("port",)
    actions = ["run_now"]

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        runs = quality_services.run_now(checks=queryset.select_related("port"), by=request.user)
        messages.success(request, f"Queued {len(runs)} runs.")

    def save_model(self, request, obj, form, change):
        if change:
            changes = {
                f: form.cleaned_data[f]
                for f in form.changed_data
                if f
                in (
                    "name",
                    "columns",
                    "params",
                    "interval_minutes",
                    "cron",
                    "timeout_seconds",
                    "enabled",
                )
            }
            fresh = QualityCheck.objects.get(pk=obj.pk)
            quality_services.check_update(check=fresh, by=request.user, **changes)
        else:
            created = quality_services.check_create(
                port=obj.port,
                name=obj.name,
                kind=obj.kind,
                columns=obj.columns,
                params=obj.params,
                interval_minutes=obj.interval_minutes,
                cron=obj.cron,
                timeout_seconds=obj.timeout_seconds,
                enabled=obj.enabled,
                by=request.user,
            )
            obj.pk = created.pk


@admin.register(QualityRun)
class QualityRunAdmin(PlatformOnlyAdmin):
    list_display = (
        "check_obj",
        "status",
        "trigger",
        "observed",
        "queued_at",
        "finished_at",
        "duration_ms",
    )
    list_filter = ("status", "trigger")
    date_hierarchy = "queued_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Webhook)
class WebhookAdmin(PlatformOnlyAdmin):
    list_display = ("team", "url", "active", "created_at")
    list_filter = ("active",)
    # The secret is generated when a webhook is added on the team's Webhooks page and shown
    # there once; the admin never shows it, and adds none (no way to show the secret once).
    exclude = ("secret",)

    def has_add_permission(self, request):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(PlatformOnlyAdmin):
    list_display = ("event", "webhook", "status", "attempts", "response_code", "created_at")
    list_filter = ("status", "event")
    readonly_fields = ("webhook", "event", "body", "status", "attempts", "response_code", "error")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
