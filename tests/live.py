"""A real Socket.IO client that records every event it receives, for asserting who got what."""
import itertools
import threading
import time
from contextlib import contextmanager

import socketio
import websocket

PRESENCE = "newOnlineUser"
_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def new_user_id():
    """A user id no other test uses, growing, so that later ids sort after earlier ones."""
    return str(next(_ids))


def raw_socket(server, user_id, **options):
    """A bare websocket past the Engine.IO and Socket.IO handshakes, for frames that a
    Socket.IO client would never write. The caller closes it."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&userID={user_id}",
        timeout=5, **options)
    assert ws.recv().startswith("0")
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def room_of(*peers):
    """The canonical room id of the peers' users."""
    return ":".join(sorted((p.user_id for p in peers), key=int))


class Recorder:
    """What one socket of one user received, in order, for asserting who got what."""

    # True when every event has arrived by the time the call that caused it returns
    synchronous = False

    def __init__(self, user_id=None, username=None):
        self.user_id = user_id
        self.username = username
        self.events = []
        self._changed = threading.Condition()

    def _record(self, event, *args):
        with self._changed:
            self.events.append((event, args[0] if len(args) == 1 else args))
            self._changed.notify_all()

    def got(self, *names):
        """Payloads received, in order: of the named events, or of every event but presence."""
        with self._changed:
            if names:
                return [(e, p) for e, p in self.events if e in names]
            return [(e, p) for e, p in self.events if e != PRESENCE]

    def presence_of(self, *user_ids):
        """The newOnlineUser payloads received about the given users."""
        return [p for e, p in self.got(PRESENCE) if p["userID"] in user_ids]

    def wait_for(self, event, predicate=lambda p: True, timeout=5):
        """Block until an event matching predicate has arrived; return its payload."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for e, p in self.events:
                    if e == event and predicate(p):
                        return p
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{event} never reached user {self.user_id}; got {self.events}")
                self._changed.wait(remaining)

    def clear(self):
        with self._changed:
            self.events.clear()


class Peer(Recorder):
    """One socket of one user, connected with the websocket transport unless `transports` says
    otherwise, on the main namespace unless `namespace` names another."""

    def __init__(self, url, user_id=None, username=None, query=True, transports=("websocket",),
                 namespace="/", **connect_kwargs):
        super().__init__(user_id, username)
        self.namespace = namespace
        self.ended = threading.Event()  # set when the server (or close()) ends the connection
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record, namespace=namespace)
        self.client.on("disconnect", lambda reason=None: self.ended.set(), namespace=namespace)
        target = url + (f"/?userID={user_id}" if query and user_id else "")
        self.client.connect(target, transports=list(transports), namespaces=[namespace], wait_timeout=5,
                            **connect_kwargs)

    def call(self, event, data=None, timeout=5):
        """Emit with an acknowledgement and return the ack."""
        return self.client.call(event, data, namespace=self.namespace, timeout=timeout)

    def emit(self, event, data=None):
        self.client.emit(event, data, namespace=self.namespace)

    def close(self):
        if self.client.connected:
            self.client.disconnect()


def peers_on(server):
    """connect(user_id=None, live=True, join=True, url=None, **kw) -> a Peer on `server`
    (or on `url`); see sockets_of."""
    def open_peer(user_id, username, url=None, **kwargs):
        return Peer(url or server.url, user_id, username, **kwargs)
    return sockets_of(open_peer)


@contextmanager
def sockets_of(open_socket):
    """connect(user_id=None, live=True, join=True, **kw) -> open_socket(user_id, username, **kw),
    a new user's socket unless user_id names one; every socket made is closed when the block ends.

    `live` sends addOnlineUser, `join` sends joinRoom for the user's own channel:
    what the existing client does on every connect.
    """
    peers = []

    def connect(user_id=None, username=None, live=True, join=True, **kwargs):
        user_id = user_id or new_user_id()
        username = username or f"user{user_id}"
        peer = open_socket(user_id, username, **kwargs)
        peers.append(peer)
        if live:
            assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": username}) == {"ok": True}
        if join:
            assert peer.call("joinRoom", user_id) == {"ok": True}
        return peer

    try:
        yield connect
    finally:
        for peer in peers:
            peer.close()


def settle(*peers, quiet=0.3, limit=5.0):
    """Wait until none of the peers has received anything for `quiet` seconds.

    What a test asserts was not delivered has had that long to arrive. Synchronous peers
    (tests/inprocess.py) have it all already: there is nothing to wait for.
    """
    if all(peer.synchronous for peer in peers):
        return
    deadline = time.monotonic() + limit
    counts = [len(p.events) for p in peers]
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = [len(p.events) for p in peers]
        if now != counts:
            counts, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return
    raise AssertionError("events kept arriving")


def assert_refused(sender, event, payload, code, bystanders=(), quiet=0.2):
    """The event is answered with `code`, as ack and as one `error` event, and nothing else happens."""
    ack = sender.call(event, payload)
    assert ack["ok"] is False and ack["code"] == code and ack["event"] == event, ack
    settle(sender, *bystanders, quiet=quiet)
    assert sender.got() == [("error", ack)]
    for peer in bystanders:
        assert peer.got() == [], f"user {peer.user_id} received {peer.got()}"
    return ack


def open_room(room_id, *peers):
    """Open the chat view of room_id in each peer, then forget what they received so far."""
    for peer in peers:
        assert peer.call("chatRoom.join", room_id) == {"ok": True}
    for peer in peers:
        peer.clear()


def refusal(url, **connect_kwargs):
    """Connect expecting a refusal; return the reason the server sent with connect_error.

    Fails when the connection is accepted.
    """
    client = socketio.Client(reconnection=False)
    reasons = []
    for namespace in connect_kwargs.get("namespaces") or ["/"]:
        client.on("connect_error", lambda data=None: reasons.append(data), namespace=namespace)
    try:
        client.connect(url, transports=["websocket"], wait_timeout=5, **connect_kwargs)
    except socketio.exceptions.ConnectionError:
        assert reasons, "refused without a connect_error reason"
        return reasons[0]["message"] if isinstance(reasons[0], dict) else reasons[0]
    client.disconnect()
    raise AssertionError("the connection was accepted")
