import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")
application = get_wsgi_application()

# Everything loaded at start-up (modules, models, settings: ~170,000 objects) lives as long as
# the process, so the cycle collector need not walk it again: a full collection took ~105 ms
# during a request with it and ~13 ms without (the spikes in the pages' p99, docs/benchmarks.md).
# Objects made later are collected as before.
gc.collect()
gc.freeze()
