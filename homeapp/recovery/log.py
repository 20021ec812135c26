"""The event log a recovering socket reads what it missed from.

An entry is one emit of the server to a channel: a user's or a room's, or everyone. Its offset
is the id of its entry, `<milliseconds>-<sequence>` as Redis streams number theirs, which only
grows. With Redis the log is the stream the message queue writes (homeapp.cluster.message_queue);
without it, MemoryLog below, in this process.

`after(offset)` gives the entries after an offset, or None when the offset is not held any more
(the log was trimmed past it, or it never was this log's): then a recovery would leave a gap.
"""
import json
import re
import time
from collections import deque


import redis

from homeapp.cluster import redis_keys
from homeapp.transport import jsoncodec

# a client's offset is only ever one this server sent
_OFFSET = re.compile(r"\d{1,20}-\d{1,20}")
# entries read per round trip
PAGE = 1000


def offset_key(offset):
    """An offset as a comparable pair; raises ValueError for what is not one."""
    ms, _, seq = offset.partition("-")
    return int(ms), int(seq)


def valid_offset(offset):
    return isinstance(offset, str) and _OFFSET.fullmatch(offset) is not None


def parse_entry(text):
    """(sender id, its sequence number, message dict) of a queue message "<sender> <n> <json>".

    Raises ValueError for what this server did not write.
    """
    sender, number, body = text.split(" ", 2)
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not a message")
    return sender, int(number), message


class MemoryLog:
    """The log in this process: the entries of the last `seconds`, at most `capacity`. An entry
    is kept as JSON text: a fraction of the memory of the message's objects, and nothing for the
    garbage collector to walk (a full log is a hundred thousand entries)."""

    def __init__(self, seconds, capacity):
        self._seconds = seconds
        self._entries = deque(maxlen=capacity)  # (offset key, offset, message), oldest first
        self._last = (0, 0)
        self._forgot = False  # whether an entry was ever trimmed

    def append(self, message):
        """Log a message; returns its offset."""
        now = int(time.time() * 1000)
        ms, seq = self._last
        self._last = (now, 0) if now > ms else (ms, seq + 1)
        offset = f"{self._last[0]}-{self._last[1]}"
        self._forgot = self._forgot or len(self._entries) == self._entries.maxlen
        self._entries.append((self._last, offset, jsoncodec.dumps(message)))
        horizon = now - self._seconds * 1000
        while self._entries and self._entries[0][0][0] < horizon:
            self._entries.popleft()
            self._forgot = True
        return offset

    def position(self):
        """The offset of the newest entry ("0-0" before the first)."""
        return f"{self._last[0]}-{self._last[1]}"

    def after(self, offset):
        if not valid_offset(offset):
            return None
        key = offset_key(offset)
        found = key == (0, 0) and not self._forgot  # the log's start, all of it still held
        entries = []
        for entry_key, entry_offset, text in self._entries:
            if entry_key == key:
                found = True
            elif entry_key > key:
                entries.append((entry_offset, jsoncodec.loads(text)))
        return entries if found else None


class RedisLog:
    """The message queue's stream, read. after() raises RedisError."""

    def __init__(self, client, position=lambda: None):
        self._redis = client  # decode_responses=True
        self.position = position  # where the log is for a socket connecting now, or None

    def after(self, offset):
        if not valid_offset(offset):
            return None
        if offset == "0-0":  # a socket connected before the log's first entry
            if not self._whole():
                return None
            page = self._redis.xrange(redis_keys.EVENT_LOG, "-", "+", count=PAGE)
        else:
            page = self._redis.xrange(redis_keys.EVENT_LOG, offset, "+", count=PAGE)
            if not page or page[0][0] != offset:
                return None
        entries = []
        seen = set()  # (sender, number): a publish retried after a failure may have landed twice
        while True:
            for entry_id, fields in page:
                if entry_id == offset:
                    continue
                try:
                    sender, number, message = parse_entry(fields["m"])
                except (KeyError, ValueError):
                    continue
                if (sender, number) not in seen:
                    seen.add((sender, number))
                    entries.append((entry_id, message))
            if len(page) < PAGE:
                return entries
            page = self._redis.xrange(redis_keys.EVENT_LOG, f"({page[-1][0]}", "+", count=PAGE)

    def _whole(self):
        """Whether the log still holds every entry ever added to it (Redis 7's XINFO tells)."""
        try:
            info = self._redis.xinfo_stream(redis_keys.EVENT_LOG)
        except redis.ResponseError:  # no log yet
            return True
        return info.get("entries-added") == info.get("length")

