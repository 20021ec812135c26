"""Choosing which notification a recipient may see (docs/protocol.md)."""
TO_EVERYONE = "room"


def notification_for(notifications, user_id):
    """The notification addressed to user_id, or to the whole room; None when there is none.

    A recipient never gets a notification addressed to someone else.
    """
    fallback = None
    for notification in notifications or ():
        to = notification.get("to")
        if to == user_id:
            return notification
        if to == TO_EVERYONE and fallback is None:
            fallback = notification
    return fallback
