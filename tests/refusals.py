"""Every client event's refusal table, for the live tests and the in-process ones alike.

A case is (id, make_payload, code): make_payload builds the refused payload from user ids (the
comment above each table says whose), and code is the refusal's; NOTIFICATION_CASES put the
event first, ANONYMOUS_CASES are (event, payload). The tests using a table set up the users and
rooms its builders expect; where live and in-process tests set up the same, it is here too.
"""
from tests import payloads
from tests.live import assert_refused, open_room, room_of
from tests.payloads import DROP, changed


# addOnlineUser: (me, other), me identified by the query and not yet live
USERNAME_TOO_LONG = "x" * 65

ADD_ONLINE_USER_CASES = [
    ("null", lambda me, other: None, "VALIDATION_ERROR"),
    ("bare-string", lambda me, other: me, "VALIDATION_ERROR"),
    ("list", lambda me, other: [me], "VALIDATION_ERROR"),
    ("empty", lambda me, other: {}, "VALIDATION_ERROR"),
    ("letters", lambda me, other: {"userID": "abc"}, "VALIDATION_ERROR"),
    ("negative", lambda me, other: {"userID": -1}, "VALIDATION_ERROR"),
    ("boolean", lambda me, other: {"userID": True}, "VALIDATION_ERROR"),
    ("21-digits", lambda me, other: {"userID": "1" * 21}, "VALIDATION_ERROR"),
    ("long-name", lambda me, other: {"userID": me, "userUsername": USERNAME_TOO_LONG}, "VALIDATION_ERROR"),
    ("name-not-string", lambda me, other: {"userID": me, "userUsername": 5}, "VALIDATION_ERROR"),
    ("empty-name", lambda me, other: {"userID": me, "userUsername": ""}, "VALIDATION_ERROR"),
    ("someone-else", lambda me, other: {"userID": other, "userUsername": "impostor"}, "FORBIDDEN"),
]


# joinRoom and leaveRoom: (me, other)
USER_CHANNEL_CASES = [
    ("null", lambda me, other: None, "VALIDATION_ERROR"),
    ("empty", lambda me, other: "", "VALIDATION_ERROR"),
    ("letters", lambda me, other: "abc", "VALIDATION_ERROR"),
    ("channel-name", lambda me, other: f"user:{me}", "VALIDATION_ERROR"),
    ("object", lambda me, other: {"userID": me}, "VALIDATION_ERROR"),
    ("list", lambda me, other: [me], "VALIDATION_ERROR"),
    ("someone-else", lambda me, other: other, "FORBIDDEN"),
]


# chatRoom.join and chatRoom.leave: (a, b, c), a outside room b:c
CHAT_ROOM_CASES = [
    ("null", lambda a, b, c: None, "VALIDATION_ERROR"),
    ("empty", lambda a, b, c: "", "VALIDATION_ERROR"),
    ("one-id", lambda a, b, c: a, "VALIDATION_ERROR"),
    ("unsorted", lambda a, b, c: f"{b}:{a}", "VALIDATION_ERROR"),
    ("repeat", lambda a, b, c: f"{a}:{a}", "VALIDATION_ERROR"),
    ("letters", lambda a, b, c: f"{a}:x", "VALIDATION_ERROR"),
    ("channel-name", lambda a, b, c: f"room:{a}:{b}", "VALIDATION_ERROR"),
    ("object", lambda a, b, c: {"roomID": f"{a}:{b}"}, "VALIDATION_ERROR"),
    ("number", lambda a, b, c: int(a), "VALIDATION_ERROR"),
    ("51-members", lambda a, b, c: ":".join(str(int(a) + i) for i in range(51)), "VALIDATION_ERROR"),
    ("not-a-member", lambda a, b, c: f"{b}:{c}", "FORBIDDEN"),
]


# message: (sender, other member, room id)
def _bad_message_cases():
    long_text = "x" * 5001
    cases = [
        ("null", lambda a, b, r: None, "VALIDATION_ERROR"),
        ("string", lambda a, b, r: "hello", "VALIDATION_ERROR"),
        ("unwrapped", lambda a, b, r: payloads.message(a, r)["data"], "VALIDATION_ERROR"),
        ("data-null", lambda a, b, r: {"data": None}, "VALIDATION_ERROR"),
        ("data-list", lambda a, b, r: {"data": []}, "VALIDATION_ERROR"),
    ]
    changes = [
        ("no-text", "data.message", DROP, "VALIDATION_ERROR"),
        ("empty-text", "data.message", "", "VALIDATION_ERROR"),
        ("text-not-string", "data.message", {"html": "<b>"}, "VALIDATION_ERROR"),
        ("text-5001", "data.message", long_text, "VALIDATION_ERROR"),
        ("last-5001", "data.lastMessage", long_text, "VALIDATION_ERROR"),
        ("no-from", "data.from", DROP, "VALIDATION_ERROR"),
        ("from-letters", "data.from", "me", "VALIDATION_ERROR"),
        ("no-room", "data.roomID", DROP, "VALIDATION_ERROR"),
        ("name-65", "data.fromUsername", "n" * 65, "VALIDATION_ERROR"),
        ("room-key-mismatch", "data.roomKey", "room:1:2", "VALIDATION_ERROR"),
        ("unread-not-list", "data.unreadMessArray", "all", "VALIDATION_ERROR"),
        ("unread-other-room", "data.unreadMessArray.0.roomID", "1:2", "VALIDATION_ERROR"),
        ("unread-negative", "data.unreadMessArray.0.countNumber", -1, "VALIDATION_ERROR"),
        ("contact-not-bool", "data.contact", "maybe", "VALIDATION_ERROR"),
        ("bad-room-notification", "data.createRoomNotification", {"id": 1}, "VALIDATION_ERROR"),
    ]
    cases += [(name, (lambda p, v: lambda a, b, r: changed(payloads.message(a, r), p, v))(path, value), code)
              for name, path, value, code in changes]
    cases += [
        ("unsorted-room", lambda a, b, r: payloads.message(a, f"{b}:{a}"), "VALIDATION_ERROR"),
        ("unread-for-sender", lambda a, b, r: changed(payloads.message(a, r),
                                                      "data.unreadMessArray.0.recipientID", a),
         "VALIDATION_ERROR"),
        ("forged-from", lambda a, b, r: payloads.message(b, r), "FORBIDDEN"),
        ("not-a-member", lambda a, b, r: payloads.message(a, f"{b}:{int(b) + 1}"),
         "FORBIDDEN"),
        ("forged-notification", lambda a, b, r: changed(
            payloads.message(a, r), "data.createRoomNotification", payloads.notification(b, a)),
         "FORBIDDEN"),
    ]
    return cases


BAD_MESSAGES = _bad_message_cases()


# startTypingRoom and stopTypingRoom: (typist, other member, room id)
TYPING_CASES = [
    ("null", lambda a, b, r: None, "VALIDATION_ERROR"),
    ("string", lambda a, b, r: r, "VALIDATION_ERROR"),
    ("no-room", lambda a, b, r: changed(payloads.typing(a, r), "roomID", DROP), "VALIDATION_ERROR"),
    ("unsorted", lambda a, b, r: payloads.typing(a, f"{b}:{a}"), "VALIDATION_ERROR"),
    ("no-user", lambda a, b, r: changed(payloads.typing(a, r), "user", DROP), "VALIDATION_ERROR"),
    ("user-string", lambda a, b, r: changed(payloads.typing(a, r), "user", a), "VALIDATION_ERROR"),
    ("name-65", lambda a, b, r: payloads.typing(a, r, "n" * 65), "VALIDATION_ERROR"),
    ("forged-user", lambda a, b, r: payloads.typing(b, r), "FORBIDDEN"),
    ("not-a-member", lambda a, b, r: payloads.typing(a, f"{b}:{int(b) + 1}"), "FORBIDDEN"),
]


# createUserGroup, addUserToGroup, kickUserFromGroup, deleteUserRoom: (a, b, c)
def _forged_notification(a, b, payload, path):
    """payload with the notification at path claiming to come from b."""
    return changed(payload, path, payloads.notification(b, a))


TOO_MANY = 101

NEW_MEMBER_CASES = [
    ("null", lambda a, b, c: None, "VALIDATION_ERROR"),
    ("unwrapped", lambda a, b, c: payloads.new_member(a, f"{a}:{b}", c)["data"], "VALIDATION_ERROR"),
    ("wrong-new-room", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c), "data.newRoomID",
                                               f"{a}:{b}"), "VALIDATION_ERROR"),
    ("unsorted-new-room", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c), "data.newRoomID",
                                                  f"{c}:{b}:{a}"), "VALIDATION_ERROR"),
    ("already-member", lambda a, b, c: changed(changed(payloads.new_member(a, f"{a}:{b}", c),
                                                       "data.newUserID", b), "data.newRoomID", f"{a}:{b}"),
     "VALIDATION_ERROR"),
    ("no-new-user", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c), "data.newUserID", DROP),
     "VALIDATION_ERROR"),
    ("no-new-name", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c), "data.newUsername",
                                            DROP), "VALIDATION_ERROR"),
    ("members-not-list", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c),
                                                 "data.currentMember", "all"), "VALIDATION_ERROR"),
    ("notification-no-date", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c),
                                                     "data.notifications.0.date", DROP), "VALIDATION_ERROR"),
    ("notification-to-bad", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c),
                                                    "data.notifications.0.to", "everyone"), "VALIDATION_ERROR"),
    ("101-notifications", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c), "data.notifications",
                                                  [payloads.notification(a, b)] * TOO_MANY), "VALIDATION_ERROR"),
    ("picture-path-huge", lambda a, b, c: changed(payloads.new_member(a, f"{a}:{b}", c),
                                                  "data.newUserPicturePath", "p" * 5000), "VALIDATION_ERROR"),
    ("forged-client", lambda a, b, c: payloads.new_member(b, f"{a}:{b}", c), "FORBIDDEN"),
    ("not-a-member", lambda a, b, c: payloads.new_member(a, f"{b}:{c}", str(int(c) + 1)), "FORBIDDEN"),
    ("forged-notification", lambda a, b, c: _forged_notification(
        a, b, payloads.new_member(a, f"{a}:{b}", c), "data.notifications.0"), "FORBIDDEN"),
]


KICK_CASES = [
    ("null", lambda a, b, c: None, "VALIDATION_ERROR"),
    ("wrapped", lambda a, b, c: {"data": payloads.kick(a, f"{a}:{b}:{c}", c)}, "VALIDATION_ERROR"),
    ("wrong-new-room", lambda a, b, c: changed(payloads.kick(a, f"{a}:{b}:{c}", c), "newRoomID",
                                               f"{a}:{c}"), "VALIDATION_ERROR"),
    ("kicked-not-member", lambda a, b, c: changed(changed(payloads.kick(a, f"{a}:{b}:{c}", c),
                                                          "kickedUserID", str(int(c) + 1)),
                                                  "newRoomID", f"{a}:{b}:{c}"), "VALIDATION_ERROR"),
    ("kick-leaves-one", lambda a, b, c: payloads.kick(a, f"{a}:{b}", b), "VALIDATION_ERROR"),
    ("bad-first-room", lambda a, b, c: changed(payloads.kick(a, f"{a}:{b}:{c}", c), "firstRoomID", "1"),
     "VALIDATION_ERROR"),
    ("notifications-not-list", lambda a, b, c: changed(payloads.kick(a, f"{a}:{b}:{c}", c),
                                                       "notifications", {}), "VALIDATION_ERROR"),
    ("forged-client", lambda a, b, c: payloads.kick(b, f"{a}:{b}:{c}", c), "FORBIDDEN"),
    ("not-a-member", lambda a, b, c: payloads.kick(b, f"{b}:{c}:{int(c) + 1}", c), "FORBIDDEN"),
    ("forged-notification", lambda a, b, c: _forged_notification(
        a, b, payloads.kick(a, f"{a}:{b}:{c}", c), "notifications.0"), "FORBIDDEN"),
]


DELETE_CASES = [
    ("null", lambda a, b, c: None, "VALIDATION_ERROR"),
    ("no-room", lambda a, b, c: changed(payloads.delete_room(a, f"{a}:{b}:{c}"), "roomID", DROP),
     "VALIDATION_ERROR"),
    ("unsorted", lambda a, b, c: payloads.delete_room(a, f"{c}:{b}:{a}"), "VALIDATION_ERROR"),
    ("no-client", lambda a, b, c: changed(payloads.delete_room(a, f"{a}:{b}:{c}"), "clientID", DROP),
     "VALIDATION_ERROR"),
    ("forged-client", lambda a, b, c: payloads.delete_room(b, f"{a}:{b}:{c}"), "FORBIDDEN"),
    ("not-a-member", lambda a, b, c: payloads.delete_room(a, f"{b}:{c}"), "FORBIDDEN"),
    ("forged-notification", lambda a, b, c: _forged_notification(
        a, b, payloads.delete_room(a, f"{a}:{b}:{c}"), "notifications.0"), "FORBIDDEN"),
]


# commentNotification and ratingNotification: (client, houseworker)
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


NOTIFICATION_CASES = ([("commentNotification", *case) for case in COMMENT_CASES]
                      + [("ratingNotification", *case) for case in RATING_CASES])


# every event but addOnlineUser, from a socket with no identity: (event, payload)
ANONYMOUS_CASES = [
    ("joinRoom", "1"), ("leaveRoom", "1"), ("chatRoom.join", "1:2"), ("chatRoom.leave", "1:2"),
    ("message", payloads.message("1", "1:2")), ("startTypingRoom", payloads.typing("1", "1:2")),
    ("stopTypingRoom", payloads.typing("1", "1:2")),
    ("createUserGroup", payloads.new_member("1", "1:2", "3")),
    ("addUserToGroup", payloads.new_member("1", "1:2:3", "4")),
    ("kickUserFromGroup", payloads.kick("1", "1:2:3", "3")),
    ("deleteUserRoom", payloads.delete_room("1", "1:2:3")),
    ("commentNotification", payloads.comment("1", "2")),
    ("ratingNotification", payloads.rating("1", "2")),
]


def refuse_new_member(users, event, make_payload, code):
    """A refused createUserGroup or addUserToGroup (NEW_MEMBER_CASES) reaches neither the room
    nor the would-be member."""
    a, b, c = users(3)
    open_room(room_of(a, b), b)
    c.clear()
    assert_refused(a, event, make_payload(a.user_id, b.user_id, c.user_id), code, [b, c])


def refuse_kick(users, make_payload, code):
    """A refused kickUserFromGroup (KICK_CASES) reaches nobody and evicts nobody: the room
    still reaches the one it named."""
    a, b, c = users(3)
    room = room_of(a, b, c)
    open_room(room, b, c)
    assert_refused(a, "kickUserFromGroup", make_payload(a.user_id, b.user_id, c.user_id), code, [b, c])
    assert b.call("message", payloads.message(b.user_id, room, "still here"))["ok"]
    c.wait_for("messageRoom")
