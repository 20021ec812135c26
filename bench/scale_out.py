"""Several processes on one Redis: relay throughput with 1, 2 and 4 processes, and the CPU a
process spends on traffic among other processes' sockets, for two versions of the server in one
run (the machine is shared: only figures from the same run compare).

    .venv/bin/python -m bench.scale_out                    # before: the commit before room channels
    .venv/bin/python -m bench.scale_out --before REV --runs 3 --out DIR

"after" is this checkout; "before" is REV exported with `git archive`. Every server process
runs on core 0, the load generator (bench/loadgen.js) and the private Redis on core 1, as in
bench/run.py, so the throughput with N processes is what N processes make of one core: the
queue's cost per process, not the machine's parallelism. Each measurement starts fresh servers
on an emptied Redis.

- throughput: the relay scenario (100 rooms of 2, `message` closed loop, 8 in flight per
  room) with each room's two sockets on two consecutive processes, so that with two or more
  processes every message crosses between them; with one, every emit still goes through Redis.
- bystanders: four processes, the relay among sockets of the first two only, and 20 online
  users on each of the other two: their CPU, against the busier two's.

Writes results.json and results.md to --out (default bench/results/scale-out-<UTC time>/).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from bench.profiles import closed
from bench.run import SetupError, budget, check_prerequisites, machine, run_loadgen
from bench.targets import BENCH, ROOT, TARGETS, PrivateRedis, RunningServer, with_redis

PROCESS_COUNTS = (1, 2, 4)
BYSTANDERS_IDLE_USERS = 20
RELAY = {"scenario": "relay", "event": "message", "rooms": 100, "room_size": 2,
         "closed_steps": closed([8], 1.5, 3)}
SERVER = with_redis(TARGETS["homeapp"])


def git(*args, **kwargs):
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, **kwargs).stdout


def default_before():
    """The parent of the commit that gave each Socket.IO room its own channel."""
    commits = git("log", "--reverse", "--format=%H", "-S", "def queue_room", "--",
                  "homeapp/store/redis_keys.py", text=True).split()
    if not commits:
        raise SetupError("no commit introduces room channels here: pass --before REV")
    return commits[0] + "^"


def export(rev, into):
    """The tree of commit `rev`, written under `into`."""
    archive = git("archive", "--format=tar", rev)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def relay(tree, processes, redis, log_dir, tag, busy=None, idle_per_process=0):
    """One relay step among the sockets of the first `busy` of `processes` fresh servers (all by
    default); the others each hold `idle_per_process` online users. Returns the step's record."""
    busy = busy or processes
    redis.flush()
    with ExitStack() as stack:
        servers = [stack.enter_context(RunningServer(SERVER, log_dir / f"{tag}-{n}.log", redis.url, cwd=tree))
                   for n in range(processes)]
        config = dict(RELAY, target="server", url=servers[0].url,
                      urls=[s.url for s in servers[:busy]],
                      idle_urls=[s.url for s in servers[busy:]], idle_per_url=idle_per_process,
                      server_pids=[s.pid for s in servers])
        lines = run_loadgen(config, budget(config))
    step = next(line for line in lines if line["type"] == "step")
    return {key: step[key] for key in ("msg_s", "servers_cpu", "loadgen_cpu", "other_cpu", "valid",
                                       "seconds", "lost_deliveries")}


def measure(versions, runs, redis, log_dir):
    records = []
    for run in range(runs):
        # alternate which version goes first, so that a drift in the machine's load is shared
        for version, tree in (versions if run % 2 == 0 else versions[::-1]):
            for processes in PROCESS_COUNTS:
                record = relay(tree, processes, redis, log_dir, f"{version}-{processes}-{run}")
                records.append(dict(record, kind="throughput", version=version, processes=processes, run=run))
                print(f"  {version}, {processes} processes: {record['msg_s']} msg/s "
                      f"(servers' CPU {record['servers_cpu']})", flush=True)
            record = relay(tree, 4, redis, log_dir, f"{version}-bystanders-{run}", busy=2,
                           idle_per_process=BYSTANDERS_IDLE_USERS)
            records.append(dict(record, kind="bystanders", version=version, processes=4, run=run))
            print(f"  {version}, bystanders: {record['msg_s']} msg/s, CPU {record['servers_cpu']}",
                  flush=True)
    return records


def summarize(records, versions):
    """Medians over runs, per version: msg/s by process count, and the bystanders' CPU."""
    summary = {}
    for version, _ in versions:
        # steps where the generator saturated its core count too: their rates are lower bounds
        mine = [r for r in records if r["version"] == version]
        by_count = {n: [r for r in mine if r["kind"] == "throughput" and r["processes"] == n]
                    for n in PROCESS_COUNTS}
        throughput = {n: statistics.median([r["msg_s"] for r in runs] or [0]) for n, runs in by_count.items()}
        # what the servers spent per message, all processes together: unlike msg/s, it does not
        # depend on how much of the core the machine's other load left them
        cost = {n: statistics.median([1e6 * sum(r["servers_cpu"]) / r["msg_s"] for r in runs if r["msg_s"]]
                                     or [0]) for n, runs in by_count.items()}
        bystanders = [r for r in mine if r["kind"] == "bystanders"]
        busy = [min(r["servers_cpu"][:2]) for r in bystanders]
        idle = [max(r["servers_cpu"][2:]) for r in bystanders]
        summary[version] = {
            "msg_s": throughput,
            "cpu_us_per_msg": cost,
            "bystanders_msg_s": statistics.median([r["msg_s"] for r in bystanders] or [0]),
            "busy_cpu": statistics.median(busy or [0]),
            "bystander_cpu": statistics.median(idle or [0]),
            "bystander_us_per_msg": statistics.median(
                [1e6 * max(r["servers_cpu"][2:]) / r["msg_s"] for r in bystanders if r["msg_s"]] or [0]),
            "ratio": statistics.median([i / b for i, b in zip(idle, busy) if b] or [0]),
        }
    return summary


def markdown(results):
    summary = results["summary"]
    names = list(summary)
    lines = [f"Run {results['started']}, {results['runs']} runs, medians; before = `{results['before']}`, "
             f"after = `{results['after']}`. Load average at start: {results['machine']['loadavg_at_start']}.",
             "", "| processes | " + " | ".join(f"{n} msg/s | {n} server CPU µs per msg" for n in names) + " |",
             "| --- |" + " --- | --- |" * len(names)]
    for count in PROCESS_COUNTS:
        lines.append(f"| {count} | " + " | ".join(
            f"{summary[n]['msg_s'][count]:.0f} | {summary[n]['cpu_us_per_msg'][count]:.0f}" for n in names) + " |")
    lines += ["", "Four processes, the relay among the sockets of two, 20 online users on each of the "
              "other two (CPU in shares of one core over the measured window):", "",
              "| version | msg/s | each of the two busy | busiest bystander | bystander / busy | "
              "bystander µs per relayed message |", "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        s = summary[name]
        lines.append(f"| {name} | {s['bystanders_msg_s']:.0f} | {s['busy_cpu']:.3f} | "
                     f"{s['bystander_cpu']:.3f} | {s['ratio']:.3f} | {s['bystander_us_per_msg']:.1f} |")
    invalid = sum(1 for r in results["records"] if not r["valid"])
    if invalid:
        lines += ["", f"In {invalid} of {len(results['records'])} steps the load generator used more "
                  f"than 90 % of its core: those rates are lower bounds."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="the commit to compare against (default: the one before "
                        "room channels)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/scale-out-<time>)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        check_prerequisites()
        if not PrivateRedis.available():
            raise SetupError("redis-server is not installed (apt-get install redis-server)")
        before = args.before or default_before()
    except SetupError as exc:
        sys.exit(f"bench: {exc}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or BENCH / "results" / f"scale-out-{stamp}"
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    after = git("describe", "--always", "--dirty", text=True).strip()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="homeapp-before-") as old, \
            PrivateRedis(out_dir / "logs" / "redis.log") as redis:
        versions = [("before", export(before, Path(old))), ("after", ROOT)]
        print(f"bench: scale-out, before = {before}, after = {after}; results in {out_dir}", flush=True)
        records = measure(versions, args.runs, redis, out_dir / "logs")
    results = {"started": stamp, "before": git("rev-parse", "--short", before, text=True).strip(),
               "after": after, "runs": args.runs, "machine": machine(), "records": records,
               "summary": summarize(records, versions), "wall_s": round(time.monotonic() - started, 1)}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "results.md").write_text(markdown(results))
    print(markdown(results), flush=True)
    return out_dir


if __name__ == "__main__":
    main()
