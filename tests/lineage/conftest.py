import pytest

from products import services


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eager_tasks(django_capture_on_commit_callbacks):
    """Run Celery tasks inline and on-commit callbacks at once (the worker test covers the
    real broker). Yields the capture context so that tests wrap the change in it."""
    from meshportal.celery import app

    app.conf.task_always_eager = True
    try:
        yield django_capture_on_commit_callbacks
    finally:
        app.conf.task_always_eager = False


def make_product(domain, slug, *, status="published", classification="internal", team=None):
    p = services.product_create(
        domain=domain,
        slug=slug,
        name=slug.replace("-", " ").title(),
        summary=slug,
        classification=classification,
        owner_team=team,
        ports=[
            {
                "slug": "main",
                "name": "Main",
                "kind": "table",
                "location": f"x.{slug}",
                "fields": [
                    {"name": "id", "logical_type": "integer"},
                    {"name": "amount", "logical_type": "number"},
                ],
            }
        ],
    )
    if status != "draft":
        services.product_publish(product=p)
    if status == "deprecated":
        services.product_deprecate(product=p)
    return p
