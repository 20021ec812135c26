"""Profile a server under the private-chat relay with py-spy, and cost each function per message.

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.profile --rate 2000 --seconds 15 [--target homeapp] [--out DIR]

The server runs pinned to core 0 with the generator on core 1 at a fixed open-loop rate, as in
bench.run; py-spy samples it for --seconds while the load runs. Writes DIR/profile.txt (py-spy's
collapsed stacks), DIR/profile.svg (a flame graph) and DIR/top.md: the functions with the most
samples, inclusive and self, converted to microseconds of server CPU per relayed message.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.run import LOADGEN
from bench.targets import BENCH, LOADGEN_CORE, ROOT, TARGETS, RunningServer

WARMUP_S = 3


def frame_name(frame):
    """'handler (homeapp/events/messaging.py:12)' -> 'handler (homeapp/events/messaging.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def costs(collapsed_lines):
    """Samples per function, inclusive (anywhere on the stack) and self (innermost frame)."""
    inclusive, self_time, total = Counter(), Counter(), 0
    for line in collapsed_lines:
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        count = int(count)
        frames = [frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            self_time[frames[-1]] += count
    return total, inclusive, self_time


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="homeapp", choices=[t for t in TARGETS if not t.startswith("echo")])
    parser.add_argument("--rate", type=int, default=2000, help="offered messages per second")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "profile")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(py_spy):
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    config = {"scenario": "relay", "event": "message", "rooms": 100, "room_size": 2, "target": "server",
              "open_levels": [{"rate": args.rate}], "clk_tck": os.sysconf("SC_CLK_TCK"),
              "open_step": {"warmup_s": WARMUP_S, "duration_s": args.seconds + 2, "grace_s": 1}}
    with RunningServer(TARGETS[args.target], args.out / "server.log") as server:
        config.update(url=server.url, server_pid=server.pid)
        loadgen = subprocess.Popen(["taskset", "-c", LOADGEN_CORE, "node", str(LOADGEN), json.dumps(config)],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(WARMUP_S + 1.5)
        for fmt, name in (("raw", "profile.txt"), ("flamegraph", "profile.svg")):
            subprocess.run([py_spy, "record", "--pid", str(server.pid), "--duration", str(args.seconds // 2),
                            "--rate", "200", "--format", fmt, "-o", str(args.out / name)],
                           check=True, capture_output=True)
        stdout, _ = loadgen.communicate(timeout=120)
    step = next(json.loads(l) for l in stdout.splitlines() if '"type":"step"' in l)
    total, inclusive, self_time = costs((args.out / "profile.txt").read_text().splitlines())
    us_per_msg = step["server_cpu"] / step["msg_s"] * 1e6
    lines = [f"# Where {args.target} spends its CPU under the relay at {args.rate} msg/s", "",
             f"Measured: {step['msg_s']:.0f} msg/s delivered ({step['deliveries_per_msg']} deliveries each), "
             f"server CPU {step['server_cpu']:.0%} of a core, p99 {step['latency_ms'].get('p99')} ms, "
             f"so **{us_per_msg:.0f} µs of server CPU per message** ({us_per_msg / 4:.0f} µs per delivery). "
             f"{total} py-spy samples; a function's µs/msg is its share of samples times that figure.", ""]
    # the server's own entry chain (pywsgi -> Flask -> engineio's websocket loop) is on nearly
    # every stack and says nothing: leave those frames out of the inclusive table
    chain = max(inclusive.values(), default=0)
    inclusive = Counter({name: n for name, n in inclusive.items() if n < 0.98 * chain})
    for title, counter in (("inclusive (the function and all it calls)", inclusive), ("self (innermost frame)", self_time)):
        lines += [f"## Top {args.top}, {title}", "", "| function | share | µs per message |", "| --- | --- | --- |"]
        for name, count in counter.most_common(args.top):
            lines.append(f"| `{name}` | {count / total:.1%} | {count / total * us_per_msg:.1f} |")
        lines.append("")
    (args.out / "top.md").write_text("\n".join(lines))
    print(f"profile: {args.out / 'top.md'}, {args.out / 'profile.svg'}")


if __name__ == "__main__":
    main()
