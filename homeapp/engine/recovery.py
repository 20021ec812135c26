"""Connection state recovery (docs/recovery.md), on Socket.IO 4.6's wire protocol.

With HOMEAPP_RECOVERY_SECONDS above 0:

- every emit to a channel (a user's, a room's, or everyone) is logged, and reaches its sockets
  with its offset as one more, last, argument; socket.io-client remembers the last one it got;
- the reply to a namespace CONNECT carries a private id (`pid`) beside the socket id;
- when a socket drops (its transport closed or failed, or it missed its pings, or this process
  shut down), its session is kept for the window: its id, identity and channels;
- a reconnect presenting `{pid, offset}` with the same identity gets the same socket id back,
  its channels, and every event sent to them after `offset`, in order, before the CONNECT
  reply (homeapp.engine.handshake). Anything less, and it gets a fresh session, never a
  partial replay;
- a user whose last socket dropped stays online for HOMEAPP_PRESENCE_GRACE seconds, so that a
  recovery announces nothing.
"""
import json
import logging
from collections import deque
from contextlib import contextmanager

import gevent
import redis
from gevent.hub import Waiter

from homeapp.engine.channels import NAMESPACE, addressed, logged, rooms_of, skipped
from homeapp.engine.history import Budget, MemoryHistory, NotHeld, OverBudget, RedisHistory, id_key
from homeapp.engine.positions import NumberedPositions, Positions, offset_of, parse_offset
from homeapp.engine.sessions import MemorySessions, RedisSessions, Session, digest
from homeapp.seams.socketio import emit_here, event_text
from homeapp.store.redis_keys import EVERYONE
from homeapp.telemetry import metrics

log = logging.getLogger(__name__)

# reasons a socket ends for which it may come back: Engine.IO's, as python-socketio passes them
DROPS = frozenset({"transport close", "transport error", "ping timeout"})
# at least this long, whatever the recovery window: an emit between processes made while Redis
# is unreachable is still delivered when it is back within it
MIN_LOG_SECONDS = 60.0
# how long a restore waits for its turn when HOMEAPP_RECOVERY_CONCURRENCY are under way, and
# how many may wait per turn: a deploy's storm is served in turn, a larger one turned away at once
SLOT_WAIT_SECONDS = 30.0
WAITING_PER_SLOT = 64
# the most bytes of history one restore reads
MAX_RESTORE_BYTES = 2 * 1024 * 1024
# beyond a ping interval and timeout (a dead connection is noticed within them): how long before
# a drop a copy must have been written to be taken as received
DELIVERY_MARGIN_SECONDS = 10.0
# errors of Redis that say it cannot be reached, rather than that it refused one request
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


def log_seconds(config):
    """How long the channels' histories keep an entry."""
    return max(config["RECOVERY_SECONDS"], MIN_LOG_SECONDS)


class Refused(Exception):
    """A reconnect cannot recover; its `outcome` is counted (fresh, or budget)."""

    def __init__(self, outcome="fresh", why=""):
        super().__init__(outcome, why)
        self.outcome = outcome
        self.why = why


class Replay:
    """What a recovering socket is sent: its channels' entries after its positions, merged by
    time and each sender's order, each emit once, without what it skipped or what came after a cut of its user."""

    def __init__(self, session, positions):
        self.session = session
        self.positions = positions
        self.read_to = dict(positions)  # channel -> id of the last entry read
        self.cut = set()               # channels its user was taken out of meanwhile
        self.entries = []              # (channel, id, origin, message), not yet sent
        self.seen = set()              # (sender, number) of the emits sent or to be sent

    def add(self, found):
        """Take in history.read()'s {channel: [(id, text)]}."""
        new = []
        user = self.session.user_id
        for channel, entries in found.items():
            for entry_id, text in entries:
                self.read_to[channel] = entry_id
                if channel in self.cut:
                    continue
                try:
                    sender, number, body = text.split(" ", 2)
                    message = json.loads(body)
                    origin = (sender, int(number))
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if message.get("method") == "cut":
                    if message.get("user") in (None, user):
                        self.cut.add(channel)
                    continue
                if not logged(message) or self.session.sid in skipped(message):
                    continue
                room = message.get("room")
                if channel == EVERYONE and room is not None \
                        and self.session.sid not in rooms_of(room):
                    continue  # to another process's socket, by everyone's channel
                # ids of different channels only compare by their time; one sender's emits
                # by its numbers
                new.append(((id_key(entry_id)[0], *origin), channel, entry_id, origin, message))
        new.sort(key=lambda entry: entry[0])
        for _, channel, entry_id, origin, message in new:
            if origin not in self.seen:
                self.seen.add(origin)
                self.entries.append((channel, entry_id, origin, message))

    def fresh_copy(self, channel, entry_id, origin):
        """Whether a copy delivered live while restoring was not read here already."""
        if origin in self.seen or channel in self.cut:
            return False
        read = self.read_to.get(channel)
        return read is None or id_key(entry_id) > id_key(read)


class IdleTurns:
    """Greenlets waiting for the event loop to have nothing else to do, woken one per such
    moment, first come first. gevent.idle() wakes every greenlet waiting in it at the first idle
    moment, one after the other before the loop looks at its sockets again: a storm's hundreds
    of reconnects and restores then ran back to back, and a live socket's event that arrived
    meanwhile waited behind all of them."""

    def __init__(self):
        self._waiting = deque()  # gevent Waiters, first come first
        self._watcher = None     # the loop's idle watcher, active while some wait

    def wait(self):
        waiter = Waiter()
        self._waiting.append(waiter)
        if self._watcher is None:
            self._watcher = gevent.get_hub().loop.idle()
        if not self._watcher.active:
            self._watcher.start(self._wake)
        try:
            waiter.get()
        except BaseException:  # killed while waiting (its client went away): out of the queue
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            raise

    def _wake(self):
        """In the event loop, when it has nothing else to do: the first waiter goes on, until it
        waits for something again; the others wait for the next idle moment."""
        if self._waiting:
            self._waiting.popleft().switch(None)
        if not self._waiting and self._watcher.active:
            self._watcher.stop()


class Recovery:
    """Sessions of dropped sockets, the channels' histories, and what sockets are being restored."""

    def __init__(self, hub, history, sessions, grace, concurrency=32, max_entries=5000):
        self._hub = hub
        self.history = history      # MemoryHistory or RedisHistory
        self.sessions = sessions    # MemorySessions or RedisSessions
        self.positions = None       # a Positions or NumberedPositions, set by build_recovery
        # reinstate(hub, conn, session): gives a recovered socket what its session had (identity,
        # presence): the app's, registered by create_app, so that the engine imports no feature
        self.reinstate = None
        self.grace = grace
        self.concurrency = concurrency
        self.max_entries = max_entries
        self.under_way = 0          # restores running now
        self._waiting = deque()     # Events of the restores waiting for a turn, first come first
        self.restoring = {}         # sid -> [(channel, id, origin, message)] sent live meanwhile
        # channel -> {sid: id key}: what a restore read there; the listener may hear it after (it
        # lags behind Redis), and the socket must not get it twice. By channel: a delivery looks
        # at the sockets restored in its own channel only, not at every socket of a storm
        self.settling = {}
        self._settling_in = {}      # sid -> the channels where it has a mark
        self.unanchored = set()     # sids given events without an offset (Redis was down)
        self.in_grace = {}          # sid -> user id: dropped, still counted online for the grace
        # sid -> user id: sessions whose restore is queued or under way here (admit()); their
        # users count as online until it ends, whatever the grace
        self.admitted = {}
        self.live = {}              # digest of a connected socket's pid -> its sid
        self._superseded = set()    # sids ended because their client reconnected meanwhile
        self._kept_early = None     # at shutdown: sids whose sessions were kept before closing
        self.shutting_down = False  # from then on, nothing more is sent to its sockets
        self._idle_turns = IdleTurns()  # yield_to_live()'s queue

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, manager, message, channel, entry_id, origin, text=None):
        """Send a copy of a logged emit to this process's sockets, with its offset as the last
        argument (`text`: its packet, when encoded already). A socket being restored gets it
        later, in order after what it missed."""
        if text is None:
            text = event_text(manager.server, message["event"],
                              (*(message.get("data") or ()), offset_of(entry_id, channel)))
        self.deliver_text(manager, text, channel, entry_id, origin, message["event"],
                          message.get("data"), message.get("room"), message.get("skip_sid"), message)

    def deliver_text(self, manager, text, channel, entry_id, origin, event, data, room, skip,
                     message=None):
        """deliver() of a copy whose packet is encoded already (`text`), of an emit of `event`
        with `data` to `room` skipping `skip`. Its `message` is only needed while sockets are
        being restored: the memory history has it built only then (a dict per emit was 2 % of a
        message's instructions), and sends a copy here only when sockets are being restored or
        settled or the process is shutting down: otherwise this does nothing but emit_here(),
        with NumberedPositions, and the call was 1.5 % of a message's instructions."""
        if self.shutting_down:
            return  # shutting down: its sockets get it where they recover, from their sessions
        self.positions.delivered(channel, entry_id)
        if self.restoring or self.settling:
            if message is None:
                message = {"method": "emit", "event": event, "namespace": NAMESPACE,
                           "room": room, "skip_sid": skip, "data": list(data or ())}
            skip = self._hold(manager, message, channel, entry_id, origin)
        emit_here(manager, event, None, NAMESPACE, room=room, skip_sid=skip, text=text)

    def _hold(self, manager, message, channel, entry_id, origin):
        """Set a copy aside for the sockets being restored that it is addressed to, and leave
        out those whose restore sent it already; returns the sids its delivery now skips."""
        room = message.get("room")
        skip = skipped(message)
        for sid, held in self.restoring.items():
            if sid not in skip and addressed(manager, room, sid):
                held.append((channel, entry_id, origin, message))
                skip.append(sid)
        marks = self.settling.get(channel)
        if marks:
            self._settle(channel, marks, id_key(entry_id), skip)
        return skip

    def _settle(self, channel, marks, key, skip):
        """Skip the recovered sockets that were sent this entry by their restore; forget a
        socket's mark in a channel once the listener is past it."""
        for sid, upto in list(marks.items()):
            if key <= upto:
                skip.append(sid)
                continue
            del marks[sid]
            channels = self._settling_in.get(sid)
            if channels is not None:
                channels.discard(channel)
                if not channels:
                    del self._settling_in[sid]
        if not marks:
            del self.settling[channel]

    def settle(self, sid, read):
        """A restored socket was sent its channels' entries up to `read` ({channel: id key})."""
        for channel, key in read.items():
            self.settling.setdefault(channel, {})[sid] = key
        if read:
            self._settling_in[sid] = set(read)

    def _unsettle(self, sid):
        for channel in self._settling_in.pop(sid, ()):
            marks = self.settling.get(channel)
            if marks is not None:
                marks.pop(sid, None)
                if not marks:
                    del self.settling[channel]

    def deliver_unlogged(self, manager, message):
        """Send a logged emit that has no offset yet (Redis is unreachable): its recipients can
        no longer be recovered exactly, so they will get a fresh session if they drop."""
        room = message.get("room")
        skip = skipped(message)
        for sid, _ in manager.get_participants(NAMESPACE, room):
            if sid not in skip:
                self.unanchored.add(sid)
        emit_here(manager, message["event"], tuple(message.get("data") or ()), NAMESPACE,
                  room=room, skip_sid=skip)

    def cut(self, user_id, channel):
        """A user was taken out of a channel by the server: a session of theirs recovers
        without it, and with nothing sent to it after (docs/recovery.md)."""
        self._hub.server.manager.publish_cut(user_id, channel)

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
        self._unsettle(conn.sid)
        if conn.pid is not None:
            self.live.pop(digest(conn.pid), None)
        if conn.pid is None or unanchored or not may_return:
            return False
        if self._kept_early is not None and conn.sid in self._kept_early:
            return True
        try:
            self.sessions.save_all([(conn.pid, self._session(conn))])
        except Exception as exc:  # Redis is unreachable: the socket will get a fresh session
            self._hub.health.lost(exc)
            return False
        return True

    def _session(self, conn):
        rooms = set(self._hub.server.rooms(conn.sid))
        channels = {channel: kept for channel, kept in self.positions.snapshot(conn.sid).items()
                    if channel == EVERYONE or channel in rooms}
        return Session(conn.sid, conn.user_id, conn.username, conn.live, channels, conn.since)

    def keep_all(self):
        """At shutdown, before the sockets are told to go: keep every session now (each is kept
        again as its socket closes), so that a client reconnecting to another process at once
        does not get there before its session. From then on nothing more is sent to them: what
        comes is theirs where they recover."""
        kept = [(conn.pid, self._session(conn)) for conn in map(self._hub.connections.get,
                                                                  self._hub.connections.sids())
                if conn is not None and conn.pid is not None and conn.sid not in self.unanchored]
        # nothing more is sent to them from here on, while Redis takes their sessions either
        self.shutting_down = True
        self._kept_early = {session.sid for _, session in kept}
        try:
            self.sessions.save_all(kept)
        except Exception as exc:  # each is kept as it closes, if it can be
            self._hub.health.lost(exc)
            self._kept_early = set()

    def hold_presence(self, user_id, sid):
        """Keep a dropped live socket online for the grace; take it out after, unless it came back."""
        self.in_grace[sid] = user_id
        self._hub.server.start_background_task(self._end_grace, sid)

    def _end_grace(self, sid):
        self._hub.server.sleep(self.grace)
        if sid in self.admitted:
            return  # its restore is queued or under way: its end decides (done())
        user_id = self.in_grace.pop(sid, None)
        if user_id is not None:
            self._hub.take_offline(user_id, sid)

    # --- a socket comes back ---------------------------------------------------------------

    def admit(self, pid, offset, identity, open_mode):
        """A reconnect about to wait for its turn: its session, found now, or None (none, or
        another identity presented it). A live session's user is held online here until its
        restore ends (done()): a restore queued or under way counts as still there, so that the
        process the socket left announces nothing when its grace ends, however long the storm's
        queue. Never raises; a session that cannot be read now is looked for again in its turn."""
        if not isinstance(pid, str) or len(pid) > 128 \
                or (offset is not None and parse_offset(offset) is None):
            return None  # refused in its turn, before anything is asked of Redis
        try:
            session = self.sessions.find(pid)
        except UNREACHABLE as exc:
            self._hub.health.lost(exc)
            return None
        except (redis.RedisError, ValueError, TypeError):
            return None
        if session is None or not _same_user(identity, session.user_id, open_mode):
            return None
        sid = session.sid
        if session.live and sid not in self.admitted and self._hub.connections.get(sid) is None:
            self.admitted[sid] = session.user_id
            if sid not in self.in_grace and self._hub.keep_online(session.user_id, sid):
                self.in_grace[sid] = session.user_id  # no timer: done() starts it if it fails
        return session

    def done(self, session, recovered):
        """The restore of an admitted session ended. One that did not recover leaves its user
        the grace, as a drop does: a fresh socket of theirs going live meanwhile keeps them online."""
        if session is None or self.admitted.pop(session.sid, None) is None:
            return
        if not recovered and session.sid in self.in_grace \
                and self._hub.connections.get(session.sid) is None:
            self._hub.server.start_background_task(self._end_grace, session.sid)

    def yield_to_live(self):
        """Let every greenlet that can run go first (a live socket's event, a delivery), and go
        on when the event loop has nothing else to do: a storm's restores take what the live
        traffic leaves of the process, never the other way round. One waiting restore goes on
        per such moment (IdleTurns), so that what becomes ready meanwhile goes before the next."""
        self._idle_turns.wait()

    def crowded(self):
        """Whether a reconnect now would find no place to wait for a turn (slot() says no)."""
        return self.under_way >= self.concurrency \
            and len(self._waiting) >= self.concurrency * WAITING_PER_SLOT

    @contextmanager
    def slot(self):
        """A turn to restore, waited for at most SLOT_WAIT_SECONDS behind at most
        WAITING_PER_SLOT others per turn; yields whether it came. Bounds the memory, the Redis
        reads and the connections that a storm of reconnects takes at once."""
        if self.under_way >= self.concurrency:
            if self.crowded():
                yield False
                return
            turn = self._hub.server.eio.create_event()
            self._waiting.append(turn)
            turn.wait(SLOT_WAIT_SECONDS)
            if not turn.is_set():  # gave up: its turn goes to the next
                self._waiting.remove(turn)
                yield False
                return
        else:
            self.under_way += 1
        try:
            yield True
        finally:
            if self._waiting:  # handed on: still under way
                self._waiting.popleft().set()
            else:
                self.under_way -= 1

    def claim(self, pid, offset, identity, open_mode, found=None):
        """A Replay of what a reconnect presenting `pid` and `offset` missed, its session
        consumed; raises Refused when it cannot recover (then it gets a fresh session). The
        identity is checked before the session is consumed: a wrong one leaves it to its owner.
        The offset is checked before anything touches Redis. `found`: its session as admit()
        read it (consumed only if Redis still holds that very one)."""
        if not isinstance(pid, str) or len(pid) > 128:
            raise Refused(why="malformed pid")
        if offset is not None and parse_offset(offset) is None:
            raise Refused(why="malformed offset")
        try:
            session = found if found is not None else self.sessions.find(pid)
            if session is None and self._supersede(pid, identity, open_mode):
                session = self.sessions.find(pid)
            if session is None:
                raise Refused(why="no session")
            if not _same_user(identity, session.user_id, open_mode):
                log.info("refused a recovery: another identity presented a session's private id")
                raise Refused(why="another identity")
            positions = self.positions.locate(session.channels, session.anchor, offset)
            if positions is None:
                raise Refused(why="offset not among what it was sent")
            if not self.sessions.consume(session):
                if found is not None:  # read on arrival: it may have recovered here since, and
                    # a reconnect with its pid takes an open socket's place (_supersede), once
                    # that one's restore (which lets live traffic go first) is done
                    self._wait_restored(found.sid)
                    return self.claim(pid, offset, identity, open_mode)
                raise Refused(why="claimed by another reconnect")
            replay = Replay(session, positions)
            self.read(replay, Budget(self.max_entries, MAX_RESTORE_BYTES), check=True)
            return replay
        except NotHeld:
            raise Refused(why="history trimmed past its position")
        except (ValueError, TypeError):
            raise Refused(why="a session this server did not write")
        except UNREACHABLE as exc:
            self._hub.health.lost(exc)
            raise Refused(why="Redis unreachable")
        except redis.RedisError as exc:  # refused for this request only: not an outage
            log.warning("a recovery failed: Redis refused a read (%s)", exc)
            raise Refused(why="Redis refused a read")

    def _wait_restored(self, sid):
        """Wait, at most SLOT_WAIT_SECONDS, while socket `sid` is being restored here."""
        waited = 0.0
        while sid in self.restoring and waited < SLOT_WAIT_SECONDS:
            self._hub.server.sleep(0.01)
            waited += 0.01

    def read(self, replay, budget, check=False):
        """Read each of a replay's channels after what it read. Raises OverBudget as Refused,
        and what history.read() raises."""
        channels = {c: p for c, p in replay.read_to.items() if c not in replay.cut}
        try:
            found = self.history.read(channels, budget, check=check)
        except OverBudget:
            raise Refused("budget", "more to read than a restore may")
        finally:
            metrics.RECOVERY_READ_ENTRIES.inc(budget.entries)
            metrics.RECOVERY_READ_BYTES.inc(budget.bytes)
            budget.entries = budget.bytes = 0
        replay.add(found)

    def catch_up(self, replay, budget):
        """Read what was sent to a replay's channels while it rejoined them. Returns False when
        that cannot be read."""
        try:
            self.read(replay, budget)
            return True
        except Refused:
            return False
        except (ValueError, TypeError):
            return False
        except UNREACHABLE as exc:
            self._hub.health.lost(exc)
            return False
        except redis.RedisError:
            return False

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


def _same_user(identity, user_id, open_mode):
    """Whether a reconnect's proven identity is that of `user_id`'s socket. Without one (open
    mode, no handshake userID) the pid alone stands for it; in jwt and session modes it never does."""
    return open_mode if identity is None else identity.user_id == user_id


def build_recovery(hub, config, redis_client):
    """Recovery for the hub, or None when HOMEAPP_RECOVERY_SECONDS is 0."""
    seconds = config["RECOVERY_SECONDS"]
    if seconds <= 0:
        return None
    manager = hub.server.manager
    if redis_client is not None:
        history = RedisHistory(redis_client)
        sessions = RedisSessions(redis_client, seconds)
        keep = config["PING_INTERVAL"] + config["PING_TIMEOUT"] + DELIVERY_MARGIN_SECONDS
        positions = Positions(manager.last_id, keep, config["HISTORY_SIZE"],
                              config["RECOVERY_RECENT_COPIES"])
    else:
        history = MemoryHistory(log_seconds(config), config["HISTORY_SIZE"], config["HISTORY_MAX_BYTES"])
        sessions = MemorySessions(seconds)
        manager.history = history
        positions = NumberedPositions(manager.last_id, history)
    recovery = Recovery(hub, history, sessions, config["PRESENCE_GRACE"],
                        config["RECOVERY_CONCURRENCY"], config["RECOVERY_MAX_ENTRIES"])
    recovery.positions = positions
    return recovery
