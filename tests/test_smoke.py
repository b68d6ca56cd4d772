import pytest


@pytest.mark.django_db
def test_home_lists_demo_domains(client, demo):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="carl"))
    response = client.get("/")
    assert response.status_code == 200
    for name in ("Users", "Traffic", "Orders"):
        assert name in response.text
