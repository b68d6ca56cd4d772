"""axe-core on every page reachable from the navigation, for every persona (issue 20,
accessibility), in Chromium: each persona signs in, the walk collects every link of the
navigation bar as that persona sees it (the platform team sees more), opens each and, from the
product and domain lists, the first product and domain (one click from the navigation), in the
light and the dark theme, and fails on any serious or critical violation. One link deeper, the
personas whose controls differ there also walk one page of each kind those pages link to (a
policy, a team, an incident, a check) and every tab of a product. The Django
admin console, linked for platform staff, is walked in tests/test_browser_a11y_admin.py.

Each page is loaded once: axe runs in the theme it opened in, then the system setting flips
(the theme follows it live, static/js/theme.js) and axe runs again once the colours have
settled, so the walk loads pages in both themes and checks each in both."""

import re

import pytest
from django.db import connection

from tests.test_browser import browser, sign_in  # noqa: F401  (the shared browser fixture)
from tests.test_browser_design import axe_problems, lived_in, open_page  # noqa: F401

# axe judges the markup and its colours, which do not depend on the database: once per CI run
# is enough, in the SQLite suite (the PostgreSQL suite is the one near its time budget).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        connection.vendor == "postgresql", reason="markup only: runs in the SQLite suite"
    ),
]

PERSONAS = ["consumer", "approved", "member", "owner", "council", "staff"]
NAV_LINKS = """() => [...document.querySelectorAll("nav.navbar a[href]")]
  .map(a => new URL(a.href, location.href))
  .filter(u => u.origin === location.origin && !u.pathname.startsWith("/admin/"))
  .map(u => u.pathname + u.search)"""
MAIN_LINKS = """() => [...document.querySelectorAll("main a[href]")]
  .map(a => new URL(a.href, location.href))
  .filter(u => u.origin === location.origin)
  .map(u => u.pathname)"""
# Pages one link from the navigation's, by kind: one of each is walked by the personas whose
# controls differ there (the owner's acknowledge and run buttons, the council's vote, staff's
# member management); every tab of a product by those who see different tabs (the owner
# edits, an approved consumer sees the connection details).
SECOND_LEVEL = {
    "policy": re.compile(r"^/governance/policies/(?!propose/)[\w-]+/$"),
    "team": re.compile(r"^/teams/[\w-]+/$"),
    "incident": re.compile(r"^/incidents/\d+/$"),
    "check": re.compile(r"^/quality/checks/\d+/$"),
}
DETAILS_FOR = {
    "owner": {"policy", "team", "incident", "check"},
    "council": {"policy"},
    "staff": {"team"},
}
TABS_FOR = {"owner", "approved"}
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


def _walk(page) -> tuple[list[str], list[str], list[str]]:
    """Every page of the navigation (and the first product and domain): their paths, what axe
    found in both themes, and the links in their main content."""
    paths = list(dict.fromkeys(page.evaluate(NAV_LINKS)))
    problems: list[str] = []
    links: list[str] = []
    seen = set(paths)  # a product or domain both lists link to first is checked once
    for path in paths:
        page.goto(path)
        problems += _axe_both_themes(page)
        links += page.evaluate(MAIN_LINKS)
        if path in ("/products/", "/domains/"):
            firsts = [page.evaluate(FIRST_ITEM, selector) for selector in FIRST_ITEMS]
            for first in dict.fromkeys(f for f in firsts if f and f not in seen):
                seen.add(first)
                page.goto(first)
                problems += _axe_both_themes(page)
                links += page.evaluate(MAIN_LINKS)
    return paths, problems, list(dict.fromkeys(links))


def _second_level(page, persona: str, links: list[str], product: str) -> list[str]:
    """One page of each kind in DETAILS_FOR and, for TABS_FOR, every tab of `product` (the
    one with checks, runs, an incident and lineage)."""
    problems: list[str] = []
    if persona in TABS_FOR:
        page.goto(product)
        tabs = page.eval_on_selector_all(
            "main [role=tab][href]:not([aria-selected=true])", "els => els.map(e => e.href)"
        )
        assert len(tabs) >= 5, tabs
        for tab in tabs:
            page.goto(tab)
            problems += _axe_both_themes(page)
            links += page.evaluate(MAIN_LINKS)  # a check, from the Quality tab
    found = {}
    for kind, pattern in SECOND_LEVEL.items():
        found[kind] = next((link for link in links if pattern.match(link)), None)
    wanted = DETAILS_FOR.get(persona, set())
    assert wanted <= {k for k, v in found.items() if v}, found  # the walk reaches them
    for kind in sorted(wanted):
        page.goto(found[kind])
        problems += _axe_both_themes(page)
    return problems


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_of_the_navigation_has_no_serious_violation(open_page, mesh, persona):  # noqa: F811
    product = lived_in(mesh)  # a policy, an incident, a fortnight of runs, a lineage edge
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, persona)
    paths, problems, links = _walk(page)
    problems += _second_level(page, persona, links, product.get_absolute_url())
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
