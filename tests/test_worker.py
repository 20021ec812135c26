"""frames.Connection, as worker.Handler hands it over, on a real socket pair: messages within
the limit are read whole, one that passes it is refused at the header of the frame that does,
before that frame is read."""
import _socket
import struct

import gevent
import gevent.queue
import gevent.socket
import pytest
import websocket

from homeapp.transport import frames, worker

LIMIT = 1024
TEXT, CONTINUATION, PING = websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_CONT, websocket.ABNF.OPCODE_PING


def frame(opcode, payload, fin=True):
    return websocket.ABNF.create_frame(payload, opcode, fin=int(fin)).format()


@pytest.fixture
def connection():
    """(the server's websocket, the client's end of the socket)"""
    ours, theirs = gevent.socket.socketpair()
    plain = _socket.socket(fileno=ours.detach())
    plain.setblocking(False)
    received = Received(frames.Connection(plain, b"", worker.FrameLimits(LIMIT, None, None)))
    yield received, theirs
    received.conn.close()  # its watcher first: a descriptor closed under it confuses the loop
    ours.close()
    theirs.close()


class Received:
    """A frames.Connection read as a blocking websocket: receive() waits for the next message,
    None once the connection has ended."""

    def __init__(self, conn):
        self.conn = conn
        self.messages = gevent.queue.Queue()
        conn.start(self)

    def received(self, message):
        self.messages.put(message)

    def ended(self):
        self.messages.put(None)

    def receive(self):
        return self.messages.get()

    @property
    def closed(self):
        return self.conn.closed


def test_messages_within_the_limit_are_read_whole_each_counted_from_zero(connection):
    ws, client = connection
    for _ in range(3):  # 900 bytes each: together, far past the limit
        client.sendall(frame(TEXT, "4" + "a" * 299, fin=False) + frame(PING, "?")
                       + frame(CONTINUATION, "b" * 300, fin=False) + frame(CONTINUATION, "c" * 300))
        assert ws.receive() == "4" + "a" * 299 + "b" * 300 + "c" * 300


@pytest.mark.parametrize("frames, announced", [
    ([frame(TEXT, "4" + "a" * 599, fin=False)], 600),  # a frame that takes the message past it
    ([], LIMIT + 1),  # the first frame, past it alone
], ids=["together", "one frame"])
def test_a_message_past_the_limit_ends_the_connection_with_1009_before_the_frame_is_read(
        connection, frames, announced):
    ws, client = connection
    header = struct.pack("!BBH", CONTINUATION if frames else TEXT, 0x80 | 126, announced) + b"mask"
    client.sendall(b"".join(frames) + header)  # and not the bytes it announces
    with gevent.Timeout(2):  # reading the frame would wait for them
        assert ws.receive() is None
    client.settimeout(2)
    assert client.recv(100) == struct.pack("!BBH", 0x88, 2, 1009)
    assert ws.closed
