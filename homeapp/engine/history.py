"""Each channel's history: what was sent to it, for the recovery window (docs/recovery.md).

A channel (redis_keys: user:{id}, room:{id}, or everyone, "*") keeps its own history, bounded by
a window of time and a number of entries. An entry's id is `<milliseconds>-<sequence>`, as Redis
streams number theirs, and only grows within its channel; ids of different channels are not
comparable. An entry's text is the message queue's `<sender> <number> <json>`.

With Redis a channel's history is the stream redis_keys.history(channel), which the message
queue's append script writes (and publishes on the channel's pub/sub channel, with its id);
without it, MemoryHistory below, in this process. Both answer read() the same way: the entries
after a position in each channel asked for, or NotHeld when a channel lost entries after it.
"""
import re
import time
from collections import deque

from homeapp.engine import cluster_appends
from homeapp.store import redis_client, redis_keys
from homeapp.transport import jsoncodec

# an id's two numbers are 64-bit in Redis: anything larger is refused, and must never reach it
MAX_PART = 2 ** 64 - 1
_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
START = "0-0"
# entries read per round trip
PAGE = 500


class NotHeld(Exception):
    """A channel's history no longer holds a position: it was trimmed past it."""


class OverBudget(Exception):
    """A read would take more entries or bytes than it may."""


def id_key(entry_id):
    """An id as a comparable pair; raises ValueError for what is not one Redis could hold."""
    match = _ID.fullmatch(entry_id) if isinstance(entry_id, str) else None
    if match is None:
        raise ValueError(f"not an entry id: {entry_id!r}")
    key = int(match[1]), int(match[2])
    if key[0] > MAX_PART or key[1] > MAX_PART:
        raise ValueError("an entry id out of range")
    return key


def later(a, b):
    """The later of two ids, None standing for nothing known."""
    if a is None or b is None:
        return a or b
    return a if id_key(a) >= id_key(b) else b


class Budget:
    """What one read may take: entries and bytes. Counts what was read."""

    def __init__(self, entries, max_bytes):
        self.entries_left = entries
        self.bytes_left = max_bytes
        self.entries = self.bytes = 0

    def take(self, count, size):
        self.entries += count
        self.bytes += size
        self.entries_left -= count
        self.bytes_left -= size
        if self.entries_left < 0 or self.bytes_left < 0:
            raise OverBudget()


# Appends one message to the histories of its channels and publishes it on each channel's pub/sub
# channel, prefixed with the id it got there. Each entry names the one before it (`p`): a reader
# that finds the entry after its position naming that position knows nothing between was trimmed
# (XTRIM leaves no trace of what it removed).
# Acknowledged means durable (homeapp.engine.durability): a message carries its event's deadline,
# past which a channel refuses it, and every later copy of it too (its event was answered
# UNAVAILABLE: it must never be delivered, even by a copy written before Redis stalled and run
# when it resumed); a copy of one already appended (a retry) is not appended again.
# KEYS: for each channel, three keys in its slot: its stream, its sender's mark (the number of the
# sender's last message appended there), the numbers of the sender's messages it refused.
# ARGV: window (ms), largest length, expiry (ms), PUBLISH or SPUBLISH, message ("<sender> <number>
# <json>"), deadline (ms since the epoch, 0: none), then each channel's pub/sub channel.
# Returns 0; nil when a channel refused the message.
_APPEND = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local horizon = now_ms - tonumber(ARGV[1])
local number = tonumber(string.match(ARGV[5], '^%S+ (%d+) '))
local deadline = tonumber(ARGV[6])
local refused = false
for i = 1, #KEYS / 3 do
  local key, mark, refusals = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local appended = redis.call('GET', mark)
  if appended and number <= tonumber(appended) then
    if redis.call('SISMEMBER', refusals, number) == 1 then refused = true end
  elseif deadline > 0 and now_ms > deadline then
    redis.call('SADD', refusals, number)
    redis.call('PEXPIRE', refusals, ARGV[1])
    refused = true
  else
    local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    local previous = '0-0'
    if last[1] then previous = last[1][1] end
    local id = redis.call('XADD', key, 'MINID', '~', horizon, '*', 'p', previous, 'm', ARGV[5])
    redis.call('XTRIM', key, 'MAXLEN', '~', ARGV[2])
    redis.call('PEXPIRE', key, ARGV[3])
    redis.call('SET', mark, number, 'PX', ARGV[3])
    redis.call(ARGV[4], ARGV[6 + i], id .. ' ' .. ARGV[5])
  end
end
if refused then return false end
return 0
"""


class Appender:
    """Appends messages to their channels' histories and publishes them.
    `one_slot`: one script call per channel (a Redis Cluster: a script's keys share a slot)."""

    def __init__(self, client, window_seconds, size, one_slot=False):
        self._script = client.register_script(_APPEND)
        self.sha = self._script.sha
        self._window_ms = int(window_seconds * 1000)
        # an idle channel's stream goes a window after its last entry; twice, so that a session
        # kept at the end of a window still finds what came just before it
        self._expire_ms = 2 * self._window_ms
        self._size = size
        self._one_slot = one_slot

    def call(self, client, keys, args):
        """One script call, loading the script when Redis lacks it. Raises RedisError."""
        return self._script(keys=keys, args=args, client=client)

    def append_all(self, client, messages, command, writing=None):
        """Append each of `messages` ((text, channels, deadline): "<sender> <number> <json>", its
        channels, refused past `deadline`, ms since the epoch, 0: never) to its channels and
        publish it with `command` (PUBLISH or SPUBLISH), in one round trip (on a cluster, one
        per master: cluster_appends.py); per message, its calls' results, a call's own error (a
        ResponseError) as its result. `writing()` is called once a connection is open to each
        server, just before anything is sent: until then, a failure proves nothing got in.

        By EVALSHA, after a SCRIPT LOAD at the head of the same pipeline (no round trip more):
        redis-py's pipeline asks SCRIPT EXISTS first, a round trip of its own before every batch;
        and reloading the script after a NOSCRIPT answer and sending the batch again could lose
        a message: another process may load it between two calls of the batch to one channel,
        and the second's mark then makes the first's resend a no-op. Raises RedisError when Redis
        cannot be reached."""
        if self._one_slot:
            return cluster_appends.append_all(self, client, messages, command, writing)
        redis_client.connected(client)
        if writing is not None:
            writing()
        pipe = self.pipeline(client)
        counts = []
        for text, channels, deadline in messages:
            calls = self.calls(text, channels, command, deadline)
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            counts.append(len(calls))
        flat = iter(self.execute(pipe))
        return [[next(flat) for _ in range(count)] for count in counts]

    @staticmethod
    def pipeline(server):
        """A pipeline on one Redis server whose first command loads the append script."""
        pipe = server.pipeline(transaction=False)
        pipe.script_load(_APPEND)
        return pipe

    @staticmethod
    def execute(pipe):
        """The results of a pipeline() after its script load: a call's own error as its result."""
        return pipe.execute(raise_on_error=False)[1:]

    def calls(self, text, channels, command, deadline):
        """(keys, args) of each script call of one message: one, or one per channel on a
        cluster."""
        sender = text[:text.index(" ")]
        groups = [[c] for c in channels] if self._one_slot else [channels]
        return [([key for c in group for key in (redis_keys.history(c), redis_keys.sent_mark(c, sender),
                                                 redis_keys.sent_refused(c, sender))],
                 [self._window_ms, self._size, self._expire_ms, command, text, deadline,
                  *(redis_keys.queue_channel(c) for c in group)])
                for group in groups]


def newest(client, channels):
    """{channel: id of its newest entry, START when it has none}, in one round trip. Raises
    RedisError."""
    pipe = client.pipeline(transaction=False)
    for channel in channels:
        pipe.xrevrange(redis_keys.history(channel), "+", "-", count=1)
    found = {}
    for channel, last in zip(channels, pipe.execute()):
        entry_id = last[0][0] if last else START
        found[channel] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return found


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


class RedisHistory:
    """The channels' streams, read. Raises RedisError."""

    def __init__(self, client):
        self._redis = client

    def read(self, positions, budget, check=True):
        """{channel: [(id, text)]}: each channel's entries after its position, in order.
        Raises NotHeld when `check` and a stream was trimmed past a position, OverBudget."""
        found = {channel: [] for channel in positions}
        # the first page includes the position itself, or the entry after it names it: either
        # tells that nothing after it was trimmed
        pending = {c: (p if p != START else "-") for c, p in positions.items()}
        first = True
        while pending:
            pipe = self._redis.pipeline(transaction=False)
            order = list(pending)
            count = max(2, min(PAGE, budget.entries_left + 2))
            for channel in order:
                pipe.xrange(redis_keys.history(channel), pending[channel], "+", count=count)
            pages = pipe.execute()
            pending = {}
            for channel, page in zip(order, pages):
                full = len(page) == count
                if first and page:
                    head_id, head = page[0]
                    if _text(head_id) == positions[channel]:
                        page = page[1:]
                    elif check and _text(_field(head, "p") or START) != positions[channel]:
                        raise NotHeld(channel)
                entries = [(_text(i), _text(_field(fields, "m") or "")) for i, fields in page]
                budget.take(len(entries), sum(len(t) for _, t in entries))
                found[channel].extend(entries)
                if full and entries:
                    pending[channel] = f"({entries[-1][0]}"
            first = False
        return found


def _field(fields, name):
    value = fields.get(name)
    return fields.get(name.encode()) if value is None else value


class _Channel:
    __slots__ = ("entries", "last", "floor", "trimmed")

    def __init__(self):
        self.entries = deque()  # (number, origin, text, room, skip), oldest first
        self.last = 0           # number of its newest entry
        self.floor = 0          # number of the last entry it lost
        self.trimmed = 0        # entries it lost to `size` whose places in the order remain


# what an entry takes beside its text: its tuple, its number and their slots (sys.getsizeof,
# CPython 3.11); counted so that many small entries are bounded like few large
ENTRY_OVERHEAD = 200
# stands for this process as the sender of its entries, in the texts read() gives
LOCAL = "local"
# the `room` of an entry whose text is already the message queue's, from append()
_QUEUED = object()


class MemoryHistory:
    """The channels' histories in this process, for a deployment without Redis: the entries of
    the last `seconds`, at most `size` per channel, and at most `max_bytes` (texts and
    ENTRY_OVERHEAD each) for all channels together, the oldest of any channel dropped first:
    however many channels a client sends to, the process holds no more than that. A channel
    without an entry for two windows is forgotten, as a Redis stream expires.

    Made for the cost of an emit, which adds an entry here: an entry is one tuple around the
    packet text its sockets were sent (add()), so an emit is encoded once; ids are one number
    for all channels of the process, `<start>-<number>` (the ms it started: ids of another
    run never match), so an id costs no clock and a restore's merge of several channels is by
    number; the order of all entries keeps a reference to each entry's channel, not an object
    per entry; and the time is looked at once every CHECK_EVERY entries, not per entry. read()
    gives the message queue's texts, as RedisHistory does."""

    # entries between two looks at the clock and the bound (each look is a loop over the
    # oldest entries: once per entry, it was a third of an append's cost)
    CHECK_EVERY = 64
    SWEEP_EVERY = 1000
    # past the bound, entries are dropped until this share of it is free again, so that the next
    # entries do not each drop one
    SLACK = 1 / 64

    def __init__(self, seconds, size, max_bytes=None):
        self._seconds = seconds
        self._size = size
        self._max_bytes = float("inf") if max_bytes is None else max_bytes
        self._low_bytes = self._max_bytes - self._max_bytes * self.SLACK
        self._channels = {}
        self._start = int(time.time() * 1000)
        self._prefix = f"{self._start}-"
        self.number = 0  # of the last entry of any channel
        self._checks = self.CHECK_EVERY  # entries until the next look
        self._sweeps = self.SWEEP_EVERY // self.CHECK_EVERY  # looks until the next sweep
        # (number, monotonic time) at each look, for one window and for two: the entries up to
        # a number were all added by then. _expired: entries up to it are past the window;
        # _idle: a channel whose last entry is up to it has had none for two windows
        self._marks = deque()
        self._marks_idle = deque()
        self._expired = self._idle = 0
        # the channel of every entry held, in the order added across channels (references, no
        # object per entry); an entry its channel dropped by `size` keeps its place here until
        # it comes to the front, or until those outnumber the entries held (then this is
        # rebuilt)
        self._order = deque()
        self._trimmed = 0
        self.bytes = 0  # what the entries held take, counted as above

    def reserve(self):
        """The id of the next entry, which add() then adds (nothing is added in between: an
        emit encodes its packet, with this id in its offset, before adding it)."""
        self.number += 1
        return self._prefix + str(self.number)

    def add(self, channel, text, room, skip, origin=None):
        """Add the entry reserved last: `text`, the packet its sockets are sent, of an emit to
        `room` skipping `skip`; `origin`: the number of its emit's first entry when it is a
        copy on one more channel of an emit to several."""
        history = self._channels.get(channel)
        if history is None:
            history = self._channels[channel] = _Channel()
        number = history.last = self.number
        entries = history.entries
        entries.append((number, origin or number, text, room, skip))
        self._order.append(history)
        self.bytes += len(text) + ENTRY_OVERHEAD
        if len(entries) > self._size:
            self._trim(history)
        self._checks -= 1
        if not self._checks or self.bytes > self._max_bytes:
            self._look()

    def append(self, channel, text):
        """Add the message queue's `<sender> <number> <json>` text to a channel's history (a
        cut; the tests); returns its id."""
        entry_id = self.reserve()
        self.add(channel, text, _QUEUED, None)
        return entry_id

    def _look(self):
        """Drop what is past the window or the bound; now and then forget idle channels."""
        if not self._checks:
            self._checks = self.CHECK_EVERY
            now = time.monotonic()
            self._expired = _passed(self._marks, self.number, now, now - self._seconds, self._expired)
            self._idle = _passed(self._marks_idle, self.number, now, now - 2 * self._seconds, self._idle)
            self._sweeps -= 1
            if not self._sweeps:
                self._sweeps = self.SWEEP_EVERY // self.CHECK_EVERY
                self._sweep()
        self._bound()

    def _trim(self, history):
        """Drop a channel's oldest entry (its place in _order stays, counted in _trimmed)."""
        entry = history.entries.popleft()
        history.floor = entry[0]
        history.trimmed += 1
        self.bytes -= len(entry[2]) + ENTRY_OVERHEAD
        self._trimmed += 1

    def _bound(self):
        """Drop the oldest entries of all channels, in the order added, while they are past the
        window or all of them take more than the bound (then down to SLACK below it)."""
        order = self._order
        limit = self._low_bytes if self.bytes > self._max_bytes else self._max_bytes
        expired = self._expired
        while order:
            history = order[0]
            if history.trimmed:  # the place of an entry it dropped already
                history.trimmed -= 1
                self._trimmed -= 1
            else:  # its channel's oldest entry
                entry = history.entries[0]
                if entry[0] > expired and self.bytes <= limit:
                    break
                history.entries.popleft()
                history.floor = entry[0]
                self.bytes -= len(entry[2]) + ENTRY_OVERHEAD
            order.popleft()
        if self._trimmed > len(order) // 2 + 1000:
            self._order = compact(order)
            self._trimmed = 0

    def _sweep(self):
        idle = [c for c, h in self._channels.items() if not h.entries and h.last <= self._idle]
        for channel in idle:
            del self._channels[channel]  # its places in _order, if any, go as they come to the front

    def issued(self, entry_id):
        """Whether `entry_id` (a well-formed id) is one this history gave."""
        start, number = id_key(entry_id)
        return start == self._start and number <= self.number

    def newest(self, channels):
        found = {}
        for channel in channels:
            history = self._channels.get(channel)
            found[channel] = self._prefix + str(history.last) if history else START
        return found

    def read(self, positions, budget, check=True):
        found = {}
        for channel, position in positions.items():
            history = self._channels.get(channel)
            after = self._number_of(position)
            if history is None:
                found[channel] = []
                continue
            if check and history.floor > after:
                raise NotHeld(channel)
            entries = [(self._prefix + str(entry[0]), _queued_text(entry))
                       for entry in history.entries if entry[0] > after]
            budget.take(len(entries), sum(len(t) for _, t in entries))
            found[channel] = entries
        return found

    def _number_of(self, position):
        """The number of the entry an id names: 0 before anything of this run, ids of a later
        one past everything."""
        start, number = id_key(position)
        if start == self._start:
            return number
        return 0 if start < self._start else float("inf")


def compact(order):
    """An order of entries (a deque of references to their channels, oldest first) without
    the places of the entries their channels dropped already: each channel's first `trimmed`
    places are theirs (a channel only drops its oldest)."""
    passed = {}
    kept = deque()
    for channel in order:
        seen = passed.get(channel, 0)
        if seen < channel.trimmed:
            passed[channel] = seen + 1
        else:
            kept.append(channel)
    for channel in passed:
        channel.trimmed = 0
    return kept


def _passed(marks, number, now, horizon, passed):
    """Mark that entries up to `number` were added by `now`; returns the number up to which
    they were all added before `horizon` (`passed` when no mark is that old)."""
    marks.append((number, now))
    while marks[0][1] < horizon:
        passed = marks.popleft()[0]
    return passed


def _queued_text(entry):
    """An entry as the message queue's `<sender> <number> <json>` text, as RedisHistory's read
    gives it: a packet entry's text is `2[event, *data, offset]` (an EVENT on "/")."""
    number, origin, text, room, skip = entry
    if room is _QUEUED:
        return text
    args = jsoncodec.loads(text[1:])
    message = {"method": "emit", "event": args[0], "namespace": "/", "room": room,
               "skip_sid": skip, "data": args[1:-1]}
    return f"{LOCAL} {origin} {jsoncodec.dumps(message)}"
