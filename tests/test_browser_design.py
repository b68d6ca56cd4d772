"""Issue 20 in Chromium: the request basket walked as a consumer, the portal on a 390-px phone
in the dark theme, the lineage graph's first zoom, and axe-core (vendored under tests/vendor/)
finding no serious or critical accessibility violation on the main pages, in both themes.

One browser for the module, a context per test; axe is injected into the first page checked
and then opens with each page of the context (the context bypasses the Content Security Policy
for that one script; tests/test_csp_browser.py checks the policy itself)."""

import os
import re
import weakref
from pathlib import Path

import pytest
from django.urls import reverse

from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API in pytest

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
_AXE_CONTEXTS: weakref.WeakSet = weakref.WeakSet()  # the browser contexts given axe already
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def open_page(browser, live_server, request):  # noqa: F811  (browser: the imported fixture)
    from meshportal.permissions import forget_permission_ids

    forget_permission_ids()  # transactional tests flush the ids an earlier test cached
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=live_server.url, bypass_csp=True, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    failed_before = request.session.testsfailed
    yield make
    for context in contexts:
        if request.session.testsfailed > failed_before:  # keep what the failing test saw
            ARTIFACTS.mkdir(exist_ok=True)
            for i, pg in enumerate(context.pages):
                pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
        context.close()


def shot(page, name: str) -> None:
    """`make screenshots` (MESH_SCREENSHOTS=docs/screenshots) keeps the docs' pictures current:
    the walk saves what it sees there; otherwise nothing is written."""
    folder = os.environ.get("MESH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def axe_problems(page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
        if page.context not in _AXE_CONTEXTS:
            # The context's later pages get it as they open: 650 KB sent once, not per page.
            page.context.add_init_script(path=str(AXE))
            _AXE_CONTEXTS.add(page.context)
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target + " " + n.failureSummary).join(" | ")}`)"""
    )
    return [f"{page.url}: {v}" for v in found]


def test_consumer_fills_the_basket_from_search_and_requests_both(open_page, mesh):
    from products.models import AccessRequest

    page = open_page()
    sign_in(page, "consumer")
    page.goto("/search/")
    problems = axe_problems(page)
    shot(page, "search")
    page.get_by_role("button", name=re.compile(r"^Add to basket\s*: Orders published$")).click()
    page.wait_for_selector("text=Added Orders published to your request basket.")
    page.get_by_role("button", name=re.compile(r"^Add to basket\s*: Users published$")).click()
    page.wait_for_selector("#nav-basket .badge >> text=2")
    page.click("#nav-basket")
    page.wait_for_selector("h1 >> text=Request basket")
    problems += axe_problems(page)
    shot(page, "basket")
    page.fill("textarea[name=purpose]", "Churn study")
    page.click("button[type=submit] >> text=Request access to 2 products")
    page.wait_for_selector("text=Requested access to 2 products.")
    assert AccessRequest.objects.filter(requester=mesh.consumer, purpose="Churn study").count() == 2
    assert problems == []


def test_phone_width_dark_theme_and_the_collapsed_navigation(open_page, mesh):
    product = mesh.products[("orders", "published")]
    page = open_page(viewport=PHONE, color_scheme="dark")
    sign_in(page, "owner")
    assert page.get_attribute("html", "data-bs-theme") == "dark"  # the system setting
    # the navigation is folded behind its button on a phone
    assert not page.is_visible("#nav a >> text=Products")
    page.click(".navbar-toggler")
    page.wait_for_selector("#nav a >> text=Products", state="visible")
    problems = axe_problems(page)  # dark, with the navigation open
    shot(page, "phone-dark")
    pages = [
        "/",
        "/search/?q=orders",
        product.get_absolute_url(),
        f"{product.get_absolute_url()}?tab=quality",
        "/access/basket/",
        reverse("governance:compliance"),
        reverse("governance:incidents"),
    ]
    for url in pages:
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{url} is {width} px wide on a 390-px phone"
    problems += axe_problems(page)
    # the person's choice wins over the system's, and stays
    page.click("#theme-toggle")
    assert page.get_attribute("html", "data-bs-theme") == "light"
    assert page.evaluate("localStorage.getItem('mesh-theme')") == "light"
    page.reload()
    assert page.get_attribute("html", "data-bs-theme") == "light"
    assert page.get_attribute("#theme-toggle", "aria-pressed") == "false"
    assert problems == []


def _history(product, mesh) -> None:
    """A policy evaluated, an open incident and two weeks of runs: pages with something on."""
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import QualityCheck, QualityRun
    from governance.policies import services as ps
    from governance.quality import incidents

    ps.policy_propose(
        by=mesh.owner,
        key="slo",
        title="Freshness declared",
        rule_type="freshness",
        domain=mesh.orders,
    )
    ps.evaluate_policies()
    incidents.record_freshness_many([(product, True, 24)])
    check = QualityCheck.objects.create(
        port=product.ports.get(), name="Rows", kind="row_count", params={"min": 1}
    )
    now = timezone.now()
    QualityRun.objects.bulk_create(
        QualityRun(
            quality_check=check,
            status="failed" if day % 5 == 0 and i == 0 else "passed",
            started_at=now - timedelta(days=day),
            finished_at=now - timedelta(days=day),
            deadline=now,
        )
        for day in range(14)
        for i in range(3)
    )


def lived_in(mesh):
    """The mesh with a policy, an incident, a fortnight of runs and a lineage edge."""
    from products.lineage import services as lineage_services

    product = mesh.products[("orders", "published")]
    _history(product, mesh)
    lineage_services.input_port_create(
        product=product,
        by=mesh.owner,
        source_port=mesh.products[("users", "published")].ports.get(),
    )
    return product


def test_main_pages_have_no_serious_accessibility_violations(open_page, mesh):
    product = lived_in(mesh)
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "owner")
    seen: list[str] = []
    problems = axe_problems(page)  # home
    shot(page, "home")
    url = product.get_absolute_url()
    for path in [
        f"{url}?tab=lineage",
        f"{url}?tab=quality",
        reverse("governance:compliance"),
        "/access/inbox/",
        "/access/mine/",
        reverse("governance:policy_propose"),
        reverse("lineage:input_add", args=["orders", product.slug]),
    ]:
        page.goto(path)
        problems += axe_problems(page)
        if "tab=lineage" in path:  # two products: the first view is not blown up
            page.wait_for_selector("#lineage-graph[data-ready=true]")
            assert page.evaluate("window.meshGraph.zoom()") <= 1.3
            page.click("[data-graph-fit]")
        if len(seen) < 3:
            shot(page, ("lineage", "quality", "compliance")[len(seen)])
        seen.append(path)
    # the port picker suggests as one types
    page.fill("#id_source", "users publ")
    page.wait_for_function(
        "document.querySelector('#lineage-ports option[value=\"users/published-product/main\"]')"
    )
    # the policy form swaps parameters in place when the rule type changes
    page.goto(reverse("governance:policy_propose"))
    page.select_option("#id_rule_type", "freshness")
    page.wait_for_selector("#id_param_max_hours")
    assert page.locator("#id_param_min_summary_length").count() == 0
    assert problems == [], "\n".join(problems)
