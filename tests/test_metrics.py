"""homeapp.telemetry.metrics: emit labels, the counting emit, and the per-event meter."""
import pytest
from prometheus_client import REGISTRY

from homeapp.telemetry import metrics


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("event, label", [
    ("messageRoom", "messageRoom"),
    ("privateRatingNotify-123", "privateRatingNotify-*"),  # a user id in a label would be unbounded
    ("privateRatingNotify-456", "privateRatingNotify-*"),
])
def test_emit_label(event, label):
    assert metrics.emit_label(event) == label


def test_counting_emit_counts_each_call_and_passes_its_arguments_on():
    calls = []
    emit = metrics.counting_emits(lambda *args, **kwargs: calls.append((args, kwargs)) or "sent")
    before = sample("homeapp_emits_total", event="test-event")
    rating = sample("homeapp_emits_total", event="privateRatingNotify-*")
    assert emit("test-event", {"a": 1}, to=["user:1", "user:2"]) == "sent"
    emit("test-event", None, to="room:1:2", skip_sid="s")
    emit("privateRatingNotify-7", {}, to="user:7")
    assert sample("homeapp_emits_total", event="test-event") == before + 2
    assert sample("homeapp_emits_total", event="privateRatingNotify-*") == rating + 1
    assert calls[0] == (("test-event", {"a": 1}), {"to": ["user:1", "user:2"], "skip_sid": None})
    assert calls[1] == (("test-event", None), {"to": "room:1:2", "skip_sid": "s"})


def test_event_meter_counts_outcomes_under_the_event():
    meter = metrics.EventMeter("meter-test")
    meter.ok.inc()
    meter.refusal("FORBIDDEN").inc()
    meter.refusal("SOMETHING_NEW").inc()  # a code no handler was expected to raise still counts
    meter.duration.observe(0.0003)
    assert sample("homeapp_events_received_total", event="meter-test", outcome="ok") == 1
    assert sample("homeapp_events_received_total", event="meter-test", outcome="FORBIDDEN") == 1
    assert sample("homeapp_events_received_total", event="meter-test", outcome="SOMETHING_NEW") == 1
    assert sample("homeapp_events_received_total", event="meter-test", outcome="VALIDATION_ERROR") == 0
    assert sample("homeapp_event_duration_seconds_bucket", event="meter-test", le="0.0005") == 1
    assert sample("homeapp_event_duration_seconds_bucket", event="meter-test", le="0.00025") == 0
