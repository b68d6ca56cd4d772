"""Lineage reads: walking product-to-product edges, graphs for the browser, impact analysis.

Edges are input ports (`InputPort.source_product` → `InputPort.product`). On PostgreSQL one
recursive CTE with a depth bound collects the reachable edges; elsewhere (SQLite) a loop does
one query per hop. Every result is visibility-filtered: a product the user may not see (another
team's draft) is left out, with the edges through it, so that every answer is the one the user
would get if it did not exist (`_visible_edges`).

Observed edges (what the warehouses' query logs show products reading, from the extensions:
`products.extensions.observed_edges`) join declared ones when asked: impact analysis and the
mesh map take `observed=True`, and mark what only observed edges reach.
"""

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, F, Q
from django.db.models.expressions import RawSQL

from domains.models import Domain, Membership, Team
from meshportal import cache as shared_cache
from meshportal.permissions import PUBLIC_PRODUCTS, visible_drafts
from products import extensions
from products.models import DataProduct, InputPort, OutputPort, SchemaField

DEFAULT_DEPTH = 2
MAX_DEPTH = 6
# Impact follows edges "transitively"; the bound only protects against pathological meshes
# (cycles are refused when edges are declared).
IMPACT_MAX_DEPTH = 50


# -- walking edges -----------------------------------------------------------------------------

_CTE = """
WITH RECURSIVE walk(node, depth) AS (
    SELECT CAST(%s AS bigint), 0
    UNION
    SELECT e.{far}, w.depth + 1
    FROM products_inputport e JOIN walk w ON e.{near} = w.node
    WHERE w.depth < %s AND e.source_product_id IS NOT NULL
)
SELECT DISTINCT e.source_product_id, e.product_id
FROM products_inputport e JOIN walk w ON e.{near} = w.node
WHERE w.depth < %s AND e.source_product_id IS NOT NULL
"""


# The transitive closure (impact) walks edges, not (node, depth) pairs: UNION keeps each edge
# once, so a product reached by many paths at many depths is expanded once per edge into it
# rather than once per depth, and the edges come out of the walk itself (no second pass over
# the edge table). It ends without a depth bound because the edges are finite (and cycles are
# refused when declared). Measured on the seed_scale mesh: README, Lineage.
_CLOSURE = """
WITH RECURSIVE walk(src, node) AS (
    SELECT CAST(NULL AS bigint), CAST(%s AS bigint)
    UNION
    SELECT e.{near}, e.{far}
    FROM products_inputport e JOIN walk w ON e.{near} = w.node
    WHERE e.source_product_id IS NOT NULL
)
SELECT {pair} FROM walk WHERE src IS NOT NULL
"""


def edges_within(
    root_ids: Iterable[int], *, depth: int, downstream: bool, first_hop_port: int | None = None
) -> set[tuple[int, int]]:
    """(source_product_id, product_id) edges reachable from root_ids within `depth` hops.

    first_hop_port restricts the first hop to consumers of one output port (port impact).
    """
    roots = set(root_ids)
    if not roots or depth < 1:
        return set()
    if first_hop_port is not None:
        first = set(
            InputPort.objects.filter(source_port_id=first_hop_port)
            .order_by()
            .values_list("source_product_id", "product_id")
        )
        nexts = {dst for _, dst in first}
        return first | edges_within(nexts, depth=depth - 1, downstream=True)
    near, far = (
        ("source_product_id", "product_id") if downstream else ("product_id", "source_product_id")
    )
    # One recursive query where the database has WITH RECURSIVE ... UNION (PostgreSQL and
    # SQLite); elsewhere one query per hop.
    if connection.vendor in ("postgresql", "sqlite") and len(roots) == 1:
        root = next(iter(roots))
        with connection.cursor() as cur:
            if depth >= IMPACT_MAX_DEPTH:
                pair = "src, node" if downstream else "node, src"  # (source, product)
                cur.execute(_CLOSURE.format(near=near, far=far, pair=pair), [root])
            else:
                cur.execute(_CTE.format(near=near, far=far), [root, depth, depth])
            return {(s, d) for s, d in cur.fetchall()}
    return _edges_iterative(roots, depth=depth, near=near, far=far)


def _edges_iterative(roots: set[int], *, depth: int, near: str, far: str) -> set[tuple[int, int]]:
    edges: set[tuple[int, int]] = set()
    seen, frontier = set(roots), set(roots)
    for _ in range(depth):
        if not frontier:
            break
        rows = (
            InputPort.objects.filter(**{f"{near}__in": frontier}, source_product__isnull=False)
            .order_by()
            .values_list("source_product_id", "product_id")
            .distinct()
        )
        step = set(rows)
        edges |= step
        reached = {s if near == "product_id" else d for s, d in step}
        frontier = reached - seen
        seen |= reached
    return edges


def _walk_with_observed(
    root: int, *, depth: int, downstream: bool, observed: set[tuple[int, int]]
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(source_product_id, product_id) edges within `depth` hops of root over declared and
    observed edges together, one query per hop: (declared edges, observed-only edges)."""
    near, far = (
        ("source_product_id", "product_id") if downstream else ("product_id", "source_product_id")
    )
    adjacent: dict[int, set[int]] = {}
    for s, d in observed:
        a, b = (s, d) if downstream else (d, s)
        adjacent.setdefault(a, set()).add(b)
    declared, seen_only = set[tuple[int, int]](), set[tuple[int, int]]()
    seen, frontier = {root}, {root}
    for _ in range(depth):
        if not frontier:
            break
        step = set(
            InputPort.objects.filter(**{f"{near}__in": frontier}, source_product__isnull=False)
            .order_by()
            .values_list("source_product_id", "product_id")
            .distinct()
        )
        more = {(n, m) if downstream else (m, n) for n in frontier for m in adjacent.get(n, ())}
        declared |= step
        seen_only |= more - step
        reached = {d if downstream else s for s, d in step | more}
        frontier = reached - seen
        seen |= reached
    return declared, seen_only - declared


def find_path(start: int, goal: int, *, max_depth: int = IMPACT_MAX_DEPTH) -> list[int] | None:
    """A shortest downstream path start → … → goal (product ids), or None."""
    if start == goal:
        return [start]
    edges = edges_within([start], depth=max_depth, downstream=True)
    paths = _bfs_paths(start, edges, downstream=True)
    return paths.get(goal)


def _bfs_paths(root: int, edges: set[tuple[int, int]], *, downstream: bool) -> dict[int, list[int]]:
    """Shortest path from root to every reached node, following edges in the given direction."""
    adj: dict[int, list[int]] = {}
    for s, d in sorted(edges):
        a, b = (s, d) if downstream else (d, s)
        adj.setdefault(a, []).append(b)
    paths = {root: [root]}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for nxt in adj.get(node, ()):
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return paths


def with_observed(
    root: int, declared: set[tuple[int, int]], *, first_hop_port: int | None = None
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Everything downstream of root over declared and observed edges together, from the
    declared walk already done: (declared edges, observed edges). One query for the observed
    edges (an extension's), and one declared walk per hop that an observed edge opens."""
    adjacent: dict[int, set[tuple[int, int]]] = {}
    for s, port, d in extensions.observed_edges():
        adjacent.setdefault(s, set()).add((port, d))
    declared, observed = set(declared), set[tuple[int, int]]()
    if not adjacent:
        return declared, observed
    reached = {root} | {d for _, d in declared}
    first = {
        (root, d)
        for port, d in adjacent.get(root, ())
        if first_hop_port is None or port == first_hop_port
    }
    observed |= first
    frontier = reached - {root}  # expanded along their observed edges next
    opened = {d for _, d in first} - reached
    reached |= opened
    while frontier or opened:
        if opened:  # declared edges from products only an observed edge reached
            more = edges_within(opened, depth=IMPACT_MAX_DEPTH, downstream=True)
            declared |= more
            newly = {d for _, d in more} - reached
            reached |= newly
            frontier |= opened | newly
            opened = set()
        for node in frontier:
            for _, d in adjacent.get(node, ()):
                observed.add((node, d))
                if d not in reached:
                    opened.add(d)
                    reached.add(d)
        frontier = set()
    return declared, observed - declared


# -- nodes, with visibility --------------------------------------------------------------------


def _among(ids: set[int], column: str = "pk") -> Q:
    """column in ids: one array parameter on PostgreSQL (a thousand-id IN list costs more to
    build and send than the query takes to run)."""
    if connection.vendor == "postgresql":
        return Q(**{f"{column}__in": RawSQL("SELECT unnest(%s::bigint[])", (sorted(ids),))})
    return Q(**{f"{column}__in": ids})


def _load(user, ids: Iterable[int]) -> tuple[dict[int, DataProduct], set[int]]:
    """The products by id (with their domain and team), and the ids the user may see.

    At most four queries whatever the size. Products carry only what graphs, impact lists and their
    templates read; domains and teams (a few dozen) are loaded once and shared rather than
    joined and instantiated per product, which at a thousand downstream products was most of
    an impact analysis's time.
    """
    ids = set(ids)
    products = {
        p.pk: p
        for p in DataProduct.objects.filter(_among(ids))
        .only("slug", "name", "status", "domain_id", "owner_team_id")
        .order_by()
    }
    domains = Domain.objects.filter(pk__in={p.domain_id for p in products.values()}).only(
        "slug", "name"
    )
    teams = Team.objects.filter(pk__in={p.owner_team_id for p in products.values()}).only("name")
    domain_of, team_of = {d.pk: d for d in domains}, {t.pk: t for t in teams}
    for p in products.values():
        p.domain, p.owner_team = domain_of[p.domain_id], team_of[p.owner_team_id]
    return products, seen_among(user, products.values())


def seen_among(user, products: Iterable[DataProduct]) -> set[int]:
    """The ids of `products` (loaded, with their status) that user may see. Everyone signed in
    sees public products; only the drafts among them need the permission query."""
    signed_in = getattr(user, "is_authenticated", False) and user.is_active
    seen: set[int] = set()
    drafts: set[int] = set()
    for p in products:
        (seen if signed_in and p.status != DataProduct.Status.DRAFT else drafts).add(p.pk)
    if drafts:
        seen |= set(
            visible_drafts(user, DataProduct.objects.filter(_among(drafts)))
            .order_by()
            .values_list("pk", flat=True)
        )
    return seen


def _visible_edges(user, root: int, edges: set[tuple[int, int]]):
    """The edges between products user may see, and those products: a hidden product and every
    edge through it are left out, as if it did not exist (a product reached only through it is
    not reached). -> (edges, products by id, the ids seen)."""
    ends = {root} | {pk for edge in edges for pk in edge}
    products, seen = _load(user, ends)
    return {(s, d) for s, d in edges if s in seen and d in seen}, products, seen


def product_graph(
    *, user, product: DataProduct, depth: int = DEFAULT_DEPTH, observed: bool = False
) -> dict:
    """Nodes and edges N hops up- and downstream of product, as cytoscape-ready JSON data.
    With `observed`, over observed edges too (one query per hop then), each marked."""
    depth = max(1, min(int(depth), MAX_DEPTH))
    seen_only: set[tuple[int, int]] = set()
    pairs = {(s, d) for s, _, d in extensions.observed_edges()} if observed else set()
    if pairs:
        down, down_seen = _walk_with_observed(
            product.pk, depth=depth, downstream=True, observed=pairs
        )
        up, up_seen = _walk_with_observed(product.pk, depth=depth, downstream=False, observed=pairs)
        seen_only = (down_seen | up_seen) - down - up
        down, up = down | down_seen, up | up_seen
    else:
        down = edges_within([product.pk], depth=depth, downstream=True)
        up = edges_within([product.pk], depth=depth, downstream=False)
    edges, products, seen = _visible_edges(user, product.pk, down | up)
    down, up = down & edges, up & edges
    hops = {pk: len(path) - 1 for pk, path in _bfs_paths(product.pk, down, downstream=True).items()}
    for pk, path in _bfs_paths(product.pk, up, downstream=False).items():
        hops.setdefault(pk, -(len(path) - 1))
    # node["badge"] from other apps (governance: the trust score)
    badges = extensions.node_badges([products[pk] for pk in hops if pk in products])
    unapproved = set(
        InputPort.objects.filter(
            source_product_id__isnull=False,
            approved=False,
            product_id__in=list(hops),
            source_product_id__in=list(hops),
        )
        .order_by()
        .values_list("source_product_id", "product_id")
    )

    ids = {pk: f"p{pk}" for pk in hops}
    nodes, domains = [], {}
    for pk, hop in sorted(hops.items(), key=lambda kv: (kv[1], kv[0])):
        p = products.get(pk)
        if p is None:
            continue
        domains[p.domain.slug] = p.domain.name
        nodes.append(
            {
                "id": ids[pk],
                "label": p.name,
                "key": f"{p.domain.slug}/{p.slug}",
                "domain": p.domain.slug,
                "domain_name": p.domain.name,
                "parent": f"d-{p.domain.slug}",
                "team": p.owner_team.name,
                "status": p.status,
                "url": p.get_absolute_url(),
                "depth": hop,
                "root": pk == product.pk,
                "badge": badges.get(pk),
            }
        )
    groups = [
        {"id": f"d-{slug}", "label": name, "group": True} for slug, name in sorted(domains.items())
    ]
    return {
        "root": ids[product.pk],
        "depth": depth,
        "groups": groups,
        "nodes": nodes,
        "edges": [
            {
                "id": f"{ids[s]}-{ids[d]}",
                "source": ids[s],
                "target": ids[d],
                "approved": (s, d) not in unapproved,
                "observed": (s, d) in seen_only,
            }
            for s, d in sorted(edges)
            if s in ids and d in ids
        ],
    }


def _mesh_cache_key() -> str:
    return shared_cache.public_key(shared_cache.MESH_MAP)


def invalidate_mesh(**kwargs) -> None:
    """Forget every cached public part (mesh map, home page) once the change commits: any change
    of a product or an edge may alter them. A signal receiver (apps.py); bulk writes that send
    no signals call it themselves."""
    shared_cache.forget_public()


def _domain_pairs(edges: Iterable[tuple[int, int, int, int]]) -> dict[tuple[int, int], int]:
    """Distinct product pairs per pair of different domains, from (src, dst, sd, dd) rows."""
    pairs = {(s, d): (sd, dd) for s, d, sd, dd in edges if sd != dd}
    return dict(Counter(pairs.values()))


def _public_mesh() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Products per domain and dependencies between domains, among the products everyone
    sees: cached (meshportal.cache.public_get) and forgotten whenever a product or an edge
    changes, so only the first mesh map after a change pays for the walk over every edge."""
    return shared_cache.public_get(shared_cache.MESH_MAP, _compute_public_mesh)


def _compute_public_mesh() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    public = DataProduct.objects.filter(PUBLIC_PRODUCTS)
    counts = dict(
        public.order_by().values("domain_id").annotate(n=Count("pk")).values_list("domain_id", "n")
    )
    pairs = (
        InputPort.objects.filter(source_product__isnull=False)
        .exclude(source_product__status=DataProduct.Status.DRAFT)  # PUBLIC_PRODUCTS, joined
        .exclude(product__status=DataProduct.Status.DRAFT)
        .annotate(sd=F("source_product__domain_id"), dd=F("product__domain_id"))
        .exclude(sd=F("dd"))
        .order_by()
        .values_list("source_product_id", "product_id", "sd", "dd")
        .distinct()
    )
    sql, params = pairs.query.sql_with_params()
    with connection.cursor() as cur:  # distinct product pairs per pair of domains, in SQL
        # Django-compiled SQL, its params bound.
        query = f"SELECT sd, dd, COUNT(*) FROM ({sql}) pairs GROUP BY sd, dd"  # noqa: S608  # nosec B608
        cur.execute(query, params)
        weights = {(sd, dd): n for sd, dd, n in cur.fetchall()}
    return counts, weights


def _observed_domain_pairs(user) -> dict[tuple[int, int], int]:
    """Product pairs per pair of different domains that the query logs show but no input port
    declares, among the products user may see (a hidden draft and its edges are left out)."""
    pairs = {(s, d) for s, _, d in extensions.observed_edges()}
    if not pairs:
        return {}
    ids = {pk for pair in pairs for pk in pair}
    products, seen = _load(user, ids)
    declared = set(
        InputPort.objects.filter(_among(ids, "source_product_id"), _among(ids, "product_id"))
        .order_by()
        .values_list("source_product_id", "product_id")
        .distinct()
    )
    return _domain_pairs(
        (s, d, products[s].domain_id, products[d].domain_id)
        for s, d in pairs - declared
        if s in seen and d in seen
    )


def mesh_map(*, user, observed: bool = False) -> dict:
    """Domains as nodes (sized by visible products), edges weighted by product dependencies.

    The public part (see `_public_mesh`) plus what only this user sees: drafts of their teams
    (all drafts for the platform team), and the edges that touch them. With `observed`, also
    `observed_edges`: dependencies between domains seen in the query logs but not declared.
    """
    public_counts, public_weights = _public_mesh()
    own = dict(
        visible_drafts(user, DataProduct.objects.all()).order_by().values_list("pk", "domain_id")
    )
    counts = Counter(public_counts)
    counts.update(Counter(own.values()))
    weights = Counter(public_weights)
    if own:
        rows = (
            InputPort.objects.filter(source_product__isnull=False)
            .filter(_among(set(own), "source_product_id") | _among(set(own), "product_id"))
            .order_by()
            .values_list(
                "source_product_id",
                "product_id",
                "source_product__domain_id",
                "product__domain_id",
                "source_product__status",
                "product__status",
            )
        )
        seen = [
            (s, d, sd, dd)
            for s, d, sd, dd, ss, ds in rows
            # each end is one of the user's own drafts or a public product (PUBLIC_PRODUCTS)
            if (s in own or ss != DataProduct.Status.DRAFT)
            and (d in own or ds != DataProduct.Status.DRAFT)
        ]
        weights.update(_domain_pairs(seen))
    nodes = [
        {
            "id": f"d{d.pk}",
            "label": d.name,
            "slug": d.slug,
            "url": d.get_absolute_url(),
            "products": counts.get(d.pk, 0),
        }
        for d in Domain.objects.order_by("name")
    ]
    edges = [
        {"id": f"d{s}-d{t}", "source": f"d{s}", "target": f"d{t}", "weight": n}
        for (s, t), n in sorted(weights.items())
    ]
    data = {"nodes": nodes, "edges": edges}
    if observed:
        data["observed_edges"] = [
            {"id": f"o{s}-d{t}", "source": f"d{s}", "target": f"d{t}", "weight": n}
            for (s, t), n in sorted(_observed_domain_pairs(user).items())
        ]
    return data


def mesh_dependencies(data: dict) -> list[dict]:
    """The edges of a `mesh_map` answer as rows (source and target domain names, weight,
    observed or declared), in name order: the map's text alternative."""
    names = {n["id"]: n["label"] for n in data["nodes"]}
    rows = [
        {
            "source": names[e["source"]],
            "target": names[e["target"]],
            "weight": e["weight"],
            "observed": kind,
        }
        for kind, key in ((False, "edges"), (True, "observed_edges"))
        for e in data.get(key, ())
    ]
    return sorted(rows, key=lambda r: (r["source"], r["target"], r["observed"]))


# -- impact ------------------------------------------------------------------------------------


@dataclass
class ImpactItem:
    label: str
    depth: int
    path: list[str]
    product: DataProduct
    team: str = ""
    owners: list[str] = field(default_factory=list)
    observed: bool = False  # reached only through an edge seen in the query logs, not declared


@dataclass
class Impact:
    subject: str
    items: list[ImpactItem]
    teams: dict[str, list[str]]  # team name -> owner usernames, for visible downstream products
    with_observed: bool = False  # observed edges were asked for

    def as_json(self) -> dict:
        return {
            "subject": self.subject,
            "observed_included": self.with_observed,
            "products": [
                {
                    "product": i.label,
                    "name": p.name,
                    "url": p.get_absolute_url(),
                    "status": p.status,
                    "domain": p.domain.slug,
                    "team": i.team,
                    "owners": i.owners,
                    "depth": i.depth,
                    "path": i.path,
                    "observed": i.observed,
                }
                for i in self.items
                for p in [i.product]
            ],
            "teams": [{"team": t, "owners": o} for t, o in sorted(self.teams.items())],
        }


def impact(
    *,
    user,
    product: DataProduct,
    port: OutputPort | None = None,
    field: SchemaField | None = None,
    observed: bool = False,
) -> Impact:
    """Every product downstream of product (or of one of its ports or fields), transitively,
    with one shortest path each, and the teams owning them.

    Input ports are declared per output port, so a field's impact is its port's impact. With
    `observed`, edges seen in the query logs count too: a product reached only through them is
    marked `observed`, and one reached through declared edges keeps its declared path.
    """
    if field is not None:
        port = field.port
    subject = f"{product.domain.slug}/{product.slug}"
    if port is not None:
        subject += f" port {port.slug}" + (f" field {field.name}" if field is not None else "")
    edges = edges_within(
        [product.pk],
        depth=IMPACT_MAX_DEPTH,
        downstream=True,
        first_hop_port=port.pk if port is not None else None,
    )
    seen_only: set[tuple[int, int]] = set()
    if observed:
        edges, seen_only = with_observed(
            product.pk, edges, first_hop_port=port.pk if port is not None else None
        )
    edges, products, _ = _visible_edges(user, product.pk, edges | seen_only)
    paths = _bfs_paths(product.pk, edges, downstream=True)
    declared_paths = (
        _bfs_paths(product.pk, edges - seen_only, downstream=True) if seen_only else paths
    )
    paths = {pk: declared_paths.get(pk, path) for pk, path in paths.items()}
    paths.pop(product.pk, None)
    labels = {pk: f"{p.domain.slug}/{p.slug}" for pk, p in products.items()}
    team_ids = {products[pk].owner_team_id for pk in paths}
    owners: dict[int, list[str]] = {}
    for team_id, username in (
        Membership.objects.filter(team_id__in=team_ids, role=Membership.Role.OWNER)
        .values_list("team_id", "user__username")
        .order_by("user__username")
    ):
        owners.setdefault(team_id, []).append(username)
    items, teams = [], {}
    for pk, path in sorted(paths.items(), key=lambda kv: (len(kv[1]), labels[kv[0]])):
        p = products[pk]
        team_owners = owners.get(p.owner_team_id, [])
        items.append(
            ImpactItem(
                label=labels[pk],
                depth=len(path) - 1,
                path=[labels[x] for x in path],
                product=p,
                team=p.owner_team.name,
                owners=team_owners,
                observed=pk not in declared_paths,
            )
        )
        teams[p.owner_team.name] = team_owners
    return Impact(subject=subject, items=items, teams=teams, with_observed=observed)


def downstream_ids(product: DataProduct) -> set[int]:
    """Every product transitively downstream of product (no visibility: for notifications)."""
    edges = edges_within([product.pk], depth=IMPACT_MAX_DEPTH, downstream=True)
    return {d for _, d in edges} - {product.pk}
