"""Graceful shutdown: refuse new sockets and close the open ones, so their users go offline at once.

`shutdown(hub, grace)` is the one routine. `python app.py` runs it from `serve()` on
SIGTERM or SIGINT; under gunicorn, gunicorn.conf.py runs it when a worker is told to stop.

Each socket is closed at the Engine.IO level: the server sends a close packet and runs
the normal disconnect, which removes the socket from presence and announces
`newOnlineUser` Remove when it was its user's last one. A Socket.IO client sees a
transport close and reconnects, to another process behind the load balancer.

Engine.IO sessions that hold no Socket.IO socket (a probe's polling handshake that never sent
CONNECT) are closed first and not waited for: their client will not poll for the close packet.

With Redis, the presence keeper is stopped first, so that it does not re-assert sockets
while they close, and `keeper.retire` runs last: it removes this process's heartbeat and
registration, and whatever sockets a failed disconnect left behind. With recovery on as well, the
closed sockets' users stay online for HOMEAPP_PRESENCE_GRACE before that (within the shutdown's
grace): their clients recover on another process meanwhile, and nobody is announced offline who
came back.

Last, the HTTP connections that only wait for their next request are closed. A browser keeps
the connections it loaded the page and polled over open for minutes; gevent's server (and
gunicorn's gevent worker) waits for every connection to end before the process exits, so
without this a shutdown that closed every socket at once still waited out its whole grace.
"""
import logging
import signal
import socket
import time

import gevent
from gevent.event import Event
from gevent.pool import Pool

from homeapp.presence import keeper
from homeapp.seams.gevent import Server, draining
from homeapp.transport.worker import handler_class

log = logging.getLogger("homeapp.operations.shutdown")

# sockets closed at once: each close may wait on Redis, and an outage must not serialise them
CONCURRENCY = 100


class HttpConnections:
    """The HTTP connections of one server, so that a shutdown can end those between requests."""

    def __init__(self):
        self.waiting = set()  # handlers blocked reading a request line
        self.ending = False

    def handler(self, base):
        """A subclass of the handler class `base` (homeapp/seams/gevent.py's) that reports to
        these connections."""
        return draining(base, self)

    def end(self):
        """Close the connections waiting for a request; the others close after the one they serve.

        Only the read side is shut: a request already received is still read and answered.
        Never raises.
        """
        self.ending = True
        for handler in list(self.waiting):
            sock = getattr(handler, "socket", None)
            try:
                # on the descriptor: an SSL socket's own shutdown() would also drop its TLS state
                raw = socket.socket(fileno=sock.fileno())
            except (AttributeError, OSError):  # the connection is already closed
                continue
            try:
                raw.shutdown(socket.SHUT_RD)
            except OSError:  # the client closed it meanwhile
                pass
            finally:
                raw.detach()  # the handler still owns the descriptor


def shutdown(hub, grace, http=None):
    """Refuse new sockets, then close every open one, giving up after `grace` seconds; then end
    the idle connections of `http` (HttpConnections), if given.

    Returns how many sockets were still open when it stopped (0: all closed cleanly).
    Calling it again closes whatever opened since; it never raises.
    """
    started = time.monotonic()
    hub.draining = True
    sids = hub.connections.sids()
    bare = _bare_sessions(hub.server)
    log.info("shutting down: closing %d sockets within %.1f s, and %d Engine.IO sessions without a socket",
             len(sids), grace, len(bare))
    pool = Pool(CONCURRENCY)
    # past the grace, what is left is for the other processes to reap (docs/scale-out.md)
    with gevent.Timeout(grace, False):
        for eio_sid in bare:
            _drop(hub.server.eio, eio_sid)
        if hub.keeper is not None:
            hub.keeper.stop()
        if hub.recovery is not None:  # their sessions must be there before their clients are
            hub.recovery.keep_all()
        for sid in sids:
            pool.spawn(_close, hub, sid)
        pool.join()
        # what is still open is no user's (the Admin UI's): it would hold the process to the grace
        for eio_sid in list(hub.server.eio.sockets):
            pool.spawn(hub.server.eio.disconnect, eio_sid)
        pool.join()
        _let_sockets_move(hub, grace - (time.monotonic() - started))
        keeper.retire(hub)
    pool.kill(block=True, timeout=1)
    # the presence changes just emitted still have to reach the other processes
    flush = getattr(hub.server.manager, "flush", None)
    if flush is not None:
        flush(max(0.5, grace - (time.monotonic() - started)))
    left = len(hub.connections)
    if http is not None:
        http.end()
    level = logging.WARNING if left else logging.INFO
    log.log(level, "shutdown: %d sockets closed, %d left open, in %.2f s",
            len(sids) - left, left, time.monotonic() - started)
    return left


def _let_sockets_move(hub, left):
    """With recovery on, the closed sockets' users stay online for the presence grace: their
    clients recover on another process meanwhile, and neither process announces anything (a
    deploy's storm was mostly each user's Remove and Add, which every recovering socket then
    had to be sent). Whoever has not come back by then is taken offline, by the grace itself or
    by keeper.retire after it. `left`: seconds of the shutdown's grace still to spend."""
    recovery = hub.recovery
    if recovery is None or not recovery.in_grace:
        return
    hub.server.sleep(max(0.0, min(recovery.grace, left - 1.0)))


def _bare_sessions(server):
    """Engine.IO sids that hold no Socket.IO socket in any namespace: a load balancer's or a
    monitor's polling handshake that never sent CONNECT, and never polls again."""
    namespaces = list(server.manager.get_namespaces())
    return [eio_sid for eio_sid in list(server.eio.sockets)
            if not any(server.manager.sid_from_eio_sid(eio_sid, ns) for ns in namespaces)]


def _drop(eio, eio_sid):
    """Close a session without waiting for its close packet to be collected.

    engineio's disconnect() waits until the client has read the close packet; a long-polling
    client that never polls again would hold the shutdown for its whole grace.
    """
    socket = eio.sockets.pop(eio_sid, None)
    if socket is None:
        return
    try:
        socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
    except Exception:
        log.exception("could not close Engine.IO session %s", eio_sid)


def _close(hub, sid):
    """Close one socket: close packet to the client, then the normal disconnect."""
    try:
        eio_sid = hub.server.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:  # None: it is disconnecting on its own
            hub.server.eio.disconnect(eio_sid)
    except Exception:
        log.exception("could not close socket %s", sid)


def serve(app, host, port, signals=(signal.SIGTERM, signal.SIGINT)):
    """Serve app (HTTP and websockets) on host:port until one of `signals`, then shut down and return.

    The first signal stops accepting connections, runs shutdown() within the app's
    HOMEAPP_SHUTDOWN_GRACE, and gives the handlers what is left of it to finish
    writing; later signals change nothing. Raises OSError when the port is taken.
    """
    hub = app.extensions["homeapp"]
    grace = app.config["SHUTDOWN_GRACE"]
    http = HttpConnections()
    # what Flask-SocketIO's run() builds for gevent, plus a pool so that stop() can wait for
    # handlers, and tracebacks in the log's format
    tls = {}
    if app.config.get("TLS_CERT"):  # gevent wraps each accepted socket; the frame path reads it
        tls = {"certfile": app.config["TLS_CERT"], "keyfile": app.config["TLS_KEY"]}
    server = Server((host, port), app, handler_class=http.handler(handler_class(app.config)),
                    log=None, spawn=Pool(), error_log=logging.getLogger("homeapp.wsgi"), **tls)
    stopping = []
    stopped = Event()

    def stop():
        deadline = time.monotonic() + grace
        server.close()  # no new connections
        shutdown(hub, grace, http)
        server.stop(timeout=max(0.1, deadline - time.monotonic()))
        stopped.set()

    def on_signal():
        if not stopping:
            stopping.append(gevent.spawn(stop))

    for signum in signals:
        gevent.signal_handler(signum, on_signal)
    server.start()
    stopped.wait()
