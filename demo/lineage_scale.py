"""Lineage for the generated mesh (`seed_scale`): input ports between products' output ports.

Products are placed in layers (sources near operational systems first, reports and features
last) and read only from earlier layers, so the graph is acyclic by construction, as the
services would insist. Most inputs come from the layer just before, most from the product's
own domain, a quarter from a few "partner" domains and the rest from anywhere, which gives the
mesh map a realistic shape. Only published and deprecated products are read from (the
retirement rule forbids live readers of retired ones; drafts are not offered). Products of the
first layer read external sources instead.
"""

from collections import defaultdict

from django.db.models import QuerySet

from demo import scale
from products.lineage import graph as lineage
from products.models import DataProduct, InputPort

# Share of products per layer, first (sources) to last (reports).
LAYER_WEIGHTS = [20, 18, 16, 14, 12, 9, 7, 4]
SAME_DOMAIN, PARTNER_DOMAIN = 0.6, 0.25  # the rest: any domain
PREVIOUS_LAYER = 0.7  # the rest: any earlier layer
EXTERNAL = [
    ("Salesforce CRM", "saas"),
    ("SAP ERP", "database"),
    ("Web tracking events", "stream"),
    ("Payment provider API", "api"),
    ("Partner SFTP drops", "file"),
    ("Zendesk", "saas"),
    ("Warehouse management system", "database"),
    ("Mobile app events", "stream"),
]
RESTRICTED = {DataProduct.Classification.CONFIDENTIAL, DataProduct.Classification.RESTRICTED}


def stage_lineage(ctx: scale.Context) -> int:
    rng = ctx.stage_rng("lineage")
    products = ctx.products
    if not products:
        return 0
    layer_of = {p["id"]: rng.choices(range(len(LAYER_WEIGHTS)), LAYER_WEIGHTS)[0] for p in products}
    domains = sorted({p["domain"]["id"] for p in products})
    partners = {
        d: rng.sample([x for x in domains if x != d], min(3, len(domains) - 1)) for d in domains
    }
    readable = defaultdict(list)  # (layer, domain) -> product ids
    by_layer = defaultdict(list)
    for p in products:
        if p["status"] in ("published", "deprecated"):
            readable[layer_of[p["id"]], p["domain"]["id"]].append(p["id"])
            by_layer[layer_of[p["id"]]].append(p["id"])
    ports_of = defaultdict(list)
    for port_id, product_id in ctx.ports:
        ports_of[product_id].append(port_id)
    info = {p["id"]: p for p in products}

    readers = [p for p in products if layer_of[p["id"]] > 0]
    # Every reader has at least one input; the rest go to readers drawn with a skew (a few
    # products, e.g. a customer 360, read a dozen others).
    wanted = dict.fromkeys((p["id"] for p in readers), 1)
    extra = ctx.options.edge_count - len(readers)
    if readers and extra > 0:
        weights = [rng.paretovariate(2.5) for _ in readers]
        for p in rng.choices(readers, weights, k=extra):
            wanted[p["id"]] += 1  # beyond 40 (or the sources there are) goes to the next ones

    def pick_source(reader: dict) -> int | None:
        layer = layer_of[reader["id"]]
        src_layer = layer - 1 if rng.random() < PREVIOUS_LAYER else rng.randrange(layer)
        r, home = rng.random(), reader["domain"]["id"]
        if r < SAME_DOMAIN:
            domain = home
        elif r < SAME_DOMAIN + PARTNER_DOMAIN and partners[home]:
            domain = rng.choice(partners[home])
        else:
            domain = rng.choice(domains)
        pool = readable.get((src_layer, domain)) or by_layer.get(src_layer)
        return rng.choice(pool) if pool else None

    ids = iter(ctx.next_ids(InputPort, ctx.options.edge_count + len(products) * 2))
    edges = 0

    def rows():
        nonlocal edges
        debt = 0  # inputs a reader could not find sources for go to the next readers
        for p in products:
            if layer_of[p["id"]] == 0:
                for name, kind in rng.sample(EXTERNAL, rng.randint(1, 2)):
                    yield (
                        next(ids),
                        p["id"],
                        None,
                        None,
                        name,
                        kind,
                        f"Loaded nightly from {name}.",
                        True,
                        ctx.at(rng.uniform(1, 300)),
                    )
                continue
            taken: set[int] = set()
            want = min(wanted[p["id"]] + debt, 40)
            for _ in range(want * 3):  # a few tries for each wanted input
                if len(taken) >= want:
                    break
                src = pick_source(p)
                if src is None or not ports_of[src]:
                    continue
                port = rng.choice(ports_of[src])
                if port in taken:
                    continue
                taken.add(port)
                edges += 1
                source = info[src]
                # Reading a confidential or restricted product needs approved access; some
                # teams declared the input before they had it (the edge shows unapproved).
                approved = not (
                    source["classification"] in RESTRICTED
                    and source["team"]["id"] != p["team"]["id"]
                    and rng.random() < 0.25
                )
                yield (
                    next(ids),
                    p["id"],
                    port,
                    src,
                    "",
                    "",
                    "",
                    approved,
                    ctx.at(rng.uniform(1, 300)),
                )
            debt = wanted[p["id"]] + debt - len(taken)

    n = ctx.insert(
        InputPort,
        [
            "id",
            "product_id",
            "source_port_id",
            "source_product_id",
            "external_name",
            "external_kind",
            "description",
            "approved",
            "created_at",
        ],
        rows(),
        total=ctx.options.edge_count,
    )
    ctx.counts["lineage edges"] = edges
    lineage.invalidate_mesh()  # bulk writes send no signals
    return n


def reset_lineage(products: QuerySet) -> None:
    InputPort.objects.filter(product__in=products)._raw_delete(InputPort.objects.db)
    InputPort.objects.filter(source_product__in=products)._raw_delete(InputPort.objects.db)
    lineage.invalidate_mesh()
