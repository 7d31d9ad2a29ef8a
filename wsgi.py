"""WSGI entry point: `gunicorn wsgi:app`."""

from calendar_connections import create_app

app = create_app()
