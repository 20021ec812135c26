"""Fuzzing every client event: Hypothesis mutates the event's valid example (keys dropped, replaced
and added, values of the wrong type, huge, unicode, deeply nested, numbers at the edges), a few
mutations at a time, and shrinks what fails to its smallest form.

Each event gets PER_EVENT inputs on the app in this process, with no socket or wait: an input
costs about a millisecond and a half of CPU, two thirds of it Hypothesis's. The distinct ones
are counted and printed. Every input is answered with an ack,
no error is logged, and a bystander whose id no input names receives nothing. A short run of
the same inputs against a server process checks that the wire agrees.
"""
import json
import logging
import re
from functools import partial

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from homeapp.schemas.examples import EXAMPLES
from tests.inprocess import LocalClient, local_app
from tests.live import new_user_id, raw_socket, settle, sockets_of

PER_EVENT = 10_000
DISTINCT_AT_LEAST = 5_000
LIVE_PER_EVENT = 20
MAX_PACKET = 60_000  # under HOMEAPP_MAX_PACKET_BYTES: a bigger packet closes the connection instead

EDGE_NUMBERS = [0, -0.0, 1, -1, 0.5, -0.5, 1.5, 3.14, -2.5e-8, 1e-7, 5e-324, 1e308, -1e308,
                2**31 - 1, 2**31, -2**31 - 1, 2**53, 2**53 + 1, -2**53 - 1, 2**63, 2**64, 10**30]
ODD_STRINGS = ["", " ", "0", "00", "-1", " 1", "1 ", "01", "1.0", "1e3", "0x1", "room", "1:2",
               "2:1", "1::2", "1:2:", ":", "١", "１", "null", "true", "[]", "{}", "undefined",
               "\u0000", "\u202e1", "\u200b", "e\u0301", "😀", "ana\ud7ff", "room:1:2", "user:1"]

HUGE_STRINGS = [char * length for char in ("a", "1", "é", "😀", " ") for length in (65, 2_049, 5_001, 20_000)]
FIXED_VALUES = HUGE_STRINGS + EDGE_NUMBERS + ODD_STRINGS + [None, True, False, [], {}]
KEYS = ["data", "userID", "roomID", "to", "from", "__proto__", "constructor", ""]
# at most three wraps of 64 lists: the test client encodes recursively, a frame or two a level
WRAPS = ["list", "object", "text", 2, 8, 32, 64]
KINDS = ["edit", "replace", "edit", "drop", "add", "wrap"]  # near misses twice as often

# Each choice Hypothesis makes costs tens of microseconds, and an event gets 10,000 inputs: a
# change is two choices, a number that says what to do and where, and a value to do it with.
# A value is a string, an integer or one of a fixed set (one choice); containers and depth
# come from the changes that add and wrap.
values = (st.text(max_size=8) | st.integers(min_value=-2**70, max_value=2**70)
          | st.sampled_from(FIXED_VALUES))
changes = st.tuples(st.integers(0, 2**24 - 1), values)


def paths_of(value, prefix=()):
    """Every path to a value inside a JSON document, the document itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_of(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_of(child, prefix + (index,))


def _at(document, path):
    for key in path:
        document = document[key]
    return document


def _with(document, path, value):
    """A copy of document with the value at path replaced (removed when value is _DROP): only
    the containers along the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = list(document) if isinstance(document, list) else dict(document)
    if rest:
        copy[head] = _with(document[head], rest, value)
    elif value is _DROP:
        del copy[head]
    else:
        copy[head] = value
    return copy


_DROP = object()


def _changed(document, change):
    """The document with one change made. `selector` says which kind, at which of the
    document's paths (modulo their number, so that changes compose), and how; `drawn` is the
    value it uses. Every kind applies to any value: none leaves the document as it was."""
    selector, drawn = change
    selector, kind = divmod(selector, len(KINDS))
    selector, where = divmod(selector, 64)
    selector, how = divmod(selector, 64)
    kind = KINDS[kind]
    paths = list(paths_of(document))
    if kind == "drop" and len(paths) > 1:
        paths = paths[1:]  # a part of the document, not all of it
    path = paths[where % len(paths)]
    value = _at(document, path)
    if kind == "replace":
        return _with(document, path, drawn)
    if kind == "drop":
        if path:
            return _with(document, path, _DROP)
        if isinstance(value, str) and value:  # a character of a bare string
            return value[:how % len(value)] + value[how % len(value) + 1:]
        return None  # the event sent without a payload
    if kind == "add":  # under a key of its own, or one the protocol uses
        key = drawn if isinstance(drawn, str) and how % 2 else KEYS[how % len(KEYS)]
        added = {**value, key: drawn} if isinstance(value, dict) else \
            value + [drawn] if isinstance(value, list) else [value, drawn]
        return _with(document, path, added)
    if kind == "edit":  # near misses: characters cut, the value's text inserted
        text = _text(value)
        start, cut = how % (len(text) + 1), selector % 4
        return _with(document, path, text[:start] + _text(drawn) + text[start + cut:])
    wrap = WRAPS[how % len(WRAPS)]
    if isinstance(wrap, int):
        for _ in range(wrap):
            value = [value]
        return _with(document, path, value)
    wrapped = {"list": [value], "object": {"value": value}, "text": _text(value)}[wrap]
    return _with(document, path, wrapped)


def _text(value):
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def mutations(example):
    """Inputs shaped like `example`: one to three changes to it, applied in turn. The example
    itself is left to @example: it would otherwise be drawn far more often than anything else."""
    def apply(changes_made):
        document = example
        for change in changes_made:
            document = _changed(document, change)
        return document
    return st.lists(changes, min_size=1, max_size=3).map(apply)


def renamed(value, ids):
    """The example's users "1" to "4" as this test's users, wherever they appear."""
    text = json.dumps(value)
    text = re.sub(r'(?<=[":])([1-4])(?=[":])', lambda m: ids[m.group(1)], text)
    return json.loads(text)


def fuzz(valid, per_event, check, phases=tuple(Phase)):
    """Run check(payload) on `per_event` inputs drawn from mutations(valid), and on `valid`
    itself; returns how many were distinct."""
    distinct = set()

    @settings(max_examples=per_event, database=None, deadline=None, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(mutations(valid))
    @example(valid)
    def one(payload):
        distinct.add(hash(json.dumps(payload)))
        check(payload)

    one()
    return len(distinct)


class _Errors(logging.Handler):
    """The records of ERROR and above that the app logs."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logged_errors():
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    yield handler.records
    logging.getLogger().removeHandler(handler)


def _strays(peer):
    """What a peer received that neither names its user nor is for a room it is in."""
    return [(e, p) for e, p in peer.got()
            if peer.user_id not in json.dumps(p) and not (isinstance(p, dict) and p.get("to") == "room")]


@pytest.mark.parametrize("event", sorted(EXAMPLES))
def test_fuzzed_payloads_are_each_answered_and_reach_no_bystander(event, logged_errors):
    """The example's users "2" to "4" are connected: they may receive what names them. A
    bystander whose id no input names must receive nothing."""
    app = local_app(NOTIFICATION_RATE=0.0)
    with sockets_of(partial(LocalClient, app)) as connect:
        sender = connect()
        recipients = [connect() for _ in range(3)]
        bystander = connect()
        ids = {"1": sender.user_id, **{str(i + 2): peer.user_id for i, peer in enumerate(recipients)}}
        example_payload = renamed(EXAMPLES[event], ids)
        for peer in (sender, *recipients, bystander):
            peer.clear()

        def check(payload):
            ack = sender.call(event, payload)
            assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
            assert ack.get("code") != "INTERNAL_ERROR", ack
            assert logged_errors == [], logged_errors[0].getMessage()
            if bystander.user_id not in json.dumps(payload):
                assert bystander.got() == []
            for peer in recipients:
                assert _strays(peer) == []
            for peer in (sender, *recipients, bystander):
                peer.clear()

        distinct = fuzz(example_payload, PER_EVENT, check)
    print(f"{event}: {distinct} distinct inputs of {PER_EVENT + 1}")
    assert distinct >= DISTINCT_AT_LEAST


@pytest.fixture(scope="module")
def fuzz_server(server_factory):
    return server_factory(HOMEAPP_MESSAGE_RATE=0, HOMEAPP_TYPING_RATE=0, HOMEAPP_NOTIFICATION_RATE=0)


def test_a_live_server_answers_fuzzed_payloads_of_every_event(fuzz_server, connect_memory):
    """LIVE_PER_EVENT inputs of each event over a real websocket, sent without waiting: every
    one is answered, in order, and nothing reaches a bystander or is logged as an error."""
    sender_id = new_user_id()
    recipients = [connect_memory(url=fuzz_server.url) for _ in range(3)]
    bystander = connect_memory(url=fuzz_server.url)
    ids = {"1": sender_id, **{str(i + 2): peer.user_id for i, peer in enumerate(recipients)}}
    packets = [json_packet(0, "addOnlineUser", {"userID": sender_id, "userUsername": "fuzz"})]
    for event in sorted(EXAMPLES):
        drawn = []
        fuzz(renamed(EXAMPLES[event], ids), LIVE_PER_EVENT, drawn.append, phases=[Phase.generate])
        for payload in drawn:
            packet = json_packet(len(packets), event, payload)
            if len(packet.encode()) <= MAX_PACKET and bystander.user_id not in packet:
                packets.append(packet)
    assert len(packets) > len(EXAMPLES) * LIVE_PER_EVENT * 0.9

    ws = raw_socket(fuzz_server, sender_id)
    try:
        for packet in packets:
            ws.send(packet)
        acks = read_acks(ws, len(packets))
    finally:
        ws.close()
    assert sorted(acks) == list(range(len(packets))), "some events were never answered"
    assert all(isinstance(ack, dict) and isinstance(ack.get("ok"), bool) for ack in acks.values())
    assert not [ack for ack in acks.values() if ack.get("code") == "INTERNAL_ERROR"]

    settle(bystander, *recipients, quiet=0.5, limit=30)
    assert bystander.got() == [], f"a bystander received {bystander.got()[:3]}"
    for peer in recipients:
        assert _strays(peer) == [], f"user {peer.user_id} received {_strays(peer)[:3]}"
    log = fuzz_server.log()
    assert "Traceback" not in log and " ERROR " not in log and "CRITICAL" not in log
    assert bystander.call("joinRoom", bystander.user_id) == {"ok": True}  # still serving


def json_packet(ack_id, event, payload):
    return f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":"))


def read_acks(ws, count):
    """{ack id: ack} once `count` acks have arrived; pings are answered."""
    acks = {}
    while len(acks) < count:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
        elif frame.startswith("43"):
            bracket = frame.index("[")
            acks[int(frame[2:bracket])] = json.loads(frame[bracket:])[0]
    return acks
