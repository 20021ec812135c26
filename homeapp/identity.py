"""Who a new socket is (contract section 3), decided once at connect."""
from urllib.parse import parse_qs

from homeapp.services.rooms import is_user_id


class Identity:
    __slots__ = ("user_id", "username")

    def __init__(self, user_id, username=None):
        self.user_id = user_id
        self.username = username


def identify(config, environ, auth):
    """The identity a connection proves, or None when it will come from addOnlineUser.

    Raises ConnectionRefusedError with the reason when the connection must be refused.
    """
    query = parse_qs(environ.get("QUERY_STRING", ""))
    user_ids = query.get("userID")
    if not user_ids:
        return None
    if not is_user_id(user_ids[0]):
        raise ConnectionRefusedError("userID in the query must be 1 to 20 digits")
    return Identity(user_ids[0])
