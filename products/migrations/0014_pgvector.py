"""The meaning vectors' pgvector column and HNSW index, where the server has the extension
(products.discovery.pgvector). Elsewhere nothing changes: search keeps the vectors in memory."""

from django.db import migrations


def install(apps, schema_editor):
    from products.discovery import embedding, pgvector

    if schema_editor.connection.alias == "default":
        pgvector.install(embedding.DIMENSIONS)


def uninstall(apps, schema_editor):
    from products.discovery import pgvector

    if schema_editor.connection.alias == "default":
        pgvector.uninstall()


class Migration(migrations.Migration):
    dependencies = [("products", "0013_search_vector_inline")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
