"""Production entry for gunicorn with the gevent-websocket worker:

    gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 wsgi:app

Refuses to start (message on stderr, exit status 1) with settings that are only
fit for a laptop: `open` identities without HOMEAPP_ALLOW_OPEN=1, or a missing or
short secret (config.check_production).
"""
import sys

from homeapp import create_app
from homeapp.config import ConfigError, check_production, load_config

try:
    check_production(load_config())
    app = create_app()
except ConfigError as exc:
    sys.exit(f"homeapp: refusing to start: {exc}")
