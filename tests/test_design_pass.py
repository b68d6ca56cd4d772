"""Issue 20's design pass, as pages: the theme script on every page (the toggle is drawn only
with JavaScript), the 30-day quality chart with axes and labels, the lineage graph's
"whole graph" button. The browser walk (tests/test_browser_design.py) checks them live."""

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import QualityCheck, QualityRun

pytestmark = pytest.mark.django_db


def test_every_page_loads_the_theme_script_and_its_hidden_toggle(client, mesh):
    login = client.get("/login/").text
    assert "/static/js/theme.js" in login and 'id="theme-toggle"' in login
    client.force_login(mesh.consumer)
    home = client.get("/").text
    assert home.index("/static/js/theme.js") < home.index("</head>")  # before the first paint
    assert 'id="theme-toggle" aria-pressed="false" hidden' in home


def test_the_quality_chart_has_axes_labels_and_a_bar_per_day(client, mesh):
    product = mesh.products[("orders", "published")]
    check = QualityCheck.objects.create(
        port=product.ports.get(), name="Rows", kind="row_count", params={"min": 1}
    )
    now = timezone.now()
    for status in ("passed", "failed"):
        QualityRun.objects.create(
            quality_check=check,
            status=status,
            started_at=now,
            finished_at=now,
            deadline=now + timedelta(minutes=5),
        )
    client.force_login(mesh.consumer)
    page = client.get(product.get_absolute_url(), {"tab": "quality"}).text
    chart = page[page.index('<svg role="img" aria-labelledby="quality-chart-title"') :]
    chart = chart[: chart.index("</svg>")]
    for label in ("0%", "50%", "100%", now.strftime("%b %d")):
        assert f">{label}</text>" in chart
    assert chart.count("<g><title>") == 30
    assert "1 passed, 1 failed, 0 error (50%)" in chart
    assert "No runs in the last 30 days" not in chart


def test_an_empty_chart_says_what_to_do(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    page = client.get(product.get_absolute_url(), {"tab": "quality"}).text
    assert "No runs in the last 30 days" in page


def test_the_lineage_tab_offers_the_whole_graph(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    page = client.get(product.get_absolute_url(), {"tab": "lineage"}).text
    assert 'data-graph-fit="#lineage-graph" hidden>Show the whole graph</button>' in page
