# Celery's autodiscovery imports governance.tasks; each area's task module is imported here.
