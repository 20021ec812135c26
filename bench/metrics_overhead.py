"""What counting costs on the hot path: `message` and `startTypingRoom` through dispatch, in process.

    python bench/metrics_overhead.py                 # this tree
    python bench/metrics_overhead.py --tree DIR      # another checkout, e.g. one without metrics:
    git archive <commit> | tar -x -C /tmp/before && python bench/metrics_overhead.py --tree /tmp/before

Each event goes through the handler python-socketio would call (dispatch._run and all),
with two fake sockets in the room and on their user channels, so that every emit encodes
its packet as it would for a real client; only the write to the socket is left out.
Prints the best per-event time of several rounds, and the cost of each metric operation.
Run both trees pinned to one core (taskset -c 1) and compare.

On a busy machine wall-clock times drift by more than the difference; count instructions
instead, which valgrind repeats exactly (the difference of two runs is the events' share):

    for n in 0 2000; do PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/metrics_overhead.py --event message --rounds 1 --calls $n --no-ops; done
"""
import argparse
import gc
import os
import sys
import time
import timeit



def build(tree):
    """An app from `tree` with two users in room 1:2; returns (handlers, sender sid)."""
    sys.path.insert(0, tree)
    os.environ.update(HOMEAPP_MESSAGE_RATE="0", HOMEAPP_TYPING_RATE="0", HOMEAPP_LOG_LEVEL="WARNING")
    from homeapp import create_app
    app = create_app()
    hub = app.extensions["homeapp"]
    server = hub.server
    server._send_eio_packet = lambda eio_sid, pkt: None  # everything up to the socket write
    sids = {}
    for user in ("1", "2"):
        sid = server.manager.connect(f"eio-{user}", "/")
        hub.connections.open(sid, user, f"user{user}")
        server.enter_room(sid, "user:" + user)
        server.enter_room(sid, "room:1:2")
        sids[user] = sid
    return server.handlers["/"], sids["1"]


def per_call(handler, sid, payload, rounds, calls):
    """Best time of one call, in microseconds, over `rounds` rounds of `calls` calls."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            handler(sid, payload)
        best = min(best, (time.perf_counter() - started) / max(calls, 1))
    return best * 1e6


def metric_operations():
    """The cost of each thing _run adds, in nanoseconds, or {} when the tree has no metrics."""
    try:
        from homeapp.telemetry import metrics
        from homeapp.telemetry.logs import EVENT_CONTEXT
    except ImportError:
        return {}
    meter = metrics.EventMeter("bench")

    def plain_emit(event, data=None, to=None, room=None, skip_sid=None):
        return None

    emit = metrics.counting_emits(plain_emit)
    ops = {
        "counter child inc": meter.ok.inc,
        "histogram child observe": lambda: meter.duration.observe(0.0002),
        "perf_counter pair": lambda: time.perf_counter() - time.perf_counter(),
        "contextvar set + reset": lambda: EVENT_CONTEXT.reset(EVENT_CONTEXT.set(None)),
        "emit through the counting wrapper": lambda: emit("messageRoom", None, to="room:1:2"),
        "the same emit, unwrapped": lambda: plain_emit("messageRoom", None, to="room:1:2"),
        "empty lambda (timing overhead)": lambda: None,
    }
    return {name: min(timeit.repeat(op, number=100000, repeat=5)) / 100000 * 1e9 for name, op in ops.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--event", action="append", choices=["message", "startTypingRoom"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--no-ops", action="store_true", help="skip timing each metric operation")
    parser.add_argument("--freeze", action="store_true",
                        help="gc.freeze() the start-up heap, whose size differs between trees")
    args = parser.parse_args()
    from gevent import monkey
    monkey.patch_all()  # as in the server: prometheus_client's locks become gevent's
    handlers, sid = build(args.tree)
    message = {"data": {"message": "Hello there!", "from": "1", "roomID": "1:2", "fromUsername": "user1",
                        "roomKey": "room:1:2", "lastMessage": "Hello there!",
                        "unreadMessArray": [{"recipientID": "2", "roomID": "1:2", "countNumber": 1,
                                             "updateStatus": True}],
                        "createRoomNotification": None, "contact": False}}
    payloads = {"message": message, "startTypingRoom": {"roomID": "1:2", "user": {"userID": "1",
                                                                                   "username": "user1"}}}
    if args.freeze:
        gc.collect()
        gc.freeze()
    print(f"tree: {args.tree}")
    for event in args.event or list(payloads):
        assert handlers[event](sid, payloads[event])["ok"] is True
        took = per_call(handlers[event], sid, payloads[event], args.rounds, args.calls)
        print(f"{event:16s} {took:8.2f} µs per event")
    for name, ns in ({} if args.no_ops else metric_operations()).items():
        print(f"  {name:34s} {ns:7.0f} ns")


if __name__ == "__main__":
    main()
