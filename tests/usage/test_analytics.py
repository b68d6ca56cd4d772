"""Portal analytics: the platform team's page, with figures from the demo mesh."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_platform_sees_portal_analytics(demo, client, django_assert_max_num_queries):
    client.force_login(get_user_model().objects.get(username="admin"))
    with django_assert_max_num_queries(24):
        r = client.get("/analytics/")
    assert r.status_code == 200
    page = r.text
    assert "Portal analytics" in page
    # Orders is the most queried product in the demo log
    most_queried = page.split(">Most queried (warehouse logs)<")[1].split("</ol>")[0]
    assert most_queried.index("Orders") < most_queried.index("Customer Profiles")
    assert "requests decided in the last 90 days: median" in page  # the demo's approved grants
    assert "Most watched" in page and "Orders" in page.split(">Most watched<")[1]
    assert 'href="/analytics/"' in page  # in the navigation
    # the demo's fortnight of page views and searches (demo/analytics.py)
    viewed = page.split(">Most viewed (product pages)<")[1].split("</ol>")[0]
    assert viewed.index("Orders") < viewed.index("Returns")
    empty = page.split('id="empty-searches"')[1].split("</table>")[0]
    assert "<td>churn</td>" in empty and "<td>orders</td>" not in empty


def test_seed_demo_records_analytics_once(demo):
    from django.core.management import call_command

    from usage.models import ProductView, SearchDay

    before = (ProductView.objects.count(), SearchDay.objects.count())
    assert before[0] > 0 and before[1] > 0
    call_command("seed_demo", verbosity=0)
    assert (ProductView.objects.count(), SearchDay.objects.count()) == before


@pytest.mark.parametrize("who", ["olivia", "carl", "uma"])
def test_others_are_refused(demo, client, who):
    client.force_login(get_user_model().objects.get(username=who))
    r = client.get("/analytics/")
    assert r.status_code == 403
    assert "Portal analytics" not in r.text or "platform team" in r.text
    assert 'href="/analytics/"' not in client.get("/").text
