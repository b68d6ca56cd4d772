"""Demo governance: the council adopts Olivia's naming policy, Orders adopts a blocking one.

Idempotent: every object is looked up before it is made, and the first evaluation runs once.
"""

from django.contrib.auth import get_user_model

from demo import products as demo
from domains.models import Domain
from governance.models import EvaluationRun, GlossaryTerm, Policy
from governance.policies import rules
from governance.policies import services as policy_services
from products import services as product_services
from products.models import SchemaField

TERMS = [
    # slug, name, definition, synonyms, domain, fields named so get linked
    (
        "customer",
        "Customer",
        "A person or company with an account in the web shop.",
        "client, buyer, shopper",
        None,
        ["customer_id"],
    ),
    (
        "order",
        "Order",
        "A confirmed purchase of one or more items by a **customer**.",
        "purchase",
        "orders",
        ["order_id"],
    ),
    (
        "revenue",
        "Revenue",
        "Money from delivered orders, net of refunds, in EUR.",
        "sales, turnover",
        "orders",
        ["revenue", "total_amount"],
    ),
]


def seed() -> None:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=demo.USERS)}
    domains = {d.slug: d for d in Domain.objects.all()}
    _glossary(domains)

    naming = Policy.objects.filter(key="snake-case-fields").first()
    if naming is None:
        naming = policy_services.policy_propose(
            by=users["olivia"],
            key="snake-case-fields",
            title="Field names are snake_case",
            rule_type="naming",
            parameters={"field_regex": rules.SNAKE_CASE},
            rationale="Consumers join products across domains; one naming style for columns "
            "(`customer_id`, not `CustomerID`) makes that boring, which is good.",
        )
        votes = ["olivia", "tariq", "pat", "mia", "ivan", "uma"]
        for username in votes:
            if Policy.objects.get(pk=naming.pk).status != Policy.Status.PROPOSED:
                break
            policy_services.policy_vote(
                policy=naming,
                by=users[username],
                decision="approve",
                comment="Agreed at the council meeting.",
            )

    if not Policy.objects.filter(key="pii-classified").exists():
        pii = policy_services.policy_propose(
            by=users["uma"],
            key="pii-classified",
            title="Products with personal data are confidential",
            rule_type="classification",
            parameters={"pii_min_classification": "confidential"},
            severity=Policy.Severity.BLOCKING,
            rationale="Personal data must never be shared as merely *internal*.",
        )
        policy_services.policy_vote(policy=pii, by=users["uma"], decision="approve")

    if not Policy.objects.filter(key="orders-documented").exists():
        policy_services.policy_propose(
            by=users["olivia"],
            key="orders-documented",
            title="Orders products are documented",
            rule_type="documentation",
            domain=domains["orders"],
            severity=Policy.Severity.BLOCKING,
            parameters={
                "min_summary_length": 20,
                "min_description_length": 20,
                "min_field_description_pct": 0,
            },
            rationale="Nothing leaves the Orders domain without a description a consumer can read.",
        )

    if not EvaluationRun.objects.exists():
        policy_services.evaluate_policies(trigger=EvaluationRun.Trigger.COMMAND)


def _glossary(domains) -> None:
    for slug, name, definition, synonyms, domain, field_names in TERMS:
        term = GlossaryTerm.objects.filter(slug=slug).first()
        if term is not None:
            continue
        term = policy_services.glossary_term_save(
            slug=slug,
            name=name,
            definition=definition,
            synonyms=synonyms,
            domain=domains.get(domain),
            status=GlossaryTerm.Status.APPROVED,
        )
        for field in SchemaField.objects.filter(name__in=field_names, glossary_term__isnull=True):
            product_services.field_update(field=field, glossary_term=term)
