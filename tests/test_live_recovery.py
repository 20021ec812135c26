"""Connection state recovery (issue 14), live: a socket that dropped comes back with its id,
its channels and what it missed, on the same process or another; every other reconnect gets a
fresh session and nothing of the old one; and presence announces nothing for a blip.

The clients are the real socket.io-client in Node (tests/node/recovery_client.js), which drops
when a Link between it and the server is cut and reconnects by itself, and RawClient
(tests/recovering.py), which presents whatever pid and offset a case needs.
"""
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from homeapp.store import redis_keys
from tests.cluster import UNLIMITED, Cluster, all_at_once
from tests.credentials import JWT_SECRET, NODE_DIR, token
from tests.link import Link
from tests.live import Recorder, new_user_id
from tests.payloads import message
from tests.processes import ServerProcess, wait_until
from tests.recovering import RawClient, again

DRIVER = NODE_DIR / "recovery_client.js"
RECOVERY = {"HOMEAPP_RECOVERY_SECONDS": 30}
# what one `message` makes: to the room's channel, then to each recipient's user channel
CHAT = ("messageRoom", "messagePage", "messageResponseNotify")
PRESENCE = "newOnlineUser"


def room_id(*user_ids):
    return ":".join(sorted(user_ids, key=int))


def text_of(payload):
    return payload.get("message", payload.get("lastMessage")) if isinstance(payload, dict) else None


# ---------------------------------------------------------------- deployments


class Deployment:
    """Server processes with recovery on: one without Redis, which a reconnect comes back to
    (processes[0] is processes[1]), or two on a private Redis, a reconnect going to the other."""

    def __init__(self, with_redis, **env):
        env = {**UNLIMITED, **RECOVERY, **env}
        self.cluster = Cluster(2, **env) if with_redis else None
        self.processes = self.cluster.processes if with_redis else [ServerProcess(env).start()] * 2

    def _kept(self, process):
        """What changes once `process` has kept a dropped socket's session: with Redis, how many
        sessions it holds; without, how many sockets the process has open."""
        if self.cluster is not None:
            return len(list(self.cluster.client().scan_iter(redis_keys.recovery_session("*"))))
        samples = requests.get(process.url + "/metrics", timeout=5).text
        return next(s.value for f in text_string_to_metric_families(samples) for s in f.samples
                    if s.name == "homeapp_connected_sockets")

    @contextmanager
    def dropping(self, process):
        """Returns once `process` has seen the drop made in the block, and kept its session."""
        before = self._kept(process)
        yield
        wait_until(lambda: self._kept(process) != before, 10, "the server never saw the drop")

    def listening(self, *channels):
        """With Redis, wait until a process listens on each channel (user:…, room:…)."""
        if self.cluster is None:
            return
        for channel in channels:
            name = redis_keys.queue_channel(channel)
            wait_until(lambda: self.cluster.listeners(name) > 0, 10, f"nobody listens on {name}")

    def close(self):
        if self.cluster is not None:
            self.cluster.close()
        else:
            self.processes[0].stop()


def deployments(**env):
    """A module-scoped fixture: a Deployment with `env`, without Redis and with it. A long
    grace: what a case changes for bystanders is not hidden by a Remove it did not cause."""
    @pytest.fixture(scope="module", params=["memory", "redis"])
    def deployment(request):
        made = Deployment(request.param == "redis", HOMEAPP_PRESENCE_GRACE=60, **env)
        yield made
        made.close()
    return deployment


deploy = deployments()


# ---------------------------------------------------------------- raw clients


def member(clients, server, user_id, room=None, auth=None):
    """A RawClient of `user_id` that did what the client does on connect (addOnlineUser, then
    joinRoom) and opened `room`. With `auth` ({token}), the handshake has no userID."""
    client = RawClient(server, None if auth else user_id, auth=auth)
    client.user_id = user_id
    clients.append(client)
    assert client.call("addOnlineUser", {"userID": user_id, "userUsername": f"user{user_id}"}) == {"ok": True}
    assert client.call("joinRoom", user_id) == {"ok": True}
    if room:
        assert client.call("chatRoom.join", room) == {"ok": True}
    return client


def back(clients, server, client, user_id=None, **kwargs):
    """`client` reconnecting to `server` with its pid and its last offset."""
    new = again(server, client, user_id=user_id or client.user_id, **kwargs)
    new.user_id = user_id or client.user_id
    clients.append(new)
    return new


def say(sender, room, text):
    ack = sender.call("message", message(sender.user_id, room, text))
    assert ack["ok"] is True, ack


def chat(client, *events):
    """(event, text) of the chat events the client got, in order."""
    return [(e, text_of(args[0])) for e, args, _ in client.events if e in (events or CHAT)]


def until_said(client, text, timeout=10):
    """Read until the room's message `text` has reached `client`."""
    deadline = time.monotonic() + timeout
    while ("messageRoom", text) not in chat(client, "messageRoom"):
        assert time.monotonic() < deadline, f"{text!r} never came: {client.events}"
        client.quiet(0.1)


def presence_of(client, *user_ids):
    return [args[0] for e, args, _ in client.events if e == PRESENCE and args[0]["userID"] in user_ids]


def everything(text):
    """What a recipient of `text` gets: each event of a message, once."""
    return [(event, text) for event in CHAT]


def make_blip(deploy, clients, auth=lambda user_id: None):
    """User a on process 0 and user b on process 1 share a room; a drops after "before" and
    b says "missed 0" and "missed 1" meanwhile. Returns (a, b, room); b's events are cleared.
    `auth` gives each user's CONNECT auth."""
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    first, other = deploy.processes
    a = member(clients, first, a_id, room, auth=auth(a_id))
    b = member(clients, other, b_id, room, auth=auth(b_id))
    deploy.listening(f"user:{a_id}", f"user:{b_id}", f"room:{room}")
    say(b, room, "before")
    until_said(a, "before")
    with deploy.dropping(first):
        a.drop()
    for i in range(2):
        say(b, room, f"missed {i}")
    until_said(b, "missed 1")
    b.quiet(0.2)
    b.events.clear()
    return a, b, room


@pytest.fixture
def blip(deploy, clients):
    return make_blip(deploy, clients)


def test_a_raw_client_recovers_its_id_channels_and_what_it_missed(deploy, blip, clients):
    a, b, room = blip
    other = deploy.processes[1]
    a2 = back(clients, other, a)
    assert (a2.recovered, a2.sid, a2.pid) == (True, a.sid, a.pid)
    # what it missed came before the CONNECT reply, in order, each once, with growing offsets
    missed = [(e, text_of(args[0])) for e, args, _ in a2.events[:a2.before_reply] if e in CHAT]
    assert missed == everything("missed 0") + everything("missed 1")
    offsets = [offset for _, _, offset in a2.events]
    assert None not in offsets and len(set(offsets)) == len(offsets)
    assert_growing_per_channel(offsets)
    # its channels are back: what b says now reaches it, live, once
    say(b, room, "after")
    until_said(a2, "after")
    a2.quiet(0.3)
    assert chat(a2)[len(missed):] == everything("after")
    # b saw nothing of it: no presence change, nothing replayed
    b.quiet(0.3)
    assert presence_of(b, a.user_id) == []
    assert chat(b, "messageRoom") == [("messageRoom", "after")]


def assert_growing_per_channel(offsets):
    """Offsets are `<id>@<channel>`: within each channel, the ids only grow."""
    by_channel = {}
    for offset in offsets:
        entry_id, _, channel = offset.partition("@")
        by_channel.setdefault(channel, []).append(tuple(map(int, entry_id.split("-"))))
    assert by_channel and all(ids == sorted(ids) for ids in by_channel.values()), offsets


def assert_fresh(clients, attempt, a, b, room):
    """`attempt` got a fresh session: a new id and pid, nothing replayed; and it does not have
    a's channels (what b says next does not reach it), while b hears nothing of it."""
    assert attempt.reply.get("sid") and attempt.sid != a.sid
    assert attempt.pid and attempt.pid != a.pid and not attempt.recovered
    assert attempt.before_reply == 0
    say(b, room, "after")
    until_said(b, "after")
    attempt.quiet(0.5)
    b.quiet(0.2)
    assert chat(attempt) == []
    assert presence_of(b, a.user_id, attempt.user_id) == []
    assert chat(b) == everything("after")[:1]  # its own messageRoom, and nothing else


@pytest.mark.parametrize("case", [
    "another user", "unknown pid", "malformed pid", "oversized pid", "pid not a string",
    "malformed offset", "offset not a string", "offset the log never held",
    "offset of the old form", "offset of a channel it is not in", "offset out of Redis's range",
])
def test_a_reconnect_that_cannot_recover_gets_a_fresh_session(deploy, blip, clients, case):
    a, b, room = blip
    other = deploy.processes[1]
    stranger = new_user_id()
    attempts = {
        "another user": lambda: back(clients, other, a, user_id=stranger),
        "unknown pid": lambda: raw(other, a, {"pid": "x" * 32, "offset": a.offset}),
        "malformed pid": lambda: raw(other, a, {"pid": a.pid + "!", "offset": a.offset}),
        "oversized pid": lambda: raw(other, a, {"pid": a.pid * 1000, "offset": a.offset}),
        "pid not a string": lambda: raw(other, a, {"pid": [a.pid], "offset": a.offset}),
        "malformed offset": lambda: raw(other, a, {"pid": a.pid, "offset": a.offset + "x"}),
        "offset not a string": lambda: raw(other, a, {"pid": a.pid, "offset": [a.offset]}),
        "offset the log never held": lambda: raw(other, a, {"pid": a.pid, "offset": f"1-0@room:{room}"}),
        "offset of the old form": lambda: raw(other, a, {"pid": a.pid, "offset": "1-0"}),
        "offset of a channel it is not in": lambda: raw(
            other, a, {"pid": a.pid, "offset": a.offset.partition("@")[0] + "@room:elsewhere"}),
        "offset out of Redis's range": lambda: raw(
            other, a, {"pid": a.pid, "offset": f"{2 ** 64}-0@room:{room}"}),
    }
    attempt = attempts[case]()
    clients.append(attempt)
    assert_fresh(clients, attempt, a, b, room)


def test_a_client_that_presents_no_offset_gets_everything_since_its_connect(deploy, blip, clients):
    """socket.io-client sends an offset once it has been sent an event; one that has none was
    sent nothing, so it gets everything its channels were sent since it connected."""
    a, b, room = blip
    a2 = raw(deploy.processes[1], a, {"pid": a.pid})
    clients.append(a2)
    assert (a2.reply["pid"], a2.sid) == (a.pid, a.sid)
    replayed = [(e, text_of(args[0])) for e, args, _ in a2.events[:a2.before_reply] if e in CHAT]
    assert replayed == everything("before") + everything("missed 0") + everything("missed 1")


def test_a_client_back_before_its_old_connection_was_seen_to_end_recovers(graced, clients):
    """Its network changed: the old connection is still open for the server (only missed pings
    would tell it, 45 s later). A reconnect to the same process with its pid ends the old socket
    as a drop and recovers it; a watcher hears nothing."""
    server = graced.processes[0]
    watcher = RawClient(graced.processes[1], new_user_id())
    clients.append(watcher)
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    a = member(clients, server, a_id, room)
    b = member(clients, server, b_id, room)
    say(b, room, "before")
    until_said(a, "before")
    say(b, room, "unread")  # reaches a's old connection, which its client no longer reads
    until_said(b, "unread")
    a2 = back(clients, server, a)  # the old websocket stays open meanwhile
    assert (a2.recovered, a2.sid) == (True, a.sid)
    assert chat(a2)[:a2.before_reply] == everything("unread")
    say(b, room, "after")
    until_said(a2, "after")
    watcher.quiet(GRACE + 1)
    assert presence_of(watcher, a_id) == [{"type": "Add", "userID": a_id}]


def test_another_user_presenting_a_live_sockets_pid_does_not_end_it(graced, clients):
    server = graced.processes[0]
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    a = member(clients, server, a_id, room)
    b = member(clients, server, b_id, room)
    intruder = back(clients, server, a, user_id=new_user_id())
    assert not intruder.recovered and intruder.sid != a.sid
    say(b, room, "still yours")
    until_said(a, "still yours")


def raw(server, client, auth):
    """A reconnect of `client`'s user presenting exactly `auth` in its CONNECT."""
    attempt = RawClient(server, client.user_id, auth=auth)
    attempt.user_id = client.user_id
    return attempt


def test_a_pid_presented_twice_at_once_leaves_one_socket_with_the_session(deploy, blip, clients):
    """Two reconnects with one pid at once. On two processes the first to claim the session
    recovers and the other is fresh. On one process the later takes the place of the earlier
    (as a client back before its old connection was seen to end does), which is told it was
    disconnected by the server (socket.io-client then does not reconnect by itself)."""
    a, b, room = blip
    attempts = []
    all_at_once([lambda p=p: attempts.append(back(clients, p, a)) for p in deploy.processes])
    for attempt in attempts:
        attempt.quiet(0.3)
    holders = [x for x in attempts if x.recovered and not x.disconnected]
    assert len(holders) == 1 and holders[0].sid == a.sid
    holder = holders[0]
    assert chat(holder) == everything("missed 0") + everything("missed 1")
    other = next(x for x in attempts if x is not holder)
    if deploy.cluster is not None:
        assert not other.recovered and other.sid not in (a.sid, None) and other.before_reply == 0
        assert other.pid not in (a.pid, None)
    else:
        assert other.recovered and other.disconnected
    say(b, room, "after")
    until_said(holder, "after")
    other.quiet(0.3)
    assert ("messageRoom", "after") not in chat(other)


def test_after_its_own_disconnect_a_client_reconnects_afresh_and_goes_offline_at_once(deploy, clients):
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    first, other = deploy.processes
    a = member(clients, first, a_id, room)
    b = member(clients, other, b_id, room)
    deploy.listening(f"user:{a_id}", f"room:{room}")
    say(b, room, "before")
    until_said(a, "before")
    a.ws.send("41")  # what socket.disconnect() sends
    deadline = time.monotonic() + 10  # the grace is 60 s: only an announcement at once comes
    while {"type": "Remove", "userID": a_id} not in presence_of(b, a_id):
        assert time.monotonic() < deadline, f"no Remove for {a_id}: {b.events}"
        b.quiet(0.1)
    a.close()
    say(b, room, "missed")
    until_said(b, "missed")
    b.quiet(0.2)
    b.events.clear()
    assert_fresh(clients, back(clients, other, a), a, b, room)


short_window = deployments(HOMEAPP_RECOVERY_SECONDS=1)


def test_after_the_recovery_window_a_reconnect_is_fresh(short_window, clients):
    a, b, room = make_blip(short_window, clients)
    time.sleep(2)  # twice the window
    assert_fresh(clients, back(clients, short_window.processes[1], a), a, b, room)


small_log = deployments(HOMEAPP_HISTORY_SIZE=100)


def test_an_offset_the_log_no_longer_holds_gives_a_fresh_session(small_log, clients):
    a, b, room = make_blip(small_log, clients)
    # two entries a message in a's own channel; Redis trims whole nodes of entries (MAXLEN ~),
    # so it may keep more
    for i in range(2000):
        say(b, room, f"flood {i}")
        if i >= 400 and i % 50 == 0 and not holds(small_log, a.offset):
            break
    assert not holds(small_log, a.offset)
    b.quiet(0.3)
    b.events.clear()
    assert_fresh(clients, back(clients, small_log.processes[1], a), a, b, room)


def holds(deploy, offset):
    """Whether the offset's channel still holds it (without Redis: 400 messages, 800 entries
    in a's channel, are more than a history of 100 keeps)."""
    if deploy.cluster is None:
        return False
    entry_id, _, channel = offset.partition("@")
    return bool(deploy.cluster.client().xrange(redis_keys.history(channel), entry_id, entry_id))


@pytest.fixture(scope="module", params=["memory", "redis"])
def jwt_deploy(request):
    deployment = Deployment(request.param == "redis", HOMEAPP_AUTH="jwt",
                            HOMEAPP_JWT_SECRET=JWT_SECRET, HOMEAPP_PRESENCE_GRACE=60)
    yield deployment
    deployment.close()


def by_token(user_id):
    return {"token": token(user_id)}


def test_jwt_a_pid_recovers_with_its_users_token(jwt_deploy, clients):
    a, b, room = make_blip(jwt_deploy, clients, auth=by_token)
    a2 = RawClient(jwt_deploy.processes[1], auth=by_token(a.user_id), pid=a.pid, offset=a.offset)
    clients.append(a2)
    assert (a2.recovered, a2.sid) == (True, a.sid)
    assert chat(a2) == everything("missed 0") + everything("missed 1")


def test_jwt_a_pid_presented_with_another_users_token_gives_a_fresh_session(jwt_deploy, clients):
    a, b, room = make_blip(jwt_deploy, clients, auth=by_token)
    stranger = new_user_id()
    attempt = RawClient(jwt_deploy.processes[1], auth=by_token(stranger), pid=a.pid, offset=a.offset)
    attempt.user_id = stranger
    clients.append(attempt)
    assert_fresh(clients, attempt, a, b, room)


@pytest.fixture(scope="module")
def without_recovery():
    process = ServerProcess(UNLIMITED).start()
    yield process
    process.stop()


def test_without_recovery_no_pid_and_no_offset(without_recovery, clients):
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    a = member(clients, without_recovery, a_id, room)
    b = member(clients, without_recovery, b_id, room)
    assert set(a.reply) == {"sid"}
    say(b, room, "hello")
    until_said(a, "hello")
    a.quiet(0.3)
    assert [(e, len(args), offset) for e, args, offset in a.events if e in CHAT] == \
        [(e, 1, None) for e in CHAT]
    # a pid presented anyway changes nothing: a fresh connection, still without one
    again_ = raw(without_recovery, a, {"pid": "x" * 32, "offset": "1-0"})
    clients.append(again_)
    assert set(again_.reply) == {"sid"} and again_.sid != a.sid and again_.before_reply == 0


# ---------------------------------------------------------------- socket.io-client


def require_socket_io_client():
    """Skip when Node or tests/node's socket.io-client is missing here; in CI (env CI), fail."""
    if shutil.which("node") and (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        return
    reason = "node or socket.io-client is missing: run `npm ci --prefix tests/node`"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class NodeClient(Recorder):
    """socket.io-client in Node (tests/node/recovery_client.js): what its listeners got, in
    `events` (the offset taken off into `offsets`), its connects and its disconnects."""

    def __init__(self, url, user_id):
        super().__init__(user_id, f"user{user_id}")
        require_socket_io_client()
        self.offsets = []      # each event's last argument, when it is an offset
        self.connects = []     # (socket id, socket.recovered) of each connect
        self.disconnects = []  # their reasons
        self._acks = {}
        self._numbers = itertools.count()
        self.proc = subprocess.Popen(["node", str(DRIVER), url, user_id], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._listen, daemon=True).start()
        self.until(lambda: self.connects, "it never connected")

    def _listen(self):
        for line in self.proc.stdout:
            said = json.loads(line)
            with self._changed:
                if "event" in said:
                    args = said["args"]
                    offset = args.pop() if len(args) > 1 and isinstance(args[-1], str) else None
                    self.events.append((said["event"], args[0] if len(args) == 1 else args))
                    self.offsets.append(offset)
                elif "connect" in said:
                    self.connects.append((said["connect"], said["recovered"]))
                elif "disconnect" in said:
                    self.disconnects.append(said["disconnect"])
                else:
                    self._acks[said["n"]] = said.get("ack", said.get("error"))
                self._changed.notify_all()

    def until(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{what}: {self.events}"
                self._changed.wait(remaining)

    def call(self, event, data=None):
        number = next(self._numbers)
        self.proc.stdin.write(json.dumps({"n": number, "call": event, "data": data}) + "\n")
        self.proc.stdin.flush()
        self.until(lambda: number in self._acks, f"no ack for {event}")
        return self._acks.pop(number)

    def chat(self):
        with self._changed:
            return [(e, text_of(p)) for e, p in self.events if e in CHAT]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"close": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def test_socket_io_client_recovers_what_it_missed_after_a_drop(deploy, clients):
    """The real client, dropped by the network (no goodbye), reconnects by itself, to the other
    process when there are two, and is told it recovered."""
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    first, other = deploy.processes
    link = Link(first)
    try:
        a = NodeClient(link.url, a_id)
        clients.append(a)
        for event, data in (("addOnlineUser", {"userID": a_id, "userUsername": f"user{a_id}"}),
                            ("joinRoom", a_id), ("chatRoom.join", room)):
            assert a.call(event, data) == {"ok": True}
        b = member(clients, other, b_id, room)
        deploy.listening(f"user:{a_id}", f"room:{room}")
        say(b, room, "before")
        a.until(lambda: ("messageResponseNotify", "before") in a.chat(), "before never came")
        with deploy.dropping(first):
            link.cut()
        a.until(lambda: a.disconnects, "the client never saw the drop")
        assert a.disconnects == ["transport close"]  # not "io client disconnect": not a goodbye
        for i in range(2):
            say(b, room, f"missed {i}")
        link.restore(other)
        a.until(lambda: len(a.connects) == 2, "it never reconnected")
        assert a.connects == [(a.connects[0][0], False), (a.connects[0][0], True)]
        a.until(lambda: ("messageResponseNotify", "missed 1") in a.chat(), "missed 1 never came")
        say(b, room, "after")  # to its channels, which it did not join again
        a.until(lambda: ("messageResponseNotify", "after") in a.chat(), "after never came")
        b.quiet(0.3)
        assert a.chat() == [*everything("before"), *everything("missed 0"), *everything("missed 1"),
                            *everything("after")]
        offsets = [o for (e, _), o in zip(a.events, a.offsets) if e in CHAT]
        assert None not in offsets
        assert_growing_per_channel(offsets)
        assert len(set(offsets)) == len(offsets)
        assert presence_of(b, a_id) == []  # b came after a's Add: no Remove, no Add since
    finally:
        link.close()


# ---------------------------------------------------------------- presence


@pytest.fixture(scope="module")
def graced():
    deployment = Deployment(True, HOMEAPP_PRESENCE_GRACE=GRACE)
    yield deployment
    deployment.close()


GRACE = 3


def watched(graced, clients):
    """A watcher on process 1 and a live user a on process 0 whose Add it saw."""
    watcher = RawClient(graced.processes[1], new_user_id())
    clients.append(watcher)
    a_id = new_user_id()
    a = member(clients, graced.processes[0], a_id)
    deadline = time.monotonic() + 10
    while presence_of(watcher, a_id) != [{"type": "Add", "userID": a_id}]:
        assert time.monotonic() < deadline, f"no Add for {a_id}: {watcher.events}"
        watcher.quiet(0.1)
    return watcher, a


def test_a_recovered_blip_announces_nothing(graced, clients):
    watcher, a = watched(graced, clients)
    with graced.dropping(graced.processes[0]):
        a.drop()
    a2 = back(clients, graced.processes[1], a)
    assert a2.recovered
    watcher.quiet(GRACE + 2)  # within the grace and after it
    assert presence_of(watcher, a.user_id) == [{"type": "Add", "userID": a.user_id}]
    # the recovered socket is its user's live one: its own disconnect takes the user offline
    a2.ws.send("41")
    deadline = time.monotonic() + 10
    while len(presence_of(watcher, a.user_id)) < 2:
        assert time.monotonic() < deadline, f"no Remove: {watcher.events}"
        watcher.quiet(0.1)
    assert presence_of(watcher, a.user_id)[1:] == [{"type": "Remove", "userID": a.user_id}]


def test_a_drop_that_does_not_come_back_announces_remove_after_the_grace(graced, clients):
    watcher, a = watched(graced, clients)
    with graced.dropping(graced.processes[0]):
        a.drop()
    watcher.quiet(GRACE / 2)
    assert presence_of(watcher, a.user_id) == [{"type": "Add", "userID": a.user_id}]
    deadline = time.monotonic() + GRACE + 10
    while len(presence_of(watcher, a.user_id)) < 2:
        assert time.monotonic() < deadline, f"no Remove: {watcher.events}"
        watcher.quiet(0.1)
    watcher.quiet(0.3)
    assert presence_of(watcher, a.user_id) == [{"type": "Add", "userID": a.user_id},
                                               {"type": "Remove", "userID": a.user_id}]
