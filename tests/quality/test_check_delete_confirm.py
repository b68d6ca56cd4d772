"""Deleting a quality check asks first, on a page of its own that works without JavaScript
(issue 20, item 8): the owner walks Quality tab → Delete… → confirmation → deleted."""

import re

import pytest
from django.urls import reverse

from governance.models import QualityCheck
from governance.quality import services


@pytest.fixture
def check(checked_port):
    return services.check_create(
        port=checked_port.port, name="Names present", kind="missing", columns=["name"], params={}
    )


def test_the_owner_confirms_before_a_check_is_deleted(client, checked_port, check):
    product = checked_port.product
    client.force_login(checked_port.mesh.owner)
    tab = client.get(product.get_absolute_url() + "?tab=quality").text
    url = reverse("governance:quality_check_delete", args=[check.pk])
    # The tab offers a link to the confirmation, not a button that deletes at once.
    assert re.search(rf'<a[^>]+href="{url}"', tab)
    assert not re.search(rf'<form[^>]+action="{url}"', tab)
    page = client.get(url)
    assert page.status_code == 200
    assert "Delete the check “Names present”?" in page.text
    assert re.search(rf'<form method="post" action="{url}"', page.text)
    assert QualityCheck.objects.filter(pk=check.pk).exists()  # asking deleted nothing
    # The check's own page offers the same step.
    assert url in client.get(reverse("governance:quality_check", args=[check.pk])).text
    r = client.post(url, follow=True)
    assert not QualityCheck.objects.filter(pk=check.pk).exists()
    assert "Deleted the check “Names present”." in r.text


@pytest.mark.parametrize("who", ["consumer", "other_owner"])
def test_the_confirmation_is_refused_to_those_who_may_not_delete(client, checked_port, check, who):
    client.force_login(getattr(checked_port.mesh, who))
    url = reverse("governance:quality_check_delete", args=[check.pk])
    assert client.get(url).status_code == 403
    assert QualityCheck.objects.filter(pk=check.pk).exists()
