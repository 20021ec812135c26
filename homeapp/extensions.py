"""Extension singletons, bound to an app in create_app() so tests can build many apps."""
from flask_socketio import SocketIO

socketio = SocketIO()
