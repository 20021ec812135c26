"""The Socket.IO message queue between processes: python-socketio's Redis manager, with a channel
per room and outage-aware.

python-socketio's RedisManager publishes every emit on one channel that every process
listens to, so each process decodes every emit of every other one, even when none of its
sockets is a recipient: the cost per process grows with the number of processes. Here
(docs/scale-out.md):

- each Socket.IO room has its own channel (redis_keys.queue_room), and a process listens
  on the channels of the rooms where it has sockets: subscribed when its first socket
  joins, unsubscribed when its last one leaves or disconnects. One more channel
  (redis_keys.QUEUE), which every process listens to, carries emits to everyone and
  the manager's messages about one socket (disconnect it, make it join or leave a room,
  an acknowledgement), which may be on any process;
- an emit to several rooms is published once on each room's channel; a process that
  hears it on several delivers it once, to every local socket of every room: each copy
  starts with its sender's id and sequence number, and only a higher number than the last
  one handled from that sender is delivered (a process's own messages are skipped on that
  prefix too, before any JSON is decoded). One connection carries all of a process's
  subscriptions, so one sender's messages arrive in the order sent, whichever channels
  they came by;
- subscription changes do not wait for Redis: they are queued to a task that writes them
  on the listener's connection (the listener itself is busy reading);
- sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7), with which Redis Cluster spreads channels
  over its shards, is used when the server has it; plain PUBLISH/SUBSCRIBE otherwise.

Every message is also appended to the event log (homeapp.cluster.event_log), in the same
script that publishes it, and each copy starts with its offset there. The log is what makes
delivery survive Redis (docs/recovery.md):

- a listener remembers the last offset it handled; when it connects again (Redis restarted,
  stalled, failed over, or only this process's connection broke) it subscribes first, then reads
  the log from there for the channels it listens to, then goes on with pub/sub, skipping
  what it already handled: nothing lost, nothing twice, in order;
- publishing never drops while Redis is down: messages wait in order (homeapp.cluster.outbox),
  retried until Redis takes them, within the log's window; a publish retried after a failure
  may land twice, and its copies are skipped by their sender's number;
- with recovery on (homeapp.recovery), an emit to a channel reaches this process's own sockets
  through the listener too, with its offset, so that every socket gets its events in the
  log's order; while Redis is unreachable they get it at once, without one.

Failures are reported to RedisHealth, which logs each outage once.
"""
import bisect
import itertools
import logging
import time
from collections import OrderedDict

import redis
import socketio

from homeapp.cluster import event_log, redis_keys
from homeapp.cluster.outbox import MAX_OUTBOX, Outbox, Queued
from homeapp.cluster import redis_client
from homeapp.cluster.redis_client import connect, is_cluster
from homeapp.recovery import MIN_LOG_SECONDS
from homeapp.recovery.channels import has_channel, logged

log = logging.getLogger("homeapp.cluster.message_queue")

LISTEN_RETRY_SECONDS = 1.0
# senders whose last sequence number is remembered; one per process start, so old ones go
MAX_SENDERS = 1024
# what the listener reads: messages of both kinds of pub/sub
_PUBLISHED = ("message", "smessage")
# what tells the listener a subscription has begun or ended
_CONFIRMATIONS = ("subscribe", "ssubscribe", "unsubscribe", "sunsubscribe")
# the manager's messages that concern a room, published on its channel; all others on everyone's
_ROOM_METHODS = ("emit", "close_room")


def has_sharded_pubsub(client):
    """Whether the server has SPUBLISH and SSUBSCRIBE (Redis 7 and later). Raises RedisError."""
    try:
        return all(info is not None
                   for info in client.execute_command("COMMAND INFO", "SPUBLISH", "SSUBSCRIBE"))
    except redis.ResponseError:  # no COMMAND INFO: far older than 7
        return False


class QueueManager(socketio.RedisManager):
    def __init__(self, url, health, timeout, log_seconds=MIN_LOG_SECONDS, log_entries=100_000):
        """`log_seconds` and `log_entries`: how long, and how many, the event log keeps entries."""
        super().__init__(url, channel=redis_keys.QUEUE)
        self._health = health
        self._timeout = timeout
        self._log_seconds = log_seconds
        self._log_entries = log_entries
        self.recovery = None     # homeapp.recovery's Recovery, set by create_app when it is on
        self._client = None      # for publishing and probing, with timeouts
        self._appender = None    # event_log.Appender on _client
        self._sharded = None     # SPUBLISH/SSUBSCRIBE, once a probe found them
        self._outbox = None      # the Outbox, once the server is known
        self._numbers = itertools.count(1)  # this process's messages, in the order published
        self._own_heard = 0      # number of this process's last message the listener heard
        self._given = set()      # numbers of its logged emits given to its sockets unlogged
        self._given_upto = 0     # and the highest of them
        self._heard = OrderedDict()  # sender's id -> number of its last message handled here
        self._position = event_log.Position()  # the last log entry handled here
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
        if room is None or message["method"] not in _ROOM_METHODS:
            return [self.channel]
        namespace = message["namespace"]
        # a socket's own room exists on its process only: an emit to it is already delivered
        sids = self.rooms.get(namespace, {}).get(None, ())
        if isinstance(room, str) or not hasattr(room, "__len__"):  # one room, as python-socketio tells
            room = (room,)
        return list(dict.fromkeys(self._channel_of(namespace, r) for r in room if r not in sids))

    def _channel_of(self, namespace, room):
        """The channel of one room. Only the app's own rooms (user:, room:) have channels of
        their own; any other is another process's socket (an emit to its id, as the Admin UI's
        development mode makes), which only everyone's channel reaches."""
        return redis_keys.queue_room(namespace, room) if has_channel(room) else self.channel

    def _wanted(self):
        """Every channel this process must listen to now: everyone's and its rooms'."""
        wanted = [self.channel]
        for namespace, rooms in self.rooms.items():
            wanted += [redis_keys.queue_room(namespace, room) for room in rooms if has_channel(room)]
        return wanted

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        first = has_channel(room) and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if first:
            self._follow(redis_keys.queue_room(namespace, room), True)

    def basic_leave_room(self, sid, namespace, room):
        held = has_channel(room) and room in self.rooms.get(namespace, {})
        super().basic_leave_room(sid, namespace, room)
        if held and room not in self.rooms.get(namespace, {}):
            self._follow(redis_keys.queue_room(namespace, room), False)

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

    def _handle_emit(self, message):
        """Deliver an emit to this process's sockets. With recovery on, a logged emit goes with
        its offset (`message["offset"]`, from the listener); this process's own wait for theirs."""
        recovery = self.recovery
        if recovery is None or not logged(message):
            return super()._handle_emit(message)
        offset = message.pop("offset", None)
        if offset is not None:
            recovery.deliver(self, message, offset)
        # else this process's own emit: _publish queues it, and the listener delivers it

    # --- publishing ----------------------------------------------------------------------

    def set_server(self, server):
        super().set_server(server)
        self._outbox = Outbox(server, self._send, self._unsent, self._log_seconds)

    def _redis(self):
        if self._client is None:
            self._client = connect(self.redis_url, self._timeout)
            self._appender = event_log.Appender(self._client, self._log_seconds, self._log_entries)
        return self._client

    def _sharded_pubsub(self):
        """Raises RedisError."""
        if self._sharded is None:
            # on a cluster, the log's one stream is in one slot and its script may not SPUBLISH
            # to others: PUBLISH, which a cluster carries to every node
            self._sharded = not is_cluster(self._redis()) and has_sharded_pubsub(self._redis())
        return self._sharded

    def _publish(self, data):
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

    def _unsent(self):
        """Redis cannot take the queued messages now: give this process's own sockets, in order,
        the logged emits among them that they have not had, without an offset. The listener
        skips them when it hears them later."""
        if self.recovery is None:
            return
        items = self._outbox.items
        start = bisect.bisect_right(items, max(self._given_upto, self._own_heard),
                                    key=lambda item: item.number)
        for item in items[start:]:
            if item.logged:
                self._given.add(item.number)
                self.recovery.deliver_unlogged(self, self.json.loads(item.text.split(" ", 2)[2]))
        if items:
            self._given_upto = max(self._given_upto, items[-1].number)

    def flush(self, timeout):
        """Wait, at most timeout seconds, until what was emitted has been published.
        Returns True when nothing is left (at shutdown: the last presence changes)."""
        return self._outbox.flush(timeout)

    def _send(self, batch):
        """Log and publish a batch in one round trip. Returns False when Redis did not take it,
        else the script's result for each message (None: refused, past its deadline)."""
        try:
            client = self._redis()
            command = "SPUBLISH" if self._sharded_pubsub() else "PUBLISH"
            # a cluster's pipeline does not load a script its node lacks: one call per message
            pipe = client if is_cluster(client) else client.pipeline(transaction=False)
            results = [self._appender.append(pipe, item.text, item.channels, command, item.deadline)
                       for item in batch]
            return results if pipe is client else pipe.execute()
        except redis.RedisError as exc:
            self._health.lost(exc)
        except Exception:  # the sender must outlive any one batch
            log.exception("could not publish %d messages", len(batch))
        return False

    # --- listening -----------------------------------------------------------------------

    def initialize(self):
        if not self.write_only:  # before the listener starts: it may set it at once
            self._changed = self.server.eio.create_event()
            self.server.start_background_task(self._follow_rooms)
        super().initialize()

    def _subscribe(self, pubsub, channels):
        (pubsub.ssubscribe if self._sharded else pubsub.subscribe)(*channels)
        self._subscribed.update(channels)

    def _unsubscribe(self, pubsub, channels):
        (pubsub.sunsubscribe if self._sharded else pubsub.unsubscribe)(*channels)
        self._subscribed.difference_update(channels)

    def close(self):
        """Stop listening, for good. A process simply exits; this is for managers that do not."""
        self._closed = True
        if self._changed is not None:
            self._changed.set()
        listener = self._listener
        connection = getattr(listener, "connection", None)  # a cluster's subscriber has several
        if connection is not None:
            connection.disconnect()  # the listener's read fails at once, and it closes the rest
        elif listener is not None:
            listener.close()

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

    def _redis_listen_with_retries(self):
        # No read timeout on the subscriber: it waits for messages indefinitely; a
        # closed connection raises at once and keepalive catches a vanished peer.
        while not self._closed:
            pubsub = None
            try:
                self._sharded = None  # the server may be another one now (a failover)
                self._sharded_pubsub()
                resume = self._position.resume_point(self._redis())
                pubsub = redis_client.pubsub(self.redis_url, self._timeout)
                self._changes.clear()
                self._subscribed = set()
                self._active = set()
                self._subscribe(pubsub, self._wanted())  # no change is missed: nothing yields between
                self._listener = pubsub
                if self._changes:  # joins and leaves made while subscribing
                    self._changed.set()
                # subscribed first, so that what the log gives and what pub/sub gives meet
                yield from event_log.entries(self._redis(), resume, self._subscribed)
                yield from pubsub.listen()
            except redis.RedisError as exc:
                if self._closed:
                    return
                self._health.lost(exc)
            finally:
                self._listener = None
                if pubsub is not None:
                    pubsub.close()
            time.sleep(LISTEN_RETRY_SECONDS)

    def _listen(self):
        own = self.host_id.encode()
        for message in self._redis_listen_with_retries():
            if message["type"] in _CONFIRMATIONS:
                self._confirmed(message)
                continue
            if message["type"] not in _PUBLISHED:
                continue
            try:
                offset, sender, number, body = message["data"].split(b" ", 3)
                offset = offset.decode()
                number = int(number)
                if not self._position.handled(offset):
                    continue  # another copy of one handled
            except ValueError:  # not published by this server
                continue
            if sender == own:
                if self.recovery is None or number <= self._own_heard:
                    continue  # delivered when emitted, or another copy
                self._own_heard = number
                if self._given:
                    given = number in self._given
                    self._given = {n for n in self._given if n > number}
                    if given:
                        continue  # its sockets got it while Redis could not take it
            elif not self._first_hearing(sender, number):
                continue
            try:
                data = self.json.loads(body)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            data["offset"] = offset
            if sender != own:
                yield data
            elif logged(data):  # python-socketio's loop skips a process's own messages
                try:
                    self._handle_emit(data)
                except Exception:
                    log.exception("could not deliver an emit of this process")

    def _confirmed(self, message):
        channel = message["channel"].decode()
        if message["type"].endswith("unsubscribe"):
            self._active.discard(channel)
        else:
            self._active.add(channel)

    def log_position(self):
        """Where a socket connecting now is in the log: every event it will be sent through the
        listener has a later offset. Before the listener first connected, the log's newest
        entry. None when that cannot be read."""
        if self._position.offset is not None:
            return self._position.offset
        try:
            return event_log.newest(self._redis())
        except redis.RedisError as exc:
            self._health.lost(exc)
            return None

    def wait_until_following(self, rooms, timeout):
        """Wait, at most `timeout` seconds, until Redis has confirmed this process's subscription
        to the channels of `rooms`: from then on, nothing published to them is missed here.
        Returns whether it did."""
        channels = {redis_keys.queue_room("/", room) for room in rooms if has_channel(room)}
        if channels <= self._active or self._health.down:  # an outage: no use waiting
            return channels <= self._active
        deadline = time.monotonic() + timeout
        while not channels <= self._active:
            if time.monotonic() >= deadline:
                return False
            self.server.sleep(0.005)
        return True

    def _first_hearing(self, sender, number):
        """False when a message of this sender numbered as high has been handled here: another
        copy of one published on several channels, or published twice by a retry."""
        if number <= self._heard.get(sender, 0):
            return False
        self._heard[sender] = number
        self._heard.move_to_end(sender)
        if len(self._heard) > MAX_SENDERS:
            self._heard.popitem(last=False)
        return True
