"""Connection state recovery (issue 14), live: a socket that dropped comes back with its id,
its channels and what it missed, on the same process or another; every other reconnect gets a
fresh session and nothing of the old one; and presence announces nothing for a blip.

The clients are the real socket.io-client in Node (tests/node/recovery_client.js), which drops
when a Link between it and the server is cut and reconnects by itself, and RawClient
(tests/recovering.py), which presents whatever pid and offset a case needs.
"""
import hashlib
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

from homeapp.cluster import redis_keys
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
        env = dict(UNLIMITED, **RECOVERY, **env)
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
            name = redis_keys.queue_room("/", channel)
            wait_until(lambda: self.cluster.listeners(name) > 0, 10, f"nobody listens on {name}")

    def close(self):
        if self.cluster is not None:
            self.cluster.close()
        else:
            self.processes[0].stop()


@pytest.fixture(scope="module", params=["memory", "redis"])
def deploy(request):
    # a long grace: what a case changes for bystanders is not hidden by a Remove it did not cause
    deployment = Deployment(request.param == "redis", HOMEAPP_PRESENCE_GRACE=60)
    yield deployment
    deployment.close()


@pytest.fixture
def clients():
    """Every client a test makes is closed after it."""
    made = []
    yield made
    for client in made:
        client.close()


# ---------------------------------------------------------------- raw clients


def member(clients, server, user_id, room=None, auth=None, query=True):
    """A RawClient of `user_id` that did what the client does on connect (addOnlineUser, then
    joinRoom) and opened `room`."""
    client = RawClient(server, user_id if query else None, auth=auth)
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


@pytest.fixture
def blip(deploy, clients):
    """User a on process 0 and user b on process 1 share a room; a drops after "before" and
    b says "missed 0" and "missed 1" meanwhile. Returns (a, b, room)."""
    a_id, b_id = new_user_id(), new_user_id()
    room = room_id(a_id, b_id)
    first, other = deploy.processes
    a = member(clients, first, a_id, room)
    b = member(clients, other, b_id, room)
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
    assert sorted(offsets, key=lambda o: tuple(map(int, o.split("-")))) == offsets
    # its channels are back: what b says now reaches it, live, once
    say(b, room, "after")
    until_said(a2, "after")
    a2.quiet(0.3)
    assert chat(a2)[len(missed):] == everything("after")
    # b saw nothing of it: no presence change, nothing replayed
    b.quiet(0.3)
    assert presence_of(b, a.user_id) == []
    assert chat(b, "messageRoom") == [("messageRoom", "after")]


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
    "malformed offset", "offset not a string", "offset the log never held", "no offset",
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
        "offset the log never held": lambda: raw(other, a, {"pid": a.pid, "offset": "1-0"}),
        "no offset": lambda: raw(other, a, {"pid": a.pid}),
    }
    attempt = attempts[case]()
    clients.append(attempt)
    assert_fresh(clients, attempt, a, b, room)


def raw(server, client, auth):
    """A reconnect of `client`'s user presenting exactly `auth` in its CONNECT."""
    attempt = RawClient(server, client.user_id, auth=auth)
    attempt.user_id = client.user_id
    return attempt
