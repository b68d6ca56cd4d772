"""What migrations share: statements for PostgreSQL alone (indexes SQLite cannot take; its
meshes are small)."""


def on_postgresql(*statements: str):
    """A RunPython function that executes `statements` in order on PostgreSQL, nothing
    elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run
