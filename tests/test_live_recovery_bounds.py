"""Recovery's costs and limits, live (issue 22): a reconnect reads only its own channels'
histories; an offset Redis could not hold is a fresh session, not an outage; a session is only
consumed once its identity is checked; a kick or a deleted room while a socket is away is applied
to the session it recovers; and a storm of reconnects stays within its budget. Each of these failed on the single
event log (one stream for the whole deployment) this replaced."""
import time

import pytest
import requests

from tests import payloads
from tests.cluster import all_at_once
from tests.live import new_user_id
from tests.recovering import metric
from tests.test_live_recovery import (Deployment, assert_fresh, back, chat, deployments,
                                      everything, make_blip, member, raw, say, until_said)

deploy = deployments()


@pytest.fixture(scope="module")
def redis_deploy():
    made = Deployment(True, HOMEAPP_PRESENCE_GRACE=60)
    yield made
    made.close()


def redis_output_bytes(deploy):
    return deploy.cluster.client().info("stats")["total_net_output_bytes"]


def test_a_reconnect_reads_only_its_own_channels(redis_deploy, clients):
    deploy = redis_deploy
    a, b, room = make_blip(deploy, clients)
    # a large history on channels a was never in: 150 messages of 2 KB in another chat
    c_id, d_id = new_user_id(), new_user_id()
    other_room = f"{min(c_id, d_id, key=int)}:{max(c_id, d_id, key=int)}"
    c = member(clients, deploy.processes[1], c_id, other_room)
    member(clients, deploy.processes[1], d_id, other_room)
    for i in range(150):
        say(c, other_room, f"{i:04d}" + "x" * 2000)
    process = deploy.processes[1]
    entries, sent = metric(process, "homeapp_recovery_read_entries_total"), redis_output_bytes(deploy)
    a2 = back(clients, process, a)
    assert a2.recovered
    assert chat(a2) == everything("missed 0") + everything("missed 1")
    # what it read is what it missed (six events, a few presence announcements), not the rest
    assert metric(process, "homeapp_recovery_read_entries_total") - entries <= 20
    assert redis_output_bytes(deploy) - sent < 100_000  # the other chat's history is over 900 KB


@pytest.mark.parametrize("offset", ["99999999999999999999-0", "99999999999999999999-0@*",
                                    "18446744073709551616-0@user:{a}", "0-99999999999999999999@user:{a}"])
def test_an_offset_past_what_redis_holds_is_a_fresh_session_not_an_outage(redis_deploy, clients, offset):
    deploy = redis_deploy
    a, b, room = make_blip(deploy, clients)
    process = deploy.processes[1]
    errors = metric(process, "homeapp_redis_errors_total")
    attempt = raw(process, a, {"pid": a.pid, "offset": offset.format(a=a.user_id)})
    clients.append(attempt)
    assert not attempt.recovered
    # the process still answers for Redis, to everyone
    for _ in range(6):
        assert requests.get(process.url + "/readyz", timeout=5).status_code == 200
        bystander = member(clients, process, new_user_id())
        assert bystander.call("addOnlineUser", {"userID": bystander.user_id,
                                                "userUsername": "bystander"}) == {"ok": True}
        time.sleep(0.5)
    assert metric(process, "homeapp_redis_errors_total") == errors
    assert_fresh(clients, attempt, a, b, room)


def test_a_reconnect_with_the_wrong_identity_leaves_the_session_to_its_owner(deploy, clients):
    a, b, room = make_blip(deploy, clients)
    other = deploy.processes[1]
    stranger = new_user_id()
    attempt = back(clients, other, a, user_id=stranger)
    assert not attempt.recovered and attempt.sid != a.sid and attempt.before_reply == 0
    owner = back(clients, other, a)
    assert (owner.recovered, owner.sid) == (True, a.sid)
    assert chat(owner) == everything("missed 0") + everything("missed 1")


def group_of(*user_ids):
    return ":".join(sorted(user_ids, key=int))


def away_in_a_group(deploy, clients):
    """Three users in a group, b and c on the second process, a on the first; a heard "before",
    then its socket dropped. Returns (a, b, group)."""
    a_id, b_id, c_id = new_user_id(), new_user_id(), new_user_id()
    group = group_of(a_id, b_id, c_id)
    first, other = deploy.processes
    a = member(clients, first, a_id, group)
    b = member(clients, other, b_id, group)
    member(clients, other, c_id, group)
    deploy.listening(f"user:{a_id}", f"room:{group}")
    say(b, group, "before")
    until_said(a, "before")
    with deploy.dropping(first):
        a.drop()
    return a, b, group


def said_later_is_not_heard(a2, b, group):
    """The room is not a2's again: what is said there now does not reach it."""
    say(b, group, "later")
    until_said(b, "later")
    a2.quiet(0.5)
    assert ("messageRoom", "later") not in chat(a2, "messageRoom")


def test_a_user_kicked_while_away_recovers_without_the_room(deploy, clients):
    a, b, group = away_in_a_group(deploy, clients)
    say(b, group, "before kick")
    assert b.call("kickUserFromGroup", payloads.kick(b.user_id, group, a.user_id)) == {"ok": True}
    say(b, group, "after kick")
    until_said(b, "after kick")
    a2 = back(clients, deploy.processes[1], a)
    assert (a2.recovered, a2.sid) == (True, a.sid)
    room_events = [(e, args[0]) for e, args, _ in a2.events if e in ("messageRoom", "kickUserFromGroupChangeInRoom")]
    assert [(e, p.get("message") if e == "messageRoom" else p["kickedUserID"]) for e, p in room_events] == \
        [("messageRoom", "before kick"), ("kickUserFromGroupChangeInRoom", a.user_id)]
    said_later_is_not_heard(a2, b, group)


def test_a_room_deleted_while_away_recovers_without_the_room(deploy, clients):
    """deleteUserRoom while a member's socket is away: the session it recovers gets the room's
    events up to the deletion and nothing after, and is no longer in the room."""
    a, b, group = away_in_a_group(deploy, clients)
    say(b, group, "before delete")
    assert b.call("deleteUserRoom", payloads.delete_room(b.user_id, group)) == {"ok": True}
    # the room's id goes on: a member opening it again and talking there, after the deletion
    assert b.call("chatRoom.join", group) == {"ok": True}
    say(b, group, "after delete")
    until_said(b, "after delete")
    a2 = back(clients, deploy.processes[1], a)
    assert (a2.recovered, a2.sid) == (True, a.sid)
    assert chat(a2, "messageRoom") == [("messageRoom", "before delete")]
    # what its user's channel got meanwhile still comes: the deletion's own announcement
    assert [args[0] for e, args, _ in a2.events if e == "deleteUserRoomChange"] == [{"roomID": group}]
    said_later_is_not_heard(a2, b, group)


storm = deployments(HOMEAPP_RECOVERY_CONCURRENCY=1, HOMEAPP_RECOVERY_MAX_ENTRIES=12)


def test_a_storm_of_reconnects_stays_within_its_budget(storm, clients):
    """Twelve sockets reconnect at once, one restore at a time: those that missed more than the
    budget allows get fresh sessions, the others recover whole or start afresh, never a partial
    replay; and the process goes on answering everyone."""
    deploy = storm
    first, other = deploy.processes
    sender_id = new_user_id()
    sender = member(clients, other, sender_id)
    away = []
    for number in range(12):
        user_id = new_user_id()
        room = group_of(sender_id, user_id)
        client = member(clients, first, user_id, room)
        assert sender.call("chatRoom.join", room) == {"ok": True}
        away.append((client, room, number % 2 == 0))  # every other one misses a lot
    deploy.listening(*(f"room:{room}" for _, room, _ in away))
    for client, _, _ in away:
        with deploy.dropping(first):
            client.drop()
    for _, room, heavy in away:
        for i in range(6 if heavy else 1):
            say(sender, room, f"missed {i}")
    sender.quiet(0.3)
    recovered_before = metric(other, "homeapp_recovery_read_entries_total")
    returns = {}
    all_at_once([lambda c=c: returns.__setitem__(c, back(clients, other, c)) for c, _, _ in away])
    assert len(returns) == len(away)  # every one was answered
    recovered = 0
    for client, _, heavy in away:
        came = returns[client]
        came.quiet(0.2)
        if came.recovered:
            assert not heavy, "a socket that missed more than the budget recovered"
            assert chat(came) == everything("missed 0")
            recovered += 1
        else:
            assert came.sid != client.sid and came.before_reply == 0 and chat(came) == []
    assert recovered >= 1
    assert metric(other, "homeapp_recoveries_total", outcome="budget") >= 6
    assert metric(other, "homeapp_recovery_read_entries_total") > recovered_before
    if deploy.cluster is not None:
        assert requests.get(other.url + "/readyz", timeout=5).status_code == 200
    bystander = member(clients, other, new_user_id())
    assert bystander.call("addOnlineUser", {"userID": bystander.user_id,
                                            "userUsername": "bystander"}) == {"ok": True}
