from django.urls import include, path  # noqa: F401

from governance.policies import views as policy_views
from governance.quality import incident_views, source_views, webhook_views
from governance.quality import views as quality_views

app_name = "governance"

urlpatterns: list = [
    path("teams/<slug:team>/webhooks/", webhook_views.team_webhooks, name="team_webhooks"),
    path("webhooks/<int:pk>/edit/", webhook_views.webhook_edit, name="webhook_edit"),
    path("webhooks/<int:pk>/delete/", webhook_views.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:pk>/test/", webhook_views.webhook_test, name="webhook_test"),
    path("governance/policies/", policy_views.policy_list, name="policies"),
    path("governance/policies/propose/", policy_views.policy_propose, name="policy_propose"),
    path("governance/policies/<slug:key>/", policy_views.policy_detail, name="policy"),
    path("governance/policies/<slug:key>/vote/", policy_views.policy_vote, name="policy_vote"),
    path(
        "governance/policies/<slug:key>/retire/", policy_views.policy_retire, name="policy_retire"
    ),
    path(
        "governance/policies/<slug:key>/waive/<int:product_id>/",
        policy_views.waiver_request,
        name="waiver_request",
    ),
    path("governance/evaluate/", policy_views.evaluate_now, name="evaluate"),
    path("governance/compliance/", policy_views.compliance, name="compliance"),
    path(
        "governance/domains/<slug:domain>/", policy_views.domain_scorecard, name="domain_scorecard"
    ),
    path("governance/waivers/", policy_views.waiver_list, name="waivers"),
    path("governance/waivers/<int:pk>/decide/", policy_views.waiver_decide, name="waiver_decide"),
    path("glossary/", policy_views.glossary, name="glossary"),
    path("glossary/suggest/", policy_views.glossary_suggest, name="term_suggest"),
    path(
        "products/<slug:domain>/<slug:product>/fields/<int:field>/glossary/",
        policy_views.field_glossary_link,
        name="field_glossary",
    ),
    path("glossary/new/", policy_views.glossary_term_edit, name="term_create"),
    path("glossary/<slug:slug>/", policy_views.glossary_term, name="term"),
    path("glossary/<slug:slug>/edit/", policy_views.glossary_term_edit, name="term_edit"),
    path("quality/", quality_views.quality_overview, name="quality"),
    path("quality/sources/", source_views.data_sources, name="data_sources"),
    path("quality/sources/<int:pk>/", source_views.data_source_edit, name="data_source_edit"),
    path("quality/sources/<int:pk>/test/", source_views.data_source_test, name="data_source_test"),
    path("incidents/", incident_views.incident_list, name="incidents"),
    path("incidents/<int:pk>/", incident_views.incident_detail, name="incident"),
    path(
        "incidents/<int:pk>/acknowledge/",
        incident_views.incident_acknowledge,
        name="incident_acknowledge",
    ),
    path("incidents/<int:pk>/resolve/", incident_views.incident_resolve, name="incident_resolve"),
    path("quality/trust/", quality_views.trust_help, name="trust_help"),
    path(
        "quality/products/<slug:domain>/<slug:product>/checks/new/",
        quality_views.check_create,
        name="quality_check_create",
    ),
    path(
        "quality/products/<slug:domain>/<slug:product>/run/",
        quality_views.product_run,
        name="quality_product_run",
    ),
    path("quality/checks/<int:pk>/", quality_views.check_detail, name="quality_check"),
    path("quality/checks/<int:pk>/run/", quality_views.check_run, name="quality_check_run"),
    path(
        "quality/checks/<int:pk>/delete/", quality_views.check_delete, name="quality_check_delete"
    ),
]
