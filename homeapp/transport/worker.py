"""The connection handler of `python app.py` and the gunicorn worker of gunicorn.conf.py.

gevent-websocket's, reading each connection through a READ_BUFFER-byte buffer instead of
8 KB: a frame of this protocol is a few hundred bytes, and an idle socket held the rest
for nothing (3 KB of RSS per socket, bench/ idle scenario).

gunicorn's master loads this file on its own, as gunicorn.conf.py does config.py: it
imports only gevent, gevent-websocket and gunicorn, never the homeapp package, which must
not be imported before the worker's gevent monkey-patching.
"""
try:
    from geventwebsocket.handler import WebSocketHandler as BaseHandler
except ImportError:  # bench/peers/homeapp_simple_ws.py made it unimportable: gevent's own
    from gevent.pywsgi import WSGIHandler as BaseHandler
    GeventWebSocketWorker = None
else:
    from geventwebsocket.gunicorn.workers import GeventWebSocketWorker

# a longer read goes around the buffer, straight into its destination
READ_BUFFER = 1024


class Handler(BaseHandler):
    def __init__(self, sock, address, server, rfile=None):
        # gevent's handler takes rfile (an argument it calls deprecated) and makes its own
        # 8 KB reader only without one: one reader per connection, not one made and dropped
        super().__init__(sock, address, server, rfile or sock.makefile("rb", READ_BUFFER))


if GeventWebSocketWorker is not None:
    class Worker(GeventWebSocketWorker):
        wsgi_handler = Handler
