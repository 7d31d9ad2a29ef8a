"""gunicorn settings for calendar-connections; each can be overridden from the environment."""

import os
import sys

from calendar_connections.config import ConfigurationError, preflight

try:
    # Refuse here, in the master, before any worker: one line, not a traceback per worker.
    preflight()
except ConfigurationError as exc:
    print(f"calendar-connections: {exc.format_message()}", file=sys.stderr)
    sys.exit(1)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '18080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A manual sync may page through a large calendar: give it time before the worker is killed.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = "-"
errorlog = "-"
# No query strings in the access log: an OAuth callback carries the authorization code there.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
# Several instances may run on one host (tests, blue/green): none needs the control socket.
control_socket_disable = True


def _announce(worker):
    """Tell a new user where things are, once the first worker has loaded the app."""
    host, port = bind.rsplit(":", 1)
    shown = "localhost" if host in {"0.0.0.0", "::"} else host
    worker.log.info("calendar-connections serving on http://%s:%s/api/v1", shown, port)
    worker.log.info("API docs: http://%s:%s/api/v1/docs", shown, port)
    worker.log.info("Bearer token for local use: .venv/bin/flask auth issue-token USER_ID")


def post_worker_init(worker):
    """Start the sync scheduler in each worker (after the fork, so its thread is alive)."""
    from calendar_connections.scheduler import get_scheduler

    if worker.age == 1:
        # The first worker of this master is up: the app loads, so the banner is true now.
        _announce(worker)

    scheduler = get_scheduler(worker.wsgi)
    if scheduler is not None:
        scheduler.start()


def worker_exit(server, worker):
    """Let running syncs finish and release their leases before the worker goes (syncs of
    notifications not started yet stay due in the database, for a scheduler round)."""
    from calendar_connections.push_dispatch import get_dispatcher
    from calendar_connections.scheduler import get_scheduler

    app = getattr(worker, "wsgi", None)
    scheduler = get_scheduler(app) if app is not None else None
    if scheduler is not None:
        scheduler.shutdown()
    if app is not None:
        get_dispatcher(app).shutdown()
