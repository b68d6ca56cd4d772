"""The console's governance pages. Every write goes through the services (and so the audit
log): a policy becomes active only by the council's vote or the explicit platform override."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import render

from governance.models import (
    DataSource,
    EvaluationRun,
    GlossaryTerm,
    Incident,
    IncidentEvent,
    Policy,
    QualityCheck,
    QualityRun,
    Waiver,
    Webhook,
    WebhookDelivery,
)
from governance.policies import services as policy_services
from governance.quality import engine as quality_engine
from governance.quality import services as quality_services
from governance.quality import webhook_targets
from meshportal.admin import (
    AuditedDeleteMixin,
    AuditedSaveMixin,
    PlatformOnlyAdmin,
    PortalInlineMixin,
)
from meshportal.forms import apply_errors
from meshportal.text import plural


@admin.action(description="Test connection (read-only)")
def test_connection(modeladmin, request, queryset):
    for source in queryset:
        try:
            messages.success(request, f"{source}: {quality_engine.test_connection(source)}")
        except quality_engine.EngineError as e:
            messages.error(request, f"{source}: {e}")


@admin.register(DataSource)
class DataSourceAdmin(AuditedSaveMixin, PlatformOnlyAdmin):  # no service writes data sources
    """One form for every kind: the fields each kind reads are listed in the fieldsets'
    descriptions, and `DataSource.clean` refuses what a kind lacks or does not take. Secrets
    are names (an environment variable, a file under MESH_SECRETS_DIR), never values."""

    list_display = ("name", "kind", "host", "database", "password_env", "secret_file")
    actions = [test_connection]
    list_filter = ("kind",)
    search_fields = ("name", "slug", "database")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "kind", "description")}),
        (
            "Where",
            {
                "fields": ("host", "port", "database", "default_schema", "options"),
                "description": (
                    "PostgreSQL, MySQL/MariaDB, Redshift, Trino: host, port, database "
                    "(Trino: the catalog). SQLite: database = the file. DuckDB: database = "
                    'a .duckdb file and/or options {"file_root": "/data/lake"}: file ports '
                    "name Parquet/CSV files or globs under it. Snowflake: host = the account "
                    'identifier, options {"warehouse": …, "role": …}. BigQuery: database = '
                    "the project, default schema = the dataset. Databricks: host = the server "
                    'host name, options {"http_path": …, "catalog": …}.'
                ),
            },
        ),
        (
            "Who (never a secret value: only where to find it)",
            {
                "fields": ("user", "password_env", "secret_file", "sslmode"),
                "description": (
                    "password_env names an environment variable of the portal's processes; "
                    "secret_file names a file under MESH_SECRETS_DIR (BigQuery: the service "
                    "account key). Give the account SELECT only: see docs/quality.md."
                ),
            },
        ),
        ("Limits", {"fields": ("max_timeout_seconds",)}),
        ("Who may use it", {"fields": ("teams",), "description": "None: every team."}),
    )
    filter_horizontal = ("teams",)


# -- policies (platform staff): through the services; a policy becomes active by the council's
# vote, or by the explicit, audited override action below ----------------------------------------


# What the council's vote decides (or the service sets): never edited in the console.
POLICY_DECIDED = ("status", "activated_at", "retired_at", "proposed_by")
# What the council voted on: fixed once proposed (a change is a new proposal).
POLICY_VOTED = ("key", "rule_type", "parameters", "severity", "domain")
PROPOSE_FIELDS = ("key", "title", "rationale", "rule_type", "parameters", "severity", "domain")


class PolicyAdminForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = PROPOSE_FIELDS

    def clean(self):
        data = super().clean()
        if "rule_type" in self.fields:  # adding: the rule's parameters, as on the proposal page
            try:
                data["parameters"] = policy_services.policy_parameters_clean(
                    data.get("rule_type", ""), data.get("parameters")
                )
            except ValidationError as e:
                apply_errors(self, e)
        return data


class OverrideForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit log and sent to the council.",
    )


@admin.register(Policy)
class PolicyAdmin(AuditedSaveMixin, PlatformOnlyAdmin):
    form = PolicyAdminForm
    list_display = ("key", "title", "rule_type", "severity", "domain", "status")
    list_filter = ("status", "severity", "rule_type")
    search_fields = ("key", "title")
    actions = ["override_activate"]

    def get_readonly_fields(self, request, obj=None):
        fields = (*super().get_readonly_fields(request, obj), *POLICY_DECIDED)
        return (*fields, *POLICY_VOTED) if obj is not None else fields

    def save_model(self, request, obj, form, change):
        if change:  # the wording only (title, rationale): an audited save, no service changes it
            super().save_model(request, obj, form, change)
        else:  # a new policy is a proposal, as on the Governance pages
            data = {k: form.cleaned_data.get(k) for k in PROPOSE_FIELDS}
            obj.pk = policy_services.policy_propose(by=request.user, **data).pk

    @admin.action(description="Activate without a council vote (platform override)")
    def override_activate(self, request, queryset):
        form = OverrideForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            try:
                with transaction.atomic():
                    for policy in queryset:
                        policy_services.policy_override_activate(
                            policy=policy, by=request.user, reason=form.cleaned_data["reason"]
                        )
            except (PermissionDenied, ValidationError) as e:
                text = " ".join(e.messages) if isinstance(e, ValidationError) else str(e)
                self.message_user(request, text, messages.ERROR)
                return None
            self.message_user(
                request,
                f"Activated {plural(queryset.count(), 'policy')} by platform override; "
                "the council has been told.",
                messages.WARNING,
            )
            return None
        return render(
            request,
            "admin/governance/override.html",
            {
                **self.admin_site.each_context(request),
                "title": "Activate without a council vote",
                "objects": queryset,
                "form": form,
                "action": "override_activate",
                "submit": "Yes, activate without a vote",
                "opts": self.model._meta,
            },
        )


@admin.register(GlossaryTerm)
class GlossaryTermAdmin(AuditedSaveMixin, PlatformOnlyAdmin):  # deletes: the audited delete
    list_display = ("name", "domain", "status")
    list_filter = ("status",)
    search_fields = ("name", "synonyms")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change):
        # Through the glossary's service: its rules, its audit entry, linked products reindexed.
        term = GlossaryTerm.objects.get(pk=obj.pk) if change else None
        fields = {k: form.cleaned_data[k] for k in form.changed_data if k in form.cleaned_data}
        saved = policy_services.glossary_term_save(
            term=term, by=request.user, **(fields if change else form.cleaned_data)
        )
        obj.pk = saved.pk


@admin.register(Waiver)
class WaiverAdmin(AuditedDeleteMixin, PlatformOnlyAdmin):  # asked for and decided in the portal
    list_display = ("policy", "product", "status", "expires_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Waiver._meta.fields]

    has_change_permission = has_add_permission = PlatformOnlyAdmin._nobody


@admin.register(EvaluationRun)
class EvaluationRunAdmin(PlatformOnlyAdmin):
    list_display = ("pk", "trigger", "started_at", "finished_at", "products", "policies", "changed")
    has_change_permission = has_add_permission = PlatformOnlyAdmin._nobody


# -- quality ---------------------------------------------------------------------------------


class IncidentEventInline(PortalInlineMixin, admin.TabularInline):
    """The incident's timeline: read by whoever may see the incident, never written here."""

    model = IncidentEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at", "by", "note", "run")

    def _may(self, request, obj) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(PlatformOnlyAdmin):  # acknowledged and resolved in the portal (audited)
    list_display = ("title", "product", "kind", "status", "failures", "opened_at", "resolved_at")
    list_filter = ("status", "kind")
    list_select_related = ("product",)
    readonly_fields = [f.name for f in Incident._meta.fields]
    inlines = [IncidentEventInline]
    has_change_permission = has_add_permission = has_delete_permission = PlatformOnlyAdmin._nobody


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
                port=data.get("port"),
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

    def delete_model(self, request, obj):
        quality_services.check_delete(check=obj, by=request.user)


@admin.register(QualityRun)
class QualityRunAdmin(PlatformOnlyAdmin):
    list_display = (
        "quality_check",
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


class WebhookAdminForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = ("team", "url", "active")

    def clean_url(self):
        # The same rule as the team's Webhooks page (and every delivery).
        try:
            return webhook_targets.validate(self.cleaned_data["url"])
        except ValidationError as e:
            raise ValidationError(e.message_dict["url"]) from None


@admin.register(Webhook)
class WebhookAdmin(PlatformOnlyAdmin):
    form = WebhookAdminForm
    list_display = ("team", "url", "active", "created_at")
    list_filter = ("active",)
    # The secret is generated when a webhook is added on the team's Webhooks page and shown
    # there once; the admin never shows it, and adds none (no way to show the secret once).
    exclude = ("secret",)
    readonly_fields = ("team",)  # a webhook carries its team's events; it never changes team

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service that the team's Webhooks page uses: its URL rule, its audit entry.
        quality_services.webhook_update(
            hook=Webhook.objects.get(pk=obj.pk),
            url=form.cleaned_data["url"],
            active=form.cleaned_data["active"],
            by=request.user,
        )

    def delete_model(self, request, obj):
        quality_services.webhook_delete(hook=obj, by=request.user)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(PlatformOnlyAdmin):
    list_display = ("event", "webhook", "status", "attempts", "response_code", "created_at")
    list_filter = ("status", "event")
    readonly_fields = ("webhook", "event", "body", "status", "attempts", "response_code", "error")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
