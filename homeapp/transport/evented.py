"""Engine.IO sockets on the frame path (homeapp/transport/frames.py): no reader greenlet.

Engine.IO's websocket handler reads in a loop on the connection's greenlet for its whole life
and starts a writer greenlet beside it. Given a frames.Connection instead (worker.Handler makes
one for each websocket, plain or TLS), the handler returns at once and the connection calls
this module back:

- each message is queued on the socket's Feed, and a worker greenlet, of at most
  HOMEAPP_HANDLER_POOL, handles the feed's packets one at a time, in order, as the reader
  did (the guarantee async_handlers=False gives): a handler waiting on Redis holds one
  worker, not the process. With every worker busy, a feed waits for the next one free; one
  with MAX_QUEUED packets waiting is not read from until they are handled. Workers stay
  (up to KEEP_IDLE of them idle) and are woken with a feed: a greenlet spawned for each
  wake-up cost about 35 µs a message at low rates in the prototype (bench/evented.md).
- a handler that is about to wait long for something of its own (a recovering CONNECT waiting
  for its turn to restore, homeapp/engine/handshake.py) steps out of the pool meanwhile
  (set_aside): a reconnect storm's thousand waiting CONNECTs held every worker of the pool,
  and the live sockets' events queued behind them for seconds (bench/recovery.md). Its own
  socket's packets still wait for it, in order;
- an upgrade from long-polling goes through Engine.IO's probe (2probe, 3probe, the poll's
  NOOP, 5) packet by packet in the same greenlets;
- the end of the connection closes the socket behind the packets already waiting.

Sending is straight to the connection, which never blocks, so Engine.IO's queue and writer are
not used; closing an evented socket writes the close frame and never waits for a queue that no
writer empties. Both are Engine.IO seams: homeapp/seams/engineio.py, which hands each socket's
websocket to _websocket_handler here once configure() has run.
"""
import logging
from collections import deque
from contextlib import contextmanager

from engineio import exceptions, packet
import gevent
from gevent.hub import Waiter

from homeapp.seams import engineio as engineio_seam
from homeapp.transport import frames, websocket

log = logging.getLogger("homeapp.transport")

MAX_QUEUED = 64  # packets waiting on one socket before its connection is not read from
_END = object()  # queued when the connection ends
_PROBE, _UPGRADE, _FAILED = "probe", "upgrade", "failed"  # Feed.stage during an upgrade

KEEP_IDLE = 32  # idle workers kept; one more idle than that ends

_handler_pool = 1000  # workers at most (HOMEAPP_HANDLER_POOL)
_workers = 0  # now
_idle = []  # the Waiters of idle workers
_waiting = deque()  # feeds with packets and no worker free for them
_pool = set()  # the greenlets of the workers counted in _workers (not those set aside)


def configure(config):
    """Size the handler pool, and take every Engine.IO socket's websocket over. Called by
    create_app, after homeapp.seams.install()."""
    global _handler_pool
    _handler_pool = config["HANDLER_POOL"]
    engineio_seam.hand_websockets_to(_websocket_handler)


def _websocket_handler(sock, ws):
    """`ws` is Engine.IO's gevent driver, around the frames.Connection that worker.Handler
    put in the environ as `wsgi.websocket`."""
    conn = engineio_seam.driver_connection(ws)
    if conn.__class__ is not frames.Connection:  # served by another handler than worker.Handler
        log.error("%s: a websocket that homeapp's connection handler did not take over is closed: "
                  "run gunicorn with -c gunicorn.conf.py (or python app.py)", sock.sid)
        ws.close()
        return []
    feed = Feed(sock, conn)
    if "wait" in vars(ws):
        # the Admin UI counts packets in the driver's wait and send (python-socketio's
        # instrument()): they go through them, the driver reading from the feed
        feed.counted = ws
        engineio_seam.read_through(ws, feed)
    if sock.connected:  # on long-polling: an upgrade
        sock.upgrading = True  # sends wait in the queue meanwhile
        feed.stage = _PROBE
    else:
        sock.connected = sock.upgraded = True
        _adopt(feed)
    conn.start(feed)
    return []


def _adopt(feed):
    """From now on the socket's packets go straight to the connection: first those queued before."""
    sock, conn = feed.sock, feed.conn
    target = feed.counted or conn
    queue = sock.queue
    while not queue.empty():
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:  # closed meanwhile
            queue.put(None)
            conn.close_gracefully()
            return
        sock.queued_bytes -= engineio_seam.size(pkt)
        target.send(pkt.encode())
    sock.frames = conn
    sock.direct_websocket = target


class Feed:
    """One evented socket's packets on their way to Engine.IO, in order."""

    __slots__ = ("sock", "conn", "queue", "busy", "stage", "counted", "current")

    def __init__(self, sock, conn):
        self.sock = sock
        self.conn = conn
        self.queue = None  # a deque while packets wait (600 bytes: an idle socket keeps none)
        self.busy = False  # a pool greenlet has this feed, or will
        self.stage = None  # of an upgrade from polling; None: on the websocket
        self.counted = None  # Engine.IO's driver, when the Admin UI counts packets in it
        self.current = None  # the message it is counting

    # the connection's callbacks, in the event loop: they must not block

    def received(self, message):
        if self.counted is not None:
            self.current = message
            message = self.counted.wait()  # counted, then handed back by receive()
            self.current = None
        self._put(message)

    # the driver's websocket, when the Admin UI counts packets in the driver

    def receive(self):
        return self.current

    def send(self, message):
        self.conn.send(message)

    def ended(self):
        self._put(_END)

    def _put(self, item):
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        queue.append(item)
        if len(queue) >= MAX_QUEUED:
            self.conn.pause()  # the worker resumes it
        if not self.busy:
            self.busy = True
            _schedule(self)

    # in a worker

    def handle(self, item):
        sock = self.sock
        if self.stage is not None:
            self._upgrade_step(item)
        elif item is _END:
            self.conn.listener = None  # no cycle left for the collector
            self._end()
        elif not sock.closed:
            self._receive(item)

    def _receive(self, message):
        """What Engine.IO's handler does with each message: decode and receive it. What it
        cannot decode is dropped: Engine.IO decodes outside its error handling, and one empty
        frame ended the connection with a traceback."""
        sock = self.sock
        if message.__class__ is str and message[:2] not in websocket._PLAIN_STARTS:
            error = websocket._decode_error(message)
            if error is not None:
                log.info("dropped a malformed Engine.IO packet from %s: %s: %s",
                         sock.sid, type(error).__name__, error)
                return
        try:
            engineio_seam.receive_message(sock, message)
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            log.info("%s: receive error: the socket is closed", sock.sid)
            self._end()
        except Exception:  # as Engine.IO: logged, and the connection ended
            log.exception("%s: unknown receive error", sock.sid)
            self._end()

    def _end(self):
        """What Engine.IO does when its reader stops: close the socket (and with it the
        connection, gracefully) and forget it."""
        sock = self.sock
        sock.close(wait=False, abort=True, reason=sock.server.reason.TRANSPORT_CLOSE)
        sock.server.sockets.pop(sock.sid, None)

    def _upgrade_step(self, item):
        """The first half of Engine.IO's handler, for a socket upgrading from polling."""
        sock = self.sock
        if self.stage == _FAILED:
            return
        expected = packet.PING if self.stage == _PROBE else packet.UPGRADE
        if item is _END or not _is(item, expected, "probe" if expected == packet.PING else None):
            log.info("%s: failed websocket upgrade at the %s: received %.40r", sock.sid, self.stage,
                     "the end" if item is _END else item)
            if self.stage == _UPGRADE:
                sock.upgraded = False
            sock.upgrading = False
            self.stage = _FAILED
            self.conn.close(b"")  # the socket stays on long-polling
        elif self.stage == _PROBE:
            (self.counted or self.conn).send(packet.Packet(packet.PONG, data="probe").encode())
            sock.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            self.stage = _UPGRADE
        else:
            sock.upgraded = True
            sock.upgrading = False
            self.stage = None
            _adopt(self)


def _is(message, packet_type, data):
    if message.__class__ is not str or websocket._decode_error(message) is not None:
        return False
    pkt = packet.Packet(encoded_packet=message)
    return pkt.packet_type == packet_type and (data is None or pkt.data == data)


def _schedule(feed):
    """Give a feed with packets to an idle worker, a new one, or the queue of waiting feeds.
    Never blocks: it runs in the event loop too."""
    global _workers
    if _idle:
        gevent.get_hub().loop.run_callback(_idle.pop().switch, feed)
    elif _workers < _handler_pool:
        _workers += 1
        gevent.spawn(_work, feed)
    else:
        _waiting.append(feed)


@contextmanager
def set_aside():
    """While in this block the current worker does not count against HOMEAPP_HANDLER_POOL, and
    a feed waiting for a worker gets one at once: for a handler about to wait long for its own
    reasons, which the other sockets' events must not wait behind. Its own socket's later
    packets still wait for it. Outside a worker (a long-polling request's greenlet), nothing."""
    global _workers
    me = gevent.getcurrent()
    if me not in _pool:
        yield
        return
    _pool.discard(me)
    _workers -= 1
    if _waiting and _workers < _handler_pool:  # then no worker is idle: a new one takes it
        _schedule(_waiting.popleft())
    try:
        yield
    finally:
        # counted again; the pool is over its bound until a worker ends (_work)
        _workers += 1
        _pool.add(me)


def _work(feed):
    """A worker: one feed's packets in order, then the next feed's; idle, it waits to be
    given one, or ends when KEEP_IDLE others are idle already, or when the pool is over its
    bound (a worker set aside came back)."""
    global _workers
    me = gevent.getcurrent()
    _pool.add(me)
    try:
        while True:
            queue = feed.queue
            while queue:
                item = queue.popleft()
                try:
                    feed.handle(item)
                except Exception:  # logged: the feed's other packets and the worker go on
                    log.exception("%s: error handling a packet", feed.sock.sid)
            feed.queue = None
            feed.busy = False
            feed.conn.resume()
            if _workers > _handler_pool:
                return
            if _waiting:
                feed = _waiting.popleft()
                continue
            if len(_idle) >= KEEP_IDLE:
                return
            waiter = Waiter()
            _idle.append(waiter)
            feed = waiter.get()
    finally:
        _pool.discard(me)
        _workers -= 1
