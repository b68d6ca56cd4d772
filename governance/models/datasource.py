from django.db import models

from meshportal.fields import NameField


class DataSource(models.Model):
    """A warehouse the platform team registers once; output ports point at it.

    Credentials are never stored here: `password_env` names an environment variable.
    """

    class Kind(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        SQLITE = "sqlite", "SQLite"

    slug = models.SlugField(max_length=80, unique=True)
    name = NameField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    host = models.CharField(max_length=200, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(
        max_length=500, help_text="Database name, or the file path for SQLite."
    )
    user = models.CharField(max_length=100, blank=True)
    password_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the password.",
    )
    default_schema = models.CharField(max_length=100, blank=True)
    sslmode = models.CharField(
        max_length=20, blank=True, help_text="PostgreSQL sslmode, e.g. require (blank: prefer)."
    )
    max_timeout_seconds = models.PositiveIntegerField(
        default=300, help_text="No check on this source may run a query longer than this."
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["postgresql", "sqlite"]),
                name="datasource_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name
