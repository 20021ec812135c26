"""Recovery's parts on their own: the session stores, the channels' histories, where a socket is
in each channel from its one offset, which emits are logged, and its settings. The wire is
tests/test_live_recovery.py's."""
import json
import time

import pytest

from homeapp.config import ConfigError, load_config
from homeapp.engine.channels import logged
from homeapp.engine.history import (ENTRY_OVERHEAD, Appender, Budget, MemoryHistory, NotHeld, OverBudget,
                                    RedisHistory)
from homeapp.engine.positions import NumberedPositions, Positions, locate, parse_offset
from homeapp.engine.sessions import MemorySessions, RedisSessions, Session, new_pid
from homeapp.store import redis_keys


def session(sid="s1", user="7"):
    channels = {c: ["1-0", "1-0", []] for c in ("*", f"user:{user}", "room:7:8")}
    return Session(sid, user, f"user{user}", True, channels)


def claim(store, pid):
    """What a reconnect does: find, then consume."""
    found = store.find(pid)
    return found if found is not None and store.consume(found) else None


# --- settings -------------------------------------------------------------------------------

def test_recovery_is_off_by_default_with_a_five_second_grace():
    config = load_config({})
    assert config["RECOVERY_SECONDS"] == 0 and config["PRESENCE_GRACE"] == 5


@pytest.mark.parametrize("name, value", [
    ("HOMEAPP_RECOVERY_SECONDS", "-1"), ("HOMEAPP_RECOVERY_SECONDS", "inf"),
    ("HOMEAPP_RECOVERY_SECONDS", "nan"), ("HOMEAPP_RECOVERY_SECONDS", "two minutes"),
    ("HOMEAPP_PRESENCE_GRACE", "-5"), ("HOMEAPP_HISTORY_SIZE", "5"),
    ("HOMEAPP_RECOVERY_CONCURRENCY", "0"), ("HOMEAPP_RECOVERY_MAX_ENTRIES", "many"),
    ("HOMEAPP_HISTORY_MAX_BYTES", "1000"), ("HOMEAPP_RECOVERY_RECENT_COPIES", "10"),
])
def test_bad_recovery_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


# --- which emits are logged -------------------------------------------------------------------

@pytest.mark.parametrize("message, expected", [
    ({"event": "x", "room": "user:7"}, True),
    ({"event": "x", "room": "room:7:8"}, True),
    ({"event": "x", "room": None}, True),                          # everyone
    ({"event": "x", "room": ["user:7", "abcdefghijklmnopqrst"]}, True),
    ({"event": "error", "room": "abcdefghijklmnopqrst"}, False),   # one socket: its error, acks
    ({"event": "x", "room": "user:7", "namespace": "/admin"}, False),
    ({"event": "x", "room": "user:7", "callback": ("s", "/", 1)}, False),
    ({"method": "disconnect", "sid": "s"}, False),
])
def test_only_emits_to_a_channel_or_everyone_are_logged(message, expected):
    assert logged(dict(message, namespace=message.get("namespace", "/"))) is expected


# --- sessions -------------------------------------------------------------------------------

@pytest.fixture(params=["memory", "redis"])
def sessions(request, redis_server):
    if request.param == "memory":
        return MemorySessions(seconds=1)
    return RedisSessions(redis_server.client(), seconds=1)


def test_a_session_is_claimed_once_and_only_with_its_pid(sessions):
    pid = new_pid()
    sessions.save(pid, session())
    assert claim(sessions, new_pid()) is None
    assert claim(sessions, pid[:-1]) is None
    claimed = claim(sessions, pid)
    assert (claimed.sid, claimed.user_id, claimed.username, claimed.live, claimed.rooms) == \
        ("s1", "7", "user7", True, ["user:7", "room:7:8"])
    assert claim(sessions, pid) is None  # a second reconnect with the same pid starts afresh


def test_a_found_session_stays_until_consumed_and_only_one_of_two_finders_consumes_it(sessions):
    pid = new_pid()
    sessions.save(pid, session())
    first, second = sessions.find(pid), sessions.find(pid)  # found: nothing taken yet
    assert first is not None and second is not None
    assert sessions.consume(first) is True
    assert sessions.consume(second) is False
    assert sessions.find(pid) is None


def test_a_session_ends_with_its_window(sessions):
    pid = new_pid()
    sessions.save(pid, session())
    time.sleep(1.2)
    assert claim(sessions, pid) is None


def test_pids_are_long_random_and_unrelated():
    pids = {new_pid() for _ in range(1000)}
    assert len(pids) == 1000
    assert all(len(pid) == 32 for pid in pids)  # 24 random bytes, URL-safe base64


def test_redis_holds_no_pid_only_its_digest(redis_server):
    client = redis_server.client()
    pid = new_pid()
    RedisSessions(client, seconds=30).save(pid, session(sid="digest-check"))
    for key in client.scan_iter(f"{redis_keys.recovery_session('')}*"):
        assert pid not in key and pid not in client.get(key)
    assert 0 < client.pttl(next(client.scan_iter(f"{redis_keys.recovery_session('')}*"))) <= 30000


def test_the_memory_store_keeps_at_most_its_capacity():
    store = MemorySessions(seconds=60, capacity=3)
    pids = [new_pid() for _ in range(5)]
    for number, pid in enumerate(pids):
        store.save(pid, session(sid=f"s{number}"))
    assert [claim(store, pid) is None for pid in pids] == [True, True, False, False, False]


def test_a_value_this_server_did_not_write_is_no_session(redis_server):
    client = redis_server.client()
    store = RedisSessions(client, seconds=30)
    pid = new_pid()
    store.save(pid, session())
    key = next(k for k in client.scan_iter(f"{redis_keys.recovery_session('')}*")
               if json.loads(client.get(k))["sid"] == "s1")
    client.set(key, "not json")
    assert claim(store, pid) is None


# --- the channels' histories ---------------------------------------------------------------------

def message(number, room="room:1:2"):
    return json.dumps({"method": "emit", "event": "messageRoom", "data": [{"n": number}],
                       "room": room, "namespace": "/"})


def numbers(entries):
    return [json.loads(text.split(" ", 2)[2])["data"][0]["n"] for _, text in entries]


def append(client, channel, text):
    """Append as the message queue does; returns the entry's id."""
    [[result]] = Appender(client, window_seconds=60, size=10000).append_all(client, [(text, [channel], 0)],
                                                                             "PUBLISH")
    assert not isinstance(result, Exception), result
    return client.xrevrange(redis_keys.history(channel), count=1)[0][0]


def unbounded():
    return Budget(10 ** 9, 10 ** 12)


def test_the_memory_history_gives_each_channel_what_came_after_its_position():
    history = MemoryHistory(seconds=60, size=1000)
    ids = [history.append("room:1:2", f"a {n} {message(n)}") for n in range(5)]
    other = history.append("room:3:4", f"a 9 {message(9, 'room:3:4')}")
    assert len(set(ids)) == 5
    found = history.read({"room:1:2": ids[1], "room:3:4": "0-0"}, unbounded())
    assert numbers(found["room:1:2"]) == [2, 3, 4] and numbers(found["room:3:4"]) == [9]
    assert history.read({"room:3:4": other}, unbounded()) == {"room:3:4": []}
    assert history.newest(["room:1:2", "room:5:6"]) == {"room:1:2": ids[-1], "room:5:6": "0-0"}


def test_the_memory_history_holds_no_position_past_which_it_forgot():
    history = MemoryHistory(seconds=60, size=3)
    ids = [history.append("room:1:2", f"a {n} {message(n)}") for n in range(5)]
    with pytest.raises(NotHeld):
        history.read({"room:1:2": ids[0]}, unbounded())
    assert numbers(history.read({"room:1:2": ids[1]}, unbounded())["room:1:2"]) == [2, 3, 4]


def test_the_memory_histories_of_all_channels_together_hold_at_most_their_bound():
    bound = 200 * 1024
    history = MemoryHistory(seconds=60, size=1000, max_bytes=bound)
    first = {}
    last = {}
    largest = 0
    for n in range(5000):  # 500 channels, 10 entries each, far more than the bound holds
        channel = f"room:{n % 500}:x"
        entry_id = history.append(channel, f"a {n} {message(n, channel)}")
        first.setdefault(channel, entry_id)
        last[channel] = (n, entry_id)
        largest = max(largest, history.bytes)
    assert largest <= bound
    held = sum(len(t) + ENTRY_OVERHEAD for c in last for _, t in
               history.read({c: "0-0"}, unbounded(), check=False)[c])
    # past the bound it drops down to SLACK below it, then fills up again
    assert held == history.bytes > bound - bound * MemoryHistory.SLACK - 1000
    # the oldest went first, whatever their channel: a position among them is not held any
    # more; the newest entries of every channel are
    with pytest.raises(NotHeld):
        history.read({"room:0:x": first["room:0:x"]}, unbounded())
    for channel, (n, entry_id) in list(last.items())[-100:]:
        assert numbers(history.read({channel: first[channel]}, unbounded(), check=False)[channel])[-1] == n


def test_the_memory_history_forgets_entries_its_channel_trimmed_in_its_bound_too():
    history = MemoryHistory(seconds=60, size=10, max_bytes=10 ** 9)
    for n in range(20000):  # one busy channel, trimmed by its size: nothing else holds them
        history.append("room:1:2", f"a {n} {message(n)}")
    assert numbers(history.read({"room:1:2": "0-0"}, unbounded(), check=False)["room:1:2"]) == \
        list(range(19990, 20000))
    assert history.bytes == sum(len(f"a {n} {message(n)}") + ENTRY_OVERHEAD for n in range(19990, 20000))
    assert len(history._order) < 3000


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_read_past_its_budget_stops(kind, redis_server):
    history = MemoryHistory(60, 1000) if kind == "memory" else RedisHistory(redis_server.client())
    channel = f"room:budget-{kind}:x"
    redis_server.client().delete(redis_keys.history(channel))
    for n in range(20):
        text = f"a {n} {message(n, channel)}"
        if kind == "memory":
            history.append(channel, text)
        else:
            append(redis_server.client(), channel, text)
    assert len(history.read({channel: "0-0"}, Budget(20, 10 ** 6))[channel]) == 20
    with pytest.raises(OverBudget):
        history.read({channel: "0-0"}, Budget(19, 10 ** 6))
    with pytest.raises(OverBudget):
        history.read({channel: "0-0"}, Budget(100, 100))


def test_the_redis_history_pages_through_and_tells_a_trimmed_position(redis_server):
    client = redis_server.client()
    channel, quiet = "room:paged:x", "room:quiet:x"
    client.delete(redis_keys.history(channel), redis_keys.history(quiet))
    ids = [append(client, channel, f"a {n} {message(n, channel)}") for n in range(1200)]
    history = RedisHistory(client)
    found = history.read({channel: ids[0], quiet: "0-0"}, unbounded())
    assert numbers(found[channel]) == list(range(1, 1200)) and found[quiet] == []
    client.xtrim(redis_keys.history(channel), maxlen=10, approximate=False)
    with pytest.raises(NotHeld):
        history.read({channel: ids[0]}, unbounded())
    assert numbers(history.read({channel: ids[-2]}, unbounded())[channel]) == [1199]
    client.delete(redis_keys.history(channel))
    assert history.read({channel: ids[-2]}, unbounded()) == {channel: []}  # gone with its window


def test_a_position_trimmed_with_nothing_after_it_is_still_held(redis_server):
    """An idle room: the entry a socket joined after is trimmed when the next one comes, and
    that next one names it."""
    client = redis_server.client()
    channel = "room:idle:x"
    client.delete(redis_keys.history(channel))
    joined_after = append(client, channel, f"a 1 {message(1, channel)}")
    append(client, channel, f"a 2 {message(2, channel)}")
    client.xtrim(redis_keys.history(channel), maxlen=1, approximate=False)
    assert numbers(RedisHistory(client).read({channel: joined_after}, unbounded())[channel]) == [2]
    client.delete(redis_keys.history(channel))


# --- one offset, a position in every channel ----------------------------------------------------

@pytest.mark.parametrize("offset", [
    "", "abc", "1-2", "1-2@", "1-2@lobby", "1-2-3@room:1", "1-2@room:1\n", 12, None, ["1-0@*"],
    "9" * 21 + "-0@*", "18446744073709551616-0@*", "0-18446744073709551616@*",
    "1-0@room:" + "x" * 300,
])
def test_an_offset_is_an_id_redis_could_hold_and_a_channel(offset):
    assert parse_offset(offset) is None


def test_an_offset_at_the_largest_id_is_one():
    assert parse_offset("18446744073709551615-18446744073709551615@*") == \
        ("18446744073709551615-18446744073709551615", "*")


def test_a_socket_s_positions_follow_from_the_last_copy_it_got():
    bases = {"room:a": "10-0", "room:b": "20-0", "*": "5-0"}
    positions = Positions(bases.get, keep_seconds=60, size=100)
    for channel in bases:
        positions.joined("s", channel)
    positions.delivered("room:a", "11-0")   # 1
    positions.delivered("room:b", "21-0")   # 2
    positions.delivered("room:a", "12-0")   # 3
    kept = positions.snapshot("s")
    assert kept["room:a"] == ["10-0", "10-0", [[1, "11-0"], [3, "12-0"]]]
    # it got room:b's copy: room:a's first copy before it, nothing of everyone's
    assert locate(kept, None, "21-0@room:b") == {"room:a": "11-0", "room:b": "21-0", "*": "5-0"}
    assert locate(kept, None, "12-0@room:a") == {"room:a": "12-0", "room:b": "21-0", "*": "5-0"}
    assert locate(kept, None, None) == bases  # it was sent nothing: everything since it joined
    for unknown in ("13-0@room:a", "11-0@room:b", "11-0@room:c", "10-0@room:a"):
        assert locate(kept, None, unknown) is None


def test_copies_forgotten_long_before_the_drop_count_as_received():
    bases = {"room:a": "10-0", "*": "5-0"}
    positions = Positions(bases.get, keep_seconds=0.05, size=100)
    for channel in bases:
        positions.joined("s", channel)
    positions.delivered("room:a", "11-0")
    time.sleep(0.1)
    positions.delivered("*", "6-0")
    kept = positions.snapshot("s")
    assert kept["room:a"] == ["10-0", "11-0", []]
    assert locate(kept, None, "11-0@room:a") == {"room:a": "11-0", "*": "5-0"}
    assert locate(kept, None, "6-0@*") == {"room:a": "11-0", "*": "6-0"}


def test_copies_forgotten_for_room_soon_before_the_drop_leave_no_start():
    positions = Positions({"room:a": "10-0"}.get, keep_seconds=60, size=2)
    positions.joined("s", "room:a")
    for n in range(1, 4):
        positions.delivered("room:a", f"1{n}-0")
    kept = positions.snapshot("s")
    assert kept["room:a"] == ["10-0", None, [[2, "12-0"], [3, "13-0"]]]
    assert locate(kept, None, "11-0@room:a") is None  # it may not have had 12-0
    assert locate(kept, None, "12-0@room:a") == {"room:a": "12-0"}


def test_the_recent_copies_of_all_channels_together_are_at_most_their_bound():
    positions = Positions(lambda channel: "1-0", keep_seconds=60, size=1000, max_copies=500)
    positions.joined("s", "room:0:x")
    largest = 0
    for n in range(1, 5001):  # 100 channels, 50 copies each
        positions.delivered(f"room:{n % 100}:x", f"{n}-0")
        largest = max(largest, positions.held)
    assert largest == 500
    kept = positions.snapshot("s")["room:0:x"]
    # the oldest went first, whatever their channel, and soon before the drop: no start
    assert kept[1] is None and [i for _, i in kept[2]] == [f"{n}-0" for n in range(4600, 5001, 100)]
    assert locate({"room:0:x": kept}, None, "4500-0@room:0:x") is None
    assert locate({"room:0:x": kept}, None, "4600-0@room:0:x") == {"room:0:x": "4600-0"}


def test_a_channel_s_own_bound_leaves_nothing_behind_in_the_process_s():
    positions = Positions(lambda channel: "1-0", keep_seconds=60, size=10, max_copies=10 ** 6)
    for n in range(1, 20001):
        positions.delivered("room:1:2", f"{n}-0")
    positions.unused("room:3:4")
    assert positions.held == 10 and len(positions._order) < 3000


def test_copies_of_a_channel_no_socket_is_in_any_more_leave_the_bound_exact():
    positions = Positions(lambda channel: "1-0", keep_seconds=60, size=1000, max_copies=100)
    positions.joined("s", "room:b")
    for n in range(1, 51):
        positions.delivered("room:a", f"{n}-0")
    positions.unused("room:a")  # its 50 copies go, their places in the order of all stay
    for n in range(51, 251):
        positions.delivered("room:b", f"{n}-0")
    tail = [i for _, i in positions.snapshot("s")["room:b"][2]]
    assert 100 - 100 * Positions.SLACK - 1 <= positions.held == len(tail) <= 100
    assert tail == [f"{n}-0" for n in range(251 - len(tail), 251)]


def test_the_memory_history_forgets_what_is_past_its_window(monkeypatch):
    from homeapp.engine import history as history_module
    clock = [1000.0]
    monkeypatch.setattr(history_module.time, "monotonic", lambda: clock[0])
    history = MemoryHistory(seconds=1, size=1000)
    old = [history.append("room:a", f"a {n} {message(n)}") for n in range(MemoryHistory.CHECK_EVERY)]
    clock[0] += 1.5
    new = [history.append("room:b", f"a {n} {message(n, 'room:b')}") for n in range(MemoryHistory.CHECK_EVERY)]
    with pytest.raises(NotHeld):  # what came after that position is gone
        history.read({"room:a": old[0]}, unbounded())
    assert history.read({"room:a": old[-1]}, unbounded()) == {"room:a": []}
    assert numbers(history.read({"room:b": new[0]}, unbounded())["room:b"]) == \
        list(range(1, MemoryHistory.CHECK_EVERY))


# --- delivery while a socket is restored ----------------------------------------------------------

def _memory_manager():
    """A process without Redis, recovery on, whose packets are recorded, not sent: its
    manager, and the [(eio sid, packet text)] sent."""
    import logging
    import socketio
    from homeapp.engine.recovery import Recovery
    from homeapp.engine.memory import LoggingManager

    manager = LoggingManager()
    server = socketio.Server(async_mode="threading", client_manager=manager,
                             logger=logging.getLogger("tests.recovery"))
    sent = []
    server._send_eio_packet = lambda eio_sid, packet: sent.append((eio_sid, packet.data))
    manager.history = MemoryHistory(60, 1000)
    manager.recovery = Recovery(None, manager.history, MemorySessions(60), 5)
    manager.recovery.positions = NumberedPositions(manager.last_id, manager.history)
    return manager, sent


def test_without_redis_the_last_copy_a_client_got_places_it_in_every_channel():
    """The memory history numbers the entries of all channels in one sequence, in the order
    their copies are sent: the offset of the last copy a client got is its position in each of
    its channels (from where it joined), and nothing is kept per copy."""
    manager, sent = _memory_manager()
    history, positions = manager.history, manager.recovery.positions
    manager.emit("messageRoom", {"n": 0}, "/", room="room:b")  # before the socket joined
    sid = manager.connect("eio-a", "/")
    for room in ("room:a", "room:b"):
        manager.enter_room(sid, "/", room)
    for n, room in enumerate(["room:a", "room:b", "room:a", "room:b"], 1):
        manager.emit("messageRoom", {"n": n}, "/", room=room)
    offsets = [json.loads(text[1:])[-1] for eio, text in sent if eio == "eio-a"]
    assert [o.partition("@")[2] for o in offsets] == ["room:a", "room:b", "room:a", "room:b"]
    kept = positions.snapshot(sid)
    base = history.read({"room:b": "0-0"}, unbounded())["room:b"][0][0]  # n=0's id
    # where it joined each: after each channel's last entry then (none: "0-0")
    assert kept == {"*": ["0-0", "0-0", []], "room:a": ["0-0", "0-0", []], "room:b": [base, base, []]}

    def missed(offset, anchor=None):
        where = positions.locate(kept, anchor, offset)
        return where and {c: [json.loads(t.split(" ", 2)[2])["data"][0]["n"] for _, t in found]
                          for c, found in history.read(where, unbounded()).items()}

    assert missed(offsets[2]) == {"*": [], "room:a": [], "room:b": [4]}   # it got 1, 2 and 3
    assert missed(offsets[1]) == {"*": [], "room:a": [3], "room:b": [4]}
    assert missed(None) == {"*": [], "room:a": [1, 3], "room:b": [2, 4]}  # nothing since it joined
    assert missed(offsets[0], anchor=offsets[0]) == missed(None)  # what a restore left it at
    # an id of its channel from before it joined moves it nowhere before where it joined
    assert missed(f"{base}@room:b") == missed(None)
    start = base.partition("-")[0]
    for elsewhere in (f"1-{base.partition('-')[2]}@room:a",  # another run's
                      f"{start}-{history.number + 1}@room:a",  # not given yet
                      offsets[0].replace("room:a", "room:c"),  # not its channel
                      "1-0"):
        assert positions.locate(kept, None, elsewhere) is None
    manager.leave_room(sid, "/", "room:b")
    assert sorted(positions.snapshot(sid)) == ["*", "room:a"]
    third = offsets[2].partition("@")[0]
    positions.restored(sid, {"room:a": third}, [("room:a", third)])  # recovered there
    assert positions.snapshot(sid)["room:a"] == [third, third, []]


def test_an_emit_to_a_socket_being_restored_waits_and_others_get_it_at_once():
    manager, sent = _memory_manager()
    restored = manager.connect("eio-restored", "/")
    other = manager.connect("eio-other", "/")
    for sid in (restored, other):
        manager.enter_room(sid, "/", "room:1:2")
    manager.recovery.restoring[restored] = held = []
    manager.emit("messageRoom", {"message": "hi"}, "/", room="room:1:2")
    manager.emit("messageRoom", {"message": "not to it"}, "/", room="room:1:2", skip_sid=restored)
    assert [eio for eio, _ in sent] == ["eio-other", "eio-other"]
    assert [(channel, m["event"], m["data"]) for channel, _, _, m in held] == \
        [("room:1:2", "messageRoom", [{"message": "hi"}])]
    offset = f"{held[0][1]}@room:1:2"
    assert sent[0][1].endswith(json.dumps(offset) + "]")  # the offset is the last argument
    logged_after = manager.history.read({"room:1:2": "0-0"}, unbounded())["room:1:2"]
    assert [json.loads(text.split(" ", 2)[2])["skip_sid"] for _, text in logged_after] == \
        [None, restored]
    assert logged_after[0][0] == held[0][1]


def test_an_emit_to_a_list_of_one_channel_is_that_channel_s_copy_restoring_or_not():
    """hub.emit(to=[channel]), as the message handler sends to its one recipient: the same
    entry and the same packet as an emit to the room itself, held for a socket being restored."""
    manager, sent = _memory_manager()
    restored, other = (manager.connect(eio, "/") for eio in ("eio-restored", "eio-other"))
    for sid in (restored, other):
        manager.enter_room(sid, "/", "user:2")
    manager.emit("messagePage", {"roomID": "1:2"}, "/", room=["user:2"])
    manager.recovery.restoring[restored] = held = []
    manager.emit("messagePage", {"roomID": "1:3"}, "/", room=["user:2"])
    assert [eio for eio, _ in sent] == ["eio-restored", "eio-other", "eio-other"]
    entries = manager.history.read({"user:2": "0-0"}, unbounded())["user:2"]
    assert [json.loads(text.split(" ", 2)[2])["data"] for _, text in entries] == \
        [[{"roomID": "1:2"}], [{"roomID": "1:3"}]]
    assert [(channel, entry_id, m["data"]) for channel, entry_id, _, m in held] == \
        [("user:2", entries[1][0], [{"roomID": "1:3"}])]
    assert sent[1][1].endswith(json.dumps(f"{entries[0][0]}@user:2") + "]")


# --- presence while a storm's restores wait their turn ---------------------------------------

class _Process:
    """What Recovery asks of its hub about presence, for one of two processes sharing one
    presence store (as Redis is shared): a socket is counted under its process's name, as the
    Redis store keys it by server id."""

    def __init__(self, name, presence, announced):
        import gevent
        self.name = name
        self._presence = presence
        self._announced = announced
        self.connections = {}
        self.health = type("Health", (), {"lost": lambda self, exc: None})()
        self.server = type("Server", (), {"start_background_task": staticmethod(gevent.spawn),
                                           "sleep": staticmethod(gevent.sleep)})()

    def keep_online(self, user_id, sid):
        if self._presence.add_socket(user_id, f"{self.name}/{sid}"):
            self._announced.append(("Add", user_id))
        return True

    def take_offline(self, user_id, sid):
        if self._presence.remove_socket(user_id, f"{self.name}/{sid}"):
            self._announced.append(("Remove", user_id))


def _storm_processes(grace):
    from homeapp.engine.recovery import Recovery
    from homeapp.presence.memory import MemoryPresence
    presence, announced, sessions = MemoryPresence(), [], MemorySessions(120)
    stopping, staying = (_Process(name, presence, announced) for name in ("a", "b"))
    stopping.connections = type("Conns", (), {"get": lambda self, sid: None})()
    staying.connections = stopping.connections
    return (Recovery(stopping, None, sessions, grace), Recovery(staying, None, sessions, grace),
            presence, announced, sessions)


def test_a_restore_waiting_for_its_turn_keeps_its_user_online_past_the_grace():
    """The stopping process's grace ends while the reconnect waits for its turn on the other
    one: nobody hears its user leave; and if that restore then fails, its user goes offline a
    grace later, as after any drop, unless another socket of theirs went live."""
    import gevent
    left, arrived, presence, announced, sessions = _storm_processes(grace=0.2)
    user = "7"
    pid = new_pid()
    sessions.save(pid, session("s1", user))
    presence.add_socket(user, "a/s1")     # live on the stopping process
    left.hold_presence(user, "s1")        # it stopped: the grace runs
    found = arrived.admit(pid, None, None, open_mode=True)  # the reconnect waits for its turn
    assert found is not None and found.sid == "s1"
    gevent.sleep(0.4)                     # past the stopping process's grace
    assert announced == [] and presence.online_users() == {user}
    arrived.done(found, recovered=False)  # its turn came, and it could not recover
    gevent.sleep(0.1)
    assert announced == []                # within its grace here
    gevent.sleep(0.3)
    assert announced == [("Remove", user)]


def test_without_a_waiting_restore_the_grace_ends_in_a_remove():
    import gevent
    left, _, presence, announced, sessions = _storm_processes(grace=0.2)
    presence.add_socket("7", "a/s1")
    left.hold_presence("7", "s1")
    gevent.sleep(0.4)
    assert announced == [("Remove", "7")]


def test_a_restore_that_recovers_keeps_its_user_online_and_announces_nothing():
    import gevent
    left, arrived, presence, announced, sessions = _storm_processes(grace=0.2)
    pid = new_pid()
    sessions.save(pid, session("s1", "7"))
    presence.add_socket("7", "a/s1")
    left.hold_presence("7", "s1")
    found = arrived.admit(pid, None, None, open_mode=True)
    gevent.sleep(0.3)
    arrived.in_grace.pop("s1", None)      # what reinstate does for the recovered socket
    arrived.done(found, recovered=True)
    gevent.sleep(0.4)
    assert announced == [] and presence.sockets_of("7") == {"b/s1"}


def test_another_identity_holds_nobody_online():
    left, arrived, presence, announced, sessions = _storm_processes(grace=0.2)
    pid = new_pid()
    sessions.save(pid, session("s1", "7"))
    stranger = type("Identity", (), {"user_id": "8"})()
    assert arrived.admit(pid, None, stranger, open_mode=True) is None
    assert presence.online_users() == set() and arrived.admitted == {}


# --- a deploy spreads its closes ---------------------------------------------------------------

def _hub_for_shutdown(spread, recovery=True, redis=True):
    return type("Hub", (), {"config": {"SHUTDOWN_SPREAD": spread}, "recovery": object() if recovery else None,
                            "keeper": object() if redis else None})()


@pytest.mark.parametrize("count, spread, grace, expected", [
    (2000, 2.0, 10.0, (0.05, 50)),     # 40 batches of 50, one every 50 ms
    (1000, 2.0, 10.0, (0.05, 25)),
    (10, 2.0, 10.0, (0.05, 1)),        # one at a time
    (2000, 2.0, 4.0, (0.05, 100)),     # a short grace: over a quarter of it, 1 s
    (2000, 0.0, 10.0, (0.0, 2000)),    # 0: all at once
])
def test_a_deploy_with_recovery_spreads_its_closes(count, spread, grace, expected):
    from homeapp.operations.shutdown import _pace
    assert _pace(_hub_for_shutdown(spread), count, grace) == expected


@pytest.mark.parametrize("recovery, redis", [(False, True), (True, False)])
def test_without_recovery_or_another_process_a_shutdown_closes_all_at_once(recovery, redis):
    from homeapp.operations.shutdown import _pace
    assert _pace(_hub_for_shutdown(2.0, recovery, redis), 500, 10.0) == (0.0, 500)


def test_a_negative_spread_names_the_variable():
    with pytest.raises(ConfigError, match="HOMEAPP_SHUTDOWN_SPREAD"):
        load_config({"HOMEAPP_SHUTDOWN_SPREAD": "-1"})


def test_reconnects_waiting_for_an_idle_moment_go_on_one_at_a_time_first_come_first():
    """A storm's reconnects wait for the process to have nothing else to do (yield_to_live); then
    one goes on, and what became ready meanwhile (a live socket's event) goes before the next
    one. gevent.idle() let them all go at the first idle moment, the last come first."""
    import gevent
    from homeapp.engine.recovery import IdleTurns
    turns, ran = IdleTurns(), []

    def reconnect(number):
        turns.wait()
        ran.append(f"reconnect {number}")
        gevent.spawn(ran.append, f"live event during reconnect {number}")
        gevent.sleep(0)  # its next step waits: the live event runs meanwhile
    gevent.joinall([gevent.spawn(reconnect, number) for number in range(3)])
    gevent.sleep(0.01)
    assert ran == ["reconnect 0", "live event during reconnect 0",
                   "reconnect 1", "live event during reconnect 1",
                   "reconnect 2", "live event during reconnect 2"]
