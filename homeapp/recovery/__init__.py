"""Connection state recovery (docs/recovery.md), on Socket.IO 4.6's wire protocol.

With HOMEAPP_RECOVERY_SECONDS above 0:

- every emit to a channel (a user's, a room's, or everyone) is logged, and reaches its sockets
  with its offset as one more, last, argument; socket.io-client remembers the last one it got;
- the reply to a namespace CONNECT carries a private id (`pid`) beside the socket id;
- when a socket drops (its transport closed or failed, or it missed its pings, or this process
  shut down), its session is kept for the window: its id, identity and channels;
- a reconnect presenting `{pid, offset}` with the same identity gets the same socket id back,
  its channels, and every event sent to them after `offset`, in order, before the CONNECT
  reply (homeapp.recovery.handshake). Anything less, and it gets a fresh session, never a
  partial replay;
- a user whose last socket dropped stays online for HOMEAPP_PRESENCE_GRACE seconds, so that a
  recovery announces nothing.
"""
import logging

from socketio import manager as socketio_manager

from homeapp.recovery.channels import NAMESPACE, addressed, has_channel, skipped
from homeapp.recovery.log import MemoryLog, RedisLog
from homeapp.recovery.sessions import MemorySessions, RedisSessions, Session, digest

log = logging.getLogger(__name__)

# reasons a socket ends for which it may come back: Engine.IO's, as python-socketio passes them
DROPS = frozenset({"transport close", "transport error", "ping timeout"})
# at least this long, whatever the recovery window: an emit between processes made while Redis
# is unreachable is still delivered when it is back within it
MIN_LOG_SECONDS = 60.0


def log_seconds(config):
    """How long the event log keeps an entry."""
    return max(config["RECOVERY_SECONDS"], MIN_LOG_SECONDS)


class Recovery:
    """Sessions of dropped sockets, the event log, and what sockets are being restored."""

    def __init__(self, hub, events, sessions, grace):
        self._hub = hub
        self.events = events        # MemoryLog or RedisLog
        self.sessions = sessions    # MemorySessions or RedisSessions
        self.grace = grace
        self.restoring = {}         # sid -> [(offset, message)] sent live while it is restored
        self.unanchored = set()     # sids given events without an offset (Redis was down)
        self.in_grace = {}          # sid -> user id: dropped, still counted online for the grace
        self.live = {}              # digest of a connected socket's pid -> its sid
        self._superseded = set()    # sids ended because their client reconnected meanwhile

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, manager, message, offset):
        """Send a logged emit to this process's sockets, with its offset as the last argument.

        A socket being restored gets it later, in order after what it missed."""
        room = message.get("room")
        skip = message.get("skip_sid")
        if self.restoring:
            skip = skipped(message)
            for sid, held in self.restoring.items():
                if sid not in skip and addressed(manager, room, sid):
                    held.append((offset, message))
                    skip.append(sid)
        args = (*(message.get("data") or ()), offset)
        socketio_manager.Manager.emit(manager, message["event"], args, NAMESPACE, room=room,
                                      skip_sid=skip)

    def deliver_unlogged(self, manager, message):
        """Send a logged emit that has no offset yet (Redis is unreachable): its recipients can
        no longer be recovered exactly, so they will get a fresh session if they drop."""
        room = message.get("room")
        skip = skipped(message)
        for sid, _ in manager.get_participants(NAMESPACE, room):
            if sid not in skip:
                self.unanchored.add(sid)
        socketio_manager.Manager.emit(manager, message["event"], tuple(message.get("data") or ()),
                                      NAMESPACE, room=room, skip_sid=skip)

    # --- a socket drops --------------------------------------------------------------------

    def connected(self, conn):
        """A socket connected (afresh or recovered) with its pid."""
        self.live[digest(conn.pid)] = conn.sid

    def dropped(self, sid, reason):
        """Whether a socket that ends for `reason` dropped: its transport failed, or its client
        reconnected before that was noticed here."""
        if sid in self._superseded:
            self._superseded.discard(sid)
            return True
        return reason in DROPS

    def keep(self, conn, may_return):
        """Keep a closing socket's session for the window, if it `may_return` (it dropped, or
        this process is shutting down: a deploy). Returns whether it was kept."""
        unanchored = conn.sid in self.unanchored
        self.unanchored.discard(conn.sid)
        if conn.pid is not None:
            self.live.pop(digest(conn.pid), None)
        if conn.pid is None or unanchored or not may_return:
            return False
        rooms = [room for room in self._hub.server.rooms(conn.sid) if has_channel(room)]
        session = Session(conn.sid, conn.user_id, conn.username, conn.live, rooms, conn.since)
        try:
            self.sessions.save(conn.pid, session)
        except Exception as exc:  # Redis is unreachable: the socket will get a fresh session
            self._hub.health.lost(exc)
            return False
        return True

    def hold_presence(self, user_id, sid):
        """Keep a dropped live socket online for the grace; take it out after, unless it came back."""
        self.in_grace[sid] = user_id
        self._hub.server.start_background_task(self._end_grace, sid)

    def _end_grace(self, sid):
        self._hub.server.sleep(self.grace)
        user_id = self.in_grace.pop(sid, None)
        if user_id is not None:
            self._hub.take_offline(user_id, sid)

    # --- a socket comes back ---------------------------------------------------------------

    def position(self):
        """Where the log is for a socket connecting now: every event it will be sent has a
        later offset. None when that is not known."""
        return self.events.position()

    def claim(self, pid, offset, identity, open_mode):
        """(session, missed entries, the offset they follow) for a reconnect presenting `pid`
        and `offset`, or None when it cannot recover (then it gets a fresh session). A client
        that was sent no event has no offset: the session's position at its connect stands for
        it. Never raises."""
        if not isinstance(pid, str) or len(pid) > 128:
            return None
        try:
            session = self.sessions.claim(pid)
            if session is None and self._supersede(pid, identity, open_mode):
                session = self.sessions.claim(pid)
            if session is None:
                return None
            if not _same_user(identity, session.user_id, open_mode):
                log.info("refused a recovery: another identity presented a session's private id")
                return None
            if offset is None:
                offset = session.since
            missed = self.events.after(offset)
        except Exception as exc:  # Redis is unreachable
            self._hub.health.lost(exc)
            return None
        if missed is None:
            return None
        return session, missed, offset

    def _supersede(self, pid, identity, open_mode):
        """A client reconnecting with the pid of a socket still open here has lost that
        connection without it being noticed yet (its network changed: only the missed pings
        would tell, much later). End the old socket as a drop, so that its session can be
        claimed now. Returns whether it did. Raises what saving the session raises."""
        conn = self._hub.connections.get(self.live.get(digest(pid)))
        if conn is None or not _same_user(identity, conn.user_id, open_mode):
            return False
        log.info("socket %s of user %s reconnected before its connection was seen to end: "
                 "ending that one", conn.sid, conn.user_id)
        self._superseded.add(conn.sid)
        self._hub.server.disconnect(conn.sid)
        return True

    def catch_up(self, offset):
        """What was logged after `offset`, for a socket that has joined its channels again.
        Returns None when that cannot be read."""
        try:
            return self.events.after(offset)
        except Exception as exc:
            self._hub.health.lost(exc)
            return None


def _same_user(identity, user_id, open_mode):
    """Whether a reconnect's proven identity is that of `user_id`'s socket. Without one (open
    mode, no handshake userID) the pid alone stands for it; in jwt and session modes it never does."""
    return open_mode if identity is None else identity.user_id == user_id


def build_recovery(hub, config, redis_client):
    """Recovery for the hub, or None when HOMEAPP_RECOVERY_SECONDS is 0."""
    seconds = config["RECOVERY_SECONDS"]
    if seconds <= 0:
        return None
    if redis_client is not None:
        # every event a socket of this process is sent comes through its queue's listener, in
        # the log's order: what it handled last is where a socket connecting now starts
        events = RedisLog(redis_client, hub.server.manager.log_position)
        sessions = RedisSessions(redis_client, seconds)
    else:
        events = MemoryLog(log_seconds(config), config["EVENT_LOG_MAX_ENTRIES"])
        sessions = MemorySessions(seconds)
    return Recovery(hub, events, sessions, config["PRESENCE_GRACE"])
