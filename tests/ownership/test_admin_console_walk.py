"""Every page of every ModelAdmin, walked as staff without the platform group.

The console is the platform team's. Other staff (someone given the staff flag) see only the
portal's own records, and only what the portal's pages would show them; no page or field that
gives rights. Expectations are written here, not read from meshportal.admin: a new ModelAdmin
answers 403 to them unless it is added to PORTAL_RECORDS below on purpose.
"""

import re

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from meshportal.admin import ConsoleAdmin
from meshportal.api.auth import token_create
from meshportal.models import Notification, PendingTask
from meshportal.permissions import DELETE, PLATFORM_GROUP, can, visible
from products.lineage import services as lineage_services
from products.models import DataProduct, Watch

# What staff without the platform group may open: read what they may read in the portal,
# change what they may change there (never add, never grant).
PORTAL_RECORDS = {
    "products.dataproduct",
    "products.outputport",
    "products.accessrequest",
    "products.inputport",
    "products.watch",
    "domains.team",
    "domains.domain",
}
# Pages that answer 403 to platform staff too: records written elsewhere, or never.
NOBODY = {
    "axes_accessattempt_add",  # written by sign-ins
    "axes_accessfailurelog_add",
    "axes_accesslog_add",
    "governance_evaluationrun_add",  # written by the evaluator
    "governance_incident_add",  # opened by failing checks, acted on in the portal
    "governance_qualityrun_add",  # written by the quality engine
    "governance_waiver_add",  # asked for and decided in the portal
    "governance_webhook_add",  # added on the team's page, where its secret is shown once
    "governance_webhookdelivery_add",
    "meshportal_apitoken_delete",  # revoked, never deleted
    "meshportal_auditentry_add",  # the audit log is read-only
    "meshportal_auditentry_delete",
    "meshportal_notification_add",
    "meshportal_pendingtask_add",
    "products_accessrequest_add",  # asked for on the product page
    "products_inputport_add",  # declared on the product page
    "products_outputport_add",  # added on their product
    "products_watch_add",
    "usage_ingestrun_add",  # written by ingests (API, import_usage, pg_stat_statements)
}
# Inputs that would give rights: never editable by them.
RIGHTS_INPUT = re.compile(
    r'name="(owner_team|permissions|groups|user_permissions|is_superuser|is_staff'
    r'|memberships-\d+-(role|user))"'
)


def _some_of_everything(demo_owner) -> None:
    """Rows for the models the demo leaves empty, so every object page has one to open."""
    published = DataProduct.objects.filter(status="published").order_by("pk")
    reader, source = published[0], published[1]
    if not reader.input_ports.exists():
        lineage_services.input_port_create(
            product=reader, by=demo_owner, source_port=source.ports.first()
        )
    Watch.objects.get_or_create(user=demo_owner, product=reader)
    Notification.objects.create(user=demo_owner, kind="test", title="hello")
    token_create(user=demo_owner, name="walk")
    PendingTask.objects.create(task_name="products.tasks.expire_access_grants", args=[], kwargs={})
    sign_in = {
        "username": "someone",
        "ip_address": "127.0.0.1",
        "user_agent": "ua",
        "http_accept": "",
        "path_info": "/login/",
    }
    AccessAttempt.objects.create(**sign_in, failures_since_start=1, get_data="", post_data="")
    AccessLog.objects.create(**sign_in, attempt_time=timezone.now())
    AccessFailureLog.objects.create(**sign_in, attempt_time=timezone.now(), locked_out=False)


def _sample(user, model, platform: bool):
    qs = model._default_manager.order_by("pk")
    if model is get_user_model():
        qs = qs.filter(is_superuser=False)  # only a superuser changes a superuser
    label = model._meta.label_lower
    if label in PORTAL_RECORDS and not platform:
        qs = visible(user, qs)
    return qs.first()


def _urls(model_admin, obj, user):
    group = Group.objects.filter(name__startswith="team:").order_by("pk").first()
    for pattern in model_admin.get_urls():
        name = getattr(pattern, "name", None)
        if not name:
            continue
        params = set(pattern.pattern.converters)
        if params and obj is None:
            continue
        kwargs = {}
        for p in params:
            kwargs[p] = {"user_id": user.pk, "group_id": group.pk}.get(p, obj.pk if obj else 0)
        yield name, reverse(f"admin:{name}", kwargs=kwargs)


def test_every_model_admin_uses_the_consoles_rule():
    loose = [
        m._meta.label for m, ma in admin.site._registry.items() if not isinstance(ma, ConsoleAdmin)
    ]
    assert not loose, f"these admins bypass meshportal.admin.ConsoleAdmin: {loose}"


def test_staff_without_platform_walks_the_console(client, demo):
    User = get_user_model()
    olivia = User.objects.get(username="olivia")  # owns the Orders team; council delegate
    carl = User.objects.get(username="carl")  # a consumer: no team
    _some_of_everything(olivia)
    walked = 0
    for user in (olivia, carl):
        user.is_staff = True
        user.save()
        assert not user.groups.filter(name=PLATFORM_GROUP).exists()
        client.force_login(user)
        assert client.get("/admin/").status_code == 200
        for model, model_admin in admin.site._registry.items():
            label = model._meta.label_lower
            obj = _sample(user, model, platform=False)
            for name, url in _urls(model_admin, obj, user):
                r = client.get(url)
                walked += 1
                where = f"{user.username} {name} {url}"
                if label not in PORTAL_RECORDS:
                    assert r.status_code == 403, where
                elif name.endswith("_changelist"):
                    assert r.status_code == 200, where
                    assert not RIGHTS_INPUT.search(r.text), where
                elif name.endswith(("_add", "_permissions", "_manage_user", "_manage_group")):
                    assert r.status_code == 403, where
                elif name.endswith("_delete"):
                    assert r.status_code == (200 if can(user, DELETE, obj) else 403), where
                else:  # change, history: the objects they may see
                    assert r.status_code == 200, where
                    assert not RIGHTS_INPUT.search(r.text), where
                    assert "permissionslink" not in r.text, where
    assert walked > 150


def test_platform_staff_open_every_page(client, demo):
    User = get_user_model()
    platform = User.objects.create_user("plat", is_staff=True)
    platform.groups.add(Group.objects.get(name=PLATFORM_GROUP))
    _some_of_everything(User.objects.get(username="olivia"))
    client.force_login(platform)
    refused = set()
    for model, model_admin in admin.site._registry.items():
        obj = _sample(platform, model, platform=True)
        for name, url in _urls(model_admin, obj, platform):
            r = client.get(url)
            if r.status_code == 403:
                refused.add(name)
            else:
                assert r.status_code in (200, 302), url
    # What nobody does in the console, platform staff included (added or deleted elsewhere).
    assert refused == NOBODY, sorted(refused ^ NOBODY)
