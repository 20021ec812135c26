"""HomeApp realtime server: a Socket.IO server speaking the existing client's protocol."""
import uuid
from pathlib import Path

import redis
from flask import Flask
from socketio import manager as socketio_manager

from homeapp import admin, jsoncodec, metrics
from homeapp.config import load_config
from homeapp.connections import Connections
from homeapp.events import Hub, register
from homeapp.extensions import socketio
from homeapp.health import RedisHealth
from homeapp.identity import create_identifier
from homeapp.keeper import PresenceKeeper, heartbeat_schedule
from homeapp.logs import configure_logging
from homeapp.origins import allowed_origins
from homeapp.presence import create_presence
from homeapp.queue import QueueManager
from homeapp.schemas import limits
from homeapp.transport import tuned_websockets

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config=None):
    """Build the Flask app and bind the Socket.IO server to it.

    Settings come from the environment (homeapp.config), overridden by test_config.
    Raises ConfigError when a setting is malformed.
    """
    config = load_config()
    config.update(test_config or {})
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(config)
    configure_logging(config["LOG_LEVEL"], config["LOG_FORMAT"])
    limits.configure(config)

    health = RedisHealth()
    redis_client = None
    client_manager = socketio_manager.Manager()  # explicit: init_app keeps options between apps
    if config["REDIS_URL"]:
        redis_client = redis.Redis.from_url(
            config["REDIS_URL"], decode_responses=True,
            socket_timeout=config["REDIS_TIMEOUT"], socket_connect_timeout=config["REDIS_TIMEOUT"])
        client_manager = QueueManager(config["REDIS_URL"], health, config["REDIS_TIMEOUT"])
    socketio.init_app(
        app,
        async_mode=config.get("ASYNC_MODE", "gevent"),
        client_manager=client_manager,
        json=jsoncodec,
        serializer=jsoncodec.TextPacket,
        cors_allowed_origins=allowed_origins(config["CORS_ORIGINS"], config["TRUST_PROXY"]),
        cors_credentials=config["CORS_CREDENTIALS"],
        max_http_buffer_size=config["MAX_PACKET_BYTES"],
        ping_interval=config["PING_INTERVAL"],
        ping_timeout=config["PING_TIMEOUT"],
        # one event at a time per socket, in the order it was sent, without a greenlet each
        async_handlers=False,
    )
    # a new id per process start: a restarted process never takes over another's sockets
    server_id = uuid.uuid4().hex
    _, heartbeat_ttl = heartbeat_schedule(config["PRESENCE_TIMEOUT"])
    presence = create_presence(config, redis_client, server_id, heartbeat_ttl, health)
    connections = Connections({
        "message": (config["MESSAGE_RATE"], config["MESSAGE_BURST"]),
        "typing": (config["TYPING_RATE"], config["TYPING_BURST"]),
    })
    metrics.watch(connections, health)
    hub = Hub(socketio.server, presence, connections, config,
              create_identifier(config, redis_client), health)
    register(socketio.server, hub)
    admin.init_app(app, socketio.server, config)
    # outside Flask-SocketIO's middleware: sees every socket. A client has as long to answer
    # the server's close frame as it has to answer a ping.
    app.wsgi_app = tuned_websockets(app.wsgi_app, close_grace=config["PING_TIMEOUT"])
    if redis_client is not None:
        hub.keeper = PresenceKeeper(hub, presence, config["PRESENCE_TIMEOUT"]).start()
    app.extensions["homeapp"] = hub

    from homeapp import ops, web
    app.register_blueprint(web.bp)
    ops.init_app(app)
    return app
