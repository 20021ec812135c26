"""What waiting for Redis costs an ack while Redis is healthy (bench/acks.md): one process on a
private Redis (the test suite's fixtures), 40 python-socketio clients in 20 rooms of two; 300
messages one after the other (ack round trip), then 20 senders in a closed loop (messages per
second, and the server's CPU per message). Run from a tree's root:
`.venv/bin/python bench/acks_redis.py`."""
import statistics
import sys
import threading
import time

sys.path.insert(0, ".")
from tests import payloads  # noqa: E402
from tests.cluster import Cluster  # noqa: E402
from tests.live import room_of  # noqa: E402
from tests.processes import cpu_seconds  # noqa: E402

cluster = Cluster(1)
try:
    peers = [cluster.peer(0) for _ in range(40)]
    pairs = [(peers[i], peers[i + 1]) for i in range(0, 40, 2)]
    for a, b in pairs:
        for p in (a, b):
            assert p.call("chatRoom.join", room_of(a, b)) == {"ok": True}
    a, b = pairs[0]
    room = room_of(a, b)
    for i in range(50):
        a.call("message", payloads.message(a.user_id, room, f"w{i}"))
    lat = []
    for i in range(300):
        t = time.perf_counter()
        assert a.call("message", payloads.message(a.user_id, room, f"s{i}"))["ok"]
        lat.append((time.perf_counter() - t) * 1000)
    pid = cluster[0].proc.pid
    n = 150
    def loop(a, b):
        room = room_of(a, b)
        for i in range(n):
            assert a.call("message", payloads.message(a.user_id, room, f"c{i}"), timeout=20)["ok"]
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    threads = [threading.Thread(target=loop, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    msgs = n * len(pairs)
    print(f"ack ms p50 {statistics.median(lat):.2f} p90 {statistics.quantiles(lat, n=10)[-1]:.2f}; "
          f"closed loop 20 sockets: {msgs / wall:.0f} msg/s, server {cpu / msgs * 1e6:.0f} µs/msg")
finally:
    cluster.close()
