"""What `make bench` measures. One line per scenario; add yours to SCENARIOS.

A scenario's target is either a URL (formatted with the bench's `{domain}`, `{product}`,
`{team}`, `{urn}`, `{mid_domain}`/`{mid}`, `{hub_domain}`/`{hub}`, `{search}` placeholders and
fetched from the portal under gunicorn), or a dotted path to a callable run inside the bench
process against the benchmark database (for work that is not a page: policy evaluation,
dispatching quality checks). A URL must answer 200 and a job must import: anything else is
reported as an error and fails the run, so a scenario cannot quietly measure an error page.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # "/url/…" or "package.module.callable"
    kind: str = "page"  # page | search | api | job
    # Budgets checked in the report (None: no target for this scenario).
    p95_ms: float | None = None
    max_queries: int | None = 15
    min_ratio: float | None = None  # throughput / trivial view's throughput
    min_ceiling: float | None = None  # throughput / the ceiling page's throughput
    max_seconds: float | None = None  # jobs: wall time
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("/", "{"))

    def targets(self) -> str:
        """The budgets in words, as the report prints them next to met / not met."""
        parts = []
        if self.p95_ms is not None:
            parts.append(f"p95 ≤ {self.p95_ms:g} ms")
        if self.min_ceiling is not None:
            parts.append(f"≥ {self.min_ceiling:.0%} of ceiling")
        if self.min_ratio is not None:
            parts.append(f"≥ {self.min_ratio:.0%} of /healthz")
        if self.max_seconds is not None:
            parts.append(f"≤ {self.max_seconds:g} s")
        if self.max_queries is not None:
            parts.append(f"≤ {self.max_queries} queries")
        return ", ".join(parts)


# Two baselines for throughput. /healthz answers from the first middleware with no session,
# user or template: a ratio to it says how far a page is from doing nothing at all. The fair
# ceiling is a signed-in page through the whole middleware stack rendering the base layout
# (navigation and its badges) and nothing else: the most any page can reach.
TRIVIAL = Scenario("trivial view (/healthz)", "/healthz", kind="baseline", max_queries=None)
CEILING = Scenario("ceiling (signed-in base layout)", "/ceiling/", kind="baseline")

# Search: typical queries, with and without facets, with typos. `{search}` is /search/ when
# the search page exists, /products/ before.
SEARCHES = [
    ("orders", "q=orders"),
    ("two words", "q=daily+revenue"),
    ("field-like word", "q=customer_id"),
    ("typo 'custmer'", "q=custmer"),
    ("typo 'paymnts'", "q=paymnts"),
    ("region", "q=churn+emea"),
    ("q + status facet", "q=invoices&status=published"),
    ("q + domain facet", "q=shipments&domain={domain}"),
    ("q + tag facet", "q=sessions&tag=gdpr"),
    ("facets only", "status=published&classification=internal&port_kind=stream"),
    (
        "q + several facets",
        "q=refunds&status=published&status=deprecated&classification=confidential",
    ),
    ("no match", "q=zzzxqv"),
]

SCENARIOS: list[Scenario] = [
    TRIVIAL,
    CEILING,
    Scenario("home", "/", p95_ms=20),
    Scenario("product list", "/products/", p95_ms=20),
    # The list's other sorts: no index gives their order (the page's ids are read first).
    Scenario("product list: most trusted", "/products/?sort=trust", p95_ms=20),
    Scenario("product list: newest", "/products/?sort=newest", p95_ms=20),
    *[
        Scenario(f"search: {label}", "{search}?" + query, kind="search", p95_ms=20)
        for label, query in SEARCHES
    ],
    Scenario("domain list", "/domains/"),
    Scenario("domain page", "/domains/{domain}/", p95_ms=20),
    Scenario("team page", "/teams/{team}/", p95_ms=20),
    Scenario("product page", "/products/{domain}/{product}/", p95_ms=15, min_ceiling=0.5),
    Scenario("product page: schema", "/products/{domain}/{product}/?tab=schema", p95_ms=50),
    Scenario("product page: activity", "/products/{domain}/{product}/?tab=activity"),
    Scenario("inbox", "/access/inbox/"),
    # REST API, contract export (ODCS), lineage: the URLs the portal serves (each must answer 200).
    # A page of 50 (the API's PAGE_SIZE).
    Scenario("API product list", "/api/v1/products/", kind="api", p95_ms=20),
    Scenario("API product detail", "/api/v1/products/{domain}/{product}/", kind="api"),
    Scenario("API product by URN", "/api/v1/products/{urn}/", kind="api"),
    Scenario("contract export", "/api/v1/products/{domain}/{product}/contract", kind="api"),
    # Issue 8: graph queries under 100 ms at 10,000 products and 30,000 edges, on a mid-layer
    # product (it reads others, a few read it). The "hub" (the product most others read, with
    # about a fifth of the mesh downstream) shows the worst case.
    Scenario("product page: lineage", "/products/{mid_domain}/{mid}/?tab=lineage"),
    Scenario(
        "lineage graph (depth 2)",
        "/products/{mid_domain}/{mid}/lineage/graph.json",
        kind="api",
        p95_ms=100,
    ),
    Scenario(
        "lineage graph (depth 4)",
        "/products/{mid_domain}/{mid}/lineage/graph.json?depth=4",
        kind="api",
        p95_ms=100,
    ),
    Scenario(
        "impact analysis",
        "/products/{mid_domain}/{mid}/lineage/impact.json",
        kind="api",
        p95_ms=100,
    ),
    Scenario(
        "impact analysis (most-read product)",
        "/products/{hub_domain}/{hub}/lineage/impact.json",
        kind="api",
    ),
    Scenario("mesh map", "/lineage/mesh.json", kind="api", p95_ms=100),
    # Jobs, run in-process.
    Scenario(
        "policy evaluation (all products)",
        "governance.policies.services.evaluate_policies",
        kind="job",
        max_queries=None,
        max_seconds=30,
    ),
    # Whatever is due on the generated mesh (up to its 20,000 checks); bench/bulk.py times the
    # dispatch of 20,000 due checks and the sweep of 10,000 stuck runs on their own.
    Scenario(
        "dispatch due quality checks",
        "governance.quality.services.dispatch_due",
        kind="job",
        max_queries=30,
    ),
]

# The scale curve (`python -m bench --curve 1000,10000,50000`): these scenarios are measured again
# at every size, each on its own database, and the report prints their growth.
CURVE_NAMES = ("product page", "API product list")


def in_curve(s: Scenario) -> bool:
    return s.kind == "search" or s.name in CURVE_NAMES


# Targets at the largest size of the curve (50,000 products), by scenario kind.
LARGE_PRODUCTS = 50_000
LARGE_P95_MS = {"search": 40}
