# Celery's autodiscovery imports governance.tasks; each area's task module is imported here.
from . import quality  # noqa: E402,F401
from .policies import evaluate_changed_products, evaluate_policies  # noqa: F401
