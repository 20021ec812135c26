"""The versions of each library whose insides homeapp/seams/ uses that the tests cover.

A release outside a range may have moved what a seam relies on, silently: a renamed private
attribute would switch a tuned path off, a changed contract would break it. So start-up refuses
it, naming the library, its version and the tests to run against it (docs/upgrading.md;
`python -m tools.upgrade_check` runs them on the newest releases).

Imports only the standard library and packaging: gunicorn.conf.py loads this file on its own in
gunicorn's master, which must not import the homeapp package.
"""
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# distribution: (versions the tests cover, what relies on its insides, the tests that guard it)
COVERED = {
    "python-engineio": (
        ">=4.15.1,<4.16",
        "Socket.schedule_ping, send, poll, close and _websocket_handler, what Socket.receive does "
        "with a text MESSAGE (receive_message), the gevent driver's _sock, "
        "Payload.max_decode_packets, and Server.sockets with Socket.closing and closed, read to "
        "answer 400 for a closing session (homeapp/seams/engineio.py)",
        "tests/test_transport.py tests/test_evented.py tests/test_live_transport.py "
        "tests/test_live_hostile_transport.py tests/test_live_idle.py tests/test_create_app.py "
        "tests/test_live_polling.py tests/test_event_reading.py"),
    "python-socketio": (
        ">=5.18.1,<5.19",
        "Server._handle_eio_message, what _handle_event_internal does with an EVENT on \"/\" "
        "(handle_message) and Packet.uses_binary_events; Server._handle_connect, "
        "_send_packet and _trigger_event for the recovering CONNECT (homeapp/engine/handshake.py "
        "registers it), with the manager's pending_connect and basic_enter_room; the managers' "
        "base classes: RedisManager's _publish and _listen (documented), initialize, set_server, "
        "_handle_emit, the room bookkeeping and Manager.emit, for the message queue "
        "(homeapp/engine/message_queue.py) and the in-memory histories "
        "(homeapp/engine/memory.py), all in homeapp/seams/socketio.py; instrument() and "
        "_trigger_event, "
        "the admin namespace's connect handler and serialize_socket (homeapp/seams/socketio.py, "
        "homeapp/operations/admin.py)",
        "tests/test_live_hostile.py tests/test_live_limits.py tests/test_message_queue.py "
        "tests/test_live_recovery.py tests/test_recovery.py tests/test_live_recovery_deploy.py "
        "tests/test_live_queue_outage.py tests/test_live_channels.py tests/test_live_admin.py "
        "tests/test_create_app.py tests/test_event_refusals.py tests/test_live_admin_limits.py "
        "tests/test_event_reading.py"),
    "Flask-SocketIO": (
        ">=5.7.0,<5.8",
        "init_app's options kept between apps, its server used without its decorators "
        "(homeapp/seams/flask_socketio.py)",
        "tests/test_create_app.py tests/test_event_refusals.py"),
    "gevent": (
        ">=26.9.0,<26.10",
        "pywsgi's WSGIHandler.handle_one_request, read_request, read_requestline, get_environ and "
        "run_application, its rfile argument, Input, the server's do_read, stop_accepting and "
        "start_accepting (homeapp/seams/gevent.py); socket.detach, the read "
        "buffer's read1 at timeout 0, SSLSocket at timeout 0 (homeapp/seams/geventwebsocket.py); "
        "loop.io and loop.timer watchers (homeapp/transport/frames.py)",
        "tests/test_worker.py tests/test_evented.py tests/test_live_hostile_transport.py "
        "tests/test_live_gunicorn.py tests/test_live_tls.py tests/test_rfc6455.py "
        "tests/test_live_shutdown.py tests/test_live_body_timeout.py tests/test_live_accept.py"),
    "gevent-websocket": (
        "==0.10.1",
        "the handler's upgrade, then its run_websocket replaced by the hand-over "
        "(homeapp/seams/geventwebsocket.py); its gunicorn worker (homeapp/seams/gunicorn.py)",
        "tests/test_evented.py tests/test_live_transport.py tests/test_live_gunicorn.py "
        "tests/test_live_tls.py"),
    "gunicorn": (
        ">=27.0.1,<27.1",
        "the gevent worker's wsgi_handler, server_class and alive, set from the worker hooks "
        "(homeapp/seams/gunicorn.py, gunicorn.conf.py)",
        "tests/test_live_gunicorn.py tests/test_live_shutdown.py tests/test_live_accept.py "
        "tests/test_live_body_timeout.py"),
    "marshmallow": (
        ">=4.4.0,<4.5",
        "Schema._do_load and _deserialize, the field loop, Field._validate, and Nested's, "
        "List's and Integer's _deserialize (homeapp/seams/marshmallow.py)",
        "tests/test_schemas.py"),
    "redis": (
        ">=8.1.0,<8.2",
        "RedisCluster's __init__ run at the first use, its close, execute_command and pipeline "
        "overridden (homeapp/seams/redis.py); otherwise public API: PubSub with ssubscribe, "
        "streams, Lua scripts, the connection pool's timeouts, the cluster client's nodes_manager "
        "(homeapp/engine, homeapp/store, homeapp/presence)",
        "tests/test_message_queue.py tests/test_live_scaleout.py tests/test_presence_store.py "
        "tests/test_live_queue_outage.py tests/test_redis_url.py tests/test_live_cluster.py "
        "tests/test_live_cluster_appends.py"),
    "prometheus-client": (
        ">=0.26.0,<0.27",
        "public API only: a collector registered with REGISTRY.register and its collect(), "
        "disable_created_metrics() (homeapp/telemetry/metrics.py)",
        "tests/test_metrics.py tests/test_live_ops.py"),
}


def installed_version(distribution):
    """The installed version of a distribution. Raises importlib.metadata.PackageNotFoundError."""
    return metadata.version(distribution)


def refusals(distributions=None):
    """A message for each library (of `distributions`, default all) installed outside the versions
    its tests cover; empty when all are covered."""
    found = []
    for distribution in distributions or COVERED:
        covered, relies_on, tests = COVERED[distribution]
        version = installed_version(distribution)
        if Version(version) not in SpecifierSet(covered):
            found.append(
                f"{distribution} {version} is installed, but this server's library seams are tested "
                f"with {distribution}{covered} only: it relies on {relies_on}. Run "
                f"`python -m pytest {tests}` against {version} (or `python -m tools.upgrade_check`, "
                f"docs/upgrading.md), then widen the range in homeapp/seams/versions.py.")
    return found
