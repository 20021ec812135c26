"""POST /api/events on two processes sharing one Redis: the REST API performs events as its users,
reaching the same people as a socket's event would, once per Idempotency-Key."""
import json
import socket
import subprocess
import sys
import threading

import pytest
import requests

from tests import payloads
from tests.cluster import Cluster
from tests.live import assert_refused, new_user_id, open_room, peers_on, room_of, settle
from tests.payloads import DROP, changed
from tests.processes import ROOT, ServerProcess, wait_until

NEW_TOKEN = "new-token-" + "n" * 30
OLD_TOKEN = "old-token-" + "o" * 30
# rotating: the previous token still works beside the new one
API = {"HOMEAPP_API_TOKENS": f"{NEW_TOKEN},{OLD_TOKEN}",
       "HOMEAPP_SERVER_ONLY_EVENTS": "commentNotification,ratingNotification"}
COMMENT_EVENTS = ("privateCommentNotify", "newCommentChange")


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(2, **API)
    try:
        cluster.peer(0), cluster.peer(1)  # each process listens on the queue from its first socket
        cluster.wait_for_queue(2)
        yield cluster
    finally:
        cluster.close()


def post(process, body, token=NEW_TOKEN, key=None, headers=None):
    """POST body (JSON-encoded unless it is bytes) to a process's /api/events."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if key is not None:
        sent["Idempotency-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{process.url}/api/events", data=data, timeout=10,
                         headers={"Content-Type": "application/json", **sent})


def request_body(event, user_id, payload):
    return {"event": event, "userID": user_id, "payload": payload}


def assert_error(response, status, code, event):
    body = response.json()
    assert (response.status_code, body["ok"], body["code"], body["event"]) == (status, False, code, event), body
    assert set(body) >= {"ok", "error", "code", "event", "timestamp"}
    return body


def expected_comment(payload):
    comment = payload["newComment"]
    return [("privateCommentNotify", payload), ("newCommentChange", comment)]


def test_a_comment_reaches_only_the_houseworker_on_the_other_process(cluster):
    client, bystander = cluster.peer(0), cluster.peer(0)
    houseworker, far_bystander = cluster.peer(1), cluster.peer(1)
    second_tab = cluster.peer(0, user_id=houseworker.user_id)
    payload = payloads.comment(client.user_id, houseworker.user_id)
    response = post(cluster[0], request_body("commentNotification", client.user_id, payload))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    settle(client, bystander, houseworker, far_bystander, second_tab)
    assert houseworker.got() == second_tab.got() == expected_comment(payload)
    for peer in (client, bystander, far_bystander):
        assert peer.got() == [], f"user {peer.user_id} received {peer.got()}"


def test_a_rating_reaches_only_the_houseworker(cluster):
    client, houseworker, other = cluster.peer(0), cluster.peer(1), cluster.peer(1)
    payload = payloads.rating(client.user_id, houseworker.user_id, 4)
    response = post(cluster[1], request_body("ratingNotification", client.user_id, payload))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    settle(client, houseworker, other)
    assert houseworker.got() == [(f"privateRatingNotify-{houseworker.user_id}", payload)]
    assert client.got() == other.got() == []


def test_a_message_is_relayed_exactly_as_a_socket_message_is(cluster):
    sender, near, far, outsider = cluster.peer(0), cluster.peer(0), cluster.peer(1), cluster.peer(1)
    room = room_of(sender, near, far)
    open_room(room, sender, near, far)
    everyone = (sender, near, far, outsider)
    payload = payloads.message(sender.user_id, room, "the same either way", date=payloads.DATE)
    payload["data"]["unreadMessArray"][0]["updateStatus"] = False  # one recipient's own status

    ack = sender.call("message", payload)
    settle(*everyone)
    by_socket = [peer.got() for peer in everyone]
    for peer in everyone:
        peer.clear()
    response = post(cluster[1], request_body("message", sender.user_id, payload))
    settle(*everyone)
    by_api = [peer.got() for peer in everyone]

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(ack) == {"ok", "id", "date"} and body["date"] == ack["date"] == payloads.DATE
    assert body["id"] != ack["id"]
    assert by_api == by_socket
    assert [event for event, _ in by_socket[2]] == ["messageRoom", "messagePage", "messageResponseNotify"]
    assert by_socket[0] == [("messageRoom", {"message": "the same either way", "from": sender.user_id,
                                             "roomID": room, "fromUsername": sender.username,
                                             "date": payloads.DATE})]
    assert by_socket[3] == []


def test_group_events_reach_every_member_on_both_processes(cluster):
    owner, member, newcomer = cluster.peer(0), cluster.peer(1), cluster.peer(1)
    room = room_of(owner, member)
    open_room(room, owner, member)
    payload = payloads.new_member(owner.user_id, room, newcomer.user_id)
    response = post(cluster[0], request_body("addUserToGroup", owner.user_id, payload))
    assert (response.status_code, response.json()) == (200, {"ok": True})
    settle(owner, member, newcomer)
    new_room = payload["data"]["newRoomID"]
    assert owner.got() == [("addUserToGroupChangeInRoom", new_room)]
    assert [event for event, _ in member.got()] == ["addUserToGroupChangeInRoom", "addUserToGroupNotify",
                                                    "addUserToGroupChange"]
    assert [event for event, _ in newcomer.got()] == ["addUserToGroupNotify", "addUserToGroupChange"]


@pytest.mark.parametrize("token", [NEW_TOKEN, OLD_TOKEN], ids=["new-token", "previous-token"])
def test_both_tokens_work_while_rotating(cluster, token):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    payload = payloads.rating(client.user_id, houseworker.user_id)
    response = post(cluster[0], request_body("ratingNotification", client.user_id, payload), token=token)
    assert response.status_code == 200
    houseworker.wait_for(f"privateRatingNotify-{houseworker.user_id}")


BAD_CREDENTIALS = [
    ("missing", {}),
    ("wrong-token", {"Authorization": "Bearer " + "w" * 40}),
    ("a-prefix-of-the-token", {"Authorization": f"Bearer {NEW_TOKEN[:-1]}"}),
    ("token-and-more", {"Authorization": f"Bearer {NEW_TOKEN}x"}),
    ("basic-scheme", {"Authorization": f"Basic {NEW_TOKEN}"}),
    ("bare-token", {"Authorization": NEW_TOKEN}),
    ("empty-bearer", {"Authorization": "Bearer "}),
]


@pytest.mark.parametrize("headers", [h for _, h in BAD_CREDENTIALS], ids=[i for i, _ in BAD_CREDENTIALS])
def test_requests_without_a_valid_token_are_refused(cluster, headers):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    payload = payloads.comment(client.user_id, houseworker.user_id)
    response = post(cluster[0], request_body("commentNotification", client.user_id, payload),
                    token=None, headers=headers)
    assert_error(response, 401, "UNAUTHENTICATED", None)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    settle(client, houseworker)
    assert houseworker.got() == []


def test_a_retired_token_is_refused_once_rotation_is_over(cluster):
    rotated = cluster.add_process(HOMEAPP_API_TOKENS=NEW_TOKEN)
    client, houseworker = cluster.peer(rotated), cluster.peer(1)
    body = request_body("ratingNotification", client.user_id,
                        payloads.rating(client.user_id, houseworker.user_id))
    assert_error(post(rotated, body, token=OLD_TOKEN), 401, "UNAUTHENTICATED", None)
    assert post(rotated, body, token=NEW_TOKEN).status_code == 200
    houseworker.wait_for(f"privateRatingNotify-{houseworker.user_id}")
    settle(houseworker)
    assert len(houseworker.got()) == 1


def _comment(a, h):
    return request_body("commentNotification", a, payloads.comment(a, h))


def _message(a, h, **fields):
    return request_body("message", a, payloads.message(a, room_of_ids(a, h), **fields))


def room_of_ids(*user_ids):
    return ":".join(sorted(user_ids, key=int))


# (id, body from (actor, houseworker), status, code, the error's event, extra headers)
BAD_REQUESTS = [
    ("not-json", lambda a, h: b"{event: message", 400, "VALIDATION_ERROR", None, {}),
    ("empty-body", lambda a, h: b"", 400, "VALIDATION_ERROR", None, {}),
    ("json-array", lambda a, h: [_comment(a, h)], 400, "VALIDATION_ERROR", None, {}),
    ("json-string", lambda a, h: "commentNotification", 400, "VALIDATION_ERROR", None, {}),
    ("no-event", lambda a, h: changed(_comment(a, h), "event", DROP), 400, "VALIDATION_ERROR", None, {}),
    ("event-not-a-string", lambda a, h: changed(_comment(a, h), "event", 7), 400, "VALIDATION_ERROR",
     None, {}),
    ("no-user", lambda a, h: changed(_comment(a, h), "userID", DROP), 400, "VALIDATION_ERROR",
     "commentNotification", {}),
    ("user-not-an-id", lambda a, h: changed(_comment(a, h), "userID", "ana"), 400, "VALIDATION_ERROR",
     "commentNotification", {}),
    ("oversized", lambda a, h: changed(_comment(a, h), "payload.newComment.comment", "c" * 70_000), 413,
     "VALIDATION_ERROR", None, {}),
    ("unknown-event", lambda a, h: changed(_comment(a, h), "event", "noSuchEvent"), 400, "UNKNOWN_EVENT",
     "noSuchEvent", {}),
    ("socket-only-joinRoom", lambda a, h: request_body("joinRoom", a, a), 400, "UNKNOWN_EVENT",
     "joinRoom", {}),
    ("socket-only-addOnlineUser", lambda a, h: request_body("addOnlineUser", a, {"userID": a}), 400,
     "UNKNOWN_EVENT", "addOnlineUser", {}),
    ("socket-only-startTypingRoom",
     lambda a, h: request_body("startTypingRoom", a, payloads.typing(a, room_of_ids(a, h))), 400,
     "UNKNOWN_EVENT", "startTypingRoom", {}),
    ("socket-only-chatRoom.join", lambda a, h: request_body("chatRoom.join", a, room_of_ids(a, h)), 400,
     "UNKNOWN_EVENT", "chatRoom.join", {}),
    ("no-payload", lambda a, h: changed(_comment(a, h), "payload", DROP), 400, "VALIDATION_ERROR",
     "commentNotification", {}),
    ("bad-payload", lambda a, h: changed(_comment(a, h), "payload.newComment.houseworkerID", "x"), 400,
     "VALIDATION_ERROR", "commentNotification", {}),
    ("unsorted-room", lambda a, h: request_body("message", a, payloads.message(a, f"{h}:{a}")), 400,
     "VALIDATION_ERROR", "message", {}),
    ("non-member", lambda a, h: request_body("message", "1", changed(
        payloads.message(a, room_of_ids(a, h)), "data.from", "1")), 403, "FORBIDDEN", "message", {}),
    ("sender-is-not-the-user", lambda a, h: changed(_message(a, h), "userID", h), 403, "FORBIDDEN",
     "message", {}),
    ("notification-from-another", lambda a, h: changed(_comment(a, h), "userID", h), 403, "FORBIDDEN",
     "commentNotification", {}),
    ("empty-idempotency-key", _comment, 400, "VALIDATION_ERROR", "commentNotification",
     {"Idempotency-Key": ""}),
    ("long-idempotency-key", _comment, 400, "VALIDATION_ERROR", "commentNotification",
     {"Idempotency-Key": "k" * 201}),
    ("idempotency-key-with-a-tab", _comment, 400, "VALIDATION_ERROR", "commentNotification",
     {"Idempotency-Key": "a\tb"}),
]


@pytest.mark.parametrize("make_body, status, code, event, headers", [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_are_refused_and_deliver_nothing(cluster, make_body, status, code, event, headers):
    actor, houseworker = cluster.peer(0), cluster.peer(1)
    room = room_of(actor, houseworker)
    open_room(room, actor, houseworker)
    response = post(cluster[0], make_body(actor.user_id, houseworker.user_id), headers=headers)
    assert_error(response, status, code, event)
    settle(actor, houseworker)
    assert actor.got() == houseworker.got() == []


def test_an_oversized_body_without_a_length_is_refused_too(cluster):
    """A chunked body announces no size: it is read up to the limit and no further."""
    actor, houseworker = cluster.peer(0), cluster.peer(1)
    body = json.dumps(changed(_comment(actor.user_id, houseworker.user_id), "payload.newComment.comment",
                              "c" * 70_000)).encode()
    chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))  # requests sends it chunked
    response = requests.post(f"{cluster[0].url}/api/events", data=chunks, timeout=10,
                             headers={"Authorization": f"Bearer {NEW_TOKEN}"})
    assert "Content-Length" not in response.request.headers
    assert_error(response, 413, "VALIDATION_ERROR", None)
    settle(houseworker)
    assert houseworker.got() == []


def test_a_repeated_key_on_the_other_process_delivers_once_and_answers_the_same(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    body = request_body("message", client.user_id,
                        payloads.message(client.user_id, room_of(client, houseworker), "only once"))
    first = post(cluster[0], body, key="save-41")
    again = post(cluster[1], body, key="save-41")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # the same message id and date
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    settle(client, houseworker)
    assert [event for event, _ in houseworker.got()] == ["messagePage", "messageResponseNotify"]


def test_a_refusal_is_remembered_under_its_key_too(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    body = changed(_comment(client.user_id, houseworker.user_id), "userID", houseworker.user_id)
    first = post(cluster[0], body, key="forged-7")
    assert_error(first, 403, "FORBIDDEN", "commentNotification")
    again = post(cluster[1], body, key="forged-7")
    assert (again.status_code, again.content) == (403, first.content)


def test_the_same_key_with_another_body_is_a_conflict(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    payload = payloads.comment(client.user_id, houseworker.user_id)
    assert post(cluster[0], request_body("commentNotification", client.user_id, payload),
                key="comment-240").status_code == 200
    changed_payload = changed(payload, "newComment.comment", "Edited after the fact")
    response = post(cluster[1], request_body("commentNotification", client.user_id, changed_payload),
                    key="comment-240")
    assert_error(response, 409, "CONFLICT", "commentNotification")
    settle(client, houseworker)
    assert houseworker.got() == expected_comment(payload)


def test_the_same_body_in_another_json_spelling_is_the_same_request(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    body = _comment(client.user_id, houseworker.user_id)
    first = post(cluster[0], body, key="spelling-1")
    respelled = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    again = post(cluster[1], respelled, key="spelling-1")
    assert (again.status_code, again.content) == (200, first.content)
    settle(houseworker)
    assert houseworker.got() == expected_comment(body["payload"])


def _held_back(process, body, key):
    """A connection with all of a request written but its last byte, to be released at will."""
    raw = json.dumps(body).encode()
    head = (f"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n"
            f"Authorization: Bearer {NEW_TOKEN}\r\nIdempotency-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    conn = socket.create_connection(("127.0.0.1", process.port), timeout=10)
    conn.sendall(head + raw[:-1])
    return conn, raw[-1:]


def _finish(conn, last_byte):
    """Send the last byte and return (status, body) of the answer."""
    with conn:
        conn.sendall(last_byte)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_two_requests_with_one_key_at_once_perform_it_once(cluster):
    """Both arrive together, one on each process: one is performed, the other is told that the key
    is in use (or, when it came second after all, gets the first one's answer)."""
    client, houseworker = cluster.peer(0), cluster.peer(1)
    conflicts = 0
    for attempt in range(10):
        payload = payloads.comment(client.user_id, houseworker.user_id)
        payload["newComment"]["commentID"] = 1000 + attempt
        body = request_body("commentNotification", client.user_id, payload)
        held = [_held_back(cluster[i], body, f"race-{attempt}") for i in (0, 1)]
        barrier, answers = threading.Barrier(2), [None, None]

        def race(index):
            barrier.wait(5)
            answers[index] = _finish(*held[index])

        threads = [threading.Thread(target=race, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        statuses = sorted(status for status, _ in answers)
        assert statuses in ([200, 200], [200, 409]), answers
        if statuses == [200, 409]:
            conflicts += 1
            refused = next(body for status, body in answers if status == 409)
            assert refused["code"] == "CONFLICT" and refused["event"] == "commentNotification"
        else:
            assert answers[0][1] == answers[1][1] == {"ok": True}
        settle(houseworker)
        assert houseworker.got() == expected_comment(payload), f"attempt {attempt}"
        houseworker.clear()
        if conflicts:
            break
    assert conflicts, "the two requests never overlapped in 10 attempts"


def test_server_only_events_are_refused_to_sockets_and_accepted_from_the_api(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    comment = payloads.comment(client.user_id, houseworker.user_id)
    rating = payloads.rating(client.user_id, houseworker.user_id)
    ack = assert_refused(client, "commentNotification", comment, "FORBIDDEN", [houseworker])
    assert "backend" in ack["error"]
    client.clear()
    assert_refused(client, "ratingNotification", rating, "FORBIDDEN", [houseworker])
    assert post(cluster[0], request_body("commentNotification", client.user_id, comment)).status_code == 200
    assert post(cluster[0], request_body("ratingNotification", client.user_id, rating)).status_code == 200
    settle(houseworker)
    assert houseworker.got() == expected_comment(comment) + [
        (f"privateRatingNotify-{houseworker.user_id}", rating)]


def test_requests_are_counted_and_logged_without_payload_or_token(cluster):
    client, houseworker = cluster.peer(0), cluster.peer(1)
    secret_text = "a comment that must stay out of the log " + new_user_id()
    payload = changed(payloads.comment(client.user_id, houseworker.user_id), "newComment.comment", secret_text)
    assert post(cluster[0], request_body("commentNotification", client.user_id, payload)).status_code == 200
    assert post(cluster[0], b"[]").status_code == 400
    houseworker.wait_for("newCommentChange")
    log = cluster[0].log()
    assert f"commentNotification as user {client.user_id}: 200 ok" in log
    assert secret_text not in log
    assert NEW_TOKEN not in log and OLD_TOKEN not in log and "n" * 30 not in log
    page = requests.get(f"{cluster[0].url}/metrics", timeout=5).text
    assert 'homeapp_api_requests_total{event="commentNotification",outcome="ok"}' in page
    assert 'homeapp_api_requests_total{event="<unknown>",outcome="VALIDATION_ERROR"}' in page


def test_the_endpoint_does_not_exist_without_tokens(memory_server):
    response = requests.post(f"{memory_server.url}/api/events", timeout=5,
                             json=request_body("ratingNotification", "1", payloads.rating("1", "2")),
                             headers={"Authorization": f"Bearer {NEW_TOKEN}"})
    assert response.status_code == 404


@pytest.fixture(scope="module")
def limited_server(server_factory):
    """Sockets may send two notifications, then one every five seconds; the API is not limited."""
    return server_factory(HOMEAPP_NOTIFICATION_RATE=0.2, HOMEAPP_NOTIFICATION_BURST=2,
                          HOMEAPP_API_TOKENS=NEW_TOKEN)


def test_notifications_from_a_socket_are_rate_limited_and_from_the_api_are_not(limited_server):
    with peers_on(limited_server) as connect:
        client, houseworker = connect(), connect()
        acks = [client.call(event, make(client.user_id, houseworker.user_id))
                for event, make in [("commentNotification", payloads.comment),
                                    ("ratingNotification", payloads.rating)] * 2]
        assert [ack.get("code", "ok") for ack in acks] == ["ok", "ok", "RATE_LIMITED", "RATE_LIMITED"]
        for _ in range(4):
            body = request_body("ratingNotification", client.user_id,
                                payloads.rating(client.user_id, houseworker.user_id))
            assert post(limited_server, body).status_code == 200
        settle(client, houseworker)
        rated = f"privateRatingNotify-{houseworker.user_id}"
        assert [event for event, _ in houseworker.got()] == ["privateCommentNotify", "newCommentChange"] \
            + [rated] * 5


def test_a_key_answered_during_an_outage_is_performed_on_retry():
    """A 5xx is not remembered: once Redis is back, the same request with the same key is performed."""
    cluster = Cluster(1, HOMEAPP_API_TOKENS=NEW_TOKEN, HOMEAPP_PRESENCE_TIMEOUT=3, HOMEAPP_REDIS_TIMEOUT=0.5)
    try:
        client, houseworker = cluster.peer(0), cluster.peer(0)
        body = _comment(client.user_id, houseworker.user_id)
        cluster.redis.stop()
        assert_error(post(cluster[0], body, key="outage-1"), 503, "UNAVAILABLE", "commentNotification")
        cluster.redis.start()
        wait_until(lambda: requests.get(f"{cluster[0].url}/readyz", timeout=5).status_code == 200, 15,
                   "the process never saw Redis back")
        response = post(cluster[0], body, key="outage-1")
        assert (response.status_code, response.json()) == (200, {"ok": True})
        settle(houseworker)
        assert houseworker.got() == expected_comment(body["payload"])
    finally:
        cluster.close()


@pytest.mark.parametrize("env, message", [
    ({"HOMEAPP_API_TOKENS": "too-short"}, "HOMEAPP_API_TOKENS: token 1 has 9 characters"),
    ({"HOMEAPP_SERVER_ONLY_EVENTS": "joinRoom", "HOMEAPP_API_TOKENS": NEW_TOKEN},
     "HOMEAPP_SERVER_ONLY_EVENTS names events that the backend API does not perform: joinRoom"),
    ({"HOMEAPP_SERVER_ONLY_EVENTS": "commentNotification"},
     "HOMEAPP_SERVER_ONLY_EVENTS needs HOMEAPP_API_TOKENS"),
], ids=["short-token", "server-only-joinRoom", "server-only-without-api"])
def test_start_up_refuses_bad_api_settings(env, message):
    process = ServerProcess(env)
    finished = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=process.env, timeout=60,
                              capture_output=True, text=True)
    assert finished.returncode == 1
    assert f"homeapp: bad setting: {message}" in finished.stderr
