"""Where this project relies on a library's insides, the versions its tests cover, and the one
place every replacement of a library's code is installed from (create_app, never an import).

A release outside a range may have moved what an override relies on, silently: a renamed
private attribute would switch a tuned path off, a changed contract would break it. So start-up
refuses it, naming the library, its version and the tests to run against it; docs/upgrading.md
says what each override is for, and `python -m tools.upgrade_check` runs those tests on the
newest releases.
"""
import logging
from importlib import metadata

from engineio import payload
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from homeapp.config import ConfigError
from homeapp.recovery import handshake
from homeapp.transport import evented, packets, websocket


log = logging.getLogger("homeapp.transport")


class UnsupportedLibrary(ConfigError):
    """An installed library is outside the versions the overrides are tested with."""


# distribution: (versions the tests cover, what relies on its insides, the tests that guard it)
COVERED = {
    "python-engineio": (
        ">=4.15.1,<4.16",
        "Socket.schedule_ping, send and poll (homeapp/transport/websocket.py); "
        "_websocket_handler's upgrade and read loop, done per packet, the gevent driver's _sock, "
        "Socket.close and the queue (homeapp/transport/evented.py); Payload.max_decode_packets "
        "(here), and Server.sockets with Socket.closing and closed, read to answer 400 for a "
        "closing session (homeapp/transport/websocket.py)",
        "tests/test_transport.py tests/test_evented.py tests/test_live_transport.py "
        "tests/test_live_hostile_transport.py tests/test_live_polling.py"),
    "python-socketio": (
        ">=5.18.1,<5.19",
        "Server._handle_eio_message (homeapp/transport/packets.py); Server._handle_connect, "
        "_send_packet, the manager's pending_connect and basic_enter_room "
        "(homeapp/recovery/handshake.py); RedisManager's publisher, "
        "listener and room bookkeeping (homeapp/cluster/message_queue.py); instrument() and "
        "_trigger_event, the admin namespace's connect handler and serialize_socket "
        "(homeapp/operations/admin.py); instrument()'s wrapping of the websocket "
        "driver's wait and send (homeapp/transport/evented.py)",
        "tests/test_live_hostile.py tests/test_live_limits.py tests/test_message_queue.py "
        "tests/test_live_recovery.py tests/test_recovery.py tests/test_live_recovery_deploy.py "
        "tests/test_live_queue_outage.py "
        "tests/test_live_channels.py tests/test_live_admin.py tests/test_create_app.py "
        "tests/test_live_admin_limits.py"),
    "gevent-websocket": (
        "==0.10.1",
        "the handler's upgrade, then its run_websocket replaced by the hand-over to "
        "homeapp/transport/frames.py (homeapp/transport/worker.py); its gunicorn worker",
        "tests/test_evented.py tests/test_live_transport.py tests/test_live_gunicorn.py "
        "tests/test_live_tls.py"),
    "gevent": (
        ">=26.9.0,<26.10",
        "pywsgi's WSGIHandler.handle_one_request, get_environ and run_application, Input, the "
        "server's do_read, stop_accepting and start_accepting, socket.detach and its "
        "read buffer's read1 at timeout 0, SSLSocket read and written at timeout 0, loop.io "
        "watchers (homeapp/transport/worker.py, homeapp/transport/frames.py)",
        "tests/test_worker.py tests/test_live_hostile_transport.py tests/test_live_gunicorn.py "
        "tests/test_live_tls.py tests/test_rfc6455.py tests/test_live_body_timeout.py "
        "tests/test_live_accept.py"),
    "marshmallow": (
        ">=4.4.0,<4.5",
        "Schema._deserialize, the field loop (homeapp/schemas/common.py)",
        "tests/test_schemas.py"),
}


def installed_version(distribution):
    """The installed version of a distribution. Raises importlib.metadata.PackageNotFoundError."""
    return metadata.version(distribution)


def check_versions(allow_untested=False):
    """Raises UnsupportedLibrary for the first library outside the versions its tests cover;
    with allow_untested (tools.upgrade_check's runs), logs each one as a warning instead."""
    for distribution, (covered, relies_on, tests) in COVERED.items():
        version = installed_version(distribution)
        if Version(version) not in SpecifierSet(covered):
            refusal = UnsupportedLibrary(
                f"{distribution} {version} is installed, but this server's overrides are tested "
                f"with {distribution}{covered} only: it relies on {relies_on}. Run "
                f"`python -m pytest {tests}` against {version} (or `python -m tools.upgrade_check`, "
                f"docs/upgrading.md), then widen the range in homeapp/transport/overrides.py.")
            if not allow_untested:
                raise refusal
            log.warning("HOMEAPP_ALLOW_UNTESTED_LIBRARIES: starting anyway: %s", refusal)


def install(config, server, hub=None):
    """Check the libraries' versions, then install every override: Engine.IO's packets per
    long-polling POST, the frame path's, with the limits in `config`, the packet guard on Socket.IO `server`, and, with recovery on in `hub`,
    the recovering namespace CONNECT.

    Raises UnsupportedLibrary.
    """
    check_versions(config["ALLOW_UNTESTED_LIBRARIES"])
    # Engine.IO refuses a long-polling POST of more than 16 packets (a traceback behind a 200,
    # every packet lost), and socket.io-client batches whatever queued while a POST was in
    # flight. A packet takes at least a byte and its separator, so the body's own limit
    # (max_http_buffer_size, MAX_PACKET_BYTES) bounds the count.
    payload.Payload.max_decode_packets = config["MAX_PACKET_BYTES"]
    websocket.install(config)
    evented.install(config)
    packets.guard(server)
    if hub is not None and hub.recovery is not None:
        handshake.install(server, hub)
