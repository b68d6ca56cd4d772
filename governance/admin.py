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
