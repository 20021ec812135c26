"""gunicorn settings for one HomeApp process: `gunicorn -c gunicorn.conf.py wsgi:app`.

HOST and PORT say where it listens, like `python app.py`. To run several processes, start
several gunicorns, one per port (or host), all with the same REDIS_URL, behind the proxy
of deploy/nginx.conf (docs/scale-out.md).
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"

# The plain gevent worker answers every websocket upgrade with a 500 when gevent-websocket
# is installed; this one serves both transports.
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"

# One worker per gunicorn: its master hands requests to workers at random, and the
# long-polling transport needs every request of a session to reach the same process.
# Scale with more gunicorns behind the sticky proxy instead.
workers = 1
# (and no preload_app: each worker must start its own presence keeper after the fork)

# gunicorn's control socket has one default path per user: several gunicorns on one host
# would take it from each other. Give each its own with --control-socket if you use gunicornc.
control_socket_disable = True
