import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")

app = Celery("meshportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Feature sub-packages keep their tasks beside their services; task names stay as they were.
app.autodiscover_tasks(["governance.policies", "governance.quality"])
