"""TLS that the process terminates itself (gunicorn with a certificate, or `python app.py` with
HOMEAPP_TLS_CERT and HOMEAPP_TLS_KEY) runs on the frame path: real Socket.IO clients over wss://
and https://, their certificate checked, send events and receive deliveries; and no connection
keeps a greenlet once it is upgraded."""
import datetime
import ipaddress
import socket
import ssl

import pytest
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import payloads
from tests.live import Peer, new_user_id, room_of, settle
from tests.processes import ServerProcess

# gevent's limit on connections at once: a handler greenlet holds a place until it ends. On the
# frame path it ends once the websocket is handed over; a reader greenlet per connection would
# keep its place for the connection's life, and the sixth websocket would never be answered.
WORKER_CONNECTIONS = 5
WEBSOCKETS = 4 * WORKER_CONNECTIONS


def self_signed(directory):
    """A certificate for 127.0.0.1 and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module", params=["gunicorn", "app.py"])
def tls_server(request, tmp_path_factory):
    """The server with a certificate, as gunicorn serves it in production and as `python app.py`
    does with its settings; the clients of this process trust it (requests and websocket-client
    read their CA bundle from the environment)."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", str(cert))
        env.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(cert))
        if request.param == "gunicorn":
            process = ServerProcess({"HOMEAPP_ALLOW_OPEN": 1})
            entry = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "--certfile", str(cert),
                     "--keyfile", str(key), "--worker-connections", str(WORKER_CONNECTIONS), "wsgi:app")
        else:
            process = ServerProcess({"HOMEAPP_ALLOW_OPEN": 1, "HOMEAPP_TLS_CERT": str(cert),
                                     "HOMEAPP_TLS_KEY": str(key)})
            entry = ("app.py",)
        process.url = process.url.replace("http://", "https://")
        process.start(entry=entry)
        yield process
        assert process.stop() == 0, process.log()


def online(peer):
    assert peer.call("addOnlineUser", {"userID": peer.user_id, "userUsername": "u"}) == {"ok": True}
    assert peer.call("joinRoom", peer.user_id) == {"ok": True}
    return peer


@pytest.mark.parametrize("transports", [("websocket",), ("polling", "websocket")],
                         ids=["wss", "https upgraded to wss"])
def test_a_message_over_tls_reaches_the_other_member_only(tls_server, transports):
    a, b, c = (Peer(tls_server.url, new_user_id(), transports=transports) for _ in range(3))
    try:
        for peer in (a, b, c):
            online(peer)
        if transports[0] == "polling":
            settle(a, b)
            assert a.client.transport() == b.client.transport() == "websocket"
        a.clear(), b.clear(), c.clear()
        sent = payloads.message(a.user_id, room_of(a, b), text="over TLS")
        assert a.call("message", sent)["ok"]
        settle(a, b, c)
        assert [e for e, _ in b.got()] == ["messagePage", "messageResponseNotify"]
        assert b.got("messagePage") == [("messagePage", {"roomID": room_of(a, b), "lastMessage": "over TLS"})]
        assert a.got() == [] and c.got() == []
    finally:
        for peer in (a, b, c):
            peer.close()


def test_tls_websockets_hold_no_connection_place_once_upgraded(tls_server):
    """More websockets than gunicorn lets handlers run at once (`--worker-connections`), all open
    together and answering; under app.py, the same websockets over its TLS."""
    peers = []
    try:
        for _ in range(WEBSOCKETS):
            peers.append(Peer(tls_server.url, new_user_id()))
        for peer in peers:
            assert peer.call("joinRoom", peer.user_id) == {"ok": True}
    finally:
        for peer in peers:
            peer.close()


def test_an_unmasked_frame_over_tls_fails_the_connection_with_1002(tls_server):
    """RFC 6455 section 5.1, as the frame path enforces it (tests/test_rfc6455.py, in plain TCP)."""
    with _tls(tls_server) as sock:
        sock.sendall(_upgrade_request(tls_server))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(b"\x81\x0240")  # unmasked: a server must fail the connection
        received = head.partition(b"\r\n\r\n")[2]
        sock.settimeout(10)
        while chunk := sock.recv(4096):
            received += chunk
    assert received.endswith(b"\x88\x02\x03\xea"), received  # the close frame, 1002


def test_frames_sent_with_the_upgrade_request_are_read(tls_server):
    """What arrives in the request's TLS record past its head is decrypted before the hand-over:
    the frame path reads it first, with nothing more coming to wake it."""
    user = new_user_id()
    padded = f'421["joinRoom","{user}"{" " * 3000}]'  # past the handler's 1 KB read buffer
    frames = b"".join(websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format()
                      for text in ("40", padded))
    with _tls(tls_server) as sock:
        sock.sendall(_upgrade_request(tls_server, f"&userID={user}") + frames)  # one TLS record
        received = b""
        while b'431[{"ok":true}]' not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 101")


def _tls(server):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(_raw(server), server_hostname="127.0.0.1")


def _raw(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _upgrade_request(server, query=""):
    return (f"GET /socket.io/?EIO=4&transport=websocket{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()
