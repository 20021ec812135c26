"""The payload limits (docs/protocol.md, "Limits"), read by the schemas' validators at load time.

Schemas are built once at import, before any settings are known, so their
validators look the limits up here instead of capturing them.
"""


class Limits:
    message_length = 5000
    username_length = 64
    room_members = 50
    notifications = 100
    text_length = 2048  # free-form strings the protocol does not size: picture paths


LIMITS = Limits()


def configure(config):
    """Copy the limits out of the app's settings."""
    LIMITS.message_length = config["MAX_MESSAGE_LENGTH"]
    LIMITS.username_length = config["MAX_USERNAME_LENGTH"]
    LIMITS.room_members = config["MAX_ROOM_MEMBERS"]
    LIMITS.notifications = config["MAX_NOTIFICATIONS"]
