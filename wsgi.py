"""Production entry for gunicorn with homeapp's gevent-websocket worker (gunicorn.conf.py):

    gunicorn -c gunicorn.conf.py wsgi:app

Refuses to start, with the reason on stderr, when the settings are only fit for a
laptop: `open` identities without HOMEAPP_ALLOW_OPEN=1, or a missing or short
secret (config.check_production), or any malformed setting.
"""
import sys

from homeapp import create_app
from homeapp.config import ConfigError, check_production, load_config

# gunicorn's "App failed to load": the master stops instead of respawning the worker forever
APP_LOAD_ERROR = 4

try:
    check_production(load_config())
    app = create_app()
except ConfigError as exc:
    print(f"homeapp: refusing to start: {exc}", file=sys.stderr, flush=True)
    sys.exit(APP_LOAD_ERROR)
