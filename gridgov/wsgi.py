"""The WSGI application (gunicorn runs it with a few threads per worker process)."""

import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
# A thread that returns from the database waits for the GIL for up to the switch interval
# (5 ms by default) while another thread runs Python. A thread inside a write transaction
# (on SQLite: holding the database's write lock) pays that at every statement, and every other
# writer waits with it. A shorter interval keeps transactions short under load.
sys.setswitchinterval(float(os.environ.get("GRIDGOV_GIL_SWITCH_MS", "0.5")) / 1000)
application = get_wsgi_application()
