"""Ending sockets whose token or session expires while they are connected.

One background task per process and a heap of deadlines: no check per event and
no timer per socket. A deadline that was moved or forgotten stays in the heap
until it comes up and is skipped; the heap is rebuilt when such leftovers dominate.
"""
import heapq
import logging
import time

log = logging.getLogger("homeapp.identity.expiry")


class ExpiryWatch:
    """Calls `on_due(sid)` once the deadline last set for a socket has passed."""

    def __init__(self, start_task, sleep, on_due=None, clock=time.time, tick=1.0):
        self._start_task = start_task
        self._sleep = sleep
        self.on_due = on_due  # bound by events.register
        self._clock = clock
        self._tick = tick
        self._heap = []        # (deadline, sid), leftovers included
        self._deadlines = {}   # sid -> its current deadline
        self._running = False

    def watch(self, sid, deadline):
        """Set (or move) the socket's deadline, in Unix seconds."""
        self._deadlines[sid] = deadline
        heapq.heappush(self._heap, (deadline, sid))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._deadlines):
            self._heap = [(d, s) for s, d in self._deadlines.items()]
            heapq.heapify(self._heap)
        if not self._running:
            self._running = True
            self._start_task(self._run)

    def forget(self, sid):
        """The socket is gone: never call on_due for it."""
        self._deadlines.pop(sid, None)

    def due(self, now):
        """Take the sockets whose deadline is at or before now; they are forgotten."""
        sids = []
        while self._heap and self._heap[0][0] <= now:
            deadline, sid = heapq.heappop(self._heap)
            if self._deadlines.get(sid) == deadline:
                del self._deadlines[sid]
                sids.append(sid)
        return sids

    def __len__(self):
        return len(self._deadlines)

    def _delay(self, now):
        """Until the next deadline, but never longer than a tick, so late watches are seen."""
        if not self._heap:
            return self._tick
        return min(self._tick, max(0.01, self._heap[0][0] - now))

    def _run(self):
        while True:
            now = self._clock()
            for sid in self.due(now):
                try:
                    self.on_due(sid)
                except Exception:
                    log.exception("ending expired socket %s failed", sid)
            self._sleep(self._delay(self._clock()))
