"""One valid payload of every client event, as user "1" sends it.

User "1" talks with user "2" in the private room "1:2" and runs the group "1:2:3". These are the
examples that the protocol description (docs/asyncapi.yaml) shows and the demo page starts from;
a test sends each to a live server and expects it accepted, so they cannot drift from the schemas.
"""
from homeapp import names

DATE = {"day": 25, "month": 10, "year": 2025, "time": "14:30"}


def _notification(id, to, type, message):
    return {"id": id, "from": "1", "to": to, "type": type, "date": dict(DATE),
            "message": message, "read": False}


EXAMPLES = {
    names.ADD_ONLINE_USER: {"userID": "1", "userUsername": "ana"},
    names.JOIN_ROOM: "1",
    names.LEAVE_ROOM: "1",
    names.CHAT_ROOM_JOIN: "1:2",
    names.CHAT_ROOM_LEAVE: "1:2",
    names.MESSAGE: {"data": {
        "message": "Hello! Are you free on Friday?", "from": "1", "roomID": "1:2",
        "fromUsername": "ana", "roomKey": "room:1:2", "lastMessage": "Hello! Are you free on Friday?",
        "unreadMessArray": [{"recipientID": "2", "roomID": "1:2", "countNumber": 1,
                             "updateStatus": True}],
        "createRoomNotification": None, "contact": False, "date": dict(DATE)}},
    names.START_TYPING: {"roomID": "1:2", "user": {"userID": "1", "username": "ana"}},
    names.STOP_TYPING: {"roomID": "1:2", "user": {"userID": "1", "username": "ana"}},
    names.CREATE_USER_GROUP: {"data": {
        "newUserID": "3", "newUsername": "cleo", "roomID": "1:2", "newRoomID": "1:2:3",
        "currentMember": [{"userID": "2", "username": "ben"}],
        "clientID": "1", "clientUsername": "ana", "newUserPicturePath": "/pictures/cleo.png",
        "online": True,
        "notifications": [_notification(401, "2", "chatGroup", "ana added cleo to your chat"),
                          _notification(402, "3", "chatGroup", "ana added you to a group")]}},
    names.ADD_USER_TO_GROUP: {"data": {
        "newUserID": "4", "newUsername": "dan", "roomID": "1:2:3", "newRoomID": "1:2:3:4",
        "currentMember": [{"userID": "2", "username": "ben"}, {"userID": "3", "username": "cleo"}],
        "clientID": "1", "clientUsername": "ana", "newUserPicturePath": "/pictures/dan.png",
        "online": False,
        "notifications": [_notification(403, "room", "chatGroup", "ana added dan to the group")]}},
    names.KICK_USER_FROM_GROUP: {
        "firstRoomID": "1:2", "roomID": "1:2:3", "newRoomID": "1:2", "kickedUserID": "3",
        "kickedUsername": "cleo", "clientID": "1", "clientUsername": "ana",
        "notifications": [_notification(501, "2", "chatGroup", "ana removed cleo from the group"),
                          _notification(502, "3", "chatGroup", "ana removed you from a group")]},
    names.DELETE_USER_ROOM: {
        "roomID": "1:2:3", "clientID": "1", "clientUsername": "ana",
        "notifications": [_notification(389, "room", "chatGroup", "The group has been deleted")]},
    names.COMMENT_NOTIFICATION: {
        "newComment": {"commentID": 240, "comment": "Great service!", "from": "ana",
                       "houseworkerID": "2", "date": "25.10.2025", "read": False},
        "notificationObj": _notification(387, "2", "comment", "ana commented on your profile")},
    names.RATING_NOTIFICATION: {
        "client": "ana", "houseworker": "ben", "rating": 5, "houseworkerID": "2",
        "notification": _notification(388, "2", "rating", "ana rated you 5 stars")},
}
