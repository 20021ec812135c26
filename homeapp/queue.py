"""The Socket.IO message queue between processes: python-socketio's Redis manager, outage-aware.

python-socketio's RedisManager already relays emits and room changes between
processes and reconnects its listener. What changes here is how it behaves while
Redis is down:

- publishing is skipped while an outage is known (the emit has already reached
  this process's own sockets), instead of two connection attempts, each of which
  can block for the whole connect timeout, and two error lines per emit;
- the listener retries every second rather than backing off to a minute, so
  cross-process delivery resumes soon after Redis does;
- failures are reported to RedisHealth, which logs each outage once.
"""
import time

import redis
import socketio

LISTEN_RETRY_SECONDS = 1.0


class QueueManager(socketio.RedisManager):
    def __init__(self, url, health, timeout, channel="flask-socketio"):
        super().__init__(url, channel=channel)
        self._health = health
        self._timeout = timeout
        self._publisher = None

    def _publish(self, data):
        if self._health.down:
            return
        try:
            if self._publisher is None:
                self._publisher = redis.Redis.from_url(
                    self.redis_url, socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout)
            self._publisher.publish(self.channel, self.json.dumps(data))
        except redis.RedisError as exc:
            self._health.lost(exc)

    def _redis_listen_with_retries(self):
        # No read timeout on the subscriber: it waits for messages indefinitely; a
        # closed connection raises at once and keepalive catches a vanished peer.
        while True:
            self.pubsub = None
            try:
                listener = redis.Redis.from_url(self.redis_url, socket_connect_timeout=self._timeout,
                                                socket_keepalive=True)
                self.pubsub = listener.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(self.channel)
                yield from self.pubsub.listen()
            except redis.RedisError as exc:
                self._health.lost(exc)
            finally:
                if self.pubsub is not None:
                    self.pubsub.close()
            time.sleep(LISTEN_RETRY_SECONDS)
