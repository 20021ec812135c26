"""HomeApp realtime server: a Socket.IO server speaking the existing client's protocol.

How the libraries divide the work:

- Flask serves HTTP: the demo page, `/api/online-users`, the backend API, health, readiness
  and metrics, each a blueprint. create_app() below is Flask's application factory.
- Flask-SocketIO does one thing here: it builds python-socketio's server with this app's
  options (message queue, JSON codec, origins, limits) and mounts it in front of the Flask app
  at `/socket.io/` (homeapp/seams/flask_socketio.py). The handlers are bound on
  python-socketio's server directly (homeapp.events.dispatch). The server loop is
  gevent's WSGI server with this project's connection handler (homeapp.operations.shutdown's
  serve() for `python app.py`, homeapp.transport.worker under gunicorn).
- python-socketio, over python-engineio, speaks the protocol: the handshake, namespaces,
  rooms, acknowledgements, and the message queue between processes (homeapp.engine).
- gevent-websocket answers the websocket upgrade; then homeapp.transport's frame path
  (frames.py, evented.py) carries every websocket, plain TCP or TLS, with no greenlet each.

Where homeapp relies on a library's insides, the code is in homeapp/seams/, one module per
library, installed by create_app before it builds anything of the libraries (docs/upgrading.md).
"""
from pathlib import Path

from flask import Flask

from homeapp import engine, seams
from homeapp.api import endpoint as api
from homeapp.config import load_config
from homeapp.events import register
from homeapp.events.lifecycle import reinstate
from homeapp.hub import build_hub
from homeapp.operations import admin
from homeapp.schemas import limits
from homeapp.seams import flask_socketio, socketio as socketio_seam
from homeapp.store.outage import RedisHealth
from homeapp.store.redis_client import connect as connect_redis
from homeapp.telemetry import metrics
from homeapp.telemetry.logs import configure_logging
from homeapp.transport import evented, jsoncodec, packets, websocket
from homeapp.transport.origins import allowed_origins

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config=None):
    """Build the Flask app and bind the Socket.IO server to it.

    Settings come from the environment (homeapp.config), overridden by test_config.
    Raises ConfigError when a setting is malformed.
    """
    config = load_config()
    config.update(test_config or {})
    api.check_config(config)
    configure_logging(config["LOG_LEVEL"], config["LOG_FORMAT"])
    seams.install(config)  # before any library object is built: it checks the libraries' versions
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(config)
    limits.configure(config)

    health = RedisHealth()
    redis_client = None
    if config["REDIS_URL"]:
        redis_client = connect_redis(config["REDIS_URL"], config["REDIS_TIMEOUT"], decode_responses=True,
                                     max_connections=config["REDIS_MAX_CONNECTIONS"])
    client_manager = engine.create_manager(config, health)
    server = flask_socketio.build_server(
        app,
        client_manager,
        async_mode="gevent",
        json=jsoncodec,
        serializer=socketio_seam.TextPacket,
        cors_allowed_origins=allowed_origins(config["CORS_ORIGINS"], config["TRUST_PROXY"]),
        cors_credentials=config["CORS_CREDENTIALS"],
        max_http_buffer_size=config["MAX_PACKET_BYTES"],
        ping_interval=config["PING_INTERVAL"],
        ping_timeout=config["PING_TIMEOUT"],
        # one event at a time per socket, in the order it was sent, without a greenlet each
        async_handlers=False,
    )
    hub = build_hub(server, config, redis_client, health)
    metrics.watch(hub.connections, health, lambda: engine.ended_in_rooms(server))
    evented.configure(config)
    packets.guard(server)
    engine.attach(server, hub, reinstate)
    register(server, hub)
    app.wsgi_app = websocket.bounded_polling(app.wsgi_app, server.eio, config["MAX_PACKET_BYTES"])
    admin.init_app(app, server, config)
    if hub.keeper is not None:
        hub.keeper.start()
    app.extensions["homeapp"] = hub

    from homeapp import web
    from homeapp.operations import endpoints as ops
    app.register_blueprint(web.bp)
    ops.init_app(app)
    api.init_app(app, redis_client)
    return app
