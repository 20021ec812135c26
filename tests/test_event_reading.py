"""The short way an event's text takes to its handler (homeapp/seams/socketio.py's handle_message,
homeapp/seams/engineio.py's receive_message) against python-socketio's and Engine.IO's own: for each
packet a client can send, the same handler calls, the same frames to every socket, the same
refusal, and the short way taken exactly where it says it is."""
import json

import engineio.socket
import pytest
from engineio import packet

from homeapp import errors
from homeapp.seams import engineio as engineio_seam
from homeapp.seams import socketio as socketio_seam
from tests.inprocess import RecordingConnection, local_app

SENDER, OTHER = "1", "2"
ROOM = f"{SENDER}:{OTHER}"
DATE = {"day": 8, "month": 12, "year": 2026, "time": "10:30"}


def message(**data):
    payload = {"message": "hi", "from": SENDER, "roomID": ROOM, "date": DATE,
               "unreadMessArray": [{"recipientID": OTHER, "updateStatus": True}]}
    return ["message", {"data": dict(payload, **data)}]


def forged():
    """A message from the sender's socket that names the other user as its sender."""
    return message(**{"from": OTHER, "unreadMessArray": [{"recipientID": SENDER}]})


def text(ack, args):
    return "2" + ack + json.dumps(args, separators=(",", ":"))


# (id, packet text, taken the short way)
PACKETS = [
    ("message", text("", message()), True),
    ("message with an ack", text("5", message()), True),
    ("ack id with leading zeros", text("007", message()), True),
    ("ack id of 15 digits", text("9" * 15, message()), True),
    ("ack id of 16 digits", text("9" * 16, message()), False),
    ("refused: forged sender", text("3", forged()), True),
    ("refused: malformed payload", text("4", ["message", {"data": "x"}]), True),
    ("refused: no payload", text("4", ["message"]), True),
    ("unknown event", text("8", ["noSuchEvent", 1]), True),
    ("a client's connect", text("9", ["connect"]), True),
    ("a client's disconnect", text("10", ["disconnect", "x"]), True),
    ("a client's disconnect, more arguments", text("11", ["disconnect", "x", "y"]), True),
    ("empty array", "2[]", False),
    ("name not a string", "21[1,2]", False),
    ("object", '2{"a":1}', False),
    ("string", '2"message"', False),
    ("bad JSON", '2["message",', False),
    ("no JSON", "2", False),
    ("other namespace", '2/admin,["message"]', False),
    ("attachment count", '21-["message"]', False),
    ("ack id in other digits", '2\u0663["message"]', False),
    ("ack id of letters", '2ab["message"]', False),
    ("ack packet", '31["x"]', False),
    ("disconnect packet", "1", False),
]


@pytest.fixture
def app_sockets(monkeypatch):
    """An app in this process with two connected users in their room, each an Engine.IO socket
    on its websocket whose frames are recorded; ids and timestamps fixed, so that two runs of
    one packet send the same texts."""
    app = local_app()
    hub = app.extensions["homeapp"]
    server = hub.server
    monkeypatch.setattr(hub, "new_message_id", lambda: "m1")
    monkeypatch.setattr(errors, "utc_timestamp", lambda: "2026-12-08T00:00:00.000Z")
    sockets = {}
    for user in (SENDER, OTHER):
        sock = engineio.socket.Socket(server.eio, f"eio-{user}")
        sock.connected = sock.upgraded = True
        sock.direct_websocket = RecordingConnection()
        server.eio.sockets[sock.sid] = sock
        sid = server.manager.connect(sock.sid, "/")
        hub.connections.open(sid, user, f"user{user}")
        server.enter_room(sid, "user:" + user)
        server.enter_room(sid, "room:" + ROOM)
        sockets[user] = sock
    return server, sockets


def outcome(handle, server, sockets, data, eio_sid="eio-1"):
    """What `handle(server, eio_sid, data)` raised and sent to each socket."""
    for sock in sockets.values():
        sock.direct_websocket.sent.clear()
    try:
        handle(server, eio_sid, data)
        raised = None
    except Exception as exc:  # compared below: the same refusal both ways
        raised = (type(exc), str(exc))
    return raised, {user: list(sock.direct_websocket.sent) for user, sock in sockets.items()}


@pytest.mark.parametrize("data, short", [p[1:] for p in PACKETS], ids=[p[0] for p in PACKETS])
def test_an_event_has_the_outcome_python_socketio_gives_it(app_sockets, monkeypatch, data, short):
    server, sockets = app_sockets
    library = socketio_seam._library_handle_eio_message
    expected = outcome(library, server, sockets, data)
    passed_on = []
    monkeypatch.setattr(socketio_seam, "_library_handle_eio_message",
                        lambda *args: passed_on.append(args) or library(*args))
    assert outcome(socketio_seam.handle_message, server, sockets, data) == expected
    assert passed_on == ([] if short else [(server, "eio-1", data)])


def test_what_the_short_way_sends_is_what_the_client_expects(app_sockets):
    """Not only the same as python-socketio: the recipient gets the message, the sender its ack
    under its own id, and a refusal names its code."""
    server, sockets = app_sockets
    _, sent = outcome(socketio_seam.handle_message, server, sockets, text("007", message()))
    acks = [t for t in sent[SENDER] if t.startswith("437[")]
    assert len(acks) == 1 and json.loads(acks[0][3:]) == [{"ok": True, "id": "m1", "date": DATE}]
    room_events = [json.loads(t[2:]) for t in sent[OTHER] if t.startswith('42["messageRoom"')]
    assert room_events == [["messageRoom", {"message": "hi", "from": SENDER, "roomID": ROOM,
                                            "fromUsername": "user1", "date": DATE}]]
    _, sent = outcome(socketio_seam.handle_message, server, sockets, text("3", forged()))
    assert sent[OTHER] == []
    [ack] = [json.loads(t[3:]) for t in sent[SENDER] if t.startswith("433[")]
    assert ack[0]["ok"] is False and ack[0]["code"] == errors.FORBIDDEN


def test_a_socket_not_connected_to_the_namespace_is_left_to_python_socketio(app_sockets, monkeypatch):
    server, sockets = app_sockets
    passed_on = []
    library = socketio_seam._library_handle_eio_message
    monkeypatch.setattr(socketio_seam, "_library_handle_eio_message",
                        lambda *args: passed_on.append(args) or library(*args))
    data = text("5", message())
    raised, sent = outcome(socketio_seam.handle_message, server, sockets, data, eio_sid="eio-gone")
    assert raised is None and sent == {SENDER: [], OTHER: []}
    assert passed_on == [(server, "eio-gone", data)]


@pytest.mark.parametrize("hook", ["_trigger_event", "_send_packet", "_send_eio_packet"])
def test_a_hook_on_the_server_instance_sees_every_event(app_sockets, monkeypatch, hook):
    """The Admin UI wraps _trigger_event on the server, Flask-SocketIO's test client the sends:
    with one there, every event goes python-socketio's way, through it."""
    server, sockets = app_sockets
    calls = []
    original = getattr(server, hook)
    monkeypatch.setattr(server, hook, lambda *args: calls.append(args[0]) or original(*args),
                        raising=False)
    socketio_seam.handle_message(server, "eio-1", text("5", message()))
    assert calls


def test_with_python_socketio_logging_on_an_event_is_logged_as_ever(app_sockets, caplog):
    server, sockets = app_sockets
    server.logger.setLevel("INFO")
    try:
        with caplog.at_level("INFO", logger=server.logger.name):
            socketio_seam.handle_message(server, "eio-1", text("5", message()))
    finally:
        server.logger.setLevel("ERROR")
    assert any('received event "message"' in r.getMessage() for r in caplog.records)


# Engine.IO's side: what reaches the server's message handler

@pytest.fixture
def eio_socket():
    server = engineio.Server(async_mode="gevent", async_handlers=False)
    received = []
    server.on("message", lambda sid, data: received.append((sid, data)))
    sock = engineio.socket.Socket(server, "sid")
    return sock, received


@pytest.mark.parametrize("data", ['42["message",{}]', "40", "41", "49", '4{"a":1}', "4[1]", "4x",
                                  "4", "b4AAE=", b"42"],
                         ids=["event", "connect", "disconnect", "digit", "json", "json array",
                              "text", "empty message", "base64", "bytes"])
def test_a_message_reaches_the_handler_as_engineio_would_hand_it(eio_socket, data):
    sock, received = eio_socket
    sock.receive(packet.Packet(encoded_packet=data))
    expected = list(received)
    received.clear()
    engineio_seam.receive_message(sock, data)
    assert received == expected and len(received) == 1


def test_the_short_way_skips_the_packet_object_only_for_socketio_text(eio_socket, monkeypatch):
    sock, received = eio_socket
    decoded = []
    original = packet.Packet.decode
    monkeypatch.setattr(packet.Packet, "decode", lambda self, text: decoded.append(text) or original(self, text))
    for data in ('42["message",{}]', "40", '4{"a":1}', "3"):
        engineio_seam.receive_message(sock, data)
    assert decoded == ['4{"a":1}', "3"]
    assert received == [("sid", '2["message",{}]'), ("sid", "0"), ("sid", {"a": 1})]


def test_a_handler_that_fails_is_logged_and_the_socket_goes_on(eio_socket, caplog):
    sock, received = eio_socket
    sock.server.on("message", lambda sid, data: 1 / 0)
    with caplog.at_level("ERROR", logger=sock.server.logger.name):
        engineio_seam.receive_message(sock, '42["message"]')
    assert [r.getMessage() for r in caplog.records] == ["message handler error"]
    assert caplog.records[0].exc_info[0] is ZeroDivisionError


# The emits' side: who an emit reaches (homeapp/seams/socketio.py's emit_here)

@pytest.mark.parametrize("room, skip, reached", [
    (None, None, {SENDER, OTHER}),
    ("user:" + SENDER, None, {SENDER}),
    (["user:" + OTHER], None, {OTHER}),
    ("room:" + ROOM, "eio-1", {OTHER}),
    (["user:" + SENDER, "room:" + ROOM], None, {SENDER, OTHER}),
    ("user:3", None, set()),
], ids=["everyone", "one user", "a list of one", "a room, sender skipped", "two rooms, one copy each", "no one"])
def test_an_emit_reaches_each_member_of_its_rooms_once(app_sockets, room, skip, reached):
    server, sockets = app_sockets
    manager = server.manager
    skip_sid = None if skip is None else manager.sid_from_eio_sid(skip, "/")
    for sock in sockets.values():
        sock.direct_websocket.sent.clear()
    socketio_seam.emit_here(manager, "hello", {"n": 1}, "/", room=room, skip_sid=skip_sid)
    assert {user: sock.direct_websocket.sent for user, sock in sockets.items()} == \
        {user: ['42["hello",{"n":1}]'] if user in reached else [] for user in sockets}
