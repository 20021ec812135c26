"""bench/report.py on a made-up relay: what the Markdown says of a smoke run, and what the latency
plot draws."""
import pytest

from bench import report

pytest.importorskip("matplotlib", reason="bench/requirements.txt installs the plotting library")


def relay_results(profile, levels=(100,)):
    def entry(msg_s, p50, p99):
        sweep = {rate: {"msg_s": rate, "p50": p50, "p99": p99, "p99_runs": [p99], "saturated": False,
                             "runs": 1} for rate in levels}
        return {"runs": 1, "max_msg_s": {"median": msg_s, "min": msg_s, "max": msg_s, "n": 1},
                "p99_at_max_ms": p99, "best_windows": [1], "invalid_steps": 0, "other_cpu_max": 0.1,
                "sweep": sweep, "half_max": None}
    summary = {"relay": {"homeapp": entry(1560, 2.0, 9.0), "node": entry(1000, 1.5, 6.0),
                         "echo": entry(1200, 1.0, 4.0)}}
    for target, e in summary["relay"].items():
        e["ratio_to"] = {peer: round(e["max_msg_s"]["median"] / summary["relay"][peer]["max_msg_s"]["median"], 3)
                         for peer in report.PEERS if peer != target}
    return {"profile": profile, "started": "20261207T000000Z", "wall_s": 20.0,
            "machine": {"cpu": "test", "cores": 2, "kernel": "x", "loadavg_at_start": [0.1, 0.1, 0.1]},
            "versions": {"python": "3", "node": "18", "socket.io": "4", "socket.io-client": "4"},
            "scenarios": {"relay": {"title": "Private-chat relay", "what": "relay", "targets": ["homeapp", "node", "echo"]}},
            "records": [], "summary": summary,
            "labels": {"homeapp": "HomeApp", "node": "Node", "echo": "echo"}}


def relay_row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |")).split(" | ")


def test_a_smoke_summary_says_its_figures_are_not_comparable_and_compares_nothing():
    text = report.markdown(relay_results("smoke"))
    assert "Smoke run: these figures are not comparable." in text
    assert relay_row(text, "HomeApp")[3:5] == ["not compared", "not compared"]
    assert "1.56" not in text


def test_a_full_summary_gives_its_ratios():
    text = report.markdown(relay_results("full"))
    assert "not comparable" not in text
    assert relay_row(text, "HomeApp")[3:5] == ["1.56", "1.30"]


@pytest.mark.parametrize("levels", [(100,), (100, 1000, 5000)], ids=["one-level", "sweep"])
def test_the_latency_plot_draws_every_series_of_its_legend(levels):
    fig = report.latency_figure(relay_results("smoke", levels))
    ax = fig.axes[0]
    drawn = {}
    for line in ax.get_lines():
        xs = line.get_xdata()
        # a line of one point draws nothing unless it has a marker
        if len(xs) > 1 or line.get_marker() not in (None, "None", "", " "):
            drawn[line.get_label()] = list(line.get_ydata())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) <= set(drawn), legend
    assert drawn["HomeApp p50"] == [2.0] * len(levels)
    assert {"Node p50", "echo p50", "HomeApp p99"} <= set(drawn)
