"""products asks the apps above it through one interface (`products/extensions.py`): what they
add comes and goes with the PRODUCT_EXTENSIONS setting, and products works on its own."""

import pytest

from products.discovery import facets

pytestmark = pytest.mark.django_db


def test_governance_adds_the_trust_sort_and_the_quality_facet(settings):
    assert "trust" in facets.sort_choices()
    assert "quality" in [f.key for f in facets.all_facets()]
    settings.PRODUCT_EXTENSIONS = []
    assert "trust" not in facets.sort_choices()
    assert [f.key for f in facets.all_facets()] == [f.key for f in facets.CORE_FACETS]


def test_pages_work_without_any_extension(client, settings, django_user_model):
    settings.PRODUCT_EXTENSIONS = []
    client.force_login(django_user_model.objects.create_user("solo", password="x"))
    for url in ("/", "/search/?q=orders&sort=trust", "/products/"):
        assert client.get(url).status_code == 200, url


def test_statements_compiled_without_an_extension_are_compiled_again_with_it(
    client, settings, mesh
):
    """A page's statements are compiled once per process with the extensions' columns (a list
    row's quality state): when the setting changes they are compiled again, not kept."""
    extensions = settings.PRODUCT_EXTENSIONS
    client.force_login(mesh.consumer)
    settings.PRODUCT_EXTENSIONS = []
    assert client.get("/").status_code == 200
    settings.PRODUCT_EXTENSIONS = extensions
    assert client.get("/").status_code == 200
