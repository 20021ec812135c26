"""Who a new socket is (docs/auth.md), decided once at connect.

One identifier per mode: `open` takes the handshake's word, `jwt` and `session`
take only what a secret signed. Each raises Refused with a reason for the client.
"""
from urllib.parse import parse_qs

from homeapp.services.rooms import is_user_id


class Identity:
    """A proven user. `expires_at` (Unix seconds) ends it; `session_id` lets a session be re-read."""

    __slots__ = ("user_id", "username", "expires_at", "session_id")

    def __init__(self, user_id, username=None, expires_at=None, session_id=None):
        self.user_id = user_id
        self.username = username
        self.expires_at = expires_at
        self.session_id = session_id


class Refused(Exception):
    """The connection must be refused; the message tells the client why."""


class OpenIdentifier:
    """Trusts the handshake query `userID`; without one the identity comes from addOnlineUser."""

    def identify(self, environ, auth):
        """The identity the query names, or None. Raises Refused for a malformed userID."""
        user_ids = parse_qs(environ.get("QUERY_STRING", "")).get("userID")
        if not user_ids:
            return None
        if not is_user_id(user_ids[0]):
            raise Refused("userID in the query must be 1 to 20 digits")
        return Identity(user_ids[0])


def create_identifier(config, redis_client=None):
    """The identifier of the configured HOMEAPP_AUTH mode."""
    mode = config["AUTH_MODE"]
    if mode == "jwt":
        from homeapp.identity.tokens import TokenIdentifier
        return TokenIdentifier(config["JWT_SECRET"], audience=config["JWT_AUDIENCE"],
                               issuer=config["JWT_ISSUER"], leeway=config["JWT_LEEWAY"],
                               max_username_length=config["MAX_USERNAME_LENGTH"])
    if mode == "session":
        from homeapp.identity.sessions import SessionIdentifier, SessionStore
        return SessionIdentifier(config["SESSION_COOKIE"], config["SESSION_SECRETS"],
                                 SessionStore(redis_client, config["SESSION_PREFIX"],
                                              config["MAX_USERNAME_LENGTH"]))
    return OpenIdentifier()


__all__ = ["Identity", "Refused", "OpenIdentifier", "create_identifier"]
