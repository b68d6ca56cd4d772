"""The console's usage pages (platform staff only): consumer mappings, with suggestions for
the principals seen but not mapped yet, and the ingest runs."""

from django.contrib import admin

from meshportal.admin import AuditedSaveMixin, PlatformOnlyAdmin
from usage import selectors
from usage.models import ConsumerMapping, IngestRun


@admin.register(ConsumerMapping)
class ConsumerMappingAdmin(AuditedSaveMixin, PlatformOnlyAdmin):  # no service writes mappings
    list_display = ("principal", "data_source", "team", "user", "note")
    list_filter = ("data_source",)
    search_fields = ("principal", "team__name", "user__username")
    autocomplete_fields = ("team", "user")
    change_list_template = "admin/usage/consumermapping/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "suggestions": selectors.mapping_suggestions()}
        return super().changelist_view(request, extra_context)


@admin.register(IngestRun)
class IngestRunAdmin(PlatformOnlyAdmin):
    list_display = ("created_at", "data_source", "door", "by", "events", "matched", "unparsed")
    list_filter = ("door", "data_source")
    readonly_fields = ("data_source", "door", "by", "events", "matched", "unparsed", "created_at")
    # Written by the ingests (API, import_usage, pg_stat_statements); deleted by the retention.
    has_change_permission = has_add_permission = PlatformOnlyAdmin._nobody
