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
which need only the standard library and orjson, seams/versions.py (packaging), and
seams/gunicorn.py, which needs only gevent-websocket's worker, as standalone modules; it checks the
versions of the libraries it runs before using that worker.
"""
import importlib.util
import sys
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
_logs = _standalone("telemetry/logs")
# the libraries the master runs, checked before it loads them (the worker checks all of them)
for _refusal in _standalone("seams/versions").refusals(("gunicorn", "gevent", "gevent-websocket")):
    if not _settings["ALLOW_UNTESTED_LIBRARIES"]:
        raise SystemExit(f"homeapp: cannot start: {_refusal}")
    print(f"HOMEAPP_ALLOW_UNTESTED_LIBRARIES: starting anyway: {_refusal}", file=sys.stderr)
_gunicorn = _standalone("seams/gunicorn")

bind = f"{_settings['HOST']}:{_settings['PORT']}"

# gevent-websocket's worker, serving with homeapp's connection handler (a smaller read buffer per
# connection, a header timeout, and websockets handed over to the frame path after the upgrade:
# homeapp/transport/worker.py, with --certfile too), set by post_worker_init below
worker_class = _gunicorn.Worker

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


_drains = []  # the worker's drain, once its SIGTERM came


def _grace(worker):
    """HOMEAPP_SHUTDOWN_GRACE, cut short if gunicorn's graceful timeout was set lower."""
    return max(0.1, min(_settings["SHUTDOWN_GRACE"], worker.cfg.graceful_timeout - 1))


def post_worker_init(worker):
    """On the worker's SIGTERM, stop accepting and drain its sockets instead of waiting on them."""
    import signal

    import gevent

    from homeapp.operations.shutdown import HttpConnections, shutdown
    from homeapp.seams.gevent import quiet_accept
    from homeapp.transport.worker import handler_class

    hub = worker.wsgi.extensions["homeapp"]
    # so that the drain can end idle keep-alive connections, which gunicorn would wait for
    http = HttpConnections()
    # and an accept that pauses, quietly, when the worker is out of descriptors
    _gunicorn.serve_with(worker, http.handler(handler_class(_settings)), quiet_accept)

    def drain(signum, frame):
        if _gunicorn.stop_accepting(worker):  # gunicorn closes its listener, waits for the handlers
            _drains.append(gevent.spawn(shutdown, hub, _grace(worker), http))

    signal.signal(signal.SIGTERM, drain)


def worker_int(worker):
    """SIGINT or SIGQUIT (a quick shutdown): drain the sockets before gunicorn exits the worker."""
    from homeapp.operations.shutdown import shutdown

    shutdown(worker.wsgi.extensions["homeapp"], _grace(worker))


def worker_exit(server, worker):
    """The worker is leaving: let a drain in progress finish, and close anything still open."""
    for drain in _drains:
        drain.join(_grace(worker))
    app = getattr(worker, "wsgi", None)
    if app is not None and len(app.extensions["homeapp"].connections):
        from homeapp.operations.shutdown import shutdown

        shutdown(app.extensions["homeapp"], 1.0)
