"""TLS that the process terminates itself (gunicorn with a certificate, or `python app.py` with
HOMEAPP_TLS_CERT and HOMEAPP_TLS_KEY) runs on the frame path: real Socket.IO clients over wss://
and https://, their certificate checked, send events and receive deliveries; and no connection
keeps a greenlet once it is upgraded."""
import datetime
import ipaddress
import json
import socket
import ssl
import subprocess

import pytest
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.credentials import NODE_DIR
from tests.live import new_user_id
from tests.processes import ServerProcess
from tests.test_live_recovery import require_socket_io_client

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
        process.cert = cert
        process.start(entry=entry)
        yield process
        assert process.stop() == 0, process.log()


def node_peers(server, transports, users, say=None):
    """socket.io-client in Node (tests/node/tls_peers.js), a socket per user, all open at once,
    trusting only the server's certificate: the acks, transports and events of each user.

    The real client, not python-socketio's: that one reads and writes one TLS connection from two
    threads, and in rounds of three sockets under gunicorn it lost one within seconds in about
    one round of ten (both ends saw the other close), where socket.io-client lost none of 300."""
    require_socket_io_client()
    run = subprocess.run(["node", str(NODE_DIR / "tls_peers.js"), server.url, str(server.cert),
                          ",".join(transports), ",".join(users), *([say] if say else [])],
                         capture_output=True, text=True, timeout=120, cwd=NODE_DIR)
    assert run.returncode == 0, (run.stdout, run.stderr, server.log()[-3000:])
    return json.loads(run.stdout)


@pytest.mark.parametrize("transports", [("websocket",), ("polling", "websocket")],
                         ids=["wss", "https upgraded to wss"])
def test_a_message_over_tls_reaches_the_other_member_only(tls_server, transports):
    a, b, c = users = [new_user_id() for _ in range(3)]
    got = node_peers(tls_server, transports, users, say="over TLS")
    assert got["acks"][a][:2] == [{"ok": True}, {"ok": True}] and got["acks"][a][2]["ok"] is True, got["acks"]
    assert all(got["acks"][u] == [{"ok": True}, {"ok": True}] for u in (b, c)), got["acks"]
    assert set(got["transports"].values()) == {"websocket"}, got["transports"]
    room = ":".join(sorted((a, b), key=int))
    assert [e for e, _ in got["events"][b]] == ["messagePage", "messageResponseNotify"], got["events"][b]
    assert got["events"][b][0] == ["messagePage", {"roomID": room, "lastMessage": "over TLS"}]
    assert got["events"][a] == [] and got["events"][c] == []


def test_tls_websockets_hold_no_connection_place_once_upgraded(tls_server):
    """More websockets than gunicorn lets handlers run at once (`--worker-connections`), all open
    together and answering; under app.py, the same websockets over its TLS."""
    users = [new_user_id() for _ in range(WEBSOCKETS)]
    got = node_peers(tls_server, ("websocket",), users)
    assert got["acks"] == {user: [{"ok": True}, {"ok": True}] for user in users}


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
