"""Real-browser journeys on Chromium (headless) against a live server: searching as one types,
narrowing with facets, requesting access, and creating a product through the form."""

import os
import re
from pathlib import Path

import pytest

from tests.factories import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API in pytest

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server, request):
    from meshportal.permissions import forget_permission_ids

    # Transactional tests flush the database, so permission ids cached by an earlier test
    # would point at rows that no longer exist.
    forget_permission_ids()
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:  # this test failed: keep what it saw
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page, username):
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector("#home-search")


def count_of(page, facet, value) -> str:
    return page.locator(f'label[for="f-{facet}-{value}"] .facet-count').inner_text()


def test_consumer_searches_narrows_opens_and_requests_access(page, mesh):
    sign_in(page, "consumer")
    assert page.evaluate("document.activeElement.id") == "home-search"  # focused on load
    page.goto("/search/")
    assert count_of(page, "domain", "orders") == "2"
    page.evaluate("window.stillTheSamePage = true")
    page.locator("#q").press_sequentially("ordr")  # a typo, typed: results come in place
    page.wait_for_url(re.compile(r"q=ordr"))  # and the URL follows, to share or bookmark
    page.wait_for_selector("#results >> text=Orders published")
    before = int(page.locator("#result-count").inner_text())
    assert count_of(page, "domain", "orders") == "2"
    page.check("#f-status-published")  # leaving the search box fires its change too
    page.wait_for_url(re.compile(r"status=published"))
    page.wait_for_function(
        f"Number(document.getElementById('result-count').textContent) < {before}"
    )
    assert count_of(page, "domain", "orders") == "1"  # the other facets' counts narrowed
    assert page.locator("#f-status-published").is_checked()
    assert page.evaluate("window.stillTheSamePage") is True  # no full page load happened
    page.click("#results >> text=Orders published")
    page.wait_for_selector("h1 >> text=Orders published")
    page.click("text=Request access")
    page.fill("textarea[name=purpose]", "Weekly revenue report")
    page.click("button[type=submit] >> text=Send request")
    page.wait_for_selector("text=Requested access to Orders published")


def test_member_creates_a_product_with_two_fields_after_fixing_an_error(page, mesh):
    sign_in(page, "member")
    page.goto("/domains/orders/products/new/")
    page.fill("#id_name", "Order events")
    page.fill("#id_summary", "Every event of every order")
    page.click("[data-add-port]")
    page.fill("#id_ports-0-name", "Events")
    page.click("[data-add-field]")
    page.click("[data-add-field]")
    page.fill("#id_ports-0-fields-0-name", "event_id")
    page.select_option("#id_ports-0-fields-0-logical_type", "integer")
    # the second field has no name yet: the form refuses, says where, and saves nothing
    page.click("button[type=submit] >> text=Create draft")
    page.wait_for_selector("#form-errors")
    assert page.locator("#id_ports-0-fields-1-name-error").is_visible()
    assert page.input_value("#id_ports-0-fields-0-name") == "event_id"
    page.fill("#id_ports-0-fields-1-name", "email")
    page.check("#id_ports-0-fields-1-pii")
    page.click("button[type=submit] >> text=Create draft")
    page.wait_for_selector("h1 >> text=Order events")
    page.click("a[role=tab] >> text=Schema")
    page.wait_for_selector("td >> text=event_id")
    assert page.locator("td >> text=email").is_visible()


def test_owner_links_a_field_to_a_glossary_term_from_the_keyboard(page, mesh):
    """Schema tab: type part of a synonym, the suggestions arrive in place, Enter links the
    field without leaving the page, and Unlink undoes it."""
    from governance.policies import services as policy_services
    from products.models import SchemaField

    policy_services.glossary_term_save(
        name="Order number",
        slug="order-number",
        definition="The number on the invoice.",
        synonyms="order id, invoice no",
        status="approved",
    )
    field = SchemaField.objects.get(port__product=mesh.products[("orders", "published")])
    sign_in(page, "owner")
    page.goto("/products/orders/published-product/?tab=schema")
    page.evaluate("window.stillTheSamePage = true")
    box = page.get_by_label("Glossary term for order_id")
    box.focus()
    box.press_sequentially("invoice")
    page.wait_for_selector(f'#terms-{field.pk} option[value="order-number"]', state="attached")
    box.fill("order-number")  # what picking the suggestion with the arrow keys puts there
    box.press("Enter")
    page.wait_for_selector(f"#glossary-{field.pk} a >> text=Order number")
    assert page.evaluate("window.stillTheSamePage") is True  # swapped in place
    assert SchemaField.objects.get(pk=field.pk).glossary_term.slug == "order-number"
    page.get_by_role("button", name="Unlink order_id from Order number").click()
    page.wait_for_selector(f"#glossary-{field.pk} >> text=Order number", state="detached")
    assert SchemaField.objects.get(pk=field.pk).glossary_term is None
