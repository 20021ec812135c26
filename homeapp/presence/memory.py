"""Presence in this process's memory: the default when no Redis is configured (one process only)."""
from homeapp.presence.base import PresenceStore


class MemoryPresence(PresenceStore):
    def __init__(self):
        self._sockets = {}  # user id -> set of sids

    def add_socket(self, user_id, sid):
        sids = self._sockets.setdefault(user_id, set())
        was_offline = not sids
        sids.add(sid)
        return was_offline

    def remove_socket(self, user_id, sid):
        sids = self._sockets.get(user_id)
        if not sids or sid not in sids:
            return False
        sids.discard(sid)
        if sids:
            return False
        del self._sockets[user_id]
        return True

    def online_users(self):
        return set(self._sockets)

    def sockets_of(self, user_id):
        return set(self._sockets.get(user_id, ()))
