"""The pickers in Chromium, by keyboard (issue 20, forms that guide): the orders owner deprecates
a product, types part of the replacement's name into the product picker, sees it suggested
(never a draft), and submits with Enter; the lineage input form's port picker suggests the same
way. axe-core finds nothing serious on either form."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, open_page  # noqa: F401

pytestmark = pytest.mark.browser


def test_owner_picks_a_replacement_and_a_port_by_keyboard(open_page, mesh):  # noqa: F811
    old = mesh.products[("orders", "deprecated")]
    old.status = "published"
    old.save()
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "owner")
    page.goto(f"/products/orders/{old.slug}/deprecate/")
    assert axe_problems(page) == []

    page.fill("#id_sunset_date", (timezone.localdate() + timedelta(days=30)).isoformat())
    page.focus("#id_replacement")
    page.keyboard.type("users")
    page.wait_for_selector(
        '#product-options option[value="users/published-product"]', state="attached"
    )
    assert page.locator('#product-options option[value="users/draft-product"]').count() == 0
    page.fill("#id_replacement", "users/published-product")  # what choosing the suggestion types
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{old.get_absolute_url()}")
    old.refresh_from_db()
    assert old.status == "deprecated"
    assert old.replacement == mesh.products[("users", "published")]

    page.goto(f"/products/orders/{old.slug}/lineage/inputs/add/")
    page.focus("#id_source")
    page.keyboard.type("users publ")
    page.wait_for_selector(
        '#lineage-ports option[value="users/published-product/main"]', state="attached"
    )
    assert page.locator('#lineage-ports option[value*="draft"]').count() == 0
    assert axe_problems(page) == []
