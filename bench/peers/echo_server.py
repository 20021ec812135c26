"""The raw ceiling: a bare gevent-websocket server, one frame in and one frame per delivery out.

It speaks just enough Engine.IO 4 / Socket.IO 5 framing for the same socket.io-client load
generator to connect to it unchanged (handshake, namespace connect, pings, acks), and does
nothing else: no JSON parsing, no validation, no per-event context. A socket names its room in
the handshake query (``?room=1:2``). A ``42["message",...]`` frame is copied, as it came, once
to the sender and three times to every other socket of its room: in a room of two that is the
four deliveries of the private-chat relay. Every event that asks for an acknowledgement
(``42<id>[...]``) is answered ``43<id>[{"ok":true}]``; any other frame is dropped.

With ``--nodelay`` it sets TCP_NODELAY on every accepted socket, which gevent's pywsgi (and so
the HomeApp server) does not: the difference is what Nagle's algorithm costs this stack.

    python bench/peers/echo_server.py --port 5083 [--nodelay]
"""
import argparse
import os
import socket
from urllib.parse import parse_qs

import gevent
from gevent import pywsgi
from gevent.lock import Semaphore
from geventwebsocket.handler import WebSocketHandler

PING_INTERVAL = 25  # seconds, as python-engineio and the Node server announce
OPEN = ('0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,'
        '"maxPayload":1000000}')
RELAYED = '42["message"'
COPIES_TO_OTHERS = 3  # messagePage, messageResponseNotify and messageRoom of the relay

rooms = {}    # room id -> list of Peer
peers = set()


class Peer:
    """One websocket; the lock keeps two greenlets from interleaving their frames on it."""

    __slots__ = ("ws", "lock")

    def __init__(self, ws):
        self.ws = ws
        self.lock = Semaphore()

    def send(self, frame, copies=1):
        with self.lock:
            for _ in range(copies):
                self.ws.send(frame)


def relay(sender, members, frame):
    for peer in members:
        try:
            peer.send(frame, 1 if peer is sender else COPIES_TO_OTHERS)
        except OSError:
            pass  # that peer is closing; its own loop cleans up


def acknowledge(peer, frame):
    digits = 2
    while digits < len(frame) and frame[digits].isdigit():
        digits += 1
    if digits > 2:
        peer.send("43" + frame[2:digits] + '[{"ok":true}]')


def answer(peer, members, sid, frame):
    """What the ceiling does with one incoming text frame: relay it to the room, acknowledge
    it, or accept the namespace connect. `peer` needs only `send(frame, copies=1)`; it is
    shared with the evented peer (evented_echo.py), so that both speak the same."""
    if frame.startswith(RELAYED):
        relay(peer, members, frame)
    elif frame.startswith("42"):
        acknowledge(peer, frame)
    elif frame.startswith("40"):
        peer.send('40{"sid":"%s"}' % sid)


def serve(ws, room_id):
    peer = Peer(ws)
    sid = os.urandom(8).hex()
    members = rooms.setdefault(room_id, []) if room_id else []
    members.append(peer)
    peers.add(peer)
    try:
        peer.send(OPEN % sid)
        while True:
            frame = ws.receive()
            if frame is None:
                break
            answer(peer, members, sid, frame)
    finally:
        members.remove(peer)
        peers.discard(peer)
        if room_id and not members:
            rooms.pop(room_id, None)


def application(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"websocket transport only\n"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    serve(ws, query.get("room", [None])[0])
    return []


def ping_forever():
    """Engine.IO 4: the server pings; a client that hears nothing for 45 s hangs up."""
    while True:
        gevent.sleep(PING_INTERVAL)
        for peer in list(peers):
            try:
                peer.send("2")
            except OSError:
                pass


class NoDelayServer(pywsgi.WSGIServer):
    def handle(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().handle(sock, address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5083)
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on accepted sockets")
    args = parser.parse_args()
    gevent.spawn(ping_forever)
    server_class = NoDelayServer if args.nodelay else pywsgi.WSGIServer
    server = server_class((args.host, args.port), application, handler_class=WebSocketHandler, log=None)
    print(f"echo ceiling on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
