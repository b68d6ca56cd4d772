"""Two indexes for a full-text search's page (PostgreSQL; products.discovery.search._page_ids):
the head of each product's search vector (name, summary and tags: weights A and B), whose
matches are ranked first, and the order the other matches follow, (length(name), name, id). A
page then reads a page's worth of rows from each instead of testing and ranking every match."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS dataproduct_search_head ON products_dataproduct"
    " USING gin (ts_filter(search_vector, '{a,b}'))",
    "CREATE INDEX IF NOT EXISTS dataproduct_name_length ON products_dataproduct"
    " ((length(name)), name, id)",
)
DROP = (
    "DROP INDEX IF EXISTS dataproduct_search_head",
    "DROP INDEX IF EXISTS dataproduct_name_length",
)


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("products", "0017_sample_bucket_index")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP), elidable=False)]
