import csv

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from meshportal.admin import (
    AuditedDeleteMixin,
    AuditedSaveMixin,
    ObjectPermissionsAdminMixin,
    PlatformOnlyAdmin,
    PortalInlineMixin,
    PortalPermissionAdmin,
)
from meshportal.permissions import DEPRECATE, can, require_transfer, visible
from products import connection, services
from products.lineage import services as lineage_services
from products.models import (
    AccessRequest,
    DataProduct,
    InputPort,
    OutputPort,
    SchemaField,
    Tag,
    Watch,
)

PRODUCT_FIELDS = (
    "name",
    "slug",
    "summary",
    "description",
    "status",
    "version",
    "classification",
    "owner_team",
    "freshness_slo_hours",
    "availability_slo",
    "sunset_date",
    "replacement",
)
PORT_FIELDS = ("slug", "name", "kind", "location", "format", "description", "data_source")
FIELD_FIELDS = (
    "name",
    "logical_type",
    "physical_type",
    "description",
    "required",
    "unique",
    "primary_key",
    "pii",
    "ordinal",
    "glossary_term",
)


def _save_children(formset, *, create, update, delete, parent_kw, fields) -> None:
    """Route an inline formset's saves through the services, so the audit log sees them."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk:
            delete(form.instance)
    for form in formset.forms:
        if form in formset.deleted_forms or not form.has_changed() or not form.cleaned_data:
            continue
        data = {k: form.cleaned_data[k] for k in fields if k in form.cleaned_data}
        if form.instance.pk:
            update(form.instance.__class__.objects.get(pk=form.instance.pk), data)
        else:
            create({parent_kw: formset.instance, **data})


class OutputPortInline(PortalInlineMixin, admin.TabularInline):
    model = OutputPort
    extra = 0
    fields = ("slug", "name", "kind", "location", "format", "data_source", "fields_link")
    readonly_fields = ("fields_link",)
    show_change_link = True

    def get_fields(self, request, obj=None):
        # Locations and data sources only for those who may read the data (obj: the product).
        fields = super().get_fields(request, obj)
        if obj is not None and not connection.sees_connection(request.user, obj):
            return [f for f in fields if f not in connection.CONNECTION_KEYS]
        return fields

    @admin.display(description="Fields")
    def fields_link(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:products_outputport_change", args=[obj.pk])
        return format_html('<a href="{}">{} field(s)</a>', url, obj.fields.count())


class SchemaFieldInline(PortalInlineMixin, admin.TabularInline):
    model = SchemaField
    extra = 1
    fields = FIELD_FIELDS


class ServiceSavingAdmin(PortalPermissionAdmin):
    """save_formset through the services. The forms validated the rows already; a service
    refusing now aborts the admin's transaction, so nothing is half-saved."""

    def save_formset(self, request, form, formset, change):
        self.save_children(formset)


@admin.register(DataProduct)
class DataProductAdmin(ObjectPermissionsAdminMixin, ServiceSavingAdmin):  # type: ignore[misc]
    list_display = (
        "name",
        "domain",
        "status",
        "classification",
        "owner_team",
        "version",
        "updated_at",
    )
    # Only the tags of products the user may see (a draft's tags are as private as the draft).
    list_filter = (
        "status",
        "classification",
        "domain",
        "owner_team",
        ("tags", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("name", "slug", "summary")
    list_select_related = ("domain", "owner_team")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("tags",)
    autocomplete_fields = ("replacement",)
    inlines = [OutputPortInline]
    actions = ["deprecate_selected", "export_csv"]
    rights_fields = ("owner_team",)  # moving a product: platform staff here, through the service

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "domain") if obj is not None else fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        # The tag picker offers the tags the user may see (a draft-only tag is the draft's).
        if db_field.name == "tags":
            kwargs["queryset"] = visible(request.user, Tag.objects.all())
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in PRODUCT_FIELDS if k in form.cleaned_data}
        tags = [t.name for t in form.cleaned_data.get("tags", [])]
        team = data.pop("owner_team", None)
        if change:
            product = services.product_update(
                product=DataProduct.objects.get(pk=obj.pk), tags=tags, **data
            )
        else:
            product = services.product_create(domain=form.cleaned_data["domain"], tags=tags, **data)
            obj.pk = product.pk
        if team is not None and team.pk != product.owner_team_id:
            require_transfer(request.user, product, team)  # 403, as at every other door
            services.product_transfer(product=product, team=team, by=request.user)

    def save_related(self, request, form, formsets, change):
        # Tags were saved by the service; only the inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_children(self, formset):
        _save_children(
            formset,
            parent_kw="product",
            fields=PORT_FIELDS,
            create=lambda d: services.port_create(**d),
            update=lambda p, d: services.port_update(port=p, **d),
            delete=lambda p: services.port_delete(port=p),
        )

    def delete_model(self, request, obj):
        services.product_delete(product=obj)

    @admin.action(description="Deprecate selected products")
    def deprecate_selected(self, request, queryset):
        refused = [p.name for p in queryset if not can(request.user, DEPRECATE, p)]
        if refused:
            self.message_user(
                request,
                f"Not deprecated (not published, or not yours): {', '.join(refused)}",
                messages.ERROR,
            )
            return
        with transaction.atomic():
            for product in queryset:
                services.product_deprecate(product=product)
        self.message_user(request, f"Deprecated {queryset.count()} product(s).")

    @admin.action(description="Export selected products (CSV)")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="products.csv"'
        writer = csv.writer(response)
        writer.writerow(["urn", "name", "status", "classification", "owner_team", "version"])
        for p in queryset.select_related("domain", "owner_team"):
            writer.writerow(
                [p.urn, p.name, p.status, p.classification, p.owner_team.slug, p.version]
            )
        return response


@admin.register(OutputPort)
class OutputPortAdmin(ServiceSavingAdmin):
    list_filter = ("kind",)
    search_fields = ("name", "slug", "product__name")
    list_select_related = ("product__domain", "data_source")
    inlines = [SchemaFieldInline]
    readonly_fields = ("product",)

    def get_list_display(self, request):
        # Location and data source only on rows whose data the user may read.
        def shown(attr, title):
            @admin.display(description=title)
            def column(obj):
                if connection.sees_connection(request.user, obj.product):
                    return getattr(obj, attr) or "—"
                return connection.HIDDEN

            return column

        return (
            "name",
            "product",
            "kind",
            shown("location", "Location"),
            shown("data_source", "Data source"),
        )

    def get_fields(self, request, obj=None):
        # The page opens for whoever may see the port; where its data lives only for those who
        # may read the data (as on the product's Ports tab).
        fields = super().get_fields(request, obj)
        if obj is not None and not connection.sees_connection(request.user, obj.product):
            return [f for f in fields if f not in connection.CONNECTION_KEYS]
        return fields

    def has_add_permission(self, request):
        return False  # ports are added on their product

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in PORT_FIELDS if k in form.cleaned_data}
        services.port_update(port=OutputPort.objects.get(pk=obj.pk), **data)

    def save_children(self, formset):
        _save_children(
            formset,
            parent_kw="port",
            fields=FIELD_FIELDS,
            create=lambda d: services.field_create(**d),
            update=lambda f, d: services.field_update(field=f, **d),
            delete=lambda f: services.field_delete(field=f),
        )

    def delete_model(self, request, obj):
        services.port_delete(port=obj)


@admin.register(Tag)
class TagAdmin(AuditedSaveMixin, PlatformOnlyAdmin):  # teams tag their products on the product
    list_display = ("name", "slug")
    search_fields = ("name", "slug")


@admin.register(AccessRequest)
class AccessRequestAdmin(AuditedDeleteMixin, PortalPermissionAdmin):
    list_display = ("product", "requester", "team", "status", "created_at", "expires_at")
    list_filter = ("status", "created_at")
    search_fields = ("product__name", "requester__username", "purpose")
    list_select_related = ("product__domain", "requester", "team")
    readonly_fields = [f.name for f in AccessRequest._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # decided in the inbox, where the rules and notifications live

    def delete_model(self, request, obj):
        # A grant is revoked through the service first (its permissions go, the requester is
        # told), so a deleted request never leaves access behind; the delete is audited.
        if obj.status == AccessRequest.Status.APPROVED:
            services.access_grant_revoke(request=obj, by=request.user, comment="Deleted.")
        super().delete_model(request, obj)


@admin.register(InputPort)
class InputPortAdmin(PortalPermissionAdmin):
    """Read-only: inputs are declared on the product page, where cycles and access are checked."""

    list_display = ["product", "source_port", "external_name", "approved", "created_at"]
    list_filter = ["approved", "external_kind", "product__domain"]
    search_fields = ["product__slug", "source_product__slug", "external_name"]
    list_select_related = ["product__domain", "source_port__product__domain"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        lineage_services.input_port_delete(input_port=obj, by=request.user)


@admin.register(Watch)
class WatchAdmin(PortalPermissionAdmin):
    list_display = ["user", "product", "domain", "created_at"]
    list_select_related = ["user", "product__domain", "domain"]
    raw_id_fields = ["user", "product"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
