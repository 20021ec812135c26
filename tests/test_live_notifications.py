"""commentNotification and ratingNotification reach the houseworker's own tabs and nobody else."""
import pytest

from tests import payloads
from tests.payloads import DROP, changed
from tests.live import assert_refused, settle


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


COMMENT_CASES = [
    ("null", lambda a, h: None, "VALIDATION_ERROR"),
    ("no-comment", lambda a, h: changed(payloads.comment(a, h), "newComment", DROP), "VALIDATION_ERROR"),
    ("empty-text", lambda a, h: changed(payloads.comment(a, h), "newComment.comment", ""), "VALIDATION_ERROR"),
    ("text-5001", lambda a, h: changed(payloads.comment(a, h), "newComment.comment", "c" * 5001),
     "VALIDATION_ERROR"),
    ("bad-houseworker", lambda a, h: changed(payloads.comment(a, h), "newComment.houseworkerID", "x"),
     "VALIDATION_ERROR"),
    ("addressed-elsewhere", lambda a, h: changed(payloads.comment(a, h), "notificationObj.to", a),
     "VALIDATION_ERROR"),
    ("bad-date", lambda a, h: changed(payloads.comment(a, h), "notificationObj.date.month", 13),
     "VALIDATION_ERROR"),
    ("read-not-bool", lambda a, h: changed(payloads.comment(a, h), "notificationObj.read", "nope"),
     "VALIDATION_ERROR"),
    ("forged-from", lambda a, h: changed(payloads.comment(a, h), "notificationObj.from", h), "FORBIDDEN"),
]


RATING_CASES = [
    ("null", lambda a, h: None, "VALIDATION_ERROR"),
    ("zero-stars", lambda a, h: payloads.rating(a, h, 0), "VALIDATION_ERROR"),
    ("six-stars", lambda a, h: payloads.rating(a, h, 6), "VALIDATION_ERROR"),
    ("string-stars", lambda a, h: payloads.rating(a, h, "5"), "VALIDATION_ERROR"),
    ("fraction", lambda a, h: payloads.rating(a, h, 4.5), "VALIDATION_ERROR"),
    ("no-houseworker", lambda a, h: changed(payloads.rating(a, h), "houseworkerID", DROP), "VALIDATION_ERROR"),
    ("addressed-elsewhere", lambda a, h: changed(payloads.rating(a, h), "notification.to", a),
     "VALIDATION_ERROR"),
    ("name-65", lambda a, h: changed(payloads.rating(a, h), "client", "n" * 65), "VALIDATION_ERROR"),
    ("forged-from", lambda a, h: changed(payloads.rating(a, h), "notification.from", h), "FORBIDDEN"),
]


CASES = ([("commentNotification", *case) for case in COMMENT_CASES]
         + [("ratingNotification", *case) for case in RATING_CASES])


@pytest.mark.parametrize("event, make_payload, code", [(c[0], *c[2:]) for c in CASES],
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_notification_refusals(memory_users, event, make_payload, code):
    client, houseworker = memory_users(2)
    assert_refused(client, event, make_payload(client.user_id, houseworker.user_id), code, [houseworker])
