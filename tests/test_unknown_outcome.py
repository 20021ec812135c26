"""When Redis could not tell, within the event log's window, whether it took what an event sent
(homeapp.engine.durability.settle returned None: written to a Redis that stalled, no answer),
neither `ok` nor UNAVAILABLE would be true: a socket gets no acknowledgement at all, and the
backend API answers 504 UNKNOWN_OUTCOME. In process, settle made to say so (the live path to it
takes a stall longer than the window, a minute at least)."""
import json

import pytest

from homeapp.engine import durability
from tests import payloads
from tests.inprocess import LocalClient, local_app
from tests.live import new_user_id, room_of

TOKEN = "unknown-outcome-token-" + "u" * 20


@pytest.fixture
def app():
    return local_app(API_TOKENS=[TOKEN])


def pair_then_not_known(app, monkeypatch):
    """Two users online, then every event's outcome not known."""
    peers = []
    for user_id in (new_user_id(), new_user_id()):
        peer = LocalClient(app, user_id, f"user{user_id}")
        assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": peer.username}) == {"ok": True}
        peers.append(peer)
    # the ack waits for Redis only with REDIS_URL; the emits themselves stay in this process
    monkeypatch.setitem(app.extensions["homeapp"].config, "REDIS_URL", "redis://unused")
    monkeypatch.setattr(durability, "settle", lambda emitted: None)
    return peers


def test_a_socket_gets_no_ack_and_no_error_when_the_outcome_is_not_known(app, monkeypatch):
    a, b = pair_then_not_known(app, monkeypatch)
    room = room_of(a, b)
    assert a.call("message", payloads.message(a.user_id, room, "maybe")) is None
    assert a.got("error") == []


def test_the_backend_api_answers_504_unknown_outcome(app, monkeypatch):
    a, b = pair_then_not_known(app, monkeypatch)
    body = {"event": "message", "userID": a.user_id,
            "payload": payloads.message(a.user_id, room_of(a, b), "maybe")}
    response = app.test_client().post("/api/events", data=json.dumps(body),
                                      headers={"Content-Type": "application/json",
                                               "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 504, response.data
    assert (response.json["ok"], response.json["code"], response.json["event"]) == \
        (False, "UNKNOWN_OUTCOME", "message")
