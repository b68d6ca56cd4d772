"""The product form by keyboard alone, in Chromium (issue 20, items 2 and accessibility): an
orders team member creates a product, adds a port with the Add port button, picks the data
source the platform team opened to every team (the one kept for the users team is not offered)
by typing part of its name into the port's type-ahead picker (the one kept for the users team
is not suggested), and creates the draft with Enter; the port then has its data source.
axe-core finds nothing serious on the form."""

import pytest

from governance.models import DataSource
from products.models import DataProduct
from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, open_page  # noqa: F401

pytestmark = pytest.mark.browser


def _focus_and_type(page, selector: str, text: str) -> None:
    page.focus(selector)
    page.keyboard.type(text)


def test_member_creates_a_checkable_product_by_keyboard(open_page, mesh):  # noqa: F811
    lake = DataSource.objects.create(slug="lake", name="Lake", kind="sqlite", database="/x")
    kept = DataSource.objects.create(slug="users-wh", name="Users WH", kind="sqlite", database="/y")
    kept.teams.add(mesh.users_team)
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "member")
    page.goto("/domains/orders/products/new/")
    _focus_and_type(page, "#id_name", "Order events")
    _focus_and_type(page, "#id_summary", "Every event of every order")
    page.focus("[data-add-port]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#id_ports-0-name")
    _focus_and_type(page, "#id_ports-0-name", "Events")
    _focus_and_type(page, "#id_ports-0-location", "main.events")
    source = page.locator("#id_ports-0-data_source")
    assert source.get_attribute("role") is None  # an input with a list: a combobox to AT
    assert (
        page.evaluate("document.querySelector('#id_ports-0-data_source').list.id")
        == "id_ports-0-data_source-options"
    )
    _focus_and_type(page, "#id_ports-0-data_source", "la")  # the added port's picker asks
    options = page.locator("#id_ports-0-data_source-options option")
    options.first.wait_for(state="attached")
    assert [(o.get_attribute("value"), o.inner_text()) for o in options.all()] == [
        ("Lake", "SQLite")
    ]
    assert kept.name not in page.content() and "/x" not in source.evaluate("e => e.list.innerHTML")
    source.fill("Lake")  # what choosing the suggestion types
    help_id = source.get_attribute("aria-describedby")
    assert "quality checks" in page.locator(f"#{help_id}").inner_text()
    assert axe_problems(page) == []
    page.focus("#id_ports-0-location")
    page.keyboard.press("Enter")  # Enter in a text field sends the form
    page.wait_for_selector("h1 >> text=Order events")
    port = DataProduct.objects.get(slug="order-events").ports.get()
    assert (port.location, port.data_source) == ("main.events", lake)
