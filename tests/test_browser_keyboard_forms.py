"""Three forms by keyboard alone, in Chromium, in one session (issue 20: everything works by
keyboard): the orders owner tabs through the policy proposal form, changes its rule type with
the arrow keys (its parameter fields follow and the focus stays put) and adopts a policy for
its domain; tabs through the add-check form, where each type brings its own fields, and adds
a row-count check; and asks for access to another team's product. Each is sent with Enter and
its result is shown."""

import pytest

from governance.models import DataSource, Policy, QualityCheck
from products import services as product_services
from products.models import AccessRequest
from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, open_page  # noqa: F401

pytestmark = pytest.mark.browser

FOCUSED = "(() => { const e = document.activeElement; return e.id || e.textContent.trim(); })()"


def _tab(page, expected: str) -> None:
    """Tab once: the focus lands on `expected` (an element's id, or a button's text)."""
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == expected


def _retype(page, text: str) -> None:
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)


def _fields(page, form: str) -> list[str]:
    return page.eval_on_selector_all(
        f"{form} :is(input, select, textarea):not([type=hidden])", "els => els.map(e => e.name)"
    )


def test_owner_fills_three_forms_by_keyboard(open_page, mesh):  # noqa: F811
    product = mesh.products[("orders", "published")]
    source = DataSource.objects.create(slug="lake", name="Lake", kind="sqlite", database="/x")
    product_services.port_update(port=product.ports.get(), data_source=source)
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "owner")

    # 1. A policy for the orders domain.
    page.goto("/governance/policies/propose/")
    page.focus("#id_key")
    page.keyboard.type("short-summaries")
    _tab(page, "id_title")
    page.keyboard.type("Summaries say enough")
    _tab(page, "id_rationale")
    page.keyboard.type("Consumers choose by the summary.")
    _tab(page, "id_rule_type")
    page.keyboard.press("ArrowDown")  # Classification → Documentation: its parameters come
    page.wait_for_selector("#id_param_min_summary_length")
    assert page.evaluate(FOCUSED) == "id_rule_type"  # the focus stays where it was
    assert page.input_value("#id_title") == "Summaries say enough"  # nothing typed is lost
    assert "param_pii_min_classification" not in _fields(page, "#policy-form")
    _tab(page, "id_param_min_summary_length")
    _retype(page, "30")
    _tab(page, "id_param_min_description_length")
    _tab(page, "id_param_min_field_description_pct")
    _tab(page, "id_severity")
    _tab(page, "id_domain")
    page.keyboard.press("ArrowDown")  # Global → Orders: its owners adopt it themselves
    _tab(page, "Propose")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Adopted “Summaries say enough” for Orders.")
    policy = Policy.objects.get(key="short-summaries")
    assert (policy.domain, policy.parameters["min_summary_length"]) == (mesh.orders, 30)

    # 2. A check on the product's port: each type asks for its own fields.
    page.goto(f"/quality/products/orders/{product.slug}/checks/new/")
    page.focus("#id_port")
    _tab(page, "id_name")
    page.keyboard.type("Has rows")
    _tab(page, "id_kind")
    page.keyboard.press("ArrowDown")  # Missing values: a column, a threshold and its unit
    page.wait_for_selector("#id_columns")
    assert page.evaluate(FOCUSED) == "id_kind"
    missing = _fields(page, "#check-form")
    assert {"columns", "max", "unit"} <= set(missing) and "min" not in missing
    assert axe_problems(page) == []
    page.keyboard.press("ArrowUp")  # Row count: a minimum and a maximum, no column
    page.wait_for_selector("#id_min")
    assert page.evaluate(FOCUSED) == "id_kind"
    assert page.input_value("#id_name") == "Has rows"
    assert "columns" not in _fields(page, "#check-form")
    _tab(page, "id_min")
    page.keyboard.type("1")
    _tab(page, "id_max")
    _tab(page, "id_interval_minutes")
    _tab(page, "id_cron")
    _tab(page, "Add check")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Added the check “Has rows”; its first run is queued.")
    check = QualityCheck.objects.get(name="Has rows")
    assert (check.kind, check.params.get("min")) == ("row_count", 1)

    # 3. Access to the users team's product, for the orders team, for 30 days.
    other = mesh.products[("users", "published")]
    page.goto(f"/products/users/{other.slug}/request-access/")
    page.focus("#id_purpose")
    page.keyboard.type("Join orders with their buyers.")
    _tab(page, "id_team")
    page.keyboard.press("ArrowDown")  # --------- → Orders Team
    _tab(page, "id_duration_days")
    _retype(page, "30")
    assert axe_problems(page) == []
    page.keyboard.press("Enter")  # Enter in a text field sends the form
    page.wait_for_selector(f"text=Requested access to {other.name}. Its owners have been told.")
    request = AccessRequest.objects.get(product=other, requester=mesh.owner)
    assert (request.team, request.purpose) == (mesh.orders_team, "Join orders with their buyers.")
