"""Run the benchmark: every scenario against every server, then write JSON, Markdown and PNG plots.

    .venv/bin/python -m bench.run                # the full run (about 15 minutes)
    .venv/bin/python -m bench.run --quick        # one run of each, shorter (about 3 minutes)
    .venv/bin/python -m bench.run --smoke        # seconds; what tests/test_bench_smoke.py runs
    .venv/bin/python -m bench.run --scenarios relay --targets homeapp,node --runs 5

Each server runs pinned to core 0, the load generator (bench/loadgen.js) to core 1, and every
run of every scenario starts a fresh server process. Results go to bench/results/<time>/ unless
--out says otherwise; see bench/README.md for how to read them.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from bench import report
from bench.profiles import PROFILES
from bench.targets import (BENCH, LOADGEN_CORE, ROOT, TARGETS, PrivateRedis, RunningServer,
                           with_redis)

LOADGEN = BENCH / "loadgen.js"


class SetupError(Exception):
    """Something the benchmark needs is missing; the message says how to get it."""


def check_prerequisites():
    if shutil.which("node") is None:
        raise SetupError("node is not installed (Debian: apt-get install nodejs npm)")
    if not (BENCH / "node_modules" / "socket.io-client").is_dir():
        raise SetupError("the load generator's packages are missing: run `npm ci --prefix bench`")
    if shutil.which("taskset") is None:
        raise SetupError("taskset is missing (Debian: apt-get install util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SetupError("needs two cores: one for the server, one for the load generator")


def resolve_target(name):
    if name.endswith("+redis"):
        return with_redis(TARGETS[name[: -len("+redis")]])
    return TARGETS[name]


def run_loadgen(config, timeout):
    """Run the generator on its core; return the JSON lines it printed."""
    proc = subprocess.run(
        ["taskset", "-c", LOADGEN_CORE, "node", str(LOADGEN), json.dumps(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    errors = [line["error"] for line in lines if line.get("type") == "error"]
    if proc.returncode != 0 or errors:
        detail = errors[0] if errors else proc.stderr.strip()[-2000:]
        raise RuntimeError(f"load generator failed ({proc.returncode}): {detail}")
    return lines


def budget(config):
    """A generous upper bound on one generator run, so a hang cannot outlive the benchmark."""
    seconds = 60
    for step in config.get("closed_steps", []) + config.get("steps", []):
        seconds += step["warmup_s"] + step["duration_s"] + 10
    opens = len(config.get("open_levels", [])) + len(config.get("open_fraction_of_max", []))
    if opens:
        step = config["open_step"]
        seconds += opens * (step["warmup_s"] + step["duration_s"] + 10)
    seconds += 90 * len(config.get("levels", []))
    return seconds


def run_scenario(scenario, target_names, runs, out_dir, redis):
    """Every run of one scenario on each target; returns the records for results.json."""
    records = []
    for name in target_names:
        target = resolve_target(name)
        if target.uses_redis and redis is None:
            records.append({"scenario": scenario.name, "target": name, "skipped": "redis-server not found"})
            print(f"  {name}: skipped, redis-server not found", flush=True)
            continue
        for run in range(runs):
            if target.uses_redis:
                redis.flush()
            started = time.monotonic()
            log = out_dir / "logs" / f"{scenario.name}-{name}-{run}.log"
            record = {"scenario": scenario.name, "target": name, "run": run}
            try:
                with RunningServer(target, log, redis.url if redis else None) as server:
                    config = dict(scenario.config, url=server.url, server_pid=server.pid,
                                  target=target.flavour, clk_tck=os.sysconf("SC_CLK_TCK"))
                    lines = run_loadgen(config, budget(config))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                record["error"] = str(exc)
                print(f"  {name} run {run + 1}: FAILED: {exc}", flush=True)
                records.append(record)
                continue
            record["ready"] = next((l for l in lines if l["type"] == "ready"), None)
            record["steps"] = [l for l in lines if l["type"] == "step"]
            record["skipped_steps"] = [l for l in lines if l["type"] == "skipped"]
            record["wall_s"] = round(time.monotonic() - started, 1)
            records.append(record)
            print(f"  {name} run {run + 1}/{runs}: {report.one_line(scenario.name, record)}", flush=True)
    return records


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
    lock = json.loads((BENCH / "package-lock.json").read_text())["packages"]
    return {
        "python": platform.python_version(),
        "node": out(["node", "--version"]),
        "redis_server": out(["redis-server", "--version"]),
        "socket.io": lock["node_modules/socket.io"]["version"],
        "socket.io-client": lock["node_modules/socket.io-client"]["version"],
    }


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "loadavg_at_start": os.getloadavg()}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one short run of each scenario")
    mode.add_argument("--smoke", action="store_true", help="tiny run of every scenario (seconds)")
    parser.add_argument("--scenarios", help="comma-separated: relay,fanout,typing,storm,idle")
    parser.add_argument("--targets", help="comma-separated servers, e.g. homeapp,node,echo "
                        "(a scenario keeps only those it supports)")
    parser.add_argument("--runs", type=int, help="runs per scenario and server (default: profile's)")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<time>)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    scenarios = PROFILES[profile]()
    if args.scenarios:
        wanted = args.scenarios.split(",")
        unknown = set(wanted) - {s.name for s in scenarios}
        if unknown:
            sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        scenarios = [s for s in scenarios if s.name in wanted]
    try:
        check_prerequisites()
    except SetupError as exc:
        sys.exit(f"bench: {exc}")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or BENCH / "results" / stamp
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    results = {"profile": profile, "started": stamp, "machine": machine(), "versions": versions(),
               "scenarios": {}, "records": []}
    print(f"bench: {profile} run, results in {out_dir}", flush=True)
    needs_redis = any(s.needs_redis for s in scenarios) and PrivateRedis.available()
    started = time.monotonic()
    with ExitStack() as stack:
        redis = stack.enter_context(PrivateRedis(out_dir / "logs" / "redis.log")) if needs_redis else None
        for scenario in scenarios:
            names = scenario.targets
            if args.targets:
                chosen = args.targets.split(",")
                names = [n for n in names if n in chosen or n.removesuffix("+redis") in chosen]
            runs = args.runs or scenario.runs
            print(f"{scenario.title}: {', '.join(names)} x {runs}", flush=True)
            results["scenarios"][scenario.name] = {"title": scenario.title, "what": scenario.description(),
                                                   "targets": names, "runs": runs,
                                                   "config": scenario.config}
            results["records"] += run_scenario(scenario, names, runs, out_dir, redis)
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["labels"] = {name: resolve_target(name).label for name in
                         {r["target"] for r in results["records"]}}
    results["summary"] = report.summarize(results)
    report.write_all(results, out_dir)
    print(f"bench: done in {results['wall_s']:.0f} s; {out_dir / 'results.md'}", flush=True)
    if profile == "smoke":
        print("bench: a smoke run shows that every scenario runs; its figures are not comparable "
              "between servers (a full run or --quick is)", flush=True)
    return out_dir


if __name__ == "__main__":
    main()
