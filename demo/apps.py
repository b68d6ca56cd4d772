from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo mesh, its warehouse and the scale generator: management commands only."""

    name = "demo"
    verbose_name = "Demo and scale data"
