"""gunicorn settings for one HomeApp process: `gunicorn -c gunicorn.conf.py wsgi:app`.

HOST and PORT say where it listens, like `python app.py`. To run several processes, start
several gunicorns, one per port (or host), all with the same REDIS_URL, behind the proxy
of deploy/nginx.conf (docs/scale-out.md).

SIGTERM to the master: it closes the listening socket and sends SIGTERM to the worker,
whose handler below runs homeapp.operations.shutdown within HOMEAPP_SHUTDOWN_GRACE: its users go
offline at once. graceful_timeout leaves a margin after that before gunicorn kills the
worker (docs/operations.md).

The master never imports the homeapp package: that would import redis, Flask and
Socket.IO before the worker's gevent monkey-patching. It reads config.py and logs.py,
which need only the standard library and orjson, and transport/worker.py, which needs only gevent,
gevent-websocket and gunicorn, as standalone modules.
"""
import importlib.util
from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def _standalone(path):
    """homeapp/<path>.py as a module of its own, without importing the package."""
    spec = importlib.util.spec_from_file_location(f"_gunicorn_{path.replace('/', '_')}",
                                                  _ROOT / "homeapp" / f"{path}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_settings = _standalone("config").load_config()  # a bad setting stops gunicorn with its name
_logs = _standalone("operations/logs")

bind = f"{_settings['HOST']}:{_settings['PORT']}"

# The plain gevent worker answers every websocket upgrade with a 500 when gevent-websocket
# is installed; gevent-websocket's serves both transports, and homeapp's is that one with
# a smaller read buffer per connection, a header timeout, and websockets handed over to the
# frame path after the upgrade (homeapp/transport/worker.py), with --certfile too.
worker_class = _standalone("transport/worker").worker_class(_settings)

# One worker per gunicorn: its master hands requests to workers at random, and the
# long-polling transport needs every request of a session to reach the same process.
# Scale with more gunicorns behind the sticky proxy instead.
workers = 1
# (and no preload_app: each worker must start its own presence keeper after the fork)

# gevent's limit on concurrent connections per worker: each long-polling connection holds one;
# a websocket (plain or TLS) only until its upgrade is answered
worker_connections = 10000

# seconds gunicorn waits for a stopping worker before killing it: shutdown() gives up first
graceful_timeout = int(_settings["SHUTDOWN_GRACE"]) + 5

# gunicorn's control socket has one default path per user: several gunicorns on one host
# would take it from each other. Give each its own with --control-socket if you use gunicornc.
control_socket_disable = True

# gunicorn's own lines (master and worker) go through homeapp's handler, in its format
loglevel = _settings["LOG_LEVEL"].lower()
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

    from homeapp.operations.shutdown import HttpConnections, shutdown

    hub = worker.wsgi.extensions["homeapp"]
    # so that the drain can end idle keep-alive connections, which gunicorn would wait for
    http = HttpConnections()
    worker.wsgi_handler = http.handler(worker.wsgi_handler)

    def drain(signum, frame):
        if worker.alive:
            worker.alive = False  # gunicorn closes its listener and waits for the handlers to end
            worker.homeapp_drain = gevent.spawn(shutdown, hub, _grace(worker), http)

    signal.signal(signal.SIGTERM, drain)


def worker_int(worker):
    """SIGINT or SIGQUIT (a quick shutdown): drain the sockets before gunicorn exits the worker."""
    from homeapp.operations.shutdown import shutdown

    shutdown(worker.wsgi.extensions["homeapp"], _grace(worker))


def worker_exit(server, worker):
    """The worker is leaving: let a drain in progress finish, and close anything still open."""
    drain = getattr(worker, "homeapp_drain", None)
    if drain is not None:
        drain.join(_grace(worker))
    app = getattr(worker, "wsgi", None)
    if app is not None and len(app.extensions["homeapp"].connections):
        from homeapp.operations.shutdown import shutdown

        shutdown(app.extensions["homeapp"], 1.0)
