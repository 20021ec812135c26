"""Whether this process can reach Redis: one outage is logged once, and so is its end.

Anything that fails to reach Redis reports it here (an event, the message queue, the
presence keeper); only the presence keeper, which probes Redis on a schedule, declares
that it is back, after it has re-asserted this process's sockets.
"""
import logging
import time

from homeapp.telemetry import metrics

log = logging.getLogger(__name__)


class RedisHealth:
    def __init__(self):
        self._down_since = None
        self._failures = 0

    @property
    def down(self):
        return self._down_since is not None

    def lost(self, exc):
        """Record a failed Redis call; the first of an outage is logged."""
        self._failures += 1
        metrics.REDIS_ERRORS.inc()
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("Redis is unreachable (%s): presence events answer UNAVAILABLE and other "
                      "processes are not reached until it is back", exc)

    def back(self, detail=""):
        """Record that Redis answers again; logged once, with the outage's length."""
        if self._down_since is None:
            return
        seconds = time.monotonic() - self._down_since
        log.warning("Redis is reachable again after %.1f s (%d calls failed or refused)%s",
                    seconds, self._failures, f"; {detail}" if detail else "")
        self._down_since = None
        self._failures = 0
