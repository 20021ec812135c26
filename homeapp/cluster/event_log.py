"""The message queue's event log: one Redis stream (redis_keys.EVENT_LOG) holding every message
between processes, in order. An entry's id is the message's offset; the same script that
appends it publishes it on its channels, each copy prefixed with the offset, so that a listener
knows where it is and can read what it missed from the log (docs/recovery.md)."""
from homeapp.cluster import redis_keys
from homeapp.cluster.redis_client import is_cluster, slot_master
from homeapp.recovery.log import offset_key

# Appends a message to the log, trims what is older than the window or past the largest length,
# and publishes it, prefixed with its offset, on each of its channels.
# KEYS: the log, its sender's mark (the number of its last message appended), the numbers of its
# messages refused. ARGV: window (ms), largest length, PUBLISH or SPUBLISH, message ("<sender>
# <number> <json>"), deadline (ms since the epoch, 0: none), channels...
# Returns the offset; 1 when the message, or a later one of its sender, was appended before
# (another copy: a retry, or one written before Redis stalled); nil when it is refused: past its
# deadline, its event was answered UNAVAILABLE (homeapp.cluster.durability), and every later
# copy is refused too.
_APPEND = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local number = tonumber(string.match(ARGV[4], '^%S+ (%d+) '))
if number <= tonumber(redis.call('GET', KEYS[2]) or '0') then
  if redis.call('SISMEMBER', KEYS[3], number) == 1 then return false end
  return 1
end
local deadline = tonumber(ARGV[5])
if deadline > 0 and now_ms > deadline then
  redis.call('SADD', KEYS[3], number)
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
  return false
end
local channels = {}
for i = 6, #ARGV do channels[#channels + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', now_ms - tonumber(ARGV[1]), '*',
                      'c', table.concat(channels, ' '), 'm', ARGV[4])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
redis.call('SET', KEYS[2], number, 'PX', ARGV[1])
local copy = id .. ' ' .. ARGV[4]
for i = 6, #ARGV do redis.call(ARGV[3], ARGV[i], copy) end
return id
"""
# entries read per round trip
PAGE = 1000


class Appender:
    """Appends messages to the log and publishes them, on a pipeline of `client`."""

    def __init__(self, client, window_seconds, max_entries):
        self._script = client.register_script(_APPEND)
        self._window_ms = int(window_seconds * 1000)
        self._max_entries = max_entries

    def append(self, pipe, text, channels, command, deadline=0):
        """Queue on `pipe` the append of `text` ("<sender> <number> <json>") and its publication on
        `channels` with `command` (PUBLISH or SPUBLISH); refused past `deadline` (ms since the
        epoch; 0: never)."""
        sender = text[:text.index(" ")]
        return self._script(keys=[redis_keys.EVENT_LOG, redis_keys.sent_mark(sender),
                                  redis_keys.sent_refused(sender)],
                            args=[self._window_ms, self._max_entries, command, text, deadline,
                                  *channels],
                            client=pipe)


class Position:
    """Where one process's listener is in the log: the last entry it handled."""

    def __init__(self):
        self.offset = None  # None until the listener first connected
        self._key = None    # the offset, comparable; None: take any entry
        self._run_id = None  # of the Redis server the listener last connected to

    def handled(self, offset):
        """Record that the entry at `offset` is being handled; False when it was already (another
        copy of one published on several channels, or read from the log and heard again).
        Raises ValueError for what is not an offset."""
        key = offset_key(offset)
        if self._key is not None and key <= self._key:
            return False
        self._key, self.offset = key, offset
        return True

    def resume_point(self, client):
        """The offset after which to read the log once subscribed: the last handled; the log's
        start on another Redis server (a restart, a failover: its entries are not those
        handled, and the senders' numbers skip what was); the log's end on the first connection.
        Taken before subscribing, so that nothing published meanwhile is taken for handled.
        Raises RedisError."""
        if is_cluster(client):  # the server of the log's slot
            run_id = client.info("server", target_nodes=slot_master(client, redis_keys.EVENT_LOG))["run_id"]
        else:
            run_id = client.info("server").get("run_id")
        changed = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        if self.offset is None:  # from the log's end on: the listener is there
            self.offset = newest(client)
            self._key = offset_key(self.offset)
            return self.offset
        if changed:
            self._key = None
            return "0-0"
        return self.offset


def newest(client):
    """The offset of the log's newest entry, "0-0" while it has none. Raises RedisError."""
    last = client.xrevrange(redis_keys.EVENT_LOG, "+", "-", count=1)
    return last[0][0].decode() if last else "0-0"


def entries(client, start, channels):
    """The log's entries after offset `start` on any of `channels`, as the pub/sub messages that
    carried them. Raises RedisError."""
    start = f"({start}"
    while True:
        page = client.xrange(redis_keys.EVENT_LOG, start, "+", count=PAGE)
        for entry_id, fields in page:
            if channels.intersection(fields.get(b"c", b"").decode().split(" ")):
                yield {"type": "message", "data": entry_id + b" " + fields.get(b"m", b"")}
        if len(page) < PAGE:
            return
        start = f"({page[-1][0].decode()}"
