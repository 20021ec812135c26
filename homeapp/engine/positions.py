"""Where a socket is in each of its channels, from the one offset its client holds.

An event reaches a socket with the offset of the copy it came by, `<id>@<channel>` (the id of
the entry in that channel's history). The client only keeps the last one it got, but a socket is
in several channels. Without Redis, the ids of all channels are one sequence, given in the order
the copies are sent, so that offset places the socket in every channel (NumberedPositions). In
Redis each channel numbers its own, which are not comparable; so (Positions) this process
numbers the copies it delivers (one sequence for all channels) and keeps, per channel, the
recent ones (`(sequence, id)`), and per socket the sequence at which it joined each channel.
When a socket drops, its session keeps per channel (docs/recovery.md):

- `base`: the channel's id when it joined (everything later was delivered to it after);
- `start`: the later of `base` and the last id forgotten from the recent copies: those were
  delivered long enough before the drop (more than a ping interval and timeout and a margin)
  to have been received; None when copies had to be forgotten sooner (a busy channel);
- `tail`: the recent copies delivered after it joined, `[sequence, id]`; for a socket that
  recovered, first those its recovery sent it, numbered in the order sent.

At the reconnect, the offset's copy is looked up in its channel's tail: the socket received
every copy delivered before it, in every channel, so each channel's position is its last tail
entry at or before that sequence, else its start. An offset older than its channel's tail
(between base and start) means everything in the tails came after it: the starts. No offset,
or the offset a recovered socket presented (`anchor`: it has none of what its recovery
sent), means the bases. Anything else
(not found, malformed, another channel): no position, a fresh session.
"""
import re
import time
from collections import deque

from homeapp.engine.channels import CHANNEL_PREFIXES
from homeapp.engine.history import compact, id_key, later
from homeapp.store.redis_keys import EVERYONE

# longest offset a client may present: an id of two 20-digit numbers and a channel's name
MAX_OFFSET = 200
_OFFSET = re.compile(r"(\d{1,20}-\d{1,20})@(\S+)")


def offset_of(entry_id, channel):
    return f"{entry_id}@{channel}"


def parse_offset(offset):
    """(id, channel) of an offset this server could have sent, else None."""
    if not isinstance(offset, str) or len(offset) > MAX_OFFSET:
        return None
    match = _OFFSET.fullmatch(offset)
    if match is None:
        return None
    entry_id, channel = match[1], match[2]
    if channel != EVERYONE and not channel.startswith(CHANNEL_PREFIXES):
        return None
    try:
        id_key(entry_id)
    except ValueError:
        return None
    return entry_id, channel


class _Recent:
    """A channel's recently delivered copies."""

    __slots__ = ("copies", "floor", "floor_seq", "unsure_until", "trimmed")

    def __init__(self):
        self.copies = deque()   # (sequence, id, monotonic time), oldest first
        self.floor = None       # id of the last copy forgotten
        self.floor_seq = 0
        self.unsure_until = 0.0  # copies forgotten for room before they could be taken as received
        self.trimmed = 0        # copies forgotten out of the order of all (their places remain)


class Positions:
    """Where a socket is in each channel, for histories whose ids are numbered per channel (in
    Redis): this process's delivered copies and its sockets' joins. `base(channel)`: the id of the
    last entry of a channel handled here (what a socket joining now comes after), or None.
    The recent copies of all channels together are at most `max_copies`: past it the oldest of
    any channel are forgotten first, as those of a channel past `size` are."""

    # copies between two looks at the window, and the share of the bound freed when past it, as
    # in homeapp.engine.history.MemoryHistory: a look per copy was most of a delivery's cost here
    CHECK_EVERY = 64
    SLACK = 1 / 64

    def __init__(self, base, keep_seconds, size, max_copies=None):
        self._base = base
        self._keep = keep_seconds
        self._size = size
        self._max = float("inf") if max_copies is None else max_copies
        self._low = self._max - self._max * self.SLACK
        self._checks = self.CHECK_EVERY
        self.sequence = 0
        self.held = 0       # copies kept, all channels
        self._recent = {}   # channel -> _Recent
        # the channel of every copy kept, in delivery order (references, as in MemoryHistory's
        # order of entries), and of some already forgotten (their channel's `trimmed`)
        self._order = deque()
        self._trimmed = 0
        self._joins = {}    # sid -> {channel: (sequence, base id)}
        self._first = {}    # sid -> [(sequence, channel, id)] a recovery sent it

    def delivered(self, channel, entry_id):
        """A copy was delivered to this process's sockets of `channel`."""
        self.sequence = sequence = self.sequence + 1
        recent = self._recent.get(channel)
        if recent is None:
            recent = self._recent[channel] = _Recent()
        now = time.monotonic()
        copies = recent.copies
        copies.append((sequence, entry_id, now))
        self._order.append(recent)
        self.held += 1
        if len(copies) > self._size:
            self._forget(recent, now, True)
        self._checks -= 1
        if not self._checks or self.held > self._max:
            self._checks = self.CHECK_EVERY
            self._bound(now)

    def _bound(self, now):
        """Forget the oldest copies of all channels while they are past the window or the bound
        (then down to SLACK below it)."""
        horizon = now - self._keep
        limit = self._low if self.held > self._max else self._max
        order = self._order
        while order:
            oldest = order[0]
            if oldest.trimmed:  # the place of a copy it forgot already
                oldest.trimmed -= 1
                self._trimmed -= 1
            else:  # its channel's oldest copy
                if oldest.copies[0][2] >= horizon and self.held <= limit:
                    break
                self._forget(oldest, now, False)
            order.popleft()
        if self._trimmed > len(order) // 2 + 1000:
            self._order = compact(order)
            self._trimmed = 0

    def _forget(self, recent, now, out_of_order):
        """Forget a channel's oldest copy; one delivered within the window may not have reached
        its sockets yet, so a drop until then cannot be placed by the copies before it.
        `out_of_order`: not at the front of the order of all (its place there remains)."""
        seq, forgotten, at = recent.copies.popleft()
        recent.floor, recent.floor_seq = forgotten, seq
        if at + self._keep > now:
            recent.unsure_until = max(recent.unsure_until, at + self._keep)
        self.held -= 1
        if out_of_order:
            recent.trimmed += 1
            self._trimmed += 1

    def _prune(self, recent, now):
        horizon = now - self._keep
        copies = recent.copies
        while copies and copies[0][2] < horizon:
            self._forget(recent, now, True)

    def joined(self, sid, channel):
        self._joins.setdefault(sid, {})[channel] = (self.sequence, self._base(channel))

    def left(self, sid, channel):
        if _leave(self._joins, sid, channel):
            self._first.pop(sid, None)

    def unused(self, channel):
        """No socket of this process is in `channel` any more."""
        recent = self._recent.pop(channel, None)
        if recent is not None:
            self.held -= len(recent.copies)
            recent.trimmed += len(recent.copies)
            self._trimmed += len(recent.copies)
            recent.copies.clear()

    def restored(self, sid, bases, sent):
        """A recovered socket, whose client stood at `bases` ({channel: id}), has been sent the
        copies `sent` ([(channel, id)], in order): they are its first copies, numbered now."""
        joins = self._joins.setdefault(sid, {})
        first = []
        for channel, entry_id in sent:
            self.sequence += 1
            first.append((self.sequence, channel, entry_id))
        for channel, base in bases.items():
            joins[channel] = (self.sequence, base)
        if first:
            self._first[sid] = first

    def snapshot(self, sid):
        """{channel: [base, start, tail]} of a socket, for its session."""
        now = time.monotonic()
        kept = {}
        first = self._first.get(sid, ())
        for channel, (joined_at, base) in self._joins.get(sid, {}).items():
            recent = self._recent.get(channel)
            start = base
            tail = [[seq, entry_id] for seq, name, entry_id in first if name == channel]
            if recent is not None:
                self._prune(recent, now)
                tail += [[seq, entry_id] for seq, entry_id, _ in recent.copies if seq > joined_at]
                if recent.floor_seq > joined_at:
                    start = None if recent.unsure_until > now else later(base, recent.floor)
            if base is None:
                start = None
            kept[channel] = [base, start, tail]
        return kept

    @staticmethod
    def locate(channels, anchor, offset):
        return locate(channels, anchor, offset)


class NumberedPositions:
    """Where a socket is in each channel, for a history whose ids number the entries of all
    channels in one sequence, in the order their copies are delivered (MemoryHistory: one
    process, no Redis). A socket is sent its copies in that order, a restore's included
    (homeapp.engine.handshake), so the last one its client got places it in every channel by
    itself: at the later of that id and where it joined. Nothing is kept per copy: Positions'
    recent copies were a fifth of what recovery added to a message, and a third of its memory.
    An offset is taken when it names one of the session's channels and an id this run gave;
    one that is not the client's own only moves it within what its channels were sent since it
    joined them."""

    def __init__(self, base, history):
        self._base = base
        self._history = history
        self._joins = {}  # sid -> {channel: base id when it joined}

    def delivered(self, channel, entry_id):
        """Nothing to keep: a copy's id is its place."""

    def joined(self, sid, channel):
        self._joins.setdefault(sid, {})[channel] = self._base(channel)

    def left(self, sid, channel):
        _leave(self._joins, sid, channel)

    def unused(self, channel):
        """Nothing is kept per channel."""

    def restored(self, sid, bases, sent):
        """A recovered socket stood at `bases` ({channel: id}); what it was sent (`sent`) came
        after them, in order of their ids."""
        self._joins.setdefault(sid, {}).update(bases)

    def snapshot(self, sid):
        """{channel: [base, start, tail]} of a socket, for its session, as Positions gives it:
        its start is its base, and its tail empty."""
        return {channel: [base, base, []] for channel, base in self._joins.get(sid, {}).items()}

    def locate(self, channels, anchor, offset):
        """{channel: position} for a session's `channels` and the offset its client presents,
        or None when that offset places it nowhere."""
        bases = {name: kept[0] for name, kept in channels.items()}
        if offset is None or offset == anchor:
            return None if None in bases.values() else bases
        parsed = parse_offset(offset)
        if parsed is None or parsed[1] not in channels or not self._history.issued(parsed[0]):
            return None
        return {name: later(base, parsed[0]) for name, base in bases.items()}


def _leave(joins, sid, channel):
    """Take a socket's join of `channel` out of `joins` ({sid: {channel: ...}}); returns
    whether it is in no channel any more."""
    mine = joins.get(sid)
    if mine is None:
        return False
    mine.pop(channel, None)
    if mine:
        return False
    del joins[sid]
    return True


def locate(channels, anchor, offset):
    """{channel: position} for a session's `channels` ({channel: [base, start, tail]}) and the
    offset its client presents, or None when that offset places it nowhere."""
    if offset is None or offset == anchor:
        return _all(channels, 0)
    parsed = parse_offset(offset)
    if parsed is None or parsed[1] not in channels:
        return None
    entry_id, channel = parsed
    base, start, tail = channels[channel]
    point = next((seq for seq, i in tail if i == entry_id), None)
    if point is not None:
        positions = {}
        for name, (_, first, copies) in channels.items():
            position = first
            for seq, i in copies:
                if seq <= point:
                    position = later(position, i)
            if position is None:
                return None
            positions[name] = position
        return positions
    if base is None or start is None or not id_key(base) < id_key(entry_id) <= id_key(start):
        return None
    return _all(channels, 1)


def _all(channels, field):
    positions = {name: kept[field] for name, kept in channels.items()}
    return None if None in positions.values() else positions
