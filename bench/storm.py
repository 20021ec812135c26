"""The reconnect storm of a deploy, with recovery on (docs/recovery.md, bench/recovery.md).

Two server processes on a private redis-server, HOMEAPP_RECOVERY_SECONDS=120; `--sockets`
sockets in private rooms of two, one member of each on either process; the members on the
process that stays send `message` at `--rate` a second in all, for `--seconds`; then the other
process is stopped (SIGTERM, as a deploy does) and every one of its sockets reconnects to the one
that stays at once (bench/storm.js, socket.io-client 4.8). Reported: how many recovered, whether
each got every message once and in order, the surviving process's peak RSS growth, a bystander's
acknowledgement times during the storm, and whether a process declared Redis unreachable.

    .venv/bin/python -m bench.storm --sockets 2000 --rate 500 --seconds 60
    .venv/bin/python -m bench.storm --tree /tmp/old-tree     # the servers of another checkout
    .venv/bin/python -m bench.storm --cluster                # on a 3-master Redis Cluster
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.targets import BENCH, LOADGEN_CORE, TARGETS, PrivateRedis, RunningServer, stop, with_redis

SERVER = with_redis(TARGETS["homeapp"])
OUTAGE = "Redis is unreachable"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000, help="receivers and senders, 2 a room")
    parser.add_argument("--rate", type=float, default=500.0, help="messages a second, in all")
    parser.add_argument("--seconds", type=float, default=60.0, help="traffic before the storm")
    parser.add_argument("--after", type=float, default=10.0, help="traffic after the reconnects")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose app.py the servers run")
    parser.add_argument("--cluster", action="store_true",
                        help="a private Redis Cluster of 3 masters with a replica each, started as the "
                             "tests start theirs (tests/redis_cluster.py), instead of one redis-server")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the servers")
    parser.add_argument("--base", type=int, default=700_000_000, help="first user id")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy's flame graph (SVG; collapsed stacks with .txt) of a process, "
                             "from the stop")
    parser.add_argument("--profile-process", choices=("staying", "stopping"), default="staying")
    parser.add_argument("--profile-seconds", type=int, default=30, help="how long py-spy records")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HOMEAPP_RECOVERY_SECONDS", "120")
    for pair in args.env:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    logs = Path(tempfile.mkdtemp(prefix="homeapp-storm-"))
    load = os.getloadavg()
    with (PrivateCluster() if args.cluster else PrivateRedis(logs / "redis.log")) as redis:
        with RunningServer(SERVER, logs / "a.log", redis.url, cwd=args.tree) as a, \
                RunningServer(SERVER, logs / "b.log", redis.url, cwd=args.tree) as b:
            config = {"url_a": a.url, "url_b": b.url, "pid_a": a.pid, "pid_b": b.pid, "rooms": args.sockets // 2,
                      "rate": args.rate, "after": args.after, "storm_timeout": 60,
                      "base": args.base}
            driver = subprocess.Popen(
                ["taskset", "-c", LOADGEN_CORE, "node", str(BENCH / "storm.js"), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=BENCH)
            result, measured, profiler = {}, {}, None
            for line in driver.stdout:
                message = json.loads(line)
                print(json.dumps(message), flush=True)
                if message["type"] == "ready":
                    time.sleep(args.seconds)
                    profiler = _profile((b if args.profile_process == "staying" else a).pid,
                                        args.profile, args.profile_seconds)
                    stopped = time.monotonic()
                    stop(a.process, timeout=30)
                    print(json.dumps({"type": "stopped", "seconds": time.monotonic() - stopped}),
                          flush=True)
                    driver.stdin.write("stop\n")
                    driver.stdin.flush()
                elif message["type"] in ("done", "error"):
                    result = message
                    # what the clients' closing at the end causes is not the storm's
                    measured = {name: (logs / name).read_text(errors="replace")
                                for name in ("a.log", "b.log")}
            driver.wait()
            if profiler is not None:
                profiler.wait()
    result["redis_down_declared"] = [name for name, text in measured.items() if OUTAGE in text]
    result.update(_restores(measured.get("a.log", ""), measured.get("b.log", "")))
    result["logs"] = str(logs)
    result["load_at_start"] = [round(x, 2) for x in load]
    print(json.dumps(result), flush=True)
    return 0 if result.get("type") == "done" else 1


class PrivateCluster:
    """tests/redis_cluster.py's cluster, its nodes pinned beside the load generator as
    PrivateRedis is. `url`: REDIS_URL, redis+cluster://."""

    def __enter__(self):
        from tests.redis_cluster import RedisClusterGroup
        self.group = RedisClusterGroup(masters=3, replicas=1)
        for node in self.group.nodes:
            subprocess.run(["taskset", "-p", "-c", LOADGEN_CORE, str(node.proc.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        self.url = self.group.url
        return self

    def __exit__(self, *exc):
        self.group.stop()


def _when(line):
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def _restores(stopping, staying):
    """From the logs: when the surviving process's first and last restore came, in seconds after
    the stopping process began to shut down, and how many users the stopping one took offline."""
    started = next((_when(line) for line in stopping.splitlines() if "shutting down" in line), None)
    done = [_when(line) for line in staying.splitlines() if line.endswith(" recovered")]
    retired = re.search(r"retired: removed this process's \d+ sockets; (\d+) users went offline", stopping)
    found = {"retired_users": int(retired[1]) if retired else None}
    if started is not None and done:
        found["restores_s"] = [round((min(done) - started).total_seconds(), 2),
                               round((max(done) - started).total_seconds(), 2)]
    return found


def _profile(pid, path, seconds):
    """py-spy recording process `pid` for `seconds` into `path`, or None without a path. Samples
    without stopping the process (--nonblocking), so that the profile costs it little."""
    if path is None:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    kind = "raw" if path.suffix == ".txt" else "flamegraph"  # raw: collapsed stacks, to count
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "100", "--nonblocking",
                             "--duration", str(seconds), "--format", kind, "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
