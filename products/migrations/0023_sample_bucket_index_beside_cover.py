"""The bare sample-bucket index of migration 0017 again, beside the covering one that replaced it
(0021). A search's facet pass and probe read a hash-chosen share of the products through the
bucket; priced through the cover's wide entries (facet keys included), that read cost the
planner more than a sequential scan of every product testing each one's vector, which it then
chose for a phrase-like word ("customer_id": the facet pass 19-22 → 12-14 ms at 10,000
products) and, after a few hundred product updates had grown the cover, for "orders" too
(12.6 → 20 ms). The list's pass over the products everyone sees keeps the cover."""

import importlib

from django.db import migrations

bucket = importlib.import_module("products.migrations.0017_sample_bucket_index")


class Migration(migrations.Migration):
    dependencies = [("products", "0022_newest_index")]

    operations = [
        migrations.RunPython(bucket._run(bucket.CREATE), bucket._run(bucket.DROP), elidable=False)
    ]
