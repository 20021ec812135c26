"""Permission rules (docs/protocol.md): a sender is only ever the socket's own identity."""
from homeapp.errors import forbidden


def require_self(conn, user_id, field):
    """Raise FORBIDDEN when a payload names someone else where the sender is meant."""
    if user_id != conn.user_id:
        raise forbidden(f"{field} must be your own user id.")


def require_member(conn, room_id):
    """Raise FORBIDDEN unless the socket's user is one of room_id's members."""
    if conn.user_id not in room_id.split(":"):
        raise forbidden("You are not a member of this room.")


def require_notifications_from(conn, notifications):
    """Raise FORBIDDEN when any notification claims another sender."""
    for notification in notifications:
        if notification is not None and notification["from"] != conn.user_id:
            raise forbidden("A notification's from must be your own user id.")
