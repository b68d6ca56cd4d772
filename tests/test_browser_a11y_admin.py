"""axe-core on the Django admin console as the platform team uses it (issue 20,
accessibility), in Chromium: the staff member signs in, opens the console's index and, for
products, data sources and policies, the list and one record's change form (and the form
adding a data source), a team with its members and the usage mappings, in the light theme and
(the index and a change form) the dark one, and fails on any serious or critical
violation."""

import re

import pytest
from django.db import connection
from django.urls import reverse

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


def _console_pages(mesh) -> list[str]:
    from governance.models import DataSource, Policy

    product = lived_in(mesh)  # a policy too
    source = DataSource.objects.create(slug="lake", name="Lake", kind="sqlite", database="/x")
    source.teams.add(mesh.orders_team)
    policy = Policy.objects.get()
    return [
        reverse("admin:index"),
        reverse("admin:products_dataproduct_changelist"),
        reverse("admin:products_dataproduct_change", args=[product.pk]),
        reverse("admin:governance_datasource_changelist"),
        reverse("admin:governance_datasource_change", args=[source.pk]),
        reverse("admin:governance_datasource_add"),
        reverse("admin:governance_policy_changelist"),
        reverse("admin:governance_policy_change", args=[policy.pk]),
        reverse("admin:domains_team_change", args=[mesh.orders_team.pk]),
        reverse("admin:usage_consumermapping_changelist"),  # the console's own list template
        reverse("admin:usage_consumermapping_add"),  # two autocomplete boxes
    ]


def test_the_platform_teams_console_pages_have_no_serious_violation(open_page, mesh):  # noqa: F811
    paths = _console_pages(mesh)
    page = open_page(viewport={"width": 1280, "height": 800})
    sign_in(page, "staff")
    problems: list[str] = []
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        problems += axe_problems(page)
        if "/dataproduct/" in path and path.endswith("/change/"):
            # Its autocomplete box and each input of the ports' rows have a name to announce.
            page.get_by_role("combobox", name="Replacement").wait_for()
            assert page.get_by_role("textbox", name="Location").count() >= 1
            assert page.get_by_role("checkbox", name="Delete").count() >= 1
        if "/team/" in path or "/consumermapping/add/" in path:
            page.get_by_role("combobox", name="User").first.wait_for()
        if "/datasource/" in path and path.endswith(("/change/", "/add/")):
            # The teams filter box's search icon is announced.
            icon = page.get_by_role("img", name=re.compile("list of available teams"))
            icon.first.wait_for(state="attached")
    # The console's dark theme, which follows the system setting: the same colours everywhere.
    page.emulate_media(color_scheme="dark")
    for path in (paths[0], paths[2]):
        page.goto(path)
        problems += [f"dark: {p}" for p in axe_problems(page)]
    assert problems == [], "\n".join(problems)
