"""RFC 6455 on the wire, case by case, the way Autobahn's fuzzingclient checks a server (its
groups 1-7 and 9), adapted to Socket.IO: the messages are Socket.IO packets, and where Autobahn
expects an echo, a server answers an event with its acknowledgement (an unknown event's names
the event: the text came back as it was sent).

Every case writes its frames by hand on a raw TCP socket to a live server, then reads what the
server sends until its answer, or until it closes the connection: a case that must fail the
connection expects a close frame with that status code, then the end of the stream.
"""
import json
import os
import socket
import struct
import time

import pytest

from tests.conftest import FAST
from tests.live import new_user_id

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
PROTOCOL_ERROR, INVALID_TEXT, POLICY, TOO_BIG = 1002, 1007, 1008, 1009
LIMIT = 64 * 1024  # HOMEAPP_MAX_PACKET_BYTES's default
MAX_FRAGMENTS = 1024  # homeapp/transport/frames.py


@pytest.fixture(scope="module")
def server(server_factory):
    return server_factory(**FAST)


# -- the client side, by hand ----------------------------------------------------------------

def client_frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length_form=None):
    """One frame as a client writes it: masked unless told, the length in its shortest form
    unless `length_form` (7, 16 or 64) says which."""
    if isinstance(payload, str):
        payload = payload.encode()
    size = len(payload)
    form = length_form or (7 if size < 126 else 16 if size < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if form == 7:
        head += bytes([mask_bit | size])
    elif form == 16:
        head += struct.pack("!BH", mask_bit | 126, size)
    else:
        head += struct.pack("!BQ", mask_bit | 127, size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Client:
    """A websocket past the Engine.IO and Socket.IO handshakes on a raw socket."""

    def __init__(self, server):
        self.user = new_user_id()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket&userID={self.user} HTTP/1.1\r\n"
                           f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert self.frame()[1].startswith(b"0{")
        self.send(client_frame(TEXT, "40"))
        assert self.frame()[1].startswith(b"40{")
        self.acks = 0

    def _recv(self):
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def send(self, *frames):
        try:
            self.sock.sendall(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):  # the server closed it meanwhile
            pass

    def frame(self):
        """(opcode, payload) of the server's next frame, or None at the end of the stream."""
        while True:
            parsed = _parse(self.buffer)
            if parsed is not None:
                opcode, payload, self.buffer = parsed
                return opcode, payload
            chunk = self._recv()
            if not chunk:
                assert not self.buffer, f"the stream ended inside a frame: {self.buffer[:40]!r}"
                return None
            self.buffer += chunk

    def frames_to_end(self):
        """Every frame until the server closes the connection."""
        frames = []
        while (frame := self.frame()) is not None:
            frames.append(frame)
        return frames

    def event(self, payload):
        """A Socket.IO event with an acknowledgement id, as a text message; returns the id."""
        self.acks += 1
        return self.acks, f"42{self.acks}{payload}"

    def join(self, size=None):
        """joinRoom for its own user; with `size`, padded with spaces to that many bytes."""
        text = f'["joinRoom","{self.user}"]'
        if size is not None:
            text = text[:-1] + " " * (size - len(f"42{self.acks + 1}{text}")) + "]"
        return self.event(text)

    def ack(self, ack_id):
        """The acknowledgement `ack_id`'s data, skipping pongs and pings on the way."""
        while True:
            frame = self.frame()
            assert frame is not None, "the server closed the connection"
            opcode, payload = frame
            if opcode == TEXT and payload.startswith(b"43%d[" % ack_id):
                return json.loads(payload[len(b"43%d" % ack_id):])[0]
            assert opcode in (TEXT, PING, PONG), frame

    def close(self):
        self.sock.close()


def _parse(data):
    """(opcode, payload, rest) of the first whole server frame in `data`, or None."""
    if len(data) < 2:
        return None
    assert not data[1] & 0x80, "a server frame must not be masked"
    assert data[0] & 0x80 and not data[0] & 0x70, f"unexpected frame header {data[:2]!r}"
    size, head = data[1] & 0x7F, 2
    if size == 126:
        if len(data) < 4:
            return None
        size, head = struct.unpack("!H", data[2:4])[0], 4
    elif size == 127:
        if len(data) < 10:
            return None
        size, head = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < head + size:
        return None
    return data[0] & 0x0F, data[head:head + size], data[head + size:]


@pytest.fixture
def client(server):
    made = Client(server)
    yield made
    made.close()


def fails_with(client, code):
    """The server's last frame is a close with `code`, then the stream ends."""
    frames = client.frames_to_end()
    assert frames and frames[-1] == (CLOSE, struct.pack("!H", code)), frames[-3:]
    assert all(opcode != CLOSE for opcode, _ in frames[:-1])


def still_answers(client):
    ack_id, text = client.join()
    client.send(client_frame(TEXT, text))
    assert client.ack(ack_id) == {"ok": True}


# -- 1: framing: a text message in each length form ------------------------------------------

SIZES = {
    "7-bit, 125 bytes": (125, None),
    "16-bit, 126 bytes": (126, None),
    "16-bit, 127 bytes": (127, None),
    "16-bit, 65535 bytes": (65535, None),
    "64-bit, 65536 bytes (the limit)": (LIMIT, None),
    "16-bit form for 30 bytes": (30, 16),
    "64-bit form for 30 bytes": (30, 64),
}


@pytest.mark.parametrize("size, form", SIZES.values(), ids=SIZES.keys())
def test_a_text_message_in_each_length_form_is_handled(client, size, form):
    ack_id, text = client.join(size)
    assert len(text.encode()) == size
    client.send(client_frame(TEXT, text, length_form=form))
    assert client.ack(ack_id) == {"ok": True}


def test_a_message_arriving_a_byte_at_a_time_is_handled(client):
    ack_id, text = client.join(125)
    for byte in client_frame(TEXT, text):
        client.send(bytes([byte]))
        time.sleep(0.001)
    assert client.ack(ack_id) == {"ok": True}


def test_a_thousand_messages_in_one_write_are_all_answered_in_order(client):
    events = [client.join() for _ in range(1000)]
    client.send(*(client_frame(TEXT, text) for _, text in events))
    for ack_id, _ in events:
        assert client.ack(ack_id) == {"ok": True}


def test_an_unmasked_client_frame_fails_the_connection(client):
    """RFC 6455 section 5.1: a server MUST close the connection on an unmasked frame."""
    client.send(client_frame(TEXT, client.join()[1], masked=False))
    fails_with(client, PROTOCOL_ERROR)


# -- 2: pings and pongs -------------------------------------------------------------------------

PINGS = {"empty": b"", "text": b"Hello, world!", "binary": bytes(range(256))[:125],
         "125 bytes": b"*" * 125}


@pytest.mark.parametrize("payload", PINGS.values(), ids=PINGS.keys())
def test_a_ping_is_answered_by_a_pong_with_its_payload(client, payload):
    client.send(client_frame(PING, payload))
    assert client.frame() == (PONG, payload)
    still_answers(client)


def test_ten_pings_get_ten_pongs_in_order(client):
    client.send(*(client_frame(PING, b"ping %d" % i) for i in range(10)))
    assert [client.frame() for _ in range(10)] == [(PONG, b"ping %d" % i) for i in range(10)]


def test_an_unsolicited_pong_is_ignored(client):
    client.send(client_frame(PONG, b"unsolicited"))
    still_answers(client)


@pytest.mark.parametrize("frame", [client_frame(PING, b"*" * 126), client_frame(PING, b"x", fin=False)],
                         ids=["ping of 126 bytes", "fragmented ping"])
def test_a_control_frame_too_long_or_fragmented_fails_the_connection(client, frame):
    client.send(frame)
    fails_with(client, PROTOCOL_ERROR)


# -- 3: reserved bits -------------------------------------------------------------------------

@pytest.mark.parametrize("rsv, opcode", [(1, TEXT), (2, TEXT), (4, TEXT), (7, TEXT), (3, PING), (5, BINARY)],
                         ids=["RSV1 text", "RSV2 text", "RSV3 text", "all three", "RSV1+2 ping", "RSV1+3 binary"])
def test_a_reserved_bit_fails_the_connection(client, rsv, opcode):
    client.send(client_frame(opcode, client.join()[1] if opcode == TEXT else b"x", rsv=rsv))
    fails_with(client, PROTOCOL_ERROR)


def test_a_frame_with_a_reserved_bit_after_a_good_one(client):
    """Autobahn 3.3: the good message answered, then the connection failed. (Written together,
    as in its 3.2, the good one is handled but its answer may find the connection closed.)"""
    ack_id, text = client.join()
    client.send(client_frame(TEXT, text))
    assert client.ack(ack_id) == {"ok": True}
    client.send(client_frame(TEXT, client.join()[1], rsv=1), client_frame(PING, b"after"))
    fails_with(client, PROTOCOL_ERROR)


# -- 4: reserved opcodes ------------------------------------------------------------------------

@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15], ids=lambda o: f"opcode {o}")
def test_a_reserved_opcode_fails_the_connection(client, opcode):
    client.send(client_frame(opcode, b"reserved"))
    fails_with(client, PROTOCOL_ERROR)


# -- 5: fragmentation ---------------------------------------------------------------------------

def fragments(text, *sizes):
    """`text` in fragments of the given sizes (the last takes the rest): a text frame, then
    continuations."""
    data, parts = text.encode(), []
    for size in sizes:
        parts.append(data[:size])
        data = data[size:]
    parts.append(data)
    return [client_frame(TEXT if i == 0 else CONTINUATION, part, fin=i == len(parts) - 1)
            for i, part in enumerate(parts)]


def test_a_message_in_two_fragments_is_handled(client):
    ack_id, text = client.join()
    client.send(*fragments(text, 5))
    assert client.ack(ack_id) == {"ok": True}


def test_a_message_in_one_byte_fragments_is_handled(client):
    ack_id, text = client.join()
    client.send(*fragments(text, *[1] * (len(text) - 1)))
    assert client.ack(ack_id) == {"ok": True}


def test_an_empty_final_fragment_ends_the_message(client):
    ack_id, text = client.join()
    client.send(client_frame(TEXT, text, fin=False), client_frame(CONTINUATION, b""))
    assert client.ack(ack_id) == {"ok": True}


@pytest.mark.parametrize("control, answer", [(client_frame(PING, b"between"), (PONG, b"between")),
                                             (client_frame(PONG, b"between"), None)],
                         ids=["ping", "pong"])
def test_a_control_frame_between_fragments_is_allowed(client, control, answer):
    ack_id, text = client.join()
    first, last = fragments(text, 5)
    client.send(first, control, last)
    if answer is not None:
        assert client.frame() == answer
    assert client.ack(ack_id) == {"ok": True}


def test_fragments_sent_apart_are_one_message(client):
    ack_id, text = client.join()
    for frame in fragments(text, 3, 3, 3):
        client.send(frame)
        time.sleep(0.05)
    assert client.ack(ack_id) == {"ok": True}


OUT_OF_ORDER = {
    "continuation first, final": [client_frame(CONTINUATION, b"x")],
    "continuation first, not final": [client_frame(CONTINUATION, b"x", fin=False)],
    "text inside a fragmented text": [client_frame(TEXT, b"42", fin=False), client_frame(TEXT, b"42")],
    "binary inside a fragmented text": [client_frame(TEXT, b"42", fin=False), client_frame(BINARY, b"x")],
    "text starting inside a fragmented text": [client_frame(TEXT, b"42", fin=False),
                                               client_frame(TEXT, b"42", fin=False)],
    "fragmented close": [client_frame(CLOSE, struct.pack("!H", 1000), fin=False)],
}


@pytest.mark.parametrize("frames", OUT_OF_ORDER.values(), ids=OUT_OF_ORDER.keys())
def test_fragments_out_of_order_fail_the_connection(client, frames):
    client.send(*frames)
    fails_with(client, PROTOCOL_ERROR)


# -- 6: UTF-8 -------------------------------------------------------------------------------------

VALID_TEXT = {"2-byte": "ñandú", "3-byte": "κόσμε €", "4-byte": "𝄞 🎉", "mixed": "Grüße, 世界, 😀"}


@pytest.mark.parametrize("name", VALID_TEXT.values(), ids=VALID_TEXT.keys())
@pytest.mark.parametrize("split", ["whole", "fragmented at every byte"])
def test_valid_utf8_comes_back_as_it_was_sent(client, name, split):
    """An unknown event's acknowledgement names the event: the text, decoded and encoded again."""
    ack_id, text = client.event(json.dumps([name, {}], ensure_ascii=False))
    size = len(text.encode())
    client.send(*(fragments(text, *[1] * (size - 1)) if split != "whole" else [client_frame(TEXT, text)]))
    assert client.ack(ack_id)["event"] == name


INVALID_TEXT_BYTES = {
    "lone continuation byte": b"\x80",
    "overlong slash": b"\xc0\xaf",
    "overlong NUL": b"\xe0\x80\x80",
    "UTF-16 surrogate": b"\xed\xa0\x80",
    "past U+10FFFF": b"\xf4\x90\x80\x80",
    "truncated at the end": b"\xe2\x82",
    "0xFE": b"\xfe",
    "0xFF": b"\xff",
}


@pytest.mark.parametrize("bad", INVALID_TEXT_BYTES.values(), ids=INVALID_TEXT_BYTES.keys())
@pytest.mark.parametrize("split", ["whole", "in the first fragment", "in the last fragment"])
def test_invalid_utf8_fails_the_connection_with_1007(client, bad, split):
    good = client.join()[1].encode()
    if split == "whole":
        frames = [client_frame(TEXT, good[:-2] + bad + good[-2:])]
    elif split == "in the first fragment":
        frames = [client_frame(TEXT, good[:5] + bad, fin=False), client_frame(CONTINUATION, good[5:])]
    else:
        frames = [client_frame(TEXT, good, fin=False), client_frame(CONTINUATION, bad)]
    client.send(*frames)
    fails_with(client, INVALID_TEXT)


# -- 7: the closing handshake ---------------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES, ids=str)
def test_a_close_with_a_valid_code_is_answered_with_that_code(client, code):
    client.send(client_frame(CLOSE, struct.pack("!H", code)))
    assert client.frames_to_end() == [(CLOSE, struct.pack("!H", code))]


@pytest.mark.parametrize("code", INVALID_CODES, ids=str)
def test_a_close_with_an_invalid_code_fails_the_connection(client, code):
    client.send(client_frame(CLOSE, struct.pack("!H", code)))
    fails_with(client, PROTOCOL_ERROR)


CLOSE_PAYLOADS = {
    "empty": (b"", b""),
    "code and reason": (struct.pack("!H", 1000) + b"bye", struct.pack("!H", 1000)),
    "reason of 123 bytes": (struct.pack("!H", 1000) + b"*" * 123, struct.pack("!H", 1000)),
    "UTF-8 reason": (struct.pack("!H", 1001) + "adiós 👋".encode(), struct.pack("!H", 1001)),
}


@pytest.mark.parametrize("sent, answer", CLOSE_PAYLOADS.values(), ids=CLOSE_PAYLOADS.keys())
def test_a_close_is_answered_by_a_well_formed_close_and_the_end(client, sent, answer):
    client.send(client_frame(CLOSE, sent))
    assert client.frames_to_end() == [(CLOSE, answer)]


@pytest.mark.parametrize("payload, code", [(b"\x03", PROTOCOL_ERROR),
                                           (struct.pack("!H", 1000) + b"\xff\xfe", INVALID_TEXT),
                                           (struct.pack("!H", 1000) + b"*" * 124, PROTOCOL_ERROR)],
                         ids=["one byte", "reason not UTF-8", "payload over 125 bytes"])
def test_a_malformed_close_fails_the_connection(client, payload, code):
    client.send(client_frame(CLOSE, payload))
    fails_with(client, code)


@pytest.mark.parametrize("after", [client_frame(PING, b"late"), client_frame(TEXT, "42[\"late\",{}]")],
                         ids=["ping", "text"])
def test_nothing_is_answered_after_the_clients_close(client, after):
    client.send(client_frame(CLOSE, struct.pack("!H", 1000)), after)
    assert client.frames_to_end() == [(CLOSE, struct.pack("!H", 1000))]


def test_a_close_between_fragments_ends_the_connection(client):
    client.send(client_frame(TEXT, b"42", fin=False), client_frame(CLOSE, struct.pack("!H", 1000)))
    assert client.frames_to_end() == [(CLOSE, struct.pack("!H", 1000))]


# -- 9: limits ------------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [64, 1024, 16 * 1024], ids=lambda c: f"{c}-byte fragments")
def test_a_message_at_the_limit_in_fragments_is_handled(client, chunk):
    ack_id, text = client.join(LIMIT)
    assert len(text) == LIMIT
    client.send(*fragments(text, *[chunk] * (LIMIT // chunk - 1)))
    assert client.ack(ack_id) == {"ok": True}


OVER_THE_LIMIT = {
    "one frame": lambda text: [client_frame(TEXT, text)],
    "in fragments": lambda text: fragments(text, *[4096] * (len(text) // 4096)),
    "announced only": lambda text: [client_frame(TEXT, text)[:14]],  # the header, then nothing
}


@pytest.mark.parametrize("frames", OVER_THE_LIMIT.values(), ids=OVER_THE_LIMIT.keys())
def test_a_message_over_the_packet_limit_fails_the_connection_with_1009(client, frames):
    text = client.join(LIMIT + 1)[1]
    assert len(text) == LIMIT + 1
    client.send(*frames(text))
    fails_with(client, TOO_BIG)


def test_a_message_of_more_fragments_than_allowed_fails_the_connection_with_1008(client):
    client.send(client_frame(TEXT, b"4", fin=False), *[client_frame(CONTINUATION, b"", fin=False)] * MAX_FRAGMENTS)
    fails_with(client, POLICY)
