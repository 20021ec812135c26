"""Valid payloads of every client event, built from user ids; tests derive bad ones from these."""
import copy

DATE = {"day": 25, "month": 10, "year": 2025, "time": "14:30"}


def notification(sender, to, message="You have news", id=388, type="chatGroup"):
    return {"id": id, "from": sender, "to": to, "type": type, "date": dict(DATE),
            "message": message, "read": False}


def message(sender, room_id, text="Hello!", **fields):
    recipients = [m for m in room_id.split(":") if m != sender]
    data = {"message": text, "from": sender, "roomID": room_id, "fromUsername": f"user{sender}",
            "roomKey": f"room:{room_id}", "lastMessage": text,
            "unreadMessArray": [{"recipientID": r, "roomID": room_id, "countNumber": 1,
                                 "updateStatus": True} for r in recipients],
            "createRoomNotification": None, "contact": False}
    data.update(fields)
    return {"data": data}


def typing(sender, room_id, username=None):
    return {"roomID": room_id, "user": {"userID": sender, "username": username or f"user{sender}"}}


def _ids(room_id):
    return room_id.split(":")


def _join(ids):
    return ":".join(sorted(ids, key=int))


def new_member(sender, room_id, new_user):
    """createUserGroup / addUserToGroup: new_user joins room_id."""
    new_room = _join(_ids(room_id) + [new_user])
    return {"data": {
        "newUserID": new_user, "newUsername": f"user{new_user}", "roomID": room_id,
        "newRoomID": new_room,
        "currentMember": [{"userID": m, "username": f"user{m}"} for m in _ids(room_id) if m != sender],
        "clientID": sender, "clientUsername": f"user{sender}",
        "newUserPicturePath": "/pictures/new.png", "online": True,
        "notifications": [notification(sender, m, f"added by {sender} for {m}", id=400 + i)
                          for i, m in enumerate(_ids(new_room)) if m != sender]}}


def kick(sender, room_id, kicked):
    new_room = _join([m for m in _ids(room_id) if m != kicked])
    return {"firstRoomID": _join(_ids(room_id)[:2]), "roomID": room_id, "newRoomID": new_room,
            "kickedUserID": kicked, "kickedUsername": f"user{kicked}", "clientID": sender,
            "clientUsername": f"user{sender}",
            "notifications": [notification(sender, m, f"kick news for {m}", id=500 + i)
                              for i, m in enumerate(_ids(room_id)) if m != sender]}


def delete_room(sender, room_id):
    return {"roomID": room_id, "clientID": sender, "clientUsername": f"user{sender}",
            "notifications": [notification(sender, "room", "The room has been deleted", id=389)]}


def comment(sender, houseworker):
    return {"newComment": {"commentID": 240, "comment": "Great service!", "from": f"user{sender}",
                           "houseworkerID": houseworker, "date": "25.10.2025", "read": False},
            "notificationObj": notification(sender, houseworker, "You've got a comment", type="comment")}


def rating(sender, houseworker, stars=5):
    return {"client": f"user{sender}", "houseworker": f"user{houseworker}", "rating": stars,
            "houseworkerID": houseworker,
            "notification": notification(sender, houseworker, f"Rated {stars}", id=387, type="rating")}


def changed(payload, path, value):
    """A deep copy of payload with the dotted path set to value (the key removed when value is DROP)."""
    result = copy.deepcopy(payload)
    target = result
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        last = int(last)
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return result


DROP = object()
