"""The app in this process, driven through Flask-SocketIO's test client: an event's rules in
milliseconds, with no server process, socket or wait. The live tests keep the wire.

A LocalClient has tests/live.py's Peer interface, so that room_of, open_room, settle and
assert_refused work on it unchanged; and it is synchronous: the server has sent everything an
event causes, to every client, by the time that event's call returns.
"""
from homeapp import create_app
from homeapp.extensions import socketio
from tests.live import Recorder

# memory presence, identities from the query, no rate limits: what a test does not set itself
SETTINGS = {"REDIS_URL": None, "AUTH_MODE": "open",
            "MESSAGE_RATE": 0.0, "TYPING_RATE": 0.0, "ADMIN_USERNAME": None, "ADMIN_PASSWORD": None,
            "LOG_LEVEL": "WARNING"}


def local_app(**settings):
    """create_app() in this process with SETTINGS, then `settings` (config keys, not variables).

    Raises ConfigError when the environment holds a malformed setting.
    """
    return create_app(dict(SETTINGS, **settings))


class RecordingConnection:
    """A frames.Connection as a sender sees it: what it is sent is recorded, nothing written."""

    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(data)


class _Inbox(list):
    """The test client's queue of received packets, recorded as they arrive."""

    def __init__(self, client, namespace):
        super().__init__()
        self.client, self.namespace = client, namespace

    def append(self, packet):
        if packet["namespace"] == self.namespace:
            self.client._record(packet["name"], *packet["args"])


class LocalClient(Recorder):
    """One socket of one user on an app in this process (tests/live.py's Peer, in process)."""

    synchronous = True

    def __init__(self, app, user_id=None, username=None, query=True, namespace="/", auth=None):
        super().__init__(user_id, username)
        self.namespace = namespace
        self.client = socketio.test_client(app, namespace=namespace, auth=auth,
                                           query_string=f"userID={user_id}" if query and user_id else None)
        self.client.queue = _Inbox(self, namespace)

    @property
    def connected(self):
        return self.client.is_connected(self.namespace)

    def call(self, event, data=None, timeout=None):
        """Emit with an acknowledgement and return the ack (None if the server sent none)."""
        args = () if data is None else (data,)  # what Peer's client sends for None
        return self.client.emit(event, *args, namespace=self.namespace, callback=True)

    def emit(self, event, data=None):
        args = () if data is None else (data,)
        self.client.emit(event, *args, namespace=self.namespace)

    def close(self):
        if self.connected:
            self.client.disconnect(self.namespace)
