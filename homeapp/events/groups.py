"""Group chats: create, add a member, kick a member, delete. Each notification reaches only its addressee."""
from homeapp import engine
from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.schemas import groups as schemas
from homeapp.services.access import require_member, require_notifications_from, require_self
from homeapp.services.notifications import notification_for
from homeapp.services.rooms import recipients_of, room_channel, user_channel

_CHANGE_FIELDS = ("newUserID", "newUsername", "roomID", "newRoomID", "currentMember",
                  "newUserPicturePath", "online")


def _authorize(conn, payload):
    require_self(conn, payload["clientID"], "clientID")
    require_member(conn, payload["roomID"])
    require_notifications_from(conn, payload["notifications"])


def _notify_each(hub, event, recipients, notifications, shape=lambda n: n):
    """Send each recipient the notification addressed to it; skip those with none."""
    for recipient in recipients:
        notification = notification_for(notifications, recipient)
        if notification is not None:
            hub.emit(event, shape(notification), to=user_channel(recipient))


def _channels(recipients):
    return [user_channel(r) for r in recipients]


def _announce_new_member(hub, conn, data, notify_event, change_event):
    change = {field: data[field] for field in _CHANGE_FIELDS}
    change["clientUsername"] = conn.username or data["clientUsername"]
    recipients = recipients_of(data["newRoomID"], conn.user_id)
    _notify_each(hub, notify_event, recipients, data["notifications"])
    hub.emit(change_event, change, to=_channels(recipients))


def _sockets_of(hub, user_id):
    """Every socket of a user: this process's, and the live ones presence knows on others."""
    return {c.sid for c in hub.connections.of_user(user_id)} | hub.presence.sockets_of(user_id)


@handles(names.CREATE_USER_GROUP, schema=schemas.new_member_schema)
def create_user_group(hub, conn, payload):
    data = payload["data"]
    _authorize(conn, data)
    _announce_new_member(hub, conn, data, names.CREATE_GROUP_NOTIFY, names.CREATE_GROUP_CHANGE)


@handles(names.ADD_USER_TO_GROUP, schema=schemas.new_member_schema)
def add_user_to_group(hub, conn, payload):
    data = payload["data"]
    _authorize(conn, data)
    hub.emit(names.ADD_TO_GROUP_CHANGE_IN_ROOM, data["newRoomID"], to=room_channel(data["roomID"]))
    _announce_new_member(hub, conn, data, names.ADD_TO_GROUP_NOTIFY, names.ADD_TO_GROUP_CHANGE)


@handles(names.KICK_USER_FROM_GROUP, schema=schemas.kick_schema)
def kick_user_from_group(hub, conn, payload):
    _authorize(conn, payload)
    room_id, new_room_id, kicked = payload["roomID"], payload["newRoomID"], payload["kickedUserID"]
    # looked up before anything is sent, so that a presence outage refuses the whole event
    kicked_sids = _sockets_of(hub, kicked)
    hub.emit(names.KICK_CHANGE_IN_ROOM, {"firstRoomID": payload["firstRoomID"],
                                         "kickedUserID": kicked, "newRoomID": new_room_id},
             to=room_channel(room_id))
    recipients = recipients_of(room_id, conn.user_id)
    _notify_each(hub, names.KICK_NOTIFY, recipients, payload["notifications"],
                 lambda n: {"roomID": room_id, "newRoomID": new_room_id, "kickedUserID": kicked,
                            "notification": n})
    hub.emit(names.KICK_CHANGE, {"roomID": room_id, "newRoomID": new_room_id,
                                 "kickedUsername": payload["kickedUsername"], "kickedUserID": kicked},
             to=_channels(recipients))
    for sid in kicked_sids:
        hub.server.leave_room(sid, room_channel(room_id))
    engine.cut(hub, kicked, room_channel(room_id))  # a session of theirs that dropped, too


@handles(names.DELETE_USER_ROOM, schema=schemas.delete_room_schema)
def delete_user_room(hub, conn, payload):
    _authorize(conn, payload)
    room_id = payload["roomID"]
    recipients = recipients_of(room_id, conn.user_id)
    _notify_each(hub, names.DELETE_ROOM_NOTIFY, recipients, payload["notifications"],
                 lambda n: dict(n, roomID=room_id))
    hub.emit(names.DELETE_ROOM_CHANGE, {"roomID": room_id}, to=_channels(recipients))
    hub.server.close_room(room_channel(room_id))
    engine.cut(hub, None, room_channel(room_id))  # everyone's sessions that dropped, too
