"""An index in the lists' "Newest" order (published first, newest first, then created, then
name: products.discovery.facets._newest), so a page's ids are read in order from it instead of
sorting every visible product: 3.0 -> 0.1 ms for the first page at 10,000 products.
PostgreSQL only: SQLite takes no NULLS LAST in an index (and its meshes are small)."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS dataproduct_newest ON products_dataproduct"
    " (published_at DESC NULLS LAST, created_at DESC, name)"
)
DROP = "DROP INDEX IF EXISTS dataproduct_newest"


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("products", "0021_sample_cover_index")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP), elidable=False)]
