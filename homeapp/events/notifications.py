"""commentNotification and ratingNotification: delivered to the houseworker's own channel only."""
from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.schemas import notifications as schemas
from homeapp.services.access import require_notifications_from
from homeapp.services.rooms import user_channel


@handles(names.COMMENT_NOTIFICATION, schema=schemas.comment_notification_schema, rate="notification")
def comment_notification(hub, conn, payload):
    require_notifications_from(conn, [payload["notificationObj"]])
    comment = payload["newComment"]
    if conn.username:
        comment["from"] = conn.username
    channel = user_channel(comment["houseworkerID"])
    hub.emit(names.PRIVATE_COMMENT_NOTIFY, payload, to=channel)
    hub.emit(names.NEW_COMMENT_CHANGE, comment, to=channel)


@handles(names.RATING_NOTIFICATION, schema=schemas.rating_notification_schema, rate="notification")
def rating_notification(hub, conn, payload):
    require_notifications_from(conn, [payload["notification"]])
    if conn.username:
        payload["client"] = conn.username
    houseworker = payload["houseworkerID"]
    hub.emit(names.private_rating_notify(houseworker), payload, to=user_channel(houseworker))
