"""/ceiling/: the page `make bench` measures every page against (the base layout through the
whole middleware stack, nothing else). Signed-in users only, and it shows them nothing new."""

import pytest


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/ceiling/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/?next=/ceiling/")


def test_signed_in_user_gets_the_base_layout(client, mesh, django_assert_max_num_queries):
    client.force_login(mesh.consumer)
    client.get("/ceiling/")  # per-process caches
    # Session, user, their memberships (may they decide requests?) and the navigation badges:
    # what every page pays before its own work.
    with django_assert_max_num_queries(4):
        response = client.get("/ceiling/")
    assert response.status_code == 200
    html = response.text
    assert 'aria-label="' in html and "Sign out" in html  # the navigation bar, signed in
    assert "no-cache" in response.headers["Cache-Control"]
    # Nothing of the mesh beyond the bar: no product, team or domain of the mesh is named.
    for product in mesh.products.values():
        assert product.name not in html
