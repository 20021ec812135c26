"""Hostile clients at the transport layer: one client must not hurt the server or anyone else.

Each attack runs against a real server process and is measured the way it hurt: the server's
resident memory, its HTTP answers and how long they took, whether it closed the connection,
what it logged. Bounds are generous for a shared machine: the attacks cost tens or hundreds of
megabytes, or held connections for minutes, before they were fixed.
"""
import json
import os
import re
import socket
import struct
import time

import pytest
import requests
import websocket

from tests.conftest import FAST
from tests.credentials import JWT_SECRET
from tests.live import Peer, new_user_id, raw_socket
from tests.processes import ServerProcess

MB = 2 ** 20
PACKET_LIMIT = 64 * 1024  # HOMEAPP_MAX_PACKET_BYTES's default
GROWTH_LIMIT = 20 * MB  # what an attack may add to the server's memory
TOO_BIG = 1009  # the websocket close code for a message too big to process
HEADER_TIMEOUT = 1  # seconds, for the servers of the header-timeout tests
APP_PY = ("app.py",)
GUNICORN = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")


def polling_url(server, sid=None):
    return f"{server.url}/socket.io/?EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")


def engineio_websocket(server):
    """A websocket past the Engine.IO handshake only: no Socket.IO connect, no identity."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=10)
    assert ws.recv().startswith("0{")
    return ws


def polling_session(server):
    """A long-polling Engine.IO session; returns its sid."""
    opened = requests.get(polling_url(server), timeout=5)
    assert opened.status_code == 200 and opened.text.startswith("0{"), opened.text
    return json.loads(opened.text[1:])["sid"]


def frame(opcode, payload, fin):
    """One client frame, masked as a client must."""
    return websocket.ABNF.create_frame(payload, opcode, fin=int(fin)).format()


def announced_frame_header(length):
    """The header of a text frame announcing `length` bytes of payload, with its mask."""
    return struct.pack("!BBQ", websocket.ABNF.OPCODE_TEXT, 0x80 | 127, length) + os.urandom(4)


def send_until_cut(sock, chunks):
    """Send the chunks until the server ends the connection; returns the bytes sent."""
    sent = 0
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset or broken pipe: the server closed it
        pass
    return sent


def read_to_end(sock, timeout=10):
    """Everything the server sends until it closes the connection.

    Raises AssertionError when the connection is still open after `timeout` seconds.
    """
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:  # closed with data of ours unread: what it sent came first
        pass
    except socket.timeout:
        raise AssertionError(f"the server did not close the connection in {timeout} s; "
                             f"it sent {received[-200:]!r}") from None
    return received


def close_frame(code):
    return struct.pack("!BBH", 0x88, 2, code)


# -- messages bigger than the limit, before they are read ------------------------------------

def one_frame_announcing_300_mb(ws):
    send_until_cut(ws.sock, [announced_frame_header(300 * MB)])


def an_unfinished_message_of_1_mb_frames(ws):
    """The attack as it was found: 1 MB frames that never end the message (it cost +297 MB)."""
    data = "x" * MB
    first = frame(websocket.ABNF.OPCODE_TEXT, "4" + data[1:], fin=False)
    more = frame(websocket.ABNF.OPCODE_CONT, data, fin=False)  # the same mask each time: as good
    send_until_cut(ws.sock, [first] + [more] * 99)


def an_unfinished_message_of_small_frames(ws):
    """Frames each well under the limit, passing it together."""
    part = "x" * (16 * 1024)
    send_until_cut(ws.sock, [frame(websocket.ABNF.OPCODE_TEXT, "4" + part, fin=False)]
                   + [frame(websocket.ABNF.OPCODE_CONT, part, fin=False) for _ in range(4)])


@pytest.fixture(scope="module")
def jwt_server(server_factory):
    """Tokens required: the attacker below never presents one."""
    return server_factory(HOMEAPP_AUTH="jwt", HOMEAPP_JWT_SECRET=JWT_SECRET)


@pytest.mark.parametrize("attack", [one_frame_announcing_300_mb, an_unfinished_message_of_1_mb_frames,
                                    an_unfinished_message_of_small_frames],
                         ids=["one frame of 300 MB", "1 MB frames", "16 KB frames"])
def test_a_message_over_the_limit_is_refused_before_it_is_read(jwt_server, attack):
    before = jwt_server.rss_bytes()
    ws = engineio_websocket(jwt_server)
    try:
        attack(ws)
        received = read_to_end(ws.sock)
    finally:
        ws.close()
    assert received.endswith(close_frame(TOO_BIG)), received[-20:]
    assert jwt_server.rss_bytes() - before < GROWTH_LIMIT


# -- a message of endless empty fragments -----------------------------------------------------

EMPTY_FRAGMENTS = 3_000_000  # 18 MB of frames; kept in a list, they cost the server about 24 MB
POLICY_VIOLATION = 1008


def test_endless_empty_fragments_hold_no_memory_and_end_the_connection(fresh_server):
    """Each fragment adds no bytes to the message, so a bound on its bytes alone let one
    connection, with no identity, grow the server by the frames' bookkeeping."""
    before = fresh_server.rss_bytes()
    ws = engineio_websocket(fresh_server)
    empties = frame(websocket.ABNF.OPCODE_CONT, b"", fin=False) * 10_000
    try:
        send_until_cut(ws.sock, [frame(websocket.ABNF.OPCODE_TEXT, "4", fin=False)]
                       + [empties] * (EMPTY_FRAGMENTS // 10_000))
        # once the server has parsed everything sent, it answers this ping (if still open)
        send_until_cut(ws.sock, [frame(websocket.ABNF.OPCODE_PING, b"parsed", fin=True)])
        received = read_until(ws.sock, b"\x8a\x06parsed")
        grown = fresh_server.rss_bytes() - before
    finally:
        ws.close()
    assert grown < 4 * MB, f"{grown / MB:.1f} MB"
    assert received.endswith(close_frame(POLICY_VIOLATION)), received[-20:]


def read_until(sock, marker, timeout=60):
    """What the server sends until `marker` or the end of the connection."""
    sock.settimeout(timeout)
    received = b""
    try:
        while marker not in received and (chunk := sock.recv(65536)):
            received += chunk
    except ConnectionResetError:
        pass
    return received


# -- long-polling POSTs over the limit -------------------------------------------------------

def post_head(server, sid, *headers):
    return (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode()


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


OVERSIZED_POSTS = {
    # announced, and the body not even sent: answered from the header
    "announced": lambda head: [head(f"Content-Length: {PACKET_LIMIT + 1}")],
    "announced and sent": lambda head: [head(f"Content-Length: {PACKET_LIMIT + 1}"),
                                        b"4" + b"x" * PACKET_LIMIT],
    # no length announced: answered once the limit is passed, the body still unfinished
    "chunked": lambda head: [head("Transfer-Encoding: chunked")]
    + [chunk(b"4" + b"x" * 8191) for _ in range(12)],
}


@pytest.mark.parametrize("request_parts", OVERSIZED_POSTS.values(), ids=OVERSIZED_POSTS.keys())
def test_an_oversized_polling_post_is_answered_413_at_once_and_its_session_closed(
        memory_server, request_parts):
    sid = polling_session(memory_server)
    with socket.create_connection(("127.0.0.1", memory_server.port)) as sock:
        send_until_cut(sock, request_parts(lambda *h: post_head(memory_server, sid, *h)))
        response = read_to_end(sock)
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    # like a websocket that sends too much, that connection is over
    poll = requests.get(polling_url(memory_server, sid), timeout=5)
    assert poll.status_code == 400


def test_a_chunked_polling_post_within_the_limit_is_delivered(memory_server):
    sid = polling_session(memory_server)
    with socket.create_connection(("127.0.0.1", memory_server.port)) as sock:
        sock.sendall(post_head(memory_server, sid, "Transfer-Encoding: chunked", "Connection: close")
                     + chunk(b"40") + b"0\r\n\r\n")
        assert read_to_end(sock).startswith(b"HTTP/1.1 200 ")
    # the Socket.IO connect it carried was answered
    poll = requests.get(polling_url(memory_server, sid), timeout=5)
    assert poll.status_code == 200 and poll.text.startswith("40{"), poll.text


# -- clients that send and never read --------------------------------------------------------

# answered with an ack naming the event twice: about 2 KB written for 1 KB read
UNKNOWN_EVENT = '421["' + "x" * 1000 + '",{}]'
EVENTS_SENT = 30_000  # 60 MB of answers


@pytest.fixture
def fresh_server(server_factory):
    """A server of its own, so that its memory measures one attack only; its pings are slow,
    so that only the attack, not a missed pong, can end a connection."""
    return server_factory(HOMEAPP_PING_INTERVAL=60, HOMEAPP_PING_TIMEOUT=60, **FAST)


def test_a_websocket_client_that_never_reads_is_disconnected(fresh_server):
    before = fresh_server.rss_bytes()
    ws = raw_socket(fresh_server, new_user_id(), sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    batch = frame(websocket.ABNF.OPCODE_TEXT, UNKNOWN_EVENT, fin=True) * 100
    try:
        send_until_cut(ws.sock, (batch for _ in range(EVENTS_SENT // 100)))
        grown = fresh_server.rss_bytes() - before  # with everything it answered still unread
        read_to_end(ws.sock)  # what was written before the cut, then the end
    finally:
        ws.close()
    assert grown < GROWTH_LIMIT
    bystander = Peer(fresh_server.url, new_user_id())
    try:
        assert bystander.call("joinRoom", bystander.user_id) == {"ok": True}
    finally:
        bystander.close()


def test_a_polling_client_that_never_polls_is_disconnected(fresh_server):
    before = fresh_server.rss_bytes()
    sid = polling_session(fresh_server)
    url = polling_url(fresh_server, sid)
    assert requests.post(url, data="40", timeout=5).status_code == 200  # the Socket.IO connect
    # 15 packets (Engine.IO takes 16 at most in one POST) of 4 KB: 120 KB of answers
    body = "\x1e".join(['421["' + "x" * 4000 + '",{}]'] * 15)
    answers = []
    with requests.Session() as http:
        for _ in range(300):
            answers.append(http.post(url, data=body, timeout=10).status_code)
            if answers[-1] != 200:
                break
    # it was disconnected: its posts are refused as those of an unknown session
    assert answers[-1] == 400, answers
    assert fresh_server.rss_bytes() - before < GROWTH_LIMIT


# -- malformed Engine.IO packets -------------------------------------------------------------

MALFORMED = {
    "empty text frame": "",
    "no packet type": "x",
    "bad base64": "babc",
    "deep nesting": "4" + "[" * 3000,
    "deep nesting after a space": "4 " + "[" * 3000,
}
ABOVE_INFO = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


@pytest.mark.parametrize("packet", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_engineio_packet_is_dropped_quietly_and_the_socket_lives_on(memory_server, packet):
    logged_before = len(memory_server.log())
    user = new_user_id()
    ws = raw_socket(memory_server, user)
    try:
        ws.send(packet)
        ws.send(f'427["joinRoom","{user}"]')
        assert ws.recv() == '437[{"ok":true}]'
    finally:
        ws.close()
    time.sleep(0.2)  # a traceback would be written as the connection ends
    logged = memory_server.log()[logged_before:]
    assert not ABOVE_INFO.search(logged), logged


# -- half-open requests ----------------------------------------------------------------------

@pytest.fixture(scope="module", params=[APP_PY, GUNICORN], ids=["app.py", "gunicorn"])
def header_timeout_server(request):
    process = ServerProcess({"HOMEAPP_HEADER_TIMEOUT": HEADER_TIMEOUT, "HOMEAPP_ALLOW_OPEN": 1})
    process.start(entry=request.param)
    yield process
    process.stop()


def test_requests_whose_headers_never_end_are_closed_after_the_header_timeout(header_timeout_server):
    address = ("127.0.0.1", header_timeout_server.port)
    half_open = []
    try:
        for _ in range(500):
            sock = socket.create_connection(address)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            half_open.append(sock)
        deadline = time.monotonic() + HEADER_TIMEOUT + 10
        for sock in half_open:
            assert read_to_end(sock, timeout=max(0.1, deadline - time.monotonic())) == b""
    finally:
        for sock in half_open:
            sock.close()


def test_headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline(header_timeout_server):
    """The timeout bounds the whole header, not each read: a byte every 0.2 s does not extend it."""
    trickled = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 1000
    with socket.create_connection(("127.0.0.1", header_timeout_server.port)) as sock:
        sock.settimeout(0.2)
        started = time.monotonic()
        closed = False
        for byte in trickled:
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""
            except socket.timeout:
                continue
            except OSError:
                closed = True
            if closed or time.monotonic() - started > HEADER_TIMEOUT + 10:
                break
    assert closed


def test_a_long_poll_and_a_websocket_outlive_the_header_timeout(header_timeout_server):
    polling = Peer(header_timeout_server.url, new_user_id(), transports=("polling",))
    on_websocket = Peer(header_timeout_server.url, new_user_id())
    try:
        time.sleep(HEADER_TIMEOUT * 3)  # each waits on a request whose headers came long ago
        for peer in (polling, on_websocket):
            assert peer.call("joinRoom", peer.user_id) == {"ok": True}
        assert polling.client.transport() == "polling"
    finally:
        polling.close()
        on_websocket.close()


# -- connection churn ------------------------------------------------------------------------

CHURN_ROUND = 1000
CHURN_GROWTH_LIMIT = 3 * MB  # between rounds 2 and 4; each round kept about 4.5 MB before


def connect_identify_disconnect(server):
    user = new_user_id()
    ws = raw_socket(server, user)
    try:
        ws.send(f'421["addOnlineUser",{{"userID":"{user}","userUsername":"churn"}}]')
        while not ws.recv().startswith("431"):
            pass
    finally:
        ws.close()


def test_memory_stays_level_under_connection_churn(fresh_server):
    """What a past connection held is released: round after round reuses the same memory."""
    rss = []
    for _ in range(4):
        for _ in range(CHURN_ROUND):
            connect_identify_disconnect(fresh_server)
        rss.append(fresh_server.rss_bytes())
    assert rss[3] - rss[1] < CHURN_GROWTH_LIMIT, [f"{r / MB:.1f} MB" for r in rss]
