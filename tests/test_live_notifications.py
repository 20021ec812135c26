"""commentNotification and ratingNotification reach the houseworker's own tabs and nobody else."""
import pytest

from tests import payloads
from tests.live import assert_refused, settle
from tests.refusals import NOTIFICATION_CASES


def test_comment_reaches_the_houseworker_only(users, connect):
    client, houseworker, bystander = users(3)
    second_tab = connect(user_id=houseworker.user_id)
    payload = payloads.comment(client.user_id, houseworker.user_id)
    payload["newComment"]["from"] = "impostor"
    payload["newComment"]["html"] = "<script>"  # not in the schema: dropped
    assert client.call("commentNotification", payload) == {"ok": True}
    settle(client, houseworker, bystander, second_tab)
    comment = dict(payloads.comment(client.user_id, houseworker.user_id)["newComment"],
                   **{"from": f"user{client.user_id}"})
    expected = [("privateCommentNotify", {"newComment": comment,
                                          "notificationObj": payload["notificationObj"]}),
                ("newCommentChange", comment)]
    assert houseworker.got() == expected and second_tab.got() == expected
    assert client.got() == [] and bystander.got() == []


def test_rating_reaches_the_houseworker_only(users):
    client, houseworker, other_houseworker = users(3)
    payload = payloads.rating(client.user_id, houseworker.user_id, 4)
    assert client.call("ratingNotification", payload) == {"ok": True}
    settle(client, houseworker, other_houseworker)
    assert houseworker.got() == [(f"privateRatingNotify-{houseworker.user_id}", payload)]
    # the old server broadcast ratings to every socket; here no one else hears of it
    assert client.got() == [] and other_houseworker.got() == []


@pytest.mark.parametrize("event, make_payload, code", [(c[0], *c[2:]) for c in NOTIFICATION_CASES],
                         ids=[f"{c[0]}-{c[1]}" for c in NOTIFICATION_CASES])
def test_notification_refusals(memory_users, event, make_payload, code):
    client, houseworker = memory_users(2)
    assert_refused(client, event, make_payload(client.user_id, houseworker.user_id), code, [houseworker])
