"""The documented examples against a live server: each is accepted, and everything the server
sends while handling them is what docs/asyncapi.yaml says it sends.

The examples are user "1"'s (homeapp/schemas/examples.py): the private room "1:2", the group
"1:2:3" and user "4" who joins it. Users 2 and 3 keep those rooms' chat views open, so that the
events sent to open views are seen too.
"""
import pytest
from marshmallow import ValidationError

from homeapp import names
from homeapp.schemas.examples import EXAMPLES
from homeapp.schemas.outgoing import ACKS, SERVER_EVENTS, AckSchema, RefusalSchema, server_event_schema
from tests.live import settle

OPEN_VIEWS = {"2": ["1:2", "1:2:3"], "3": ["1:2:3"]}


@pytest.fixture
def example_users(connect_memory):
    """Users "1" to "4" online on their own channels, with the chat views of OPEN_VIEWS open."""
    users = {user_id: connect_memory(user_id=user_id) for user_id in "1234"}
    for user_id, rooms in OPEN_VIEWS.items():
        for room in rooms:
            assert users[user_id].call(names.CHAT_ROOM_JOIN, room) == {"ok": True}
    settle(*users.values())
    for peer in users.values():
        peer.clear()
    return users


def _described(event, payload):
    """The errors of a server event's payload against its description; {} when it matches."""
    try:
        server_event_schema(event).load(payload)
    except ValidationError as error:
        return error.messages
    except KeyError:
        return {"event": "not described"}
    return {}


@pytest.mark.parametrize("event", EXAMPLES)
def test_each_example_is_accepted(example_users, event):
    ack = example_users["1"].call(event, EXAMPLES[event])
    assert ack["ok"] is True, ack
    ACKS.get(event, AckSchema()).load(ack)  # {"ok": true}, and for message its id and date
    if event not in ACKS:
        assert ack == {"ok": True}


def test_what_the_server_sends_for_the_examples_is_what_the_description_says(example_users):
    sender = example_users["1"]
    first_contact = {"data": dict(EXAMPLES[names.MESSAGE]["data"], contact=True)}
    refused = {"data": dict(EXAMPLES[names.MESSAGE]["data"], roomID="2:1")}
    for event, payload in [*EXAMPLES.items(), (names.MESSAGE, first_contact)]:
        assert sender.call(event, payload)["ok"] is True, event
    refusal = sender.call(names.MESSAGE, refused)
    RefusalSchema().load(refusal)
    assert refusal["code"] == "VALIDATION_ERROR"
    example_users["4"].close()  # the others hear that user 4 went offline
    settle(*example_users.values())

    received = [(e, p) for peer in example_users.values() for e, p in peer.events]
    mismatched = {e: _described(e, p) for e, p in received if _described(e, p)}
    assert mismatched == {}
    seen = {e if not e.startswith("privateRatingNotify-") else names.private_rating_notify("{houseworkerID}")
            for e, _ in received}
    assert seen == set(SERVER_EVENTS), "documented events the examples never made the server send"
