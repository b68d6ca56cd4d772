"""The portal has a favicon (issue 20, item 10): a static file of its own (no CDN), linked from
every page's head, the console's and the sign-in page's too, and /favicon.ico leads to it."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

pytestmark = pytest.mark.django_db

ICON = re.compile(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">')


def test_every_kind_of_page_links_the_favicon(client, mesh):
    assert finders.find("favicon.svg"), "static/favicon.svg is missing"
    href = static("favicon.svg")
    login = client.get(reverse("login")).text
    assert ICON.search(login).group(1) == href
    client.force_login(mesh.consumer)
    assert ICON.search(client.get(reverse("home")).text).group(1) == href
    client.force_login(mesh.staff)
    assert ICON.search(client.get(reverse("admin:index")).text).group(1) == href


def test_favicon_ico_leads_to_the_icon_without_signing_in(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 301 and r["Location"] == static("favicon.svg")
