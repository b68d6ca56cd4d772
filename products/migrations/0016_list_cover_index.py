"""The product lists' index on (domain, name) also covers status, team and id (INCLUDE, PostgreSQL):
the visibility test, counts and page ids read the index instead of the wide rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("domains", "0001_initial"),
        ("products", "0015_facet_values"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="dataproduct",
            name="dataproduct_domain_name",
        ),
        migrations.AddIndex(
            model_name="dataproduct",
            index=models.Index(
                fields=["domain", "name"],
                include=("status", "owner_team", "id"),
                name="dataproduct_list_cover",
            ),
        ),
    ]
