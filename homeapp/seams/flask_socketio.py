"""Flask-SocketIO, used for one thing: building python-socketio's server with an app's options and
mounting it in front of the app (versions: homeapp/seams/versions.py). Its decorators and its
`run()` are not used: the handlers are bound on python-socketio's server (homeapp.events), since
Flask-SocketIO's push a Flask request context for every event, which cost more than a handler
on the hot path (bench/optimised.md).
"""
from socketio import manager

from homeapp.extensions import socketio

DISTRIBUTION = "Flask-SocketIO"


def build_server(app, client_manager=None, **options):
    """python-socketio's Server for `app`, with `options` (Flask-SocketIO's init_app), mounted
    at /socket.io/. Without a `client_manager`, a new in-process one: init_app keeps the options
    of the previous app it was given, whose manager would be shared."""
    socketio.init_app(app, client_manager=client_manager or manager.Manager(), **options)
    return socketio.server
