"""The whole path of a `message` in process: Engine.IO's receive to each socket's write.

    python -m bench.event_path                        # this tree: µs per message, best of --rounds
    python -m bench.event_path --tree DIR             # another checkout (git archive <commit> | tar -x -C DIR)
    python -m bench.event_path --profile              # cProfile's tables instead

Each message is a text frame as socket.io-client sends it, given to the socket's Feed as a
worker of the frame path (homeapp/transport/evented.py) hands it: Engine.IO's and Socket.IO's
decoding, dispatch, validation, the handler, its emits and the acknowledgement, down to each recipient
socket's connection, which frames what it is sent and writes nothing. 100 rooms of two, both
members in their room's and their own channel, as in the relay benchmark; messages go round
the rooms. bench/metrics_overhead.py stops before the socket (no Engine.IO on either side).

Wall-clock times drift on a shared machine; count instructions, which valgrind repeats exactly
with recovery off (on, the histories trim by the clock):

    for n in 0 2000; do PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.event_path --rounds 1 --calls $n; done    # (refs at 2000 - refs at 0) / 2000
"""
import argparse
import cProfile
import json
import os
import pstats
import sys
import time

from gevent import monkey

monkey.patch_all()  # as in the server


class _Connection:
    """A frames.Connection that frames what it is sent and writes nothing."""

    sent = 0

    def __init__(self, frame, text):
        self._frame, self._text = frame, text

    def send(self, message):
        self._frame(self._text, message.encode())
        _Connection.sent += 1


def build(tree, rooms):
    """An app from `tree` with `rooms` rooms of two on Engine.IO sockets; returns {user id: socket}."""
    sys.path.insert(0, tree)
    os.environ.update(HOMEAPP_MESSAGE_RATE="0", HOMEAPP_TYPING_RATE="0", HOMEAPP_LOG_LEVEL="WARNING")
    from engineio.socket import Socket
    from homeapp import create_app
    from homeapp.transport import frames
    hub = create_app().extensions["homeapp"]
    server = hub.server
    sockets = {}
    for r in range(rooms):
        room = f"{2 * r + 1}:{2 * r + 2}"
        for user in room.split(":"):
            sock = Socket(server.eio, f"eio-{user}")
            sock.connected = sock.upgraded = True
            sock.last_ping = None  # no pings here: never timed out (a long run would lose its frames)
            sock.direct_websocket = _Connection(frames.frame, frames.TEXT)
            server.eio.sockets[sock.sid] = sock
            sid = server.manager.connect(sock.sid, "/")
            hub.connections.open(sid, user, f"user{user}")
            server.enter_room(sid, "user:" + user)
            server.enter_room(sid, "room:" + room)
            sockets[user] = sock
    return sockets


def message_frame(r, n):
    """The Engine.IO text of message `n` from the first member of room `r`, with an ack id."""
    a, b = 2 * r + 1, 2 * r + 2
    data = {"message": f"Hello there {n}!", "from": str(a), "roomID": f"{a}:{b}", "fromUsername": f"user{a}",
            "roomKey": f"room:{a}:{b}", "lastMessage": "Hello there!",
            "unreadMessArray": [{"recipientID": str(b), "roomID": f"{a}:{b}", "countNumber": 1,
                                 "updateStatus": True}],
            "createRoomNotification": None, "contact": False}
    return f"42{n % 100}" + json.dumps(["message", {"data": data}], separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's tables instead")
    args = parser.parse_args()
    sockets = build(args.tree, args.rooms)
    from homeapp.transport.evented import Feed
    feeds = {user: Feed(sock, sock.direct_websocket) for user, sock in sockets.items()}
    frames_in = [(feeds[str(2 * (n % args.rooms) + 1)], message_frame(n % args.rooms, n)) for n in range(1000)]

    def run(calls):
        for n in range(calls):
            feed, text = frames_in[n % 1000]
            feed.handle(text)

    run(2000)  # warm: every room has spoken
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run, args.calls)
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        return
    best = float("inf")
    for _ in range(args.rounds):
        started = time.perf_counter()
        run(args.calls)
        best = min(best, time.perf_counter() - started)
    print(f"tree: {args.tree}")
    print(f"message {best / max(args.calls, 1) * 1e6:8.2f} µs per message "
          f"({_Connection.sent} frames written in all)")


if __name__ == "__main__":
    main()
