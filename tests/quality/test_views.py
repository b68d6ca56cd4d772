"""The Quality tab, defining and running checks in the browser, and the mesh-wide page."""

import pytest
from django.urls import reverse

from governance.models import QualityCheck, QualityRun
from governance.quality import services


def _tab(cp):
    return cp.product.get_absolute_url() + "?tab=quality"


def _create_url(cp):
    return reverse(
        "governance:quality_check_create", args=[cp.product.domain.slug, cp.product.slug]
    )


def _make(cp, name="Names present"):
    return services.check_create(
        port=cp.port, name=name, kind="missing", columns=["name"], params={"max": 0}
    )


def _run_sync(checks):
    runs = services.run_now(checks=checks)
    services.execute_runs(run_ids=[r.pk for r in runs])


def test_owner_defines_a_check_in_the_browser_and_its_first_run_is_queued(client, checked_port):
    client.force_login(checked_port.mesh.member)
    resp = client.post(
        _create_url(checked_port),
        {
            "port": checked_port.port.pk,
            "name": "Known status",
            "kind": "accepted_values",
            "columns": "status",
            "values": "ok, fine",
            "max": "0",
            "unit": "count",
            "interval_minutes": "30",
        },
    )
    assert resp.status_code == 302 and resp["Location"].endswith("?tab=quality")
    check = QualityCheck.objects.get()
    assert check.params == {"values": ["ok", "fine"], "max": 0, "unit": "count"}
    assert QualityRun.objects.filter(quality_check=check, status="queued").exists()
    page = client.get(_tab(checked_port)).content.decode()
    assert "Known status" in page and "queued" in page


def test_a_bad_definition_shows_the_error_next_to_the_field(client, checked_port):
    client.force_login(checked_port.mesh.owner)
    resp = client.post(
        _create_url(checked_port),
        {
            "port": checked_port.port.pk,
            "name": "x",
            "kind": "missing",
            "columns": "nope",
            "max": "0",
            "interval_minutes": "60",
        },
    )
    assert resp.status_code == 200
    assert "No column nope" in resp.content.decode()
    assert not QualityCheck.objects.exists()


def test_tab_shows_latest_result_history_chart_and_trust(client, checked_port):
    check = _make(checked_port)
    _run_sync([check])
    _run_sync([check])
    client.force_login(checked_port.mesh.consumer)  # any viewer of a published product
    page = client.get(_tab(checked_port)).content.decode()
    assert "Names present" in page and "failed" in page
    assert "1 missing values in name" in page
    assert "<svg" in page and "2 failed" in page  # today's bar
    assert "Trust " in page and "weighted mean" in page  # formula on hover
    assert "Run now" not in page  # consumers cannot run checks
    assert "<script>" not in page


def test_run_now_and_the_fix_clears_the_alert(client, checked_port):
    check = _make(checked_port)
    _run_sync([check])
    client.force_login(checked_port.mesh.owner)
    resp = client.post(reverse("governance:quality_check_run", args=[check.pk]))
    assert resp.status_code == 302
    assert QualityRun.objects.filter(quality_check=check, status="queued").count() == 1
    # A second click while queued does not queue twice.
    client.post(reverse("governance:quality_check_run", args=[check.pk]))
    assert QualityRun.objects.filter(quality_check=check, status="queued").count() == 1


def test_mesh_wide_page_lists_failing_checks_by_domain(
    client, checked_port, django_assert_max_num_queries
):
    for n in range(5):
        _make(checked_port, name=f"c{n}")
    _run_sync(QualityCheck.objects.all())
    client.force_login(checked_port.mesh.consumer)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("governance:quality")).content.decode()
    assert "Orders" in page and "c4" in page


def test_failing_checks_of_drafts_are_hidden_from_outsiders(client, checked_port):
    draft = checked_port.mesh.products[("orders", "draft")]
    port = draft.ports.get()
    port.data_source, port.location = checked_port.source, checked_port.port.location
    port.save()
    check = services.check_create(
        port=port, name="Secret check", kind="row_count", params={"min": 100}
    )
    _run_sync([check])
    client.force_login(checked_port.mesh.consumer)
    assert "Secret check" not in client.get(reverse("governance:quality")).content.decode()
    assert client.get(reverse("governance:quality_check", args=[check.pk])).status_code == 404
    client.force_login(checked_port.mesh.member)
    assert "Secret check" in client.get(reverse("governance:quality")).content.decode()


def test_tab_query_count_does_not_grow_with_checks_and_runs(
    client, checked_port, django_assert_max_num_queries
):
    for n in range(8):
        _make(checked_port, name=f"c{n}")
    for _ in range(3):
        _run_sync(QualityCheck.objects.all())
    client.force_login(checked_port.mesh.owner)
    with django_assert_max_num_queries(40):
        resp = client.get(_tab(checked_port))
    assert resp.content.decode().count("Run now") == 8


@pytest.mark.parametrize(
    "who,expected", [("consumer", 403), ("other_owner", 403), ("approved", 403)]
)
def test_non_owners_are_refused_on_every_write(client, checked_port, who, expected):
    check = _make(checked_port)
    client.force_login(getattr(checked_port.mesh, who))
    p = checked_port.product
    assert client.get(_create_url(checked_port)).status_code == expected
    assert client.post(_create_url(checked_port), {"name": "x"}).status_code == expected
    assert (
        client.post(reverse("governance:quality_check_run", args=[check.pk])).status_code
        == expected
    )
    assert (
        client.post(
            reverse("governance:quality_product_run", args=[p.domain.slug, p.slug])
        ).status_code
        == expected
    )
    assert (
        client.post(reverse("governance:quality_check_delete", args=[check.pk])).status_code
        == expected
    )
    assert QualityCheck.objects.filter(pk=check.pk).exists()
    assert not QualityRun.objects.exists()


def test_owner_deletes_a_check(client, checked_port):
    check = _make(checked_port)
    client.force_login(checked_port.mesh.owner)
    client.post(reverse("governance:quality_check_delete", args=[check.pk]))
    assert not QualityCheck.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, checked_port):
    check = _make(checked_port)
    for url in (
        reverse("governance:quality"),
        reverse("governance:quality_check", args=[check.pk]),
    ):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_platform_tests_a_data_source_connection_in_the_admin(client, checked_port):
    client.force_login(checked_port.mesh.staff)
    resp = client.post(
        reverse("admin:governance_datasource_changelist"),
        {"action": "test_connection", "_selected_action": [checked_port.source.pk]},
        follow=True,
    )
    assert "Connected" in resp.content.decode() and "read-only" in resp.content.decode()


def test_platform_edits_schedules_in_the_admin_and_bad_params_are_refused(client, checked_port):
    check = _make(checked_port)
    client.force_login(checked_port.mesh.staff)
    url = reverse("admin:governance_qualitycheck_change", args=[check.pk])
    form = {
        "port": checked_port.port.pk,
        "name": check.name,
        "kind": "missing",
        "columns": '["name"]',
        "params": '{"max": 0}',
        "enabled": "on",
        "interval_minutes": "5",
        "cron": "",
        "timeout_seconds": "60",
    }
    assert client.post(url, form).status_code == 302
    check.refresh_from_db()
    assert check.interval_minutes == 5
    bad = client.post(url, form | {"cron": "whenever", "params": '{"max": "lots"}'})
    assert bad.status_code == 200 and "cron" in bad.content.decode()
    check.refresh_from_db()
    assert check.cron == ""
