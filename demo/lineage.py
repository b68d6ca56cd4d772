"""Demo lineage: who consumes what in the demo mesh, and who watches. Idempotent."""

from django.contrib.auth import get_user_model

from meshportal.permissions import clear_caches
from products import services
from products.lineage import services as lineage_services
from products.models import AccessRequest, DataProduct, InputPort, OutputPort

# (consumer product, source domain/product/port, the consumer team's owner declaring it)
EDGES = [
    ("orders/daily-revenue", "orders/orders/orders", "olivia"),
    ("orders/daily-revenue", "orders/order-items/order-items", "olivia"),
    ("traffic/campaign-attribution", "orders/orders/orders", "tariq"),
    ("traffic/campaign-attribution", "traffic/sessions/sessions", "tariq"),
    ("traffic/sessions", "traffic/page-views/page-views", "tariq"),
    ("marketing/customer-360", "orders/orders/orders", "mia"),
    ("marketing/customer-360", "users/customer-profiles/profiles", "mia"),
    ("marketing/email-campaigns", "marketing/customer-360/customer-360", "mia"),
    ("payments/refunds", "payments/payments/payments", "pat"),
    ("orders/returns", "orders/orders/orders", "olivia"),
]
EXTERNAL = [("marketing/email-campaigns", "Mailchimp", "saas", "mia")]
# Approved access the downstream owners hold on confidential sources before declaring inputs.
GRANTS = [
    ("orders/orders", "tariq", "olivia"),
    ("orders/orders", "mia", "olivia"),
    ("users/customer-profiles", "mia", "uma"),
]
WATCHES = [("carl", "orders/orders")]


def _product(key: str) -> DataProduct:
    domain, slug = key.split("/")
    return DataProduct.objects.select_related("domain").get(domain__slug=domain, slug=slug)


def seed() -> int:
    users = get_user_model().objects.in_bulk(field_name="username")
    for key, requester, owner in GRANTS:
        product = _product(key)
        if not AccessRequest.objects.filter(product=product, requester=users[requester]).exists():
            req = services.access_request_create(
                product=product,
                requester=users[requester],
                duration_days=365,
                purpose="Feeds our own data products (demo lineage).",
            )
            services.access_request_approve(request=req, by=users[owner], comment="Demo grant.")
            clear_caches(users[requester])  # its cached permissions predate the grant
    created = 0
    for consumer, source, by in EDGES:
        product = _product(consumer)
        domain, slug, port = source.split("/")
        source_port = OutputPort.objects.get(
            product__domain__slug=domain, product__slug=slug, slug=port
        )
        if not InputPort.objects.filter(product=product, source_port=source_port).exists():
            lineage_services.input_port_create(
                product=product, by=users[by], source_port=source_port
            )
            created += 1
    for consumer, name, kind, by in EXTERNAL:
        product = _product(consumer)
        if not InputPort.objects.filter(product=product, external_name=name).exists():
            lineage_services.input_port_create(
                product=product, by=users[by], external_name=name, external_kind=kind
            )
            created += 1
    for username, key in WATCHES:
        lineage_services.watch_set(user=users[username], product=_product(key), on=True)
    return created
