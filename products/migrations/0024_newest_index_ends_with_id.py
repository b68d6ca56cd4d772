"""The index of the lists' "Newest" order ends with the id, as the order now does
(products.discovery.facets._newest): products alike in every other key keep one place from page
to page. PostgreSQL only, as 0022."""

from django.db import migrations

from meshportal.migration_ops import on_postgresql

DROP = "DROP INDEX IF EXISTS dataproduct_newest"
CREATE = (
    "CREATE INDEX IF NOT EXISTS dataproduct_newest ON products_dataproduct"
    " (published_at DESC NULLS LAST, created_at DESC, name, id)"
)
CREATE_BEFORE = (
    "CREATE INDEX IF NOT EXISTS dataproduct_newest ON products_dataproduct"
    " (published_at DESC NULLS LAST, created_at DESC, name)"
)


class Migration(migrations.Migration):
    dependencies = [("products", "0023_sample_bucket_index_beside_cover")]

    operations = [
        migrations.RunPython(
            on_postgresql(DROP, CREATE), on_postgresql(DROP, CREATE_BEFORE), elidable=False
        )
    ]
