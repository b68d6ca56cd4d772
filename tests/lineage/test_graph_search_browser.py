"""Search to focus on the lineage graph (issue 20, item 9 and the design pass), in Chromium: on a
graph of about 14 products, the owner types part of a name, presses Enter, and the graph centres
that product at a readable zoom and says which one (and how many) in a live region; Enter again
moves to the next match, a name not in the graph says so. All by keyboard."""

import pytest

from tests.lineage.test_pages import _chain
from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, open_page  # noqa: F401

pytestmark = pytest.mark.browser

CENTRED = """id => {
  const cy = window.meshGraph, p = cy.getElementById(id).renderedPosition();
  return Math.abs(p.x - cy.width() / 2) < 2 && Math.abs(p.y - cy.height() / 2) < 2;
}"""


def test_owner_finds_a_product_in_a_large_graph_by_keyboard(open_page, mesh):  # noqa: F811
    root = _chain(mesh, 6)  # the root, 6 consumers and their 6 consumers (3 of them drafts)
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "owner")
    page.goto(f"{root.get_absolute_url()}?tab=lineage")
    page.wait_for_selector("#lineage-graph[data-ready=true]")
    status = page.locator("[data-graph-search-status]")

    page.focus("#lineage-graph-find")
    page.keyboard.type("fan 3")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('[data-graph-search-status]').textContent")
    assert status.inner_text() == "Fan 3 (1 of 1)"
    node = page.evaluate("window.meshGraph.nodes('.found').map(n => n.id())")
    assert len(node) == 1
    assert page.evaluate(CENTRED, node[0])
    assert page.evaluate("window.meshGraph.zoom()") >= 1  # its label is readable

    # Several matches: Enter walks them one by one.
    page.fill("#lineage-graph-find", "fan")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-graph-search-status]').textContent.includes('of 6')"
    )
    first = status.inner_text()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-graph-search-status]').textContent.includes('(2 of 6')"
    )
    assert status.inner_text() != first
    assert page.evaluate("window.meshGraph.nodes('.found').length") == 6

    page.fill("#lineage-graph-find", "no such thing")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-graph-search-status]').textContent.startsWith('Nothing')"
    )
    assert page.evaluate("window.meshGraph.nodes('.found').length") == 0
    assert axe_problems(page) == []

    # The mesh map takes the same search: a domain.
    page.goto("/lineage/mesh/")
    page.wait_for_selector("#mesh-graph[data-ready=true]")
    page.fill("#mesh-graph-find", "users")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-graph-search-status]').textContent.includes('1 of 1')"
    )
    assert status.inner_text().startswith("Users (")
    assert axe_problems(page) == []
