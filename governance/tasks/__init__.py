# Celery's autodiscovery imports governance.tasks; each area's task module is imported here.
from . import quality  # noqa: E402,F401
