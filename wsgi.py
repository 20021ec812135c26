"""Production entry for gunicorn with the gevent-websocket worker:

    gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 wsgi:app
"""
import sys

from homeapp import create_app
from homeapp.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"homeapp: bad setting: {exc}")
