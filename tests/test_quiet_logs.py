"""What the portal writes to its log for things that are not errors (issue 20, item 10): a 403
is one WARNING line without a traceback, printed once."""

import io
import logging

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    """What the configured console handlers write (the root's, and any Django adds to its own
    loggers), whatever pytest captures."""
    buf = io.StringIO()
    handlers = [
        h
        for name in ("", "django", "django.request")
        for h in logging.getLogger(name).handlers
        if type(h) is logging.StreamHandler
    ]
    assert handlers, "no console handler configured"
    old = [h.setStream(buf) for h in handlers]
    try:
        yield buf
    finally:
        for h, stream in zip(handlers, old, strict=True):
            h.setStream(stream)


def test_a_403_is_one_warning_line_without_a_traceback(client, mesh, settings, console):
    settings.DEBUG = True  # as under `make run`, where Django adds its own console handler
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    url = reverse("governance:quality_check_create", args=[product.domain.slug, product.slug])
    assert client.get(url).status_code == 403
    out = console.getvalue()
    lines = [line for line in out.splitlines() if "Forbidden" in line]
    assert len(lines) == 1, out
    assert " WARNING " in lines[0] and url in lines[0]
    assert "Traceback" not in out and "PermissionDenied" not in out
