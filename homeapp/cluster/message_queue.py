"""The Socket.IO message queue between processes: python-socketio's Redis manager, outage-aware.

python-socketio's RedisManager already relays emits and room changes between
processes and reconnects its listener. What changes here is how it behaves while
Redis is down:

- publishing is skipped while an outage is known (the emit has already reached
  this process's own sockets), instead of two connection attempts, each of which
  can block for the whole connect timeout, and two error lines per emit;
- the listener retries every second rather than backing off to a minute, so
  cross-process delivery resumes soon after Redis does;
- failures are reported to RedisHealth, which logs each outage once;
- publishing does not wait for Redis: a `message` makes three emits or more, and each
  was a PUBLISH round trip inside the sender's event. Emits are queued, and one
  background task sends whatever has queued up in one pipelined round trip, in order.
"""
import logging
import time

import redis
import socketio

from homeapp.cluster.redis_client import connect

log = logging.getLogger("homeapp.cluster.message_queue")

LISTEN_RETRY_SECONDS = 1.0
# messages per pipelined round trip: bounds one batch's memory and Redis's output buffer
MAX_BATCH = 1000
# messages waiting for Redis (about 0.5 KB each) past which new ones are dropped, not queued
MAX_OUTBOX = 20000


class QueueManager(socketio.RedisManager):
    def __init__(self, url, health, timeout, channel="flask-socketio"):
        super().__init__(url, channel=channel)
        self._health = health
        self._timeout = timeout
        self._publisher = None
        self._outbox = []
        self._queued = None  # an Event of the server's async mode, once the sender runs
        self._sending = False
        self._dropped = 0  # messages refused since the outbox last filled up

    def _publish(self, data):
        if self._health.down:
            return
        if len(self._outbox) >= MAX_OUTBOX:  # Redis answers, but slower than emits come
            if not self._dropped:
                log.warning("message queue backlog of %d: emits to other processes are dropped "
                            "until Redis catches up", MAX_OUTBOX)
            self._dropped += 1
            return
        self._outbox.append(self.json.dumps(data))
        if self._queued is None:
            self._queued = self.server.eio.create_event()
            self.server.start_background_task(self._send_forever)
        self._queued.set()

    def _send_forever(self):
        while True:
            self._queued.wait()
            self._queued.clear()
            self._sending = True
            while self._outbox:
                if self._health.down:  # pub/sub keeps nothing for later: drop, do not wait on each
                    self._outbox.clear()
                    break
                batch, self._outbox = self._outbox[:MAX_BATCH], self._outbox[MAX_BATCH:]
                self._send(batch)
            self._sending = False
            if self._dropped:
                log.warning("message queue caught up; %d emits to other processes were dropped",
                            self._dropped)
                self._dropped = 0

    def flush(self, timeout):
        """Wait, at most timeout seconds, until what was emitted has been published.
        Returns True when nothing is left (at shutdown: the last presence changes)."""
        deadline = time.monotonic() + timeout
        while self._outbox or self._sending:
            if time.monotonic() >= deadline:
                return False
            self.server.sleep(0.01)
        return True

    def _send(self, batch):
        try:
            if self._publisher is None:
                self._publisher = connect(self.redis_url, self._timeout)
            pipe = self._publisher.pipeline(transaction=False)
            for message in batch:
                pipe.publish(self.channel, message)
            pipe.execute()
        except redis.RedisError as exc:
            self._health.lost(exc)
        except Exception:  # the sender must outlive any one batch
            log.exception("could not publish %d messages", len(batch))

    def _redis_listen_with_retries(self):
        # No read timeout on the subscriber: it waits for messages indefinitely; a
        # closed connection raises at once and keepalive catches a vanished peer.
        while True:
            self.pubsub = None
            try:
                listener = connect(self.redis_url, self._timeout, subscriber=True)
                self.pubsub = listener.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(self.channel)
                yield from self.pubsub.listen()
            except redis.RedisError as exc:
                self._health.lost(exc)
            finally:
                if self.pubsub is not None:
                    self.pubsub.close()
            time.sleep(LISTEN_RETRY_SECONDS)
