"""Issue 20 item 8 (part): the add-check form shows the fields of the chosen type only."""

import pytest
from django.urls import reverse

from governance.models import QualityCheck
from tests.test_browser import browser, page, sign_in  # noqa: F401  (fixtures)


def _url(cp):
    return reverse(
        "governance:quality_check_create", args=[cp.product.domain.slug, cp.product.slug]
    )


def _names(html):
    import re

    form = html[html.index('<form id="check-form"') :]
    form = form[: form.index("</form>")]
    return set(re.findall(r'name="([a-z_]+)"', form)) - {"csrfmiddlewaretoken", "choose", "q"}


def test_owner_chooses_a_type_then_sees_only_its_fields_without_js(client, checked_port):
    client.force_login(checked_port.mesh.member)
    step_one = client.get(_url(checked_port)).content.decode()
    assert _names(step_one) == {"port", "name", "kind"}
    step_two = client.post(
        _url(checked_port),
        {"port": checked_port.port.pk, "name": "Fresh", "kind": "freshness", "choose": "1"},
    )
    html = step_two.content.decode()
    assert step_two.status_code == 200
    assert _names(html) == {"port", "name", "kind", "columns", "hours", "interval_minutes", "cron"}
    assert 'value="Fresh"' in html  # what was typed in step one stays
    assert "is required" not in html  # nothing flagged before the owner could fill it in


def test_htmx_re_renders_the_form_for_the_new_type(client, checked_port):
    client.force_login(checked_port.mesh.member)
    r = client.get(
        _url(checked_port),
        {"port": checked_port.port.pk, "name": "SQL", "kind": "custom_sql"},
        headers={"HX-Request": "true"},
    )
    html = r.content.decode()
    assert 'hx-trigger="change from:#id_kind"' in html
    assert _names(html) == {
        "port",
        "name",
        "kind",
        "sql",
        "max",
        "unit",
        "interval_minutes",
        "cron",
    }


def test_a_missing_parameter_is_reported_next_to_its_field(client, checked_port):
    client.force_login(checked_port.mesh.member)
    r = client.post(
        _url(checked_port),
        {
            "port": checked_port.port.pk,
            "name": "Fresh",
            "kind": "freshness",
            "columns": "created_at",
            "interval_minutes": "60",
        },
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="id_hours-error"' in html
    assert not QualityCheck.objects.exists()


def test_a_complete_form_adds_the_check(client, checked_port):
    client.force_login(checked_port.mesh.member)
    r = client.post(
        _url(checked_port),
        {
            "port": checked_port.port.pk,
            "name": "Rows",
            "kind": "row_count",
            "min": "1",
            "interval_minutes": "60",
        },
    )
    assert r.status_code == 302
    assert QualityCheck.objects.get().params["min"] == 1


@pytest.mark.browser
def test_changing_the_type_swaps_the_fields_in_the_browser(page, checked_port):  # noqa: F811
    """Chromium: choosing "Custom SQL" brings its SQL box in place, without a page load."""
    sign_in(page, "member")
    page.goto(_url(checked_port))
    page.fill("#id_name", "Orphans")
    page.evaluate("window.stillTheSamePage = true")
    page.select_option("#id_kind", "custom_sql")
    page.wait_for_selector("#id_sql")
    assert page.locator("#id_hours").count() == 0
    assert page.input_value("#id_name") == "Orphans"
    page.select_option("#id_kind", "freshness")
    page.wait_for_selector("#id_hours")
    assert page.locator("#id_sql").count() == 0
    assert page.evaluate("window.stillTheSamePage") is True
