"""The presence keeper: a background task on every process of a Redis deployment.

Every `interval` (a third of HOMEAPP_PRESENCE_TIMEOUT) it

1. refreshes this process's heartbeat, whose TTL is the other two thirds, so a
   process that stops beating is seen dead within the timeout;
2. re-asserts this process's sockets: what Redis lost (it restarted, or reaped this
   process while it was cut off) is added back, announcing "Add" for users who come
   back, and sockets that closed while Redis could not hear of it are removed,
   announcing "Remove" for users left with none;
3. reaps the processes whose heartbeat expired, announcing "Remove" for their users
   left with no socket anywhere.

While Redis is down, whoever noticed it first, it probes twice a second; once
Redis has answered for a second and a half (long enough for every process's
message-queue listener to have resubscribed) it declares the outage over and
re-asserts. It reaps only after Redis has been reachable for a heartbeat TTL, so
that after an outage every live process has had time to beat again before anyone
is judged dead by a heartbeat that expired during the outage.

Another Redis server answering (Sentinel promoted a replica, or Redis restarted) is an
outage too, even when no call failed: redis-py reconnects by itself, and the new server
may lack the latest writes, heartbeats among them.

`retire(hub)` is for the graceful shutdown: it stops the task and takes this
process's sockets out of presence at once.
"""
import logging
import time

from homeapp.engine.message_queue import LISTEN_RETRY_SECONDS
from homeapp.names import PRESENCE_REMOVE
from homeapp.presence import PresenceUnavailable

log = logging.getLogger("homeapp.presence.keeper")

DOWN_PROBE_SECONDS = 0.5
# how long Redis must answer after an outage before it is declared back
SETTLE_SECONDS = LISTEN_RETRY_SECONDS + 0.5


def heartbeat_schedule(timeout):
    """(seconds between beats, heartbeat TTL) for a presence timeout: dead within the timeout."""
    interval = timeout / 3
    return interval, timeout - interval


class PresenceKeeper:
    def __init__(self, hub, store, timeout):
        self._hub = hub
        self._store = store
        self.interval, self.heartbeat_ttl = heartbeat_schedule(timeout)
        self._owed = {}          # sid -> user id: departures Redis has not heard of
        self._reap_after = None  # monotonic time; None until Redis first answered
        self._answering_since = None  # while an outage is known: when Redis first answered again
        self._server = None      # run id of the Redis server that answered the last beat
        self._stopping = hub.server.eio.create_event()
        self._task = None

    def start(self):
        self._task = self._hub.server.start_background_task(self._run)
        return self

    def stop(self, timeout=5):
        """Stop the background task and wait for it to end."""
        self._stopping.set()
        if self._task is not None:
            self._task.join(timeout)
            self._task = None

    def owe_departure(self, user_id, sid):
        """A live socket closed while Redis was unreachable: settle it when Redis is back."""
        self._owed[sid] = user_id

    def _run(self):
        # it looks at the health every probe, not only after each interval: an outage that
        # something else noticed (the message queue, an event) is probed from then on, and a
        # failover ends about when Redis answers again, not up to an interval later
        next_round = time.monotonic()
        while not self._stopping.is_set():
            if self._hub.health.down or time.monotonic() >= next_round:
                next_round = time.monotonic() + self.interval
                try:
                    self.tick()
                except Exception:  # the keeper must outlive any bug in one round
                    log.exception("presence keeper round failed")
            self._stopping.wait(min(DOWN_PROBE_SECONDS, self.interval))

    def tick(self):
        """One round: beat, re-assert, reap. A Redis failure ends the round and is reported."""
        health = self._hub.health
        try:
            self._notice_switch(self._store.beat())
            if health.down and not self._answered_long_enough():
                return
            self._answering_since = None
            if health.down or self._reap_after is None:
                self._reap_after = time.monotonic() + self.heartbeat_ttl
                # while events still fail fast, so that none can add a socket meanwhile
                self.drop_phantoms(self._store.sockets_here())
                # before re-asserting: its announcements must reach the other processes
                health.back(f"re-asserting {len(self._hub.connections.live())} live sockets")
            added, removed = self.reassert()
            if added or removed:
                log.info("re-asserted this process's sockets: %d users back online, %d gone offline",
                         added, removed)
            if time.monotonic() >= self._reap_after:
                self.reap_dead()
        except PresenceUnavailable as exc:
            self._answering_since = None
            health.lost(exc)

    def _notice_switch(self, server):
        """Count another Redis server answering as an outage: re-assert, and hold reaping."""
        previous, self._server = self._server, server
        if previous is None or server == previous:
            return
        log.warning("another Redis server answers (run id %s, was %s): a failover or a restart; "
                    "this process re-asserts its sockets and reaps nobody for %.0f s",
                    server, previous, SETTLE_SECONDS + self.heartbeat_ttl)
        self._hub.health.lost(PresenceUnavailable("another Redis server answers: a failover or a restart"))

    def _answered_long_enough(self):
        """After an outage, Redis must answer for a while before it is declared back, so that
        every process's message-queue listener (retrying every second) has resubscribed and
        hears the announcements that re-asserting makes."""
        now = time.monotonic()
        if self._answering_since is None:
            self._answering_since = now
        return now - self._answering_since >= SETTLE_SECONDS

    def reassert(self):
        """Make Redis hold exactly this process's live sockets; returns (users added, users removed).

        Raises PresenceUnavailable.
        """
        connections = self._hub.connections
        held = self._store.sockets_here()
        added = removed = 0
        in_grace = self._hub.recovery.in_grace if self._hub.recovery is not None else {}
        for sid, user_id in held.items():
            if connections.get(sid) is None and sid not in in_grace:
                # closed; its own removal may be in flight, only one wins
                removed += self._hub.remove_live_socket(user_id, sid)
        self.drop_phantoms(held)
        for sid, user_id in list(in_grace.items()):  # dropped, still online: Redis lost them
            if sid not in held:
                added += self._hub.add_live_socket(user_id, sid)
        for conn in connections.live():
            if conn.sid in held:
                continue
            added += self._hub.add_live_socket(conn.user_id, conn.sid)
            if connections.get(conn.sid) is not conn:  # it closed while being added
                removed += self._hub.remove_live_socket(conn.user_id, conn.sid)
        removed += self._settle_owed(held)
        return added, removed

    def drop_phantoms(self, held):
        """Take out of Redis the sockets it holds for this process that are open but not live.

        An addOnlineUser that Redis applied after its caller gave up (Redis was stalled) left
        one: the event was answered UNAVAILABLE, and nobody was told the user came online, so
        it goes silently. Raises PresenceUnavailable.
        """
        for sid, user_id in held.items():
            conn = self._hub.connections.get(sid)
            if conn is not None and not conn.live and not conn.adding:
                log.info("dropping socket %s of user %s: Redis holds it, but its addOnlineUser "
                         "was refused", sid, user_id)
                self._store.forget_socket(user_id, sid)

    def _settle_owed(self, held):
        """Announce "Remove" for users who left during the outage and whose socket Redis no longer has.

        Redis may have lost the socket (a restart) or applied a removal whose answer never
        arrived; either way nobody announced it. Those still in `held` were settled above.
        """
        removed = 0
        for sid, user_id in list(self._owed.items()):
            if sid not in held and not any(c.live for c in self._hub.connections.of_user(user_id)) \
                    and not self._store.is_online(user_id):
                self._hub.announce(PRESENCE_REMOVE, user_id)
                removed += 1
            del self._owed[sid]
        return removed

    def reap_dead(self):
        """Remove the sockets of every process whose heartbeat expired. Raises PresenceUnavailable."""
        for server_id in self._store.dead_servers():
            result = self._store.reap(server_id)
            if result is None:
                continue
            count, gone = result
            for user_id in gone:
                self._hub.announce(PRESENCE_REMOVE, user_id)
            log.warning("server %s stopped beating: removed its %d sockets; %d users went offline",
                        server_id, count, len(gone))

    def retire(self):
        """Stop, then take this process's sockets out of presence, announcing "Remove" at once.

        Raises PresenceUnavailable (the other processes will reap this one instead).
        """
        self.stop()
        result = self._store.retire()
        if result is None:
            return
        count, gone = result
        for user_id in gone:
            self._hub.announce(PRESENCE_REMOVE, user_id)
        log.info("retired: removed this process's %d sockets; %d users went offline", count, len(gone))


def retire(hub):
    """For the graceful shutdown: stop the heartbeat and take this process's users offline now.

    Does nothing without Redis. Never raises: if Redis is down, the other processes reap
    this one once its heartbeat expires.
    """
    if hub.keeper is None:
        return
    try:
        hub.keeper.retire()
    except PresenceUnavailable as exc:
        log.warning("could not retire this process's sockets (%s); other processes will reap them", exc)
