import pytest

from homeapp.services import rooms
from homeapp.services.notifications import notification_for


@pytest.mark.parametrize("room_id, members", [
    ("1:2", ("1", "2")),
    ("2:10", ("2", "10")),
    ("1:2:5", ("1", "2", "5")),
    ("12345678901234567890:99999999999999999999", ("12345678901234567890", "99999999999999999999")),
])
def test_members_of_canonical_ids(room_id, members):
    assert rooms.members_of(room_id, 50) == members


@pytest.mark.parametrize("room_id, reason", [
    ("10:2", "sorted numerically"),
    ("2:1", "sorted numerically"),
    ("1", "at least two"),
    ("", "at least two"),
    ("1:1", "repeats"),
    ("1::2", "1 to 20 digits"),
    ("a:2", "1 to 20 digits"),
    ("1:2 ", "1 to 20 digits"),
    ("-1:2", "1 to 20 digits"),
    ("1:٢", "1 to 20 digits"),  # a non-ASCII digit
    ("1:123456789012345678901", "1 to 20 digits"),
    (":".join(str(i) for i in range(1, 52)), "more than 50"),
    (12, "must be a string"),
    (None, "must be a string"),
])
def test_members_of_refuses(room_id, reason):
    with pytest.raises(ValueError, match=reason):
        rooms.members_of(room_id, 50)


def test_with_and_without_member_keep_ids_canonical():
    assert rooms.with_member("2:10", "3") == "2:3:10"
    assert rooms.without_member("2:3:10", "3") == "2:10"
    assert rooms.recipients_of("1:2:5", "2") == ["1", "5"]


@pytest.mark.parametrize("notifications, user, expected_id", [
    ([{"to": "2", "id": 1}, {"to": "3", "id": 2}], "3", 2),
    ([{"to": "room", "id": 1}], "7", 1),
    ([{"to": "room", "id": 1}, {"to": "7", "id": 2}], "7", 2),  # a personal one wins
    ([{"to": "2", "id": 1}], "3", None),
    ([], "3", None),
])
def test_notification_for_never_hands_out_anothers(notifications, user, expected_id):
    found = notification_for(notifications, user)
    assert (found and found["id"]) == expected_id or (found is None and expected_id is None)
