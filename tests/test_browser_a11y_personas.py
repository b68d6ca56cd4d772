"""axe-core on every page reachable from the navigation, for every persona (issue 20,
accessibility), in Chromium: each persona signs in, the walk collects every link of the
navigation bar as that persona sees it (the platform team sees more), opens each and, from the
product and domain lists, the first product and domain (one click from the navigation), in the
light and the dark theme, and fails on any serious or critical violation. The Django admin
console, linked for platform staff, is Django's own and walked in the admin's tests.

Each page is loaded once: axe runs in the theme it opened in, then the system setting flips
(the theme follows it live, static/js/theme.js) and axe runs again once the colours have
settled, so the walk loads pages in both themes and checks each in both."""

import pytest

from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, lived_in, open_page  # noqa: F401

pytestmark = pytest.mark.browser

PERSONAS = ["consumer", "approved", "member", "owner", "council", "staff"]
NAV_LINKS = """() => [...document.querySelectorAll("nav.navbar a[href]")]
  .map(a => new URL(a.href, location.href))
  .filter(u => u.origin === location.origin && !u.pathname.startsWith("/admin/"))
  .map(u => u.pathname + u.search)"""
FIRST_ITEMS = ("main a[href^='/products/'][href$='/']", "main a[href^='/domains/']")
FIRST_ITEM = (
    """sel => { const a = document.querySelector(sel); return a && a.getAttribute("href"); }"""
)


# Resolves once the CSS transitions the theme change started have ended (Bootstrap's buttons
# and fields fade their colours): axe must measure the contrast of the settled colours.
TRANSITIONS_ENDED = """() => Promise.allSettled(document.getAnimations()
  .filter(a => a instanceof CSSTransition).map(a => a.finished)).then(() => true)"""


def _axe_both_themes(page) -> list[str]:
    """axe on the page in its theme, then in the other one after the system setting flips."""
    problems = axe_problems(page)
    other = "light" if page.get_attribute("html", "data-bs-theme") == "dark" else "dark"
    page.emulate_media(color_scheme=other)
    page.wait_for_function(f"document.documentElement.dataset.bsTheme === '{other}'")
    page.evaluate(TRANSITIONS_ENDED)
    return problems + axe_problems(page)


def _walk(page) -> tuple[list[str], list[str]]:
    paths = list(dict.fromkeys(page.evaluate(NAV_LINKS)))
    problems: list[str] = []
    seen = set(paths)  # a product or domain both lists link to first is checked once
    for path in paths:
        page.goto(path)
        problems += _axe_both_themes(page)
        if path in ("/products/", "/domains/"):
            firsts = [page.evaluate(FIRST_ITEM, selector) for selector in FIRST_ITEMS]
            for first in dict.fromkeys(f for f in firsts if f and f not in seen):
                seen.add(first)
                page.goto(first)
                problems += _axe_both_themes(page)
    return paths, problems


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_of_the_navigation_has_no_serious_violation(open_page, mesh, persona):  # noqa: F811
    lived_in(mesh)  # a policy, an incident, a fortnight of runs, a lineage edge
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, persona)
    paths, problems = _walk(page)
    assert "/" in paths and "/products/" in paths and "/notifications/" in paths
    # The navigation fits a 1280-px screen whatever the persona sees (no sideways scrolling).
    page.emulate_media(color_scheme="light")
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
    assert problems == [], "\n".join(problems)
