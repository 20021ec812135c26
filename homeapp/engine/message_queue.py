"""The Socket.IO message queue between processes: python-socketio's Redis manager, with a channel
per room, a history per channel, and outage-aware.

python-socketio's RedisManager publishes every emit on one channel that every process
listens to, so each process decodes every emit of every other one, even when none of its
sockets is a recipient: the cost per process grows with the number of processes. Here
(docs/scale-out.md, docs/recovery.md):

- each channel (the app's rooms user:{id} and room:{id}) has its own pub/sub channel
  (redis_keys.queue_channel), and a process listens on the channels where it has sockets:
  subscribed when its first socket joins, unsubscribed when its last one leaves or
  disconnects. Everyone's channel ("*"), which every process listens to, carries emits to
  everyone and the manager's messages about one socket (disconnect it, make it join or leave a
  room, an acknowledgement), which may be on any process;
- every message is appended to its channel's history (homeapp.engine.history: a stream per
  channel, bounded by the window and HOMEAPP_HISTORY_SIZE) and published on its pub/sub
  channel prefixed with the id it got there, in one script whose keys share a hash slot. An emit
  to several channels is appended to each, each copy with its own id; a socket in several of
  them gets it once, by the copy of the first of them it is in (homeapp.engine.copies);
- each copy also starts with its sender's id and number: a process's own messages are skipped
  on that prefix before any JSON is decoded, and a copy that landed twice in one channel (a
  publish retried after a failure) is skipped by its number there;
- subscription changes do not wait for Redis: they are queued to a task that writes them on
  the listener's connection (the listener itself is busy reading). A channel new to the process
  first has its newest id read: where its sockets start;
- sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7), with which Redis Cluster spreads channels
  over its shards, is used when the server has it; plain PUBLISH/SUBSCRIBE otherwise.

The histories are what make delivery survive Redis:

- a listener remembers, per channel, the last id it handled; when it connects again (Redis
  restarted, stalled, failed over, or only this process's connection broke) it subscribes
  first, then reads each channel's history from there, then goes on with pub/sub, skipping
  what it already handled: nothing lost, nothing twice, in order within each channel;
- publishing never drops while Redis is down: messages wait in order (homeapp.engine.outbox),
  retried until Redis takes them, within the window;
- with recovery on (homeapp.engine.recovery), an emit to a channel reaches this process's own sockets
  through the listener too, with its offset, so that every socket gets its events in their
  channels' order; while Redis is unreachable they get it at once, without one.

Failures to reach Redis are reported to RedisHealth, which logs each outage once; Redis
refusing one message (a script error) is that message's failure, not an outage.

It is built on homeapp.seams.socketio.RedisQueue, which passes python-socketio's documented
extension points for a custom queue (PubSubManager's `_publish` and `_listen`) on to publish()
and listen(), and its undocumented ones (initialize, set_server, _handle_emit, the room
bookkeeping) to the hooks named there.
"""
import bisect
import itertools
import logging
import time

import redis

from homeapp.engine import cluster_appends, history
from homeapp.engine.channels import NAMESPACE, channel_of_room, has_channel, logged, rooms_of
from homeapp.engine.copies import channels_of, copy_for
from homeapp.engine.outbox import MAX_OUTBOX, Outbox, Queued
from homeapp.engine.recovery import MIN_LOG_SECONDS
from homeapp.seams.socketio import RedisQueue
from homeapp.store import redis_client, redis_keys
from homeapp.store.redis_keys import EVERYONE, channel_of_queue

log = logging.getLogger("homeapp.engine.message_queue")

LISTEN_RETRY_SECONDS = 1.0
# senders whose last number is remembered per channel; one per process start, so old ones go
MAX_SENDERS = 64
# channels whose history is read per round trip when the listener catches up
CATCH_UP_BATCH = 100
# what the listener reads: messages of both kinds of pub/sub
_PUBLISHED = ("message", "smessage")
# what tells the listener a subscription has begun or ended
_CONFIRMATIONS = ("subscribe", "ssubscribe", "unsubscribe", "sunsubscribe")
# the manager's messages that concern a room, published on its channel; all others on everyone's
_ROOM_METHODS = ("emit", "close_room", "cut")


def has_sharded_pubsub(client):
    """Whether the server has SPUBLISH and SSUBSCRIBE (Redis 7 and later). Raises RedisError."""
    try:
        return all(info is not None
                   for info in client.execute_command("COMMAND INFO", "SPUBLISH", "SSUBSCRIBE"))
    except redis.ResponseError:  # no COMMAND INFO: far older than 7
        return False


class _Heard:
    """What the listener handled of one channel: the last id, and each sender's last number."""

    __slots__ = ("key", "id", "senders")

    def __init__(self, entry_id):
        self.id = entry_id
        self.key = None if entry_id is None else history.id_key(entry_id)
        self.senders = {}

    def first_hearing(self, key, entry_id, sender, number):
        """Whether a copy is new here: a later id, and a higher number than its sender's last
        (a publish retried after a failure lands twice, with two ids)."""
        if self.key is not None and key <= self.key:
            return False
        self.key, self.id = key, entry_id
        if number <= self.senders.get(sender, 0):
            return False
        self.senders.pop(sender, None)
        self.senders[sender] = number
        if len(self.senders) > MAX_SENDERS:
            del self.senders[next(iter(self.senders))]
        return True


class QueueManager(RedisQueue):
    def __init__(self, url, health, timeout, log_seconds=MIN_LOG_SECONDS, history_size=10000,
                 max_connections=None):
        """`log_seconds` and `history_size`: how long, and how many per channel, the histories
        keep entries; `max_connections`: its Redis client's (redis_client.connect)."""
        super().__init__(url, channel=redis_keys.QUEUE)
        self._health = health
        self._timeout = timeout
        self._max_connections = max_connections
        self._log_seconds = log_seconds
        self._history_size = history_size
        self.recovery = None     # homeapp.engine.recovery's Recovery, set by create_app when it is on
        self._client = None      # for publishing and probing, with timeouts
        self._appender = None    # history.Appender on _client
        self._sharded = None     # SPUBLISH/SSUBSCRIBE, once a probe found them
        self._outbox = None      # the Outbox, once the server is known
        self._numbers = itertools.count(1)  # this process's messages, in the order published
        self._own_heard = 0      # highest number of this process's messages the listener heard
        self._given = {}         # numbers of its logged emits given to its sockets unlogged -> when
        self._given_upto = 0     # and the highest of them
        self._heard = {}         # channel -> _Heard
        self._run_id = None      # of the Redis server the listener last connected to
        self._listener = None    # the listener's PubSub while it is connected
        self._subscribed = set()  # channels of the listener's connection
        self._active = set()     # and those whose subscription Redis has confirmed
        self._changes = {}       # channel -> subscribe (True) or unsubscribe, not yet written
        self._changed = None     # an Event, set when _changes has something
        self._closed = False

    # --- which channels ------------------------------------------------------------------

    def _channels_of(self, message):
        """Where a message is published: its rooms' channels, none for this process's own
        sockets, and everyone's for emits to everyone and messages about one socket."""
        room = message.get("room")
        if room is None or message["method"] not in _ROOM_METHODS \
                or message["namespace"] not in (None, NAMESPACE):
            return [EVERYONE]
        # a socket's own room exists on its process only: an emit to it is already delivered
        sids = self.rooms.get(message["namespace"] or NAMESPACE, {}).get(None, ())
        return channels_of([r for r in rooms_of(room) if r not in sids])

    def _wanted(self):
        """Every channel this process must listen to now: everyone's and its rooms'."""
        return [EVERYONE, *(room for room in self.rooms.get(NAMESPACE, {}) if has_channel(room))]

    def last_id(self, channel):
        """The id of the last entry of `channel` handled here: a socket joining it now gets
        what comes after. None when not known (Redis was unreachable)."""
        heard = self._heard.get(channel)
        return heard.id if heard is not None else None

    def joining(self, namespace, room, first):
        channel = channel_of_room(namespace, room)
        if first and channel is not None and channel not in self._heard:
            self._start(channel)

    def joined(self, sid, namespace, room, first):
        channel = channel_of_room(namespace, room)
        if channel is not None and self.recovery is not None:
            self.recovery.positions.joined(sid, channel)
        if first and channel is not None and channel != EVERYONE:
            self._follow(channel, True)

    def left(self, sid, namespace, room, emptied):
        channel = channel_of_room(namespace, room)
        if channel is not None and self.recovery is not None:
            self.recovery.positions.left(sid, channel)
        if emptied and channel is not None and channel != EVERYONE:
            self._follow(channel, False)

    def _start(self, channel):
        """Where this process starts in a channel new to it: its newest entry, read before
        subscribing, so that what is published after is either heard or read when catching up."""
        entry_id = None
        if not self._health.down:
            try:
                entry_id = history.newest(self._redis(), [channel])[channel]
            except redis.RedisError as exc:
                self._health.lost(exc)
        if channel not in self._heard:
            self._heard[channel] = _Heard(entry_id)

    def _follow(self, channel, subscribe):
        """Queue a subscription change for the listener's connection."""
        self._changes[channel] = subscribe
        if self._changed is None:
            return  # not listening yet: the listener subscribes to what is wanted when it starts
        self._changed.set()
        if subscribe and self._listener is not None:
            # let the subscriber write the SUBSCRIBE now, before this socket hears that it
            # joined (its acknowledgement) and someone can emit to the room: nothing waits
            # for Redis, this only lets the task run first
            self.server.sleep(0)

    # --- this process's own sockets --------------------------------------------------------

    def delivering(self, message):
        """Deliver an emit to this process's sockets. With recovery on, a logged emit goes with
        its offset (`message["copy"]`, from the listener); this process's own wait for theirs.
        Otherwise python-socketio delivers it."""
        recovery = self.recovery
        if recovery is None or not logged(message):
            return False
        copy = message.pop("copy", None)
        if copy is not None:
            recovery.deliver(self, message, *copy)
        # else this process's own emit: publish() queues it, and the listener delivers it
        return True

    # --- publishing ----------------------------------------------------------------------

    def server_set(self, server):
        self._outbox = Outbox(server, self._send, self._unsent, self._log_seconds)

    def _redis(self):
        if self._client is None:
            self._client = redis_client.connect(self.redis_url, self._timeout,
                                                max_connections=self._max_connections)
            self._appender = history.Appender(self._client, self._log_seconds, self._history_size,
                                              one_slot=redis_client.is_cluster(self._client))
        return self._client

    def _sharded_pubsub(self):
        """Raises RedisError."""
        if self._sharded is None:
            # a cluster is Redis 7 or later (docs/scale-out.md): sharded pub/sub spreads channels over
            # its shards, and COMMAND INFO would need a node named
            client = self._redis()
            self._sharded = redis_client.is_cluster(client) or has_sharded_pubsub(client)
        return self._sharded

    def publish(self, data):
        channels = self._channels_of(data)
        if not channels:
            return
        number = next(self._numbers)
        # delivered by the listener once logged, unless it cannot be logged now
        is_logged = self.recovery is not None and data.get("host_id") == self.host_id \
            and logged(data)
        if self._outbox.full():  # Redis answers, but slower than emits come
            self._outbox.drop(1, f"a backlog of {MAX_OUTBOX} messages waiting for Redis")
            if is_logged:  # never published: its sockets get it now, after every earlier one
                self._unsent()
                self._given_upto = number
                self.recovery.deliver_unlogged(self, data)
            return
        # who sent it and its number, before the JSON: a process skips its own messages, and
        # other copies of one it handled, without decoding them
        text = f"{self.host_id} {number} {self.json.dumps(data)}"
        self._outbox.add(Queued(channels, text, number, is_logged))
        if is_logged and self._health.down:
            self._unsent()

    def publish_cut(self, user_id, channel):
        """Append to a channel's history that a user was taken out of it (homeapp.engine.recovery)."""
        self.publish({"method": "cut", "namespace": NAMESPACE, "room": channel, "user": user_id,
                       "host_id": self.host_id})

    def _unsent(self):
        """Redis cannot take the queued messages now: give this process's own sockets, in order,
        the logged emits among them that they have not had, without an offset. The listener
        skips them when it hears them later."""
        if self.recovery is None:
            return
        now = time.monotonic()
        self._given = {n: at for n, at in self._given.items() if at > now - self._log_seconds}
        items = self._outbox.items
        start = bisect.bisect_right(items, max(self._given_upto, self._own_heard),
                                    key=lambda item: item.number)
        for item in items[start:]:
            if item.logged:
                self._given[item.number] = now
                self.recovery.deliver_unlogged(self, self.json.loads(item.text.split(" ", 2)[2]))
        if items:
            self._given_upto = max(self._given_upto, items[-1].number)

    def flush(self, timeout):
        """Wait, at most timeout seconds, until what was emitted has been published.
        Returns True when nothing is left (at shutdown: the last presence changes)."""
        return self._outbox.flush(timeout)

    def _send(self, batch, writing):
        """Append and publish a batch in one round trip (on a cluster, one per master, at once:
        homeapp.engine.cluster_appends), calling `writing()` once connected, just before it goes.
        Returns False when Redis did not take it (unreachable, or no answer), else one result
        per message: None when Redis refused it (past its event's deadline, or an error of its
        own: then it is dropped, counted and logged)."""
        try:
            client = self._redis()
            command = "SPUBLISH" if self._sharded_pubsub() else "PUBLISH"
            calls = self._appender.append_all(
                client, [(item.text, item.channels, item.deadline) for item in batch], command,
                writing)
        except cluster_appends.MOVING as exc:  # still moving after the client's retries
            log.warning("a slot is moving between the cluster's masters (%s): a batch of "
                        "messages waits for it", exc)
            return False
        except redis.RedisError as exc:
            self._health.lost(exc)
            return False
        except Exception:  # the sender must outlive any one batch
            log.exception("could not publish %d messages", len(batch))
            return False
        failed = [result for item_calls in calls for result in item_calls
                  if isinstance(result, Exception)]
        unreachable = [e for e in failed if not isinstance(e, redis.ResponseError)]
        if unreachable:
            self._health.lost(unreachable[0])
            return False
        if failed:
            self._outbox.drop(len(failed), f"Redis refused them ({failed[0]})")
        return [None if any(result is None or isinstance(result, Exception) for result in item_calls)
                else True for item_calls in calls]

    # --- listening -----------------------------------------------------------------------

    def started(self):
        if not self.write_only:  # before the listener starts: it may set it at once
            self._changed = self.server.eio.create_event()
            self.server.start_background_task(self._follow_rooms)

    def _subscribe(self, pubsub, channels):
        names = [redis_keys.queue_channel(c) for c in channels]
        (pubsub.ssubscribe if self._sharded else pubsub.subscribe)(*names)
        self._subscribed.update(channels)

    def _unsubscribe(self, pubsub, channels):
        names = [redis_keys.queue_channel(c) for c in channels]
        (pubsub.sunsubscribe if self._sharded else pubsub.unsubscribe)(*names)
        self._subscribed.difference_update(channels)
        joined = self.rooms.get(NAMESPACE, {})
        for channel in channels:
            if channel in joined:
                continue  # a socket joined it again while it was written: subscribed again next
            self._heard.pop(channel, None)
            if self.recovery is not None:
                self.recovery.positions.unused(channel)

    def close(self):
        """Stop listening, for good. A process simply exits; this is for managers that do not."""
        self._closed = True
        if self._changed is not None:
            self._changed.set()
        listener = self._listener
        if listener is None:
            return
        try:
            connection = getattr(listener, "connection", None)  # a cluster's subscriber has several
            if connection is not None:
                connection.disconnect()  # the listener's read fails at once, and it closes the rest
            else:
                listener.close()
        except Exception:  # closed by the listener meanwhile
            pass

    def _follow_rooms(self):
        """Background task: write the queued subscription changes on the listener's connection."""
        while True:
            self._changed.wait()
            self._changed.clear()
            if self._closed:
                return
            pubsub = self._listener
            if pubsub is None:
                continue  # the next connection subscribes to whatever is wanted then
            add, drop = [], []
            while self._changes:
                channel, subscribe = self._changes.popitem()
                if subscribe and channel not in self._subscribed:
                    add.append(channel)
                elif not subscribe and channel in self._subscribed:
                    drop.append(channel)
            try:
                if add and pubsub is self._listener:
                    self._subscribe(pubsub, add)
                if drop and pubsub is self._listener:
                    self._unsubscribe(pubsub, drop)
            except (redis.RedisError, OSError):
                pass  # the listener fails on the same connection, and subscribes to all again
            except Exception:  # the task must outlive any one change
                log.exception("could not change the message queue's subscriptions")

    def _server_changed(self):
        """Whether Redis is another server than at the last connection (a restart without the
        data, a failover): its ids are not those handled. Raises RedisError."""
        client = self._redis()
        if redis_client.is_cluster(client):
            return False
        run_id = client.info("server").get("run_id")
        changed = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        return changed

    def _messages(self):
        while not self._closed:
            pubsub = None
            try:
                self._sharded = None  # the server may be another one now (a failover)
                self._sharded_pubsub()
                restarted = self._server_changed()
                pubsub = redis_client.pubsub(self.redis_url, self._timeout)
                self._changes.clear()
                self._subscribed = set()
                self._active = set()
                wanted = self._wanted()
                new = [channel for channel in wanted if channel not in self._heard]
                if new:  # where they start, read before subscribing
                    for channel, entry_id in history.newest(self._redis(), new).items():
                        self._heard.setdefault(channel, _Heard(entry_id))
                self._subscribe(pubsub, wanted)
                self._listener = pubsub
                if self._changes:  # joins and leaves made while subscribing
                    self._changed.set()
                # subscribed first, so that what the histories give and what pub/sub gives meet
                yield from self._catch_up(wanted, restarted)
                yield from pubsub.listen()
            except Exception as exc:
                if self._closed:
                    return
                if not isinstance(exc, redis.RedisError):
                    raise
                self._health.lost(exc)
            finally:
                self._listener = None
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closed by close() meanwhile
                        pass
            time.sleep(LISTEN_RETRY_SECONDS)

    def _catch_up(self, channels, restarted):
        """Each channel's entries after the last handled (all of them on another server), as
        the pub/sub messages that carried them. Raises RedisError."""
        pending = []
        for channel in channels:
            heard = self._heard.get(channel)
            if heard is None or (heard.id is None and not restarted):
                continue
            if restarted:
                heard.key = None
            pending.append((channel, history.START if restarted else heard.id))
        while pending:
            batch, pending = pending[:CATCH_UP_BATCH], pending[CATCH_UP_BATCH:]
            pipe = self._redis().pipeline(transaction=False)
            for channel, after in batch:
                pipe.xrange(redis_keys.history(channel),
                            "-" if after == history.START else f"({after}", "+", count=history.PAGE)
            for (channel, _), page in zip(batch, pipe.execute()):
                name = redis_keys.queue_channel(channel).encode()
                for entry_id, fields in page:
                    yield {"type": "message", "channel": name,
                           "data": entry_id + b" " + fields.get(b"m", b"")}
                if len(page) == history.PAGE:
                    pending.append((channel, page[-1][0].decode()))

    def listen(self):
        own = self.host_id.encode()
        for message in self._messages():
            if message["type"] in _CONFIRMATIONS:
                self._confirmed(message)
                continue
            if message["type"] not in _PUBLISHED:
                continue
            try:
                channel = channel_of_queue(message["channel"])
                entry_id, sender, number, body = message["data"].split(b" ", 3)
                entry_id = entry_id.decode()
                key = history.id_key(entry_id)
                number = int(number)
            except ValueError:  # not published by this server
                continue
            heard = self._heard.get(channel)
            if heard is None:
                continue  # a channel just left: no socket here is in it
            if not heard.first_hearing(key, entry_id, sender, number):
                continue
            if sender == own:
                if self.recovery is None:
                    continue  # delivered when emitted
                self._own_heard = max(self._own_heard, number)
                if number in self._given:
                    continue  # its sockets got it while Redis could not take it
            try:
                data = self.json.loads(body)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if data.get("method") == "emit" and data.get("namespace") in (None, NAMESPACE):
                data = copy_for(self, data, channel)
                if data is None:
                    continue
                if self.recovery is not None:
                    data["copy"] = (channel, entry_id, (sender.decode(), number))
            if sender != own:
                yield data
            elif logged(data):  # python-socketio's loop skips a process's own messages
                try:
                    self.deliver_here(data)
                except Exception:
                    log.exception("could not deliver an emit of this process")

    def _confirmed(self, message):
        try:
            channel = channel_of_queue(message["channel"])
        except ValueError:
            return
        if message["type"].endswith("unsubscribe"):
            self._active.discard(channel)
        else:
            self._active.add(channel)

    def wait_until_following(self, rooms, timeout):
        """Wait, at most `timeout` seconds, until Redis has confirmed this process's subscription
        to the channels of `rooms`: from then on, nothing published to them is missed here.
        Returns whether it did."""
        channels = {room for room in rooms if has_channel(room)}
        if channels <= self._active or self._health.down:  # an outage: no use waiting
            return channels <= self._active
        deadline = time.monotonic() + timeout
        while not channels <= self._active:
            if time.monotonic() >= deadline:
                return False
            self.server.sleep(0.005)
        return True
