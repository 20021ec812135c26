"""The presence store interface.

A user is online while at least one of their sockets is live. The store tracks
sockets, not users, so that closing one of two tabs keeps the user online, and it
reports the transitions so that `newOnlineUser` is sent only when one happens.
"""
from abc import ABC, abstractmethod


class PresenceUnavailable(Exception):
    """The backing store cannot be reached; the caller answers UNAVAILABLE."""


class PresenceStore(ABC):
    @abstractmethod
    def add_socket(self, user_id, sid):
        """Record a live socket; True when the user was offline until now.

        Raises PresenceUnavailable.
        """

    @abstractmethod
    def remove_socket(self, user_id, sid):
        """Forget a socket; True when it was the user's last one.

        Raises PresenceUnavailable.
        """

    @abstractmethod
    def online_users(self):
        """The set of user ids with at least one live socket.

        Raises PresenceUnavailable.
        """

    @abstractmethod
    def sockets_of(self, user_id):
        """The sids of a user's live sockets, on every process the store spans.

        Raises PresenceUnavailable.
        """
