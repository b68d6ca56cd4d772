"""A policy just adopted is evaluated at once (after the adoption commits), and until that first
evaluation has finished its page says so instead of "0 of 0 products pass" (issue 20, item 3).
Walked as the council delegate who casts the deciding vote, as the platform admin who
overrides, and as the domain owner who adopts a policy for their own domain."""

import pytest
from django.urls import reverse

from governance.models import EvaluationRun, Policy
from governance.policies import services as ps

pytestmark = pytest.mark.django_db

QUEUED = "Not evaluated yet — evaluation queued"


@pytest.fixture(autouse=True)
def _eager():
    """Queued tasks run in-line when sent (the worker tests cover the real broker)."""
    from meshportal.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def _page(client, policy) -> str:
    r = client.get(policy.get_absolute_url())
    assert r.status_code == 200
    return " ".join(r.text.split())


def _proposed(mesh) -> Policy:
    # Global, on names: the mesh's published products pass (snake-case slugs).
    return ps.policy_propose(
        by=mesh.owner, key="names", title="Snake names", rule_type="naming", domain=None
    )


def test_the_deciding_vote_queues_the_first_evaluation(
    client, mesh, settings, django_capture_on_commit_callbacks
):
    settings.MESH_POLICY_QUORUM = 1
    policy = _proposed(mesh)
    client.force_login(mesh.council)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        r = client.post(
            reverse("governance:policy_vote", args=[policy.key]), {"decision": "approve"}
        )
    assert r.status_code == 302
    assert Policy.objects.get(pk=policy.pk).status == Policy.Status.ACTIVE
    assert not EvaluationRun.objects.exists()  # nothing ran before the commit
    # Before the queued evaluation has run: no "0 of 0", but a word on what happens next.
    text = _page(client, policy)
    assert QUEUED in text
    assert "0 of 0 products pass" not in text and "No product fails this policy" not in text
    # The commit sends the evaluation (in-line here, as the tasks run eagerly).
    for callback in queued:
        callback()
    assert EvaluationRun.objects.filter(finished_at__isnull=False).count() == 1
    text = _page(client, policy)
    assert QUEUED not in text
    assert "0 of 0" not in text and " of " in text and "products pass" in text


def test_the_platform_override_queues_the_first_evaluation(
    client, mesh, django_capture_on_commit_callbacks
):
    policy = _proposed(mesh)
    client.force_login(mesh.staff)
    url = reverse("admin:governance_policy_changelist")
    action = {"action": "override_activate", "_selected_action": [policy.pk]}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        r = client.post(url, {**action, "confirm": "yes", "reason": "Regulator deadline"})
    assert r.status_code == 302
    assert QUEUED in _page(client, policy)
    for callback in queued:
        callback()
    assert EvaluationRun.objects.filter(finished_at__isnull=False).exists()
    assert QUEUED not in _page(client, policy)


def test_a_domain_policy_adopted_at_once_is_queued_too(
    client, mesh, django_capture_on_commit_callbacks
):
    client.force_login(mesh.owner)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            reverse("governance:policy_propose"),
            {
                "key": "ours",
                "title": "Ours",
                "rule_type": "naming",
                "severity": "advisory",
                "domain": mesh.orders.pk,
                "parameters": "",
            },
        )
    assert r.status_code == 302, r.text[:2000]
    policy = Policy.objects.get(key="ours")
    assert policy.status == Policy.Status.ACTIVE
    text = _page(client, policy)
    assert QUEUED not in text and "products pass" in text
    assert policy.compliance.exists()
