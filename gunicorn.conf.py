"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Listens on HOST:PORT like app.py, with the gevent-websocket worker (the plain gevent
worker fails every websocket upgrade). One worker by default: Socket.IO's polling
transport needs every request of a session on the same process, so scale out with
more processes behind a sticky load balancer and REDIS_URL, not with -w. Each worker
has its own /metrics (docs/operations.md).

SIGTERM to the master: it closes the listening sockets and sends SIGTERM to each
worker, whose handler below runs homeapp.shutdown within HOMEAPP_SHUTDOWN_GRACE;
graceful_timeout leaves a margin after that before gunicorn kills the worker.

The master never imports the homeapp package: that would import redis, Flask and
Socket.IO before the workers' gevent monkey-patching. It reads config.py and logs.py,
which need only the standard library and orjson, as standalone modules.
"""
import importlib.util
import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def _standalone(name):
    spec = importlib.util.spec_from_file_location(f"_gunicorn_{name}", _ROOT / "homeapp" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_settings = _standalone("config").load_config()  # a bad setting stops gunicorn with its name
_logs = _standalone("logs")

bind = f"{_settings['HOST']}:{_settings['PORT']}"
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("HOMEAPP_WORKER_CONNECTIONS", "10000"))  # sockets per worker
graceful_timeout = int(_settings["SHUTDOWN_GRACE"]) + 5  # gunicorn takes whole seconds
loglevel = _settings["LOG_LEVEL"].lower()
control_socket_disable = True  # its default path is per user, shared by every instance on the host
# gunicorn's own lines (master and workers) go through homeapp's handler, in its format
logconfig_dict = {
    "root": {"level": _settings["LOG_LEVEL"], "handlers": ["homeapp"]},
    "loggers": {name: {"level": _settings["LOG_LEVEL"], "handlers": [], "propagate": True}
                for name in ("gunicorn.error", "gunicorn.access")},
    "handlers": {"homeapp": {"()": _logs.make_handler, "fmt": _settings["LOG_FORMAT"]}},
    "formatters": {},
}


def _grace(worker):
    """HOMEAPP_SHUTDOWN_GRACE, cut short if gunicorn's graceful timeout was set lower."""
    return max(0.1, min(_settings["SHUTDOWN_GRACE"], worker.cfg.graceful_timeout - 1))


def post_worker_init(worker):
    """On the worker's SIGTERM, stop accepting and drain its sockets instead of waiting on them."""
    import signal

    import gevent

    from homeapp.shutdown import shutdown

    hub = worker.wsgi.extensions["homeapp"]

    def drain(signum, frame):
        if worker.alive:
            worker.alive = False  # gunicorn closes its listeners and waits for the handlers to end
            worker.homeapp_drain = gevent.spawn(shutdown, hub, _grace(worker))

    signal.signal(signal.SIGTERM, drain)


def worker_int(worker):
    """SIGINT or SIGQUIT (a quick shutdown): drain the sockets before gunicorn exits the worker."""
    from homeapp.shutdown import shutdown

    shutdown(worker.wsgi.extensions["homeapp"], _grace(worker))


def worker_exit(server, worker):
    """The worker is leaving: let a drain in progress finish, and close anything still open."""
    drain = getattr(worker, "homeapp_drain", None)
    if drain is not None:
        drain.join(_grace(worker))
    app = getattr(worker, "wsgi", None)
    if app is not None and len(app.extensions["homeapp"].connections):
        from homeapp.shutdown import shutdown

        shutdown(app.extensions["homeapp"], 1.0)
