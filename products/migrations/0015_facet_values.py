"""DataProduct.facet_values: the many-valued search facets' values (tag slugs, port kinds) in the
product's row, so that the facet counts unnest them over the matches instead of joining the tag
links and every port (products.discovery.facets._stored). Filled here for the products already
indexed (PostgreSQL); search.index_product keeps it from then on. A NULL is read from the
related tables, so a product never indexed still counts.
"""

from django.db import migrations, models

FILL = """
UPDATE products_dataproduct p SET facet_values = jsonb_build_object(
  'tag', to_jsonb(ARRAY(
    SELECT DISTINCT t.slug FROM products_tag t
      JOIN products_dataproduct_tags dt ON dt.tag_id = t.id
     WHERE dt.dataproduct_id = p.id)),
  'port_kind', to_jsonb(ARRAY(
    SELECT DISTINCT o.kind FROM products_outputport o
     WHERE o.product_id = p.id AND o.kind IS NOT NULL)))
 WHERE p.search_vector IS NOT NULL
"""


def fill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FILL)


class Migration(migrations.Migration):
    dependencies = [("products", "0014_pgvector")]

    operations = [
        migrations.AddField(
            model_name="dataproduct",
            name="facet_values",
            field=models.JSONField(editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
