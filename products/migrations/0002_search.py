# Full-text search: a stored weighted tsvector with a GIN index, and pg_trgm with a trigram GIN
# index on names for typo tolerance. The SQL steps only run on PostgreSQL (SQLite searches live).

import django.contrib.postgres.search
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = [
    "CREATE INDEX IF NOT EXISTS dataproduct_search_gin ON products_dataproduct "
    "USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS dataproduct_name_trgm ON products_dataproduct "
    "USING gin (name gin_trgm_ops)",
]
BACKFILL = """
UPDATE products_dataproduct p SET search_vector =
    setweight(to_tsvector('english', coalesce(p.name, '')), 'A')
 || setweight(to_tsvector('english', coalesce(p.summary, '') || ' ' || coalesce((
        SELECT string_agg(t.name, ' ') FROM products_tag t
        JOIN products_dataproduct_tags pt ON pt.tag_id = t.id WHERE pt.dataproduct_id = p.id), '')), 'B')
 || setweight(to_tsvector('english', coalesce(p.description, '') || ' ' || coalesce((
        SELECT string_agg(o.name || ' ' || coalesce((
            SELECT string_agg(replace(f.name, '_', ' ') || ' ' || f.name, ' ')
            FROM products_schemafield f WHERE f.port_id = o.id), ''), ' ')
        FROM products_outputport o WHERE o.product_id = p.id), '')), 'C')
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in INDEXES:
        schema_editor.execute(sql)
    schema_editor.execute(BACKFILL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS dataproduct_search_gin")
    schema_editor.execute("DROP INDEX IF EXISTS dataproduct_name_trgm")


class Migration(migrations.Migration):

    dependencies = [
        ('products', '0001_initial'),
    ]

    operations = [
        TrigramExtension(),
        migrations.AddField(
            model_name='dataproduct',
            name='search_vector',
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
