"""The Content Security Policy holds in a real browser: Chromium reports no violation on the
portal's pages (signed in as staff, so the navigation, admin and banners all show)."""

import pytest

from tests import factories

HTMX_IDLE = "() => document.readyState === 'complete' && !document.querySelector('.htmx-request')"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
def test_pages_raise_no_csp_violation(live_server, transactional_db, monkeypatch):
    from playwright.sync_api import sync_playwright

    from products import tabs

    mesh = factories.build_mesh()
    product = mesh.products[("orders", "published")]
    pages = [
        "/login/",
        "/",
        "/products/",
        "/domains/",
        "/domains/orders/",
        "/teams/orders-team/",
        "/notifications/",
        "/access/inbox/",
        "/access/mine/",
        "/access/basket/",
        "/governance/policies/propose/",
        product.get_absolute_url(),
        f"{product.get_absolute_url()}edit/",
        "/admin/",
        "/admin/products/dataproduct/",
        "/admin/meshportal/pendingtask/",
    ]
    pages += [f"{product.get_absolute_url()}?tab={tab.key}" for tab in tabs.tabs()]
    # Playwright's sync API runs an event loop in this thread; the ORM is done by now.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    violations: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        page.on(
            "console",
            lambda msg: (
                violations.append(f"{page.url}: {msg.text}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )
        page.goto(live_server.url + "/login/")
        page.fill("input[name=username]", "staff")
        page.fill("input[name=password]", factories.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        for path in pages:
            response = page.goto(live_server.url + path)
            assert response is not None and response.status == 200, path
            assert response.headers["content-security-policy"].startswith("default-src 'self'")
            # What the page loads after it opened (htmx's `load` triggers) has come and been
            # swapped in: htmx marks a request's element .htmx-request until then.
            page.wait_for_function(HTMX_IDLE)
        # htmx and Bootstrap's scripts ran (they are external files, allowed by 'self').
        assert page.evaluate("typeof htmx === 'object' && typeof bootstrap === 'object'")
        browser.close()
    assert violations == []
