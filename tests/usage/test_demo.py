"""After seed_demo: olivia sees who reads Orders with one unmanaged consumer flagged, and an
undeclared dependency suggested on Daily revenue's Lineage tab."""

import pytest

pytestmark = pytest.mark.django_db


def test_demo_usage_tab_and_observed_lineage(demo, client):
    from django.contrib.auth import get_user_model

    olivia = get_user_model().objects.get(username="olivia")
    client.force_login(olivia)
    page = client.get("/products/orders/orders/?tab=usage").text
    for principal in ("svc_order_pipeline", "tariq_bi", "mia_analytics", "svc_payments_recon"):
        assert principal in page
    unmanaged = page.split(">Unmanaged consumers</h2>")[1]
    assert unmanaged.count("Ask them to request access") == 1
    assert "svc_payments_recon" in unmanaged and "tariq_bi" not in unmanaged
    assert "<svg" in page

    lineage = client.get("/products/orders/daily-revenue/?tab=lineage").text
    observed = lineage.split(">Observed in query logs</h2>")[1]
    assert "Payments" in observed and "used but undeclared" in observed
    assert observed.count("Declare this input") == 1


def test_carl_sees_aggregates_only(demo, client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="carl"))
    page = client.get("/products/orders/orders/?tab=usage").text
    assert "distinct consumers" in page and "svc_payments_recon" not in page


def test_the_console_suggests_a_team_for_the_unmapped_principal(demo, client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="admin"))
    page = client.get("/admin/usage/consumermapping/").text
    assert "svc_crm_sync" in page
