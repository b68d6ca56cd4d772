"""pg_trgm's word-similarity operators (`%>`, `<%`) priced as what they are: a trigram
comparison, about a microsecond a row, not one comparison (PostgreSQL's default COST 1).
Priced at 1, the planner answered "Did you mean …?" on a mesh of 1,000 products by computing
the similarity of all 50,000 field names (a sequential scan, 47 ms) instead of asking the
trigram index (under 1 ms); at 10,000 products it already chose the index.

ALTER FUNCTION needs the functions' owner: where the portal's database user is not (pg_trgm
installed by another role), nothing changes here and docs/discovery.md says what to run."""

from django.db import migrations

FUNCTIONS = ("word_similarity_op", "word_similarity_commutator_op")


def price(cost: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p"
                " WHERE p.proname = ANY(%s) AND pg_has_role(p.proowner, 'USAGE')",
                [list(FUNCTIONS)],
            )
            for (signature,) in cursor.fetchall():
                # A signature read from pg_proc just above, not user input.
                cursor.execute(f"ALTER FUNCTION {signature} COST {int(cost)}")  # nosec B608

    return run


class Migration(migrations.Migration):
    dependencies = [("products", "0019_port_kind_index")]

    operations = [migrations.RunPython(price(100), price(1))]
