"""Recovery's parts on their own: the session stores, the event logs, which emits are logged,
and its settings. The wire is tests/test_live_recovery.py's."""
import json
import time

import pytest

from homeapp.cluster import redis_keys
from homeapp.config import ConfigError, load_config
from homeapp.recovery.channels import logged
from homeapp.recovery.log import MemoryLog, RedisLog
from homeapp.recovery.sessions import MemorySessions, RedisSessions, Session, new_pid


def session(sid="s1", user="7"):
    return Session(sid, user, f"user{user}", True, [f"user:{user}", "room:7:8"])


# --- settings -------------------------------------------------------------------------------

def test_recovery_is_off_by_default_with_a_five_second_grace():
    config = load_config({})
    assert config["RECOVERY_SECONDS"] == 0 and config["PRESENCE_GRACE"] == 5


@pytest.mark.parametrize("name, value", [
    ("HOMEAPP_RECOVERY_SECONDS", "-1"), ("HOMEAPP_RECOVERY_SECONDS", "inf"),
    ("HOMEAPP_RECOVERY_SECONDS", "nan"), ("HOMEAPP_RECOVERY_SECONDS", "two minutes"),
    ("HOMEAPP_PRESENCE_GRACE", "-5"), ("HOMEAPP_EVENT_LOG_MAX_ENTRIES", "10"),
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
    assert sessions.claim(new_pid()) is None
    assert sessions.claim(pid[:-1]) is None
    claimed = sessions.claim(pid)
    assert (claimed.sid, claimed.user_id, claimed.username, claimed.live, claimed.rooms) == \
        ("s1", "7", "user7", True, ["user:7", "room:7:8"])
    assert sessions.claim(pid) is None  # a second reconnect with the same pid starts afresh


def test_a_session_ends_with_its_window(sessions):
    pid = new_pid()
    sessions.save(pid, session())
    time.sleep(1.2)
    assert sessions.claim(pid) is None


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
    assert [store.claim(pid) is None for pid in pids] == [True, True, False, False, False]


def test_a_value_this_server_did_not_write_is_no_session(redis_server):
    client = redis_server.client()
    store = RedisSessions(client, seconds=30)
    pid = new_pid()
    store.save(pid, session())
    key = next(k for k in client.scan_iter(f"{redis_keys.recovery_session('')}*")
               if json.loads(client.get(k))["sid"] == "s1")
    client.set(key, "not json")
    assert store.claim(pid) is None


# --- the event log ------------------------------------------------------------------------------

def message(number):
    return {"method": "emit", "event": "messageRoom", "data": [{"n": number}], "room": "room:1:2",
            "namespace": "/"}


def test_the_memory_log_gives_what_came_after_an_offset_it_holds():
    log = MemoryLog(seconds=60, capacity=1000)
    offsets = [log.append(message(n)) for n in range(5)]
    assert len(set(offsets)) == 5 and offsets == sorted(offsets, key=lambda o: tuple(map(int, o.split("-"))))
    assert [m["data"][0]["n"] for _, m in log.after(offsets[1])] == [2, 3, 4]
    assert log.after(offsets[-1]) == []


@pytest.mark.parametrize("offset", ["1-0", "", "abc", "1-2-3", "9" * 30 + "-0", 12, None, ["1-0"]])
def test_the_memory_log_holds_no_offset_it_never_gave(offset):
    log = MemoryLog(seconds=60, capacity=1000)
    log.append(message(0))
    assert log.after(offset) is None


def test_the_memory_log_forgets_past_its_capacity():
    log = MemoryLog(seconds=60, capacity=3)
    offsets = [log.append(message(n)) for n in range(5)]
    assert log.after(offsets[0]) is None and log.after(offsets[1]) is None
    assert [m["data"][0]["n"] for _, m in log.after(offsets[2])] == [3, 4]


def xadd(client, sender, number, data):
    return client.xadd(redis_keys.EVENT_LOG, {"c": "x", "m": f"{sender} {number} {json.dumps(data)}"})


def test_the_redis_log_pages_through_and_skips_copies_of_a_retried_publish(redis_server):
    client = redis_server.client()
    client.delete(redis_keys.EVENT_LOG)
    first = xadd(client, "a", 1, message(0))
    for n in range(1, 2500):
        xadd(client, "a", n + 1, message(n))
    xadd(client, "a", 2500, message(2499))  # the same message again: a publish that was retried
    xadd(client, "b", 1, message(2500))
    entries = RedisLog(client).after(first)
    assert [m["data"][0]["n"] for _, m in entries] == list(range(1, 2501))
    assert RedisLog(client).after("1-0") is None  # not held: a recovery would leave a gap
    assert RedisLog(client).after("junk") is None
    client.delete(redis_keys.EVENT_LOG)


def test_the_memory_logs_start_stands_for_a_socket_connected_before_its_first_entry():
    log = MemoryLog(seconds=60, capacity=3)
    assert log.position() == "0-0"
    offsets = [log.append(message(n)) for n in range(3)]
    assert log.position() == offsets[-1]
    assert [m["data"][0]["n"] for _, m in log.after("0-0")] == [0, 1, 2]
    log.append(message(3))  # the first entry is forgotten: the start no longer stands for anything
    assert log.after("0-0") is None


# --- delivery while a socket is restored ----------------------------------------------------------

def test_an_emit_to_a_socket_being_restored_waits_and_others_get_it_at_once():
    import logging
    import socketio
    from homeapp.recovery import Recovery
    from homeapp.recovery.manager import LoggingManager

    manager = LoggingManager()
    server = socketio.Server(async_mode="threading", client_manager=manager,
                             logger=logging.getLogger("tests.recovery"))
    sent = []
    server._send_eio_packet = lambda eio_sid, packet: sent.append((eio_sid, packet.data))
    manager.recovery = Recovery(None, MemoryLog(60, 1000), MemorySessions(60), 5)
    restored = manager.connect("eio-restored", "/")
    other = manager.connect("eio-other", "/")
    for sid in (restored, other):
        manager.enter_room(sid, "/", "room:1:2")
    manager.recovery.restoring[restored] = held = []
    manager.emit("messageRoom", {"message": "hi"}, "/", room="room:1:2")
    manager.emit("messageRoom", {"message": "not to it"}, "/", room="room:1:2", skip_sid=restored)
    assert [eio for eio, _ in sent] == ["eio-other", "eio-other"]
    assert [(m["event"], m["data"]) for _, m in held] == [("messageRoom", [{"message": "hi"}])]
    offset = held[0][0]
    assert sent[0][1].endswith(json.dumps(offset) + "]")  # the offset is the last argument
    logged_after = manager.recovery.events.after("0-0")
    assert [(m["data"], m["skip_sid"]) for _, m in logged_after] == \
        [([{"message": "hi"}], None), ([{"message": "not to it"}], restored)]
    assert logged_after[0][0] == offset


def test_the_redis_logs_start_stands_for_a_socket_connected_before_its_first_entry(redis_server):
    client = redis_server.client()
    client.delete(redis_keys.EVENT_LOG)
    assert RedisLog(client).after("0-0") == []  # no log yet: nothing missed, nothing lost
    for n in range(3):
        xadd(client, "a", n + 1, message(n))
    assert [m["data"][0]["n"] for _, m in RedisLog(client).after("0-0")] == [0, 1, 2]
    client.xtrim(redis_keys.EVENT_LOG, maxlen=2, approximate=False)  # an entry is gone: the start stands for nothing
    assert RedisLog(client).after("0-0") is None
    client.delete(redis_keys.EVENT_LOG)
