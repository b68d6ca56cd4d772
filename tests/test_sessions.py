"""The session store (meshportal.sessions): Django's database sessions, read with a statement
compiled once; sessions written before it came are read as they are, expired ones are not."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.utils import timezone

from meshportal.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_a_session_written_by_djangos_store_is_read_and_an_expired_one_is_not():
    old = db.SessionStore()
    old["_auth_user_id"] = "7"
    old.create()
    assert SessionStore(old.session_key).load() == {"_auth_user_id": "7"}
    Session.objects.filter(pk=old.session_key).update(expire_date=timezone.now() - timedelta(1))
    expired = SessionStore(old.session_key)
    assert expired.load() == {}
    assert expired.session_key is None  # a new key on the next save, as Django's store does
    assert SessionStore("no-such-session-key").load() == {}


def test_signing_in_keeps_the_user_signed_in_across_requests(client, mesh):
    client.force_login(mesh.consumer)
    assert client.get("/").status_code == 200
    assert client.get("/").context["user"] == mesh.consumer
    client.logout()
    assert client.get("/").status_code == 302  # to the sign-in page
