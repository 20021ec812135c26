"""Micro-benchmark: the websocket frame parser of homeapp/transport/frames.py against the sans-I/O
protocols of `wsproto` and `websockets`, on the frames the relay's clients send.

Each parser is fed the same bytes, as the read watcher hands them over (a read of several frames
at once under load, or one frame per read at low rates), and turns them into the messages as
str: header parsing, unmasking, UTF-8 validation. The parsers run interleaved, round after
round, in a rotating order, so that drift on a shared machine touches all of them alike; the
figure is the median over rounds of µs per frame. It also weighs what each keeps per
connection at rest, which an idle socket pays.

    .venv/bin/pip install --target /tmp/frames-parsers wsproto==1.3.2 websockets==17.4
    PYTHONPATH=/tmp/frames-parsers taskset -c 0 .venv/bin/python -m bench.frames_parsers

(The two libraries are not requirements of the project: bench/frames-parser.md says why.)
"""
import _socket
import argparse
import gc
import json
import os
import statistics
import time
import tracemalloc

import gevent.socket
from websocket import ABNF

from homeapp.transport import frames, worker

FRAMES = 2000


def relay_frames(count):
    """Masked client frames of `message` events as the relay's generator sends them."""
    made = []
    for i in range(count):
        data = {"data": {"message": f"Hello from the bench, message {i} — ok ✓", "from": "1001",
                         "roomID": "1001:1002", "fromUsername": "user1001", "roomKey": "room:1001:1002",
                         "lastMessage": "Hello", "createRoomNotification": None, "contact": False,
                         "unreadMessArray": [{"recipientID": "1002", "roomID": "1001:1002",
                                              "countNumber": 1, "updateStatus": True}]}}
        text = f'42{i}["message",{json.dumps(data, ensure_ascii=False)}]'
        made.append(ABNF.create_frame(text, ABNF.OPCODE_TEXT).format())
    return made


def reads(frame_list, per_read):
    return [b"".join(frame_list[i:i + per_read]) for i in range(0, len(frame_list), per_read)]


class _Listener:
    def __init__(self):
        self.messages = []

    def received(self, message):
        self.messages.append(message)

    def ended(self):
        pass


def hand_written(chunks):
    ours, theirs = gevent.socket.socketpair()
    plain = _socket.socket(fileno=ours.detach())
    plain.setblocking(False)
    conn = frames.Connection(plain, b"", worker.FrameLimits(65536, None, None))
    listener = conn.listener = _Listener()
    started = time.perf_counter()
    for chunk in chunks:
        conn._received(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    theirs.close()
    return elapsed, listener.messages


def with_wsproto(chunks):
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage
    conn = Connection(ConnectionType.SERVER)
    messages = []
    started = time.perf_counter()
    for chunk in chunks:
        conn.receive_data(chunk)
        for event in conn.events():
            if event.__class__ is TextMessage:
                messages.append(event.data)
    return time.perf_counter() - started, messages


def with_websockets(chunks):
    from websockets.frames import Opcode
    from websockets.protocol import Protocol, Side
    protocol = Protocol(Side.SERVER, max_size=65536)
    messages = []
    started = time.perf_counter()
    for chunk in chunks:
        protocol.receive_data(chunk)
        for frame in protocol.events_received():
            if frame.opcode is Opcode.TEXT:
                messages.append(frame.data.decode())
    return time.perf_counter() - started, messages


PARSERS = {"hand-written (frames.py)": hand_written, "wsproto 1.3.2": with_wsproto,
           "websockets 17.4 (sans-I/O)": with_websockets}


def bytes_per_connection():
    """What each parser keeps per connection, at rest: tracemalloc over 1,000 of them (for
    frames.py, the Connection with its watcher, the socket left out)."""
    from websockets.protocol import Protocol, Side
    from wsproto.connection import Connection, ConnectionType
    ours, theirs = gevent.socket.socketpair()
    makers = {"hand-written (frames.py)": lambda: frames.Connection(ours, b"", worker.FrameLimits(65536, None, None)),
              "wsproto 1.3.2": lambda: Connection(ConnectionType.SERVER),
              "websockets 17.4 (sans-I/O)": lambda: Protocol(Side.SERVER, max_size=65536)}
    sizes = {}
    for name, make in makers.items():
        gc.collect()
        tracemalloc.start()
        kept = [make() for _ in range(1000)]
        sizes[name] = tracemalloc.get_traced_memory()[0] / len(kept)
        tracemalloc.stop()
        del kept
    ours.close()
    theirs.close()
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    frame_list = relay_frames(FRAMES)
    print(f"{FRAMES} frames of {statistics.mean(map(len, frame_list)):.0f} bytes on average; "
          f"{args.rounds} interleaved rounds; median µs per frame (min-max)\n")
    sizes = bytes_per_connection()
    figures = {name: {20: [], 1: []} for name in PARSERS}
    reference = None
    for round_ in range(args.rounds):
        names = list(PARSERS)
        names = names[round_ % len(names):] + names[:round_ % len(names)]
        for per_read in (20, 1):
            chunks = reads(frame_list, per_read)
            for name in names:
                elapsed, messages = PARSERS[name](chunks)
                if reference is None:
                    reference = messages
                assert messages == reference, name
                figures[name][per_read].append(elapsed / FRAMES * 1e6)
    print("| parser | µs per frame, 20 frames per read | µs per frame, 1 frame per read | bytes per connection at rest |")
    print("| --- | --- | --- | --- |")
    for name, by_read in figures.items():
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in (by_read[20], by_read[1])]
        print(f"| {name} | {cells[0]} | {cells[1]} | {sizes[name]:.0f} |")
    print(f"\n(python {os.sys.version.split()[0]}, pid {os.getpid()})")


if __name__ == "__main__":
    main()
