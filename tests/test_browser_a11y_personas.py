"""axe-core on every page reachable from the navigation, for every persona (issue 20,
accessibility), in Chromium: each persona signs in, the walk collects every link of the
navigation bar as that persona sees it (the platform team sees more), opens each and, from the
product and domain lists, the first product and domain (one click from the navigation), in the
light and the dark theme, and fails on any serious or critical violation. The Django admin
console, linked for platform staff, is Django's own and walked in the admin's tests."""

import pytest

from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, lived_in, open_page  # noqa: F401

pytestmark = pytest.mark.browser

PERSONAS = ["consumer", "approved", "member", "owner", "council", "staff"]
NAV_LINKS = """() => [...document.querySelectorAll("nav.navbar a[href]")]
  .map(a => new URL(a.href, location.href))
  .filter(u => u.origin === location.origin && !u.pathname.startsWith("/admin/"))
  .map(u => u.pathname + u.search)"""
FIRST_ITEM = (
    """sel => { const a = document.querySelector(sel); return a && a.getAttribute("href"); }"""
)


def _walk(page) -> tuple[list[str], list[str]]:
    paths = list(dict.fromkeys(page.evaluate(NAV_LINKS)))
    problems: list[str] = []
    for path in paths:
        page.goto(path)
        problems += axe_problems(page)
        for selector in ("main a[href^='/products/'][href$='/']", "main a[href^='/domains/']"):
            if path in ("/products/", "/domains/"):
                first = page.evaluate(FIRST_ITEM, selector)
                if first and first != path:
                    page.goto(first)
                    problems += axe_problems(page)
                    page.goto(path)
    return paths, problems


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_of_the_navigation_has_no_serious_violation(open_page, mesh, persona):  # noqa: F811
    lived_in(mesh)  # a policy, an incident, a fortnight of runs, a lineage edge
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, persona)
    paths, problems = _walk(page)
    assert "/" in paths and "/products/" in paths and "/notifications/" in paths
    # The navigation fits a 1280-px screen whatever the persona sees (no sideways scrolling).
    page.goto("/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"
    if persona == "staff":
        assert "/quality/sources/" in paths  # the platform team's own pages are walked too
        # Its menu opens and is walked by keyboard.
        page.focus("nav.navbar .dropdown-toggle")
        page.keyboard.press("Enter")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.textContent") == "Data sources"
        page.keyboard.press("Enter")
        page.wait_for_url("**/quality/sources/")
    # The dark theme, which follows the system setting.
    page.emulate_media(color_scheme="dark")
    for path in paths:
        page.goto(path)
        problems += axe_problems(page)
    assert problems == [], "\n".join(problems)
