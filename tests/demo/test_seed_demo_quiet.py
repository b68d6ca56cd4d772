"""`seed_demo` sends no e-mail (with no mail server they were printed to the console, seven of
them): the demo's people still find their notifications in the portal (issue 20, item 10)."""

import io

import pytest
from django.core import mail
from django.core.management import call_command

from meshportal.models import Notification

pytestmark = pytest.mark.django_db


def test_seed_demo_sends_no_e_mail_but_keeps_the_notifications(
    django_capture_on_commit_callbacks,
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the e-mails' moment: on commit
        call_command("seed_demo", stdout=out)
    assert mail.outbox == []
    assert "Subject:" not in out.getvalue() and "Demo mesh ready" in out.getvalue()
    assert Notification.objects.exists()
