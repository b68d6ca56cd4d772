from django.apps import AppConfig


class BackupConfig(AppConfig):
    """Whole-mesh export and restore (export_mesh / import_mesh): management commands only."""

    name = "backup"
    verbose_name = "Backup"
