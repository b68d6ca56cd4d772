"""Products to find by meaning: a published one and another team's draft, both about
customers leaving, in words that "why customers leave" does not share."""

from meshportal.audit import audit_context
from products import services
from products.discovery import semantic
from products.models import DataProduct

QUERY = "why customers leave"


def add_churn_products(mesh) -> tuple[DataProduct, DataProduct]:
    with audit_context(door="command"):
        published = services.product_create(
            domain=mesh.users,
            slug="churn-predictions",
            name="Churn predictions",
            summary="Weekly likelihood that each subscriber cancels, with the main reasons.",
            ports=[
                {
                    "name": "Scores",
                    "kind": "table",
                    "fields": [{"name": "subscriber_id"}, {"name": "churn_probability"}],
                }
            ],
        )
        services.product_publish(product=published)
        draft = services.product_create(
            domain=mesh.orders,
            slug="attrition-drivers",
            name="Attrition drivers",
            summary="What makes buyers cancel and stop ordering from us, by segment.",
            ports=[{"name": "Drivers", "kind": "table", "fields": [{"name": "reason"}]}],
        )
    semantic.embed(DataProduct.objects.all())
    return published, draft
