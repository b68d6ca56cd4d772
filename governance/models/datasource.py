from django.db import models

from meshportal.fields import NameField


class DataSourceQuerySet(models.QuerySet):
    def usable_by(self, team_id: int | None) -> models.QuerySet:
        """The sources a team's ports may read: those open to every team and those naming it
        (the rule DataSource.open_to states for one source)."""
        open_to_all = ~models.Exists(
            DataSource.teams.through.objects.filter(datasource_id=models.OuterRef("pk"))
        )
        return self.filter(open_to_all | models.Q(teams=team_id)).distinct()


class DataSource(models.Model):
    """A warehouse the platform team registers once; output ports point at it.

    Credentials are never stored here: `password_env` names an environment variable and
    `secret_file` a file under MESH_SECRETS_DIR (governance/quality/connections.py).
    """

    class Kind(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        SQLITE = "sqlite", "SQLite"
        DUCKDB = "duckdb", "DuckDB (database or Parquet/CSV files)"
        MYSQL = "mysql", "MySQL / MariaDB"
        REDSHIFT = "redshift", "Amazon Redshift"
        SNOWFLAKE = "snowflake", "Snowflake"
        BIGQUERY = "bigquery", "Google BigQuery"
        DATABRICKS = "databricks", "Databricks SQL"
        TRINO = "trino", "Trino"

    slug = models.SlugField(max_length=80, unique=True)
    name = NameField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    host = models.CharField(
        max_length=200,
        blank=True,
        help_text="Host name; the account identifier for Snowflake, the server host name for "
        "Databricks.",
    )
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(
        max_length=500,
        blank=True,
        help_text="Database name; the file path for SQLite and a DuckDB database (blank for "
        "DuckDB over files only); the project for BigQuery; the catalog for Trino.",
    )
    user = models.CharField(max_length=100, blank=True)
    password_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the password or token.",
    )
    secret_file = models.CharField(
        max_length=200,
        blank=True,
        help_text="Or: a file under MESH_SECRETS_DIR holding the password or token (for "
        "BigQuery, the service-account key). Never shown.",
    )
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Settings of the kind: DuckDB file_root, threads; Snowflake warehouse, role; "
        "Databricks http_path, catalog; Trino http_scheme; BigQuery location, "
        "maximum_bytes_billed; MySQL/Redshift ssl.",
    )
    default_schema = models.CharField(max_length=100, blank=True)
    sslmode = models.CharField(
        max_length=20, blank=True, help_text="PostgreSQL sslmode, e.g. require (blank: prefer)."
    )
    max_timeout_seconds = models.PositiveIntegerField(
        default=300, help_text="No check on this source may run a query longer than this."
    )
    description = models.TextField(blank=True)
    teams = models.ManyToManyField(
        "domains.Team",
        blank=True,
        related_name="data_sources",
        help_text="The teams whose ports may read this source (and so get quality checks on "
        "it); none: every team.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DataSourceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "postgresql",
                        "sqlite",
                        "duckdb",
                        "mysql",
                        "redshift",
                        "snowflake",
                        "bigquery",
                        "databricks",
                        "trino",
                    ]
                ),
                name="datasource_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def open_to(self, team_id: int | None) -> bool:
        """Whether a port of `team_id`'s products may read this source: every team's when it
        names no team (the one rule; DataSourceQuerySet.usable_by is its query)."""
        if "teams" in getattr(self, "_prefetched_objects_cache", {}):  # read with its teams
            teams = {t.pk for t in self.teams.all()}
            return not teams or team_id in teams
        return type(self).objects.usable_by(team_id).filter(pk=self.pk).exists()

    @property
    def where(self) -> str:
        """Where the data is, in a word: the host, the database file or the file root."""
        return self.host or self.database or str((self.options or {}).get("file_root") or "")

    def clean(self) -> None:
        """What each kind needs (the admin's and the portal's forms): see
        governance/quality/connections.py."""
        from django.core.exceptions import ValidationError

        from governance.quality.connections import source_problems

        problems = source_problems(self)
        if problems:
            raise ValidationError(problems)
