"""gunicorn's gevent worker, as gevent-websocket subclasses it, and what the worker hooks of
gunicorn.conf.py set on it (versions: homeapp/seams/versions.py).

gunicorn.conf.py loads this file on its own in gunicorn's master, after checking the versions
there: it imports gevent-websocket's worker (and so gunicorn and gevent), never the homeapp
package, which must not be imported before the worker's gevent monkey-patching.
"""
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker

DISTRIBUTION = "gunicorn"

# The plain gevent worker answers every websocket upgrade with a 500 when gevent-websocket is
# installed; gevent-websocket's serves both transports. Its connection handler is homeapp's,
# set by serve_with() once the worker has loaded the app, before it serves.
Worker = GeventWebSocketWorker


def serve_with(worker, handler_class, server_class=None):
    """Have `worker` serve its connections with the pywsgi handler `handler_class`, and, given
    `server_class` (a function of gunicorn's server class: homeapp/seams/gevent.py's
    quiet_accept), its server; from gunicorn's post_worker_init hook, before the worker starts
    its server."""
    worker.wsgi_handler = handler_class
    if server_class is not None:
        worker.server_class = server_class(worker.server_class)


def stop_accepting(worker):
    """Make gunicorn close `worker`'s listener and wait for its handlers to end. Returns False
    when it was stopping already."""
    if not worker.alive:
        return False
    worker.alive = False
    return True
