"""An index on each product's sample bucket, `hashint8(id) & 63` (PostgreSQL): the facet pass of
a large search or list reads a hash-chosen share of the matching products through it, combined
with the full-text index (a BitmapAnd), instead of every match (products.discovery.facets)."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS dataproduct_sample_bucket"
    " ON products_dataproduct ((hashint8(id) & 63))"
)
DROP = "DROP INDEX IF EXISTS dataproduct_sample_bucket"


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("products", "0016_list_cover_index")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP), elidable=False)]
