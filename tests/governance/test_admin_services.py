"""Admin writes go through the services and the audit log (issue 15, item 4): a policy becomes
active only by the council's vote or by the explicit, audited platform override; data-source
and webhook edits in the console are audited, never with a secret."""

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from governance.models import DataSource, Policy, Webhook
from governance.policies import services as ps
from governance.quality import services as quality_services
from meshportal.models import AuditEntry, Notification
from tests.html_forms import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposed(mesh):
    """A global policy waiting for the council's votes."""
    return ps.policy_propose(by=mesh.owner, key="snake", title="Snake case", rule_type="naming")


def _entries(obj):
    return AuditEntry.objects.filter(
        content_type__app_label=obj._meta.app_label,
        content_type__model=obj._meta.model_name,
        object_id=str(obj.pk),
    )


def test_the_policy_change_form_cannot_activate_a_policy(client, mesh, proposed):
    url = reverse("admin:governance_policy_change", args=[proposed.pk])
    client.force_login(mesh.staff)
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="status"' not in page.text  # read-only: decided by the council's vote
    data = form_data(page.text, containing="title")
    data.update(
        {
            "title": "Snake case fields",
            "status": "active",
            "activated_at_0": "2026-01-01",
            "activated_at_1": "00:00:00",
            "severity": "blocking",
            "_save": "Save",
        }
    )
    r = client.post(url, data)
    assert r.status_code == 302, r.text[:2000]
    proposed.refresh_from_db()
    assert proposed.status == Policy.Status.PROPOSED and proposed.activated_at is None
    assert proposed.severity == Policy.Severity.ADVISORY  # what the council votes on stays
    assert proposed.title == "Snake case fields"  # the wording may change, audited
    (entry,) = _entries(proposed).filter(action="update")
    assert entry.changes == {"title": ["Snake case", "Snake case fields"]}


def test_a_policy_added_in_the_console_is_a_proposal(client, mesh):
    client.force_login(mesh.staff)
    r = client.post(
        reverse("admin:governance_policy_add"),
        {
            "key": "docs",
            "title": "Documented",
            "rule_type": "naming",
            "parameters": "{}",
            "severity": "advisory",
            "status": "active",
        },
    )
    assert r.status_code == 302, r.text[:2000]
    policy = Policy.objects.get(key="docs")
    assert policy.status == Policy.Status.PROPOSED and policy.proposed_by == mesh.staff
    assert _entries(policy).filter(action="create").count() == 1


def test_the_override_action_activates_audits_and_tells_the_council(
    client, mesh, proposed, mailoutbox, django_capture_on_commit_callbacks
):
    url = reverse("admin:governance_policy_changelist")
    client.force_login(mesh.staff)
    action = {"action": "override_activate", "_selected_action": [proposed.pk]}
    page = client.post(url, action)  # first the confirmation, asking why
    assert page.status_code == 200 and "without the council" in page.text.replace("\n", " ")
    assert Policy.objects.get(pk=proposed.pk).status == Policy.Status.PROPOSED
    before = AuditEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {**action, "confirm": "yes", "reason": "Regulator deadline"})
    assert r.status_code == 302
    proposed.refresh_from_db()
    assert proposed.status == Policy.Status.ACTIVE and proposed.activated_at is not None
    assert AuditEntry.objects.count() == before + 1
    (entry,) = _entries(proposed).filter(action="update")
    assert entry.actor == mesh.staff and entry.door == "admin"
    assert entry.changes["status"] == ["proposed", "active"]
    assert entry.changes["override"] == [None, "platform override by staff: Regulator deadline"]
    told = Notification.objects.filter(kind="policy_override")
    assert {n.user for n in told} == {mesh.council}
    assert "platform override" in told.get().title and told.get().body == "Regulator deadline"
    assert Notification.objects.filter(kind="policy_decided", user=mesh.owner).exists()
    assert any(m.to == [mesh.council.email] and "override" in m.subject for m in mailoutbox)


def test_the_override_is_the_platforms_and_says_why(mesh, proposed):
    with pytest.raises(PermissionDenied):
        ps.policy_override_activate(policy=proposed, by=mesh.council, reason="we agree")
    with pytest.raises(ValidationError):
        ps.policy_override_activate(policy=proposed, by=mesh.staff, reason="  ")
    ps.policy_override_activate(policy=proposed, by=mesh.staff, reason="now")
    with pytest.raises(PermissionDenied):  # already active: nothing to override
        ps.policy_override_activate(policy=proposed, by=mesh.staff, reason="again")
    assert Policy.objects.get(pk=proposed.pk).status == Policy.Status.ACTIVE


@pytest.fixture
def source(db):
    return DataSource.objects.create(
        slug="dwh",
        name="Warehouse",
        kind="postgresql",
        host="db.internal",
        database="dwh",
        user="reader",
        password_env="DWH_PASSWORD_OLD",
    )


def test_a_data_source_edit_in_the_console_is_audited_without_the_password(client, mesh, source):
    url = reverse("admin:governance_datasource_change", args=[source.pk])
    client.force_login(mesh.staff)
    data = form_data(client.get(url).text, containing="password_env")
    data.update({"host": "db2.internal", "password_env": "DWH_PASSWORD_NEW", "_save": "Save"})
    r = client.post(url, data)
    assert r.status_code == 302, r.text[:2000]
    (entry,) = _entries(source).filter(action="update")
    assert entry.actor == mesh.staff and entry.door == "admin"
    assert entry.changes["host"] == ["db.internal", "db2.internal"]
    assert entry.changes["password_env"] == ["(secret)", "(secret)"]  # changed; never the value
    assert "DWH_PASSWORD" not in json.dumps(entry.changes)


def test_deleting_selected_data_sources_is_audited_one_by_one(client, mesh, source):
    client.force_login(mesh.staff)
    r = client.post(
        reverse("admin:governance_datasource_changelist"),
        {"action": "delete_selected", "_selected_action": [source.pk], "post": "yes"},
    )
    assert r.status_code == 302
    assert not DataSource.objects.exists()
    (entry,) = AuditEntry.objects.filter(content_type__model="datasource", action="delete")
    assert entry.changes["database"] == ["dwh", None]
    assert "DWH_PASSWORD" not in json.dumps(entry.changes)


def test_a_webhook_edit_in_the_console_is_audited_through_the_service(client, mesh, settings):
    settings.MESH_WEBHOOK_ALLOW_HTTP = True
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook, secret = quality_services.webhook_create(
        team=mesh.orders_team, url="http://127.0.0.1:9/a"
    )
    url = reverse("admin:governance_webhook_change", args=[hook.pk])
    client.force_login(mesh.staff)
    r = client.post(
        url, {"team": mesh.users_team.pk, "url": "http://127.0.0.1:9/b", "_save": "Save"}
    )
    assert r.status_code == 302, r.text[:2000]
    hook = Webhook.objects.get(pk=hook.pk)
    assert hook.url == "http://127.0.0.1:9/b" and not hook.active
    assert hook.team == mesh.orders_team  # a webhook never changes team in the console
    (entry,) = _entries(hook).filter(action="update")
    assert entry.actor == mesh.staff and entry.door == "admin"
    assert entry.changes == {
        "url": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
        "active": [True, False],
    }
    assert secret not in json.dumps(entry.changes)


def test_a_glossary_term_edit_in_the_console_goes_through_the_service(client, mesh):
    term = ps.glossary_term_save(name="Customer", slug="customer", definition="Who buys.")
    url = reverse("admin:governance_glossaryterm_change", args=[term.pk])
    client.force_login(mesh.staff)
    data = form_data(client.get(url).text, containing="definition")
    data.update({"definition": "Who buys from us.", "_save": "Save"})
    r = client.post(url, data)
    assert r.status_code == 302, r.text[:2000]
    (entry,) = _entries(term).filter(action="update")
    assert entry.changes == {"definition": ["Who buys.", "Who buys from us."]}
