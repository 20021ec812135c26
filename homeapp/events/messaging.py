"""`message`: the hot path. One emit per distinct payload, addressed to every channel at once."""
from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.schemas import messaging as schemas
from homeapp.services.access import require_member, require_notifications_from, require_self
from homeapp.services.notifications import notification_for
from homeapp.services.rooms import recipients_of, room_channel, user_channel


@handles(names.MESSAGE, schema=schemas.message_schema, rate="message")
def message(hub, conn, payload):
    """Relay a message to the open chat views and notify each recipient's tabs."""
    data = payload["data"]
    room_id = data["roomID"]
    require_self(conn, data["from"], "data.from")
    require_member(conn, room_id)
    require_notifications_from(conn, [data["createRoomNotification"]])

    sender = conn.user_id
    username = conn.username or data["fromUsername"]
    date = data["date"] or hub.now_date()
    text = data["message"]
    last_message = data["lastMessage"] or text
    recipients = recipients_of(room_id, sender)
    channels = [user_channel(r) for r in recipients]

    hub.emit(names.MESSAGE_ROOM, {"message": text, "from": sender, "roomID": room_id,
                                  "fromUsername": username, "date": date},
             to=room_channel(room_id))
    if data["contact"]:
        hub.emit(names.FIRST_MESSAGE_CONVERSATION,
                 {"roomID": room_id, "from": sender, "fromUsername": username,
                  "lastMessage": last_message}, to=channels)
    else:
        hub.emit(names.MESSAGE_PAGE, {"roomID": room_id, "lastMessage": last_message}, to=channels)
    unread = {entry["recipientID"]: entry["updateStatus"] for entry in data["unreadMessArray"]}
    room_notification = data["createRoomNotification"]
    for recipient, channel in zip(recipients, channels):
        # only the recipient's own notification (or the room's), never another user's
        notification = room_notification and notification_for((room_notification,), recipient)
        hub.emit(names.MESSAGE_RESPONSE_NOTIFY,
                 {"roomID": room_id, "fromUsername": username, "fromUserID": sender,
                  "userID": recipient, "lastMessage": last_message,
                  "unreadUpdateStatus": unread.get(recipient),
                  "createRoomNotification": notification}, to=channel)
    return {"id": hub.new_message_id(), "date": date}
