"""From the generator's raw steps to medians, spreads and ratios; then results.json, results.md, PNGs."""
import json
import statistics

THROUGHPUT_SCENARIOS = ("relay", "fanout", "typing")
PEERS = ("node", "echo")
# a smoke run is one short run per server with loops too small to load any of them: its figures
# show that the chain works, and which server comes out ahead there is noise
NOT_COMPARABLE = ("**Smoke run: these figures are not comparable.** Each server ran once, for a "
                  "second or two, at loads too small to reach its limit, so the ratios between servers "
                  "are left out and the numbers below say only that every scenario ran. Compare servers "
                  "with a full run (`python -m bench.run`) or at least `--quick`.")


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _ok(records, scenario, target):
    return [r for r in records if r["scenario"] == scenario and r["target"] == target and "steps" in r]


def one_line(scenario, record):
    """A progress line for the terminal."""
    steps = record["steps"]
    if scenario == "idle":
        last = steps[-1]
        return f"{last['sockets']} sockets, RSS {last['server_rss_kb'] / 1024:.0f} MB"
    if scenario == "storm":
        return ", ".join(f"{s['connects_s']:.0f} connects/s p99 {s['latency_ms'].get('p99')} ms" for s in steps)
    best = max((s for s in steps if s["mode"] == "closed"), key=lambda s: s["msg_s"])
    validity = "" if best["valid"] else ", invalid: the generator saturated"
    text = f"max {best['msg_s']:.0f} msg/s (gen cpu {best['loadgen_cpu']:.0%}{validity})"
    opens = [s for s in steps if s["mode"] == "open"]
    if opens:
        text += "; p99 " + ", ".join(f"{s['latency_ms'].get('p99')}@{s['offered_msg_s']}" for s in opens)
    return text


def _throughput(records, scenario, target):
    runs = _ok(records, scenario, target)
    maxima, p99_at_max, windows, invalid = [], [], [], 0
    sweep, half = {}, []
    other = []
    for record in runs:
        closed = [s for s in record["steps"] if s["mode"] == "closed"]
        invalid += sum(not s["valid"] for s in record["steps"])
        other += [s["other_cpu"] for s in record["steps"]]
        valid = [s for s in closed if s["valid"]]
        if valid:
            best = max(valid, key=lambda s: s["msg_s"])
            maxima.append(best["msg_s"])
            p99_at_max.append(best["latency_ms"].get("p99"))
            windows.append(best["window"])
        for s in record["steps"]:
            if s["mode"] != "open":
                continue
            point = {"msg_s": s["msg_s"], "p50": s["latency_ms"].get("p50"), "p99": s["latency_ms"].get("p99"),
                     "saturated": s["saturated"], "valid": s["valid"]}
            if s["label"]:
                half.append(dict(point, offered=s["offered_msg_s"]))
            else:
                sweep.setdefault(s["offered_msg_s"], []).append(point)
        for s in record.get("skipped_steps", []):
            if not s["label"]:
                sweep.setdefault(s["offered_msg_s"], []).append({"saturated": True, "skipped": True})
    levels = {}
    for rate, points in sorted(sweep.items()):
        measured = [p for p in points if not p.get("skipped") and p["valid"]]
        saturated = sum(p["saturated"] for p in points) > len(points) / 2
        levels[rate] = {"msg_s": _median(p["msg_s"] for p in measured),
                        "p50": _median(p["p50"] for p in measured),
                        "p99": _median(p["p99"] for p in measured),
                        "p99_runs": [p["p99"] for p in measured],
                        "saturated": saturated, "runs": len(points)}
    return {
        "runs": len(runs),
        "max_msg_s": _spread(maxima),
        "p99_at_max_ms": _median(p99_at_max),
        "best_windows": windows,
        "invalid_steps": invalid,
        "other_cpu_max": max(other) if other else None,
        "sweep": levels,
        "half_max": {"offered": _median(p["offered"] for p in half), "msg_s": _median(p["msg_s"] for p in half),
                     "p50": _median(p["p50"] for p in half), "p99": _median(p["p99"] for p in half),
                     "p99_runs": [p["p99"] for p in half]} if half else None,
    }


def _storm(records, target):
    runs = _ok(records, "storm", target)
    steps = [s for r in runs for s in r["steps"]]
    return {
        "runs": len(runs),
        "connects_s": _spread([s["connects_s"] for s in steps if s["valid"]]),
        "p50_ms": _median(s["latency_ms"].get("p50") for s in steps),
        "p99_ms": _median(s["latency_ms"].get("p99") for s in steps),
        "errors": sum(s["errors"] for s in steps),
        "invalid_steps": sum(not s["valid"] for s in steps),
        "other_cpu_max": max((s["other_cpu"] for s in steps), default=None),
    }


def _idle(records, target):
    runs = _ok(records, "idle", target)
    if not runs:
        return None
    steps = runs[-1]["steps"]
    points = [(s["sockets"], s["server_rss_kb"]) for s in steps if s["server_rss_kb"]]
    xs, ys = zip(*points)
    slope = None
    if len(points) > 1 and len(set(xs)) > 1:
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    top = steps[-1]
    return {
        "points": points,
        "max_sockets": max(xs),
        "kb_per_socket": round(slope, 2) if slope is not None else None,
        "rss_mb_at_max": round(top["server_rss_kb"] / 1024, 1),
        "base_rss_mb": round(points[0][1] / 1024, 1),
        "probe_ack_ms_at_max": top.get("probe_ack_ms"),
        "connects_s": [s.get("connects_s") for s in steps if "level" in s],
        "errors": sum(s.get("errors", 0) for s in steps),
        "stopped_early": any(s.get("errors", 0) for s in steps),
    }


def summarize(results):
    records = results["records"]
    summary = {}
    for name, scenario in results["scenarios"].items():
        if name in THROUGHPUT_SCENARIOS:
            per = {t: _throughput(records, name, t) for t in scenario["targets"]}
            for target, entry in per.items():
                mine = (entry["max_msg_s"] or {}).get("median")
                entry["ratio_to"] = {}
                for peer in PEERS:
                    theirs = (per.get(peer, {}).get("max_msg_s") or {}).get("median")
                    if mine and theirs and peer != target:
                        entry["ratio_to"][peer] = round(mine / theirs, 3)
            summary[name] = per
        elif name == "storm":
            summary[name] = {t: _storm(records, t) for t in scenario["targets"]}
        elif name == "idle":
            summary[name] = {t: _idle(records, t) for t in scenario["targets"]}
    return summary


# ---------------------------------------------------------------- Markdown

def _fmt(value, digits=0, suffix=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def _spread_text(spread, digits=0):
    if not spread:
        return "—"
    if spread["n"] == 1:
        return _fmt(spread["median"], digits)
    return f"{_fmt(spread['median'], digits)} ({_fmt(spread['min'], digits)}–{_fmt(spread['max'], digits)})"


def markdown(results):
    summary, labels = results["summary"], results["labels"]
    lines = [f"# HomeApp realtime benchmark ({results['profile']} run, {results['started']})", ""]
    m, v = results["machine"], results["versions"]
    lines += [f"Machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, load average at start "
              f"{', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}. Python {v['python']}, Node {v['node']}, "
              f"socket.io {v['socket.io']}, socket.io-client {v['socket.io-client']}.",
              "Server pinned to core 0, load generator to core 1; every run a fresh server; medians over runs "
              "with (min–max). Latencies are per delivery, in ms. `other cpu` is what the rest of the machine "
              "(other processes, kernel network time) used of the two cores during a step: high values mean "
              "a noisy measurement. Total time: " f"{results['wall_s']:.0f} s.", ""]
    smoke = results["profile"] == "smoke"
    if smoke:
        lines += [NOT_COMPARABLE, ""]
    for name in THROUGHPUT_SCENARIOS:
        if name not in summary:
            continue
        scenario = results["scenarios"][name]
        lines += [f"## {scenario['title']}", "", scenario["what"], "",
                  "| server | max msg/s | deliveries/s | ratio to Node | ratio to echo | p99 at max | "
                  "p99 at ½ max (rate) | invalid steps | other cpu (max) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        deliveries = _deliveries_per_msg(results, name)
        for target, e in summary[name].items():
            half = e["half_max"]
            med = (e["max_msg_s"] or {}).get("median")
            lines.append(
                f"| {labels[target]} | {_spread_text(e['max_msg_s'])} | "
                f"{_fmt(med * deliveries if med and deliveries else None)} | "
                f"{'not compared' if smoke else _fmt(e['ratio_to'].get('node'), 2)} | "
                f"{'not compared' if smoke else _fmt(e['ratio_to'].get('echo'), 2)} | "
                f"{_fmt(e['p99_at_max_ms'], 1)} | "
                f"{_fmt(half['p99'], 1) + ' (' + _fmt(half['offered']) + '/s)' if half else '—'} | "
                f"{e['invalid_steps']} | {_fmt(e['other_cpu_max'], 2)} |")
        rates = sorted({rate for e in summary[name].values() for rate in e["sweep"]})
        if rates:
            lines += ["", "Latency against offered load (open loop), p50 / p99 ms; `sat` = the server "
                      "could not keep up (achieved < 95 % of offered, > 1 % lost, or p99 > 1 s):", "",
                      "| server | " + " | ".join(f"{r:,}/s" for r in rates) + " |",
                      "| --- | " + " | ".join("---" for _ in rates) + " |"]
            for target, e in summary[name].items():
                cells = []
                for rate in rates:
                    point = e["sweep"].get(rate)
                    if point is None:
                        cells.append("—")
                    elif point["saturated"]:
                        cells.append("sat" + (f" ({_fmt(point['p99'], 0)})" if point["p99"] else ""))
                    else:
                        cells.append(f"{_fmt(point['p50'], 1)} / {_fmt(point['p99'], 1)}")
                lines.append(f"| {labels[target]} | " + " | ".join(cells) + " |")
        lines.append("")
    if "storm" in summary:
        scenario = results["scenarios"]["storm"]
        lines += [f"## {scenario['title']}", "", scenario["what"], "",
                  "| server | connects/s | p50 ms | p99 ms | errors | invalid steps | other cpu (max) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for target, e in summary["storm"].items():
            lines.append(f"| {labels.get(target, target)} | {_spread_text(e.get('connects_s'))} | "
                         f"{_fmt(e.get('p50_ms'), 1)} | {_fmt(e.get('p99_ms'), 1)} | {e.get('errors', '—')} | "
                         f"{e.get('invalid_steps', '—')} | {_fmt(e.get('other_cpu_max'), 2)} |")
        lines.append("")
    if "idle" in summary:
        scenario = results["scenarios"]["idle"]
        lines += [f"## {scenario['title']}", "", scenario["what"], "",
                  "| server | sockets held | RSS at that (MB) | RSS empty (MB) | KB per socket | "
                  "ack on newest socket (ms) | connects/s while ramping |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for target, e in summary["idle"].items():
            if not e:
                lines.append(f"| {labels.get(target, target)} | failed | | | | | |")
                continue
            ramps = [c for c in e["connects_s"] if c]
            lines.append(f"| {labels[target]} | {e['max_sockets']:,}{' (stopped: errors)' if e['stopped_early'] else ''} | "
                         f"{e['rss_mb_at_max']} | {e['base_rss_mb']} | {_fmt(e['kb_per_socket'], 1)} | "
                         f"{_fmt(e['probe_ack_ms_at_max'], 2)} | {_fmt(_median(ramps))} |")
        lines.append("")
    failures = [r for r in results["records"] if "error" in r or "skipped" in r]
    if failures:
        lines += ["## Failed or skipped", ""]
        lines += [f"- {r['scenario']} / {r['target']}: {r.get('error') or r.get('skipped')}" for r in failures]
        lines.append("")
    return "\n".join(lines)


def _deliveries_per_msg(results, name):
    for record in results["records"]:
        if record["scenario"] == name and record.get("steps"):
            return record["steps"][0].get("deliveries_per_msg")
    return None


# ---------------------------------------------------------------- plots

def plot_latency(results, path):
    fig = latency_figure(results)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)


def latency_figure(results):
    """The relay's p99 and p50 against offered load, one colour per server."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, labels = results["summary"]["relay"], results["labels"]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, (target, e) in enumerate(summary.items()):
        color = f"C{i}"
        points = [(rate, p) for rate, p in sorted(e["sweep"].items()) if p["p99"] is not None]
        if not points:
            continue
        rates = [r for r, _ in points]
        ax.plot(rates, [p["p99"] for _, p in points], "-o", color=color, label=f"{labels[target]} p99")
        # with markers: a sweep of one level (a smoke run) is a single point, and a line alone draws nothing
        ax.plot(rates, [p["p50"] for _, p in points], "--s", color=color, alpha=0.7, markersize=4,
                markerfacecolor="none", label=f"{labels[target]} p50")
        sat = [(r, p["p99"]) for r, p in points if p["saturated"]]
        if sat:
            ax.plot(*zip(*sat), "x", color="black", markersize=10)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(20, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("offered load, messages/s (each = 4 deliveries)")
    ax.set_ylabel("latency per delivery, ms (median over runs)")
    ax.set_title("Private-chat relay: latency against offered load (x = saturated)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_memory(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, labels = results["summary"]["idle"], results["labels"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for target, e in summary.items():
        if not e:
            continue
        xs, ys = zip(*e["points"])
        ax.plot(xs, [y / 1024 for y in ys], "-o",
                label=f"{labels[target]} ({_fmt(e['kb_per_socket'], 1)} KB/socket)")
    ax.set_xlabel("idle sockets held by one server process")
    ax.set_ylabel("server RSS, MB (/proc/<pid>/status)")
    ax.set_title("Idle connections: memory against connections")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in THROUGHPUT_SCENARIOS if n in results["summary"]]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        entries = [(t, e["max_msg_s"]) for t, e in results["summary"][name].items() if e["max_msg_s"]]
        xs = range(len(entries))
        ax.bar(xs, [s["median"] for _, s in entries], color=[f"C{i}" for i in xs])
        ax.errorbar(xs, [s["median"] for _, s in entries],
                    yerr=[[s["median"] - s["min"] for _, s in entries], [s["max"] - s["median"] for _, s in entries]],
                    fmt="none", ecolor="black", capsize=4)
        ax.set_xticks(list(xs), [t for t, _ in entries], rotation=30, ha="right", fontsize=8)
        ax.set_title(results["scenarios"][name]["title"], fontsize=9)
        ax.set_ylabel("max messages/s (median, min–max)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results, out_dir):
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "results.md").write_text(markdown(results))
    summary = results["summary"]
    if any(e["sweep"] for e in summary.get("relay", {}).values()):
        plot_latency(results, out_dir / "relay_latency.png")
    if any(summary.get("idle", {}).values()):
        plot_memory(results, out_dir / "idle_memory.png")
    if any(name in summary for name in THROUGHPUT_SCENARIOS):
        plot_throughput(results, out_dir / "throughput.png")
