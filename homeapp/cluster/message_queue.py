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

What changes while Redis is down:

- publishing is skipped while an outage is known (the emit has already reached
  this process's own sockets), instead of two connection attempts, each of which
  can block for the whole connect timeout, and two error lines per emit;
- the listener retries every second rather than backing off to a minute, so
  cross-process delivery resumes soon after Redis does; it subscribes again to every
  channel wanted then;
- failures are reported to RedisHealth, which logs each outage once;
- publishing does not wait for Redis: a `message` makes three emits or more, and each
  was a PUBLISH round trip inside the sender's event. Emits are queued, and one
  background task sends whatever has queued up in one pipelined round trip, in order.
"""
import itertools
import logging
import time
from collections import OrderedDict

import redis
import socketio

from homeapp.cluster import redis_keys
from homeapp.cluster.redis_client import connect
from homeapp.services.rooms import ROOM_CHANNEL, USER_CHANNEL

log = logging.getLogger("homeapp.cluster.message_queue")

LISTEN_RETRY_SECONDS = 1.0
# messages per pipelined round trip: bounds one batch's memory and Redis's output buffer
MAX_BATCH = 1000
# messages waiting for Redis (about 0.5 KB each) past which new ones are dropped, not queued
MAX_OUTBOX = 20000
# senders whose last sequence number is remembered; one per process start, so old ones go
MAX_SENDERS = 1024
# what the listener reads: messages of both kinds of pub/sub
_PUBLISHED = ("message", "smessage")
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
    def __init__(self, url, health, timeout):
        super().__init__(url, channel=redis_keys.QUEUE)
        self._health = health
        self._timeout = timeout
        self._client = None      # for publishing and probing, with timeouts
        self._sharded = None     # SPUBLISH/SSUBSCRIBE, once a probe found them
        self._outbox = []        # (channel, message) pairs waiting for the sender
        self._queued = None      # an Event of the server's async mode, once the sender runs
        self._sending = False
        self._dropped = 0        # messages refused since the outbox last filled up
        self._numbers = itertools.count(1)  # this process's messages, in the order published
        self._heard = OrderedDict()  # sender's id -> number of its last message handled here
        self._listener = None    # the listener's PubSub while it is connected
        self._subscribed = set()  # channels of the listener's connection
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
        return redis_keys.queue_room(namespace, room) if _has_channel(room) else self.channel

    def _wanted(self):
        """Every channel this process must listen to now: everyone's and its rooms'."""
        wanted = [self.channel]
        for namespace, rooms in self.rooms.items():
            wanted += [redis_keys.queue_room(namespace, room) for room in rooms if _has_channel(room)]
        return wanted

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        first = _has_channel(room) and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if first:
            self._follow(redis_keys.queue_room(namespace, room), True)

    def basic_leave_room(self, sid, namespace, room):
        held = _has_channel(room) and room in self.rooms.get(namespace, {})
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

    # --- publishing ----------------------------------------------------------------------

    def _redis(self):
        if self._client is None:
            self._client = connect(self.redis_url, self._timeout)
        return self._client

    def _sharded_pubsub(self):
        """Raises RedisError."""
        if self._sharded is None:
            self._sharded = has_sharded_pubsub(self._redis())
        return self._sharded

    def _publish(self, data):
        if self._health.down:
            return
        channels = self._channels_of(data)
        if not channels:
            return
        if len(self._outbox) >= MAX_OUTBOX:  # Redis answers, but slower than emits come
            if not self._dropped:
                log.warning("message queue backlog of %d: emits to other processes are dropped "
                            "until Redis catches up", MAX_OUTBOX)
            self._dropped += 1
            return
        # who sent it and its number, before the JSON: a process skips its own messages, and
        # other copies of one it handled, without decoding them
        message = f"{self.host_id} {next(self._numbers)} {self.json.dumps(data)}"
        self._outbox += [(channel, message) for channel in channels]
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
            pipe = self._redis().pipeline(transaction=False)
            publish = pipe.spublish if self._sharded_pubsub() else pipe.publish
            for channel, message in batch:
                publish(channel, message)
            pipe.execute()
        except redis.RedisError as exc:
            self._health.lost(exc)
        except Exception:  # the sender must outlive any one batch
            log.exception("could not publish %d messages", len(batch))

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
        connection = self._listener and self._listener.connection
        if connection is not None:
            connection.disconnect()  # the listener's read fails at once, and it closes the rest

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
        subscriber = connect(self.redis_url, self._timeout, subscriber=True)
        while not self._closed:
            pubsub = None
            try:
                self._sharded = None  # the server may be another one now (a failover)
                self._sharded_pubsub()
                pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
                self._changes.clear()
                self._subscribed = set()
                self._subscribe(pubsub, self._wanted())  # no change is missed: nothing yields between
                self._listener = pubsub
                if self._changes:  # joins and leaves made while subscribing
                    self._changed.set()
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
            if message["type"] not in _PUBLISHED:
                continue
            try:
                sender, number, body = message["data"].split(b" ", 2)
                number = int(number)
            except ValueError:  # not published by this server
                continue
            if sender == own or not self._first_hearing(sender, number):
                continue
            try:
                data = self.json.loads(body)
            except ValueError:
                continue
            if isinstance(data, dict):
                yield data

    def _first_hearing(self, sender, number):
        """False when a message of this sender numbered as high has been handled here: another
        copy of one published on several channels."""
        if number <= self._heard.get(sender, 0):
            return False
        self._heard[sender] = number
        self._heard.move_to_end(sender)
        if len(self._heard) > MAX_SENDERS:
            self._heard.popitem(last=False)
        return True


def _has_channel(room):
    """Whether a Socket.IO room has a channel of its own: the app's rooms (user:, room:) do; a
    socket's own room (its id) does not, nor does a room of the Admin UI's."""
    return isinstance(room, str) and room.startswith((USER_CHANNEL, ROOM_CHANNEL))
