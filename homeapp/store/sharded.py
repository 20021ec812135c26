"""The message queue's subscriber on a Redis Cluster: one connection per master, each channel
subscribed on the master that owns its hash slot (docs/scale-out.md, "Redis Cluster").

A sharded channel's messages (SPUBLISH) reach only the nodes of its slot's shard, so a
subscriber must listen where the slot lives. This object looks the slot's master up in the
cluster client's map of the slots, keeps one redis-py PubSub per master it needs, and one
reader per PubSub (a greenlet under gevent) that feeds a single queue; `listen()` yields from
that queue, in the order each master sent its messages (nothing orders two masters' messages).
Plain subscriptions (SUBSCRIBE) all share one connection: a cluster carries a PUBLISH to every
node.

It never repairs itself: when a master's connection fails, a master answers that a slot is
not its own (MOVED) or ends a subscription by itself (its slot moved away), or a master leaves a
PING unanswered for WATCH_SECONDS (it stalled, or its host vanished without closing anything),
`listen()` raises RedisError. The caller closes this object and makes a new one, whose cluster client learns the
slots again: that is how a replica promoted after its master died is found without a restart.

redis-py's own ClusterPubSub was not used: it delivers sharded messages only by polling each
node's connection in turn with a timeout, moves channels after a topology change on a worker
thread pool, and reconnects a node's connection by itself, which would hide from the message
queue the gap it must fill from the event log.
"""
import queue
import threading
from collections import Counter

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

# confirmations of a subscription's end: unasked, they mean that its slot moved away
_ENDS = ("unsubscribe", "sunsubscribe")
_CLOSED = object()
# seconds between PINGs on each master's connection, and that a master has to answer one: a
# subscriber's connection has no read timeout, and a stalled master would hold it for good
WATCH_SECONDS = 5.0


def _name(channel):
    return channel.encode() if isinstance(channel, str) else channel


class ShardedPubSub:
    """`cluster` is a RedisCluster (from homeapp.store.redis_client.connect), only read for its
    map of the slots and closed with this object; `options` are the redis.Redis arguments of a
    connection to one master (credentials, timeouts)."""

    def __init__(self, cluster, options, watch_seconds=WATCH_SECONDS):
        self._cluster = cluster
        self._watch_seconds = watch_seconds
        self._unanswered = set()  # names of the masters whose last PING has no answer yet
        self._options = dict(options, retry=Retry(NoBackoff(), 0))  # a failure is the caller's to see
        self._masters = {}     # node name -> PubSub on that master
        self._owners = {}      # channel (bytes) -> node name where it was subscribed
        self._leaving = Counter()  # channel (bytes) -> unsubscribes sent, not yet confirmed
        self._plain = None     # the node whose connection holds the plain subscriptions
        self._received = queue.Queue()
        self._lock = threading.Lock()  # subscription changes come from several greenlets
        self._closed = False
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="homeapp-subscriber-watch").start()

    # --- subscribing ---------------------------------------------------------------------

    def ssubscribe(self, *channels):
        """Each channel on the master of its slot: only that shard hears an SPUBLISH to it."""
        with self._lock:
            for node, group in self._by_slot(channels):
                self._own(group, node)
                self._send(node, "ssubscribe", group)

    def subscribe(self, *channels):
        """Plain channels: a cluster carries a PUBLISH to every node, so one connection hears
        them all, in the order each node passed them on."""
        if not channels:
            return
        with self._lock:
            if self._plain is None:
                self._plain = self._by_slot(channels[:1])[0][0]
            self._own(channels, self._plain)
            self._send(self._plain, "subscribe", channels)

    def _own(self, channels, node):
        for channel in channels:
            self._owners[_name(channel)] = node.name

    def sunsubscribe(self, *channels):
        self._leave("sunsubscribe", channels)

    def unsubscribe(self, *channels):
        self._leave("unsubscribe", channels)

    def _leave(self, command, channels):
        with self._lock:
            by_slot = {}
            for channel in channels:
                owner = self._owners.pop(_name(channel), None)
                if owner is not None and owner in self._masters:
                    self._leaving[_name(channel)] += 1
                    by_slot.setdefault((owner, self._cluster.keyslot(channel)), []).append(channel)
            for (owner, _), group in by_slot.items():
                getattr(self._masters[owner], command)(*group)

    def _by_slot(self, channels):
        """[(master node, [channels of one of its slots])], from the cluster client's map.
        Raises RedisError."""
        groups = {}
        for channel in channels:
            slot = self._cluster.keyslot(channel)
            try:
                node = self._cluster.nodes_manager.get_node_from_slot(slot)
            except RedisClusterException as exc:  # no master holds the slot now: not a RedisError
                raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc
            groups.setdefault((node.name, slot), (node, []))[1].append(channel)
        return list(groups.values())

    def _send(self, node, command, channels):
        """Send a subscribe command to `node`, connecting to it and starting its reader the
        first time. Raises RedisError."""
        pubsub = self._masters.get(node.name)
        if pubsub is not None:
            getattr(pubsub, command)(*channels)
            return
        if self._closed:
            raise redis.ConnectionError("the subscriber is closed")
        pubsub = redis.Redis(host=node.host, port=node.port, **self._options).pubsub()
        try:
            getattr(pubsub, command)(*channels)  # connects: a dead master fails the caller
        except BaseException:
            pubsub.close()
            raise
        self._masters[node.name] = pubsub
        threading.Thread(target=self._read, args=(node.name, pubsub), daemon=True,
                         name=f"homeapp-subscriber-{node.name}").start()

    # --- receiving -----------------------------------------------------------------------

    def _read(self, name, pubsub):
        """One master's reader: what it sends goes to the queue, and so does its failure."""
        try:
            while not self._closed:
                response = pubsub.parse_response(block=True)
                message = None if response is None else pubsub.handle_message(response)
                if message is None:
                    continue
                if message["type"] == "pong":
                    self._unanswered.discard(name)
                    continue
                if message["type"] in _ENDS:
                    if self._leaving[message["channel"]] <= 0:
                        raise redis.ConnectionError(
                            f"master {name} ended the subscription to {message['channel']!r}: "
                            f"its slot moved to another master")
                    self._leaving.subtract((message["channel"],))
                    if not self._leaving[message["channel"]]:
                        del self._leaving[message["channel"]]
                self._received.put(message)
        except Exception as exc:  # noqa: BLE001 - handed to listen(), which raises it
            if not self._closed:
                self._received.put((name, exc))

    def _watch(self):
        """PING every master's connection; one that left the last PING unanswered has failed."""
        while not self._stop.wait(self._watch_seconds):
            for name, pubsub in list(self._masters.items()):
                if name in self._unanswered:
                    self._received.put((name, redis.TimeoutError(
                        f"master {name} left a PING unanswered for {self._watch_seconds:.0f} s")))
                    return
                self._unanswered.add(name)
                try:
                    pubsub.ping()
                except Exception as exc:  # noqa: BLE001 - handed to listen(), which raises it
                    self._received.put((name, exc))
                    return

    def listen(self):
        """Every message and confirmation from every master, as redis-py's PubSub.listen()
        gives them. Raises RedisError when a master's connection fails or a slot moved; ends
        once closed."""
        while True:
            item = self._received.get()
            if item is _CLOSED:
                return
            if isinstance(item, tuple):
                name, exc = item
                if isinstance(exc, redis.RedisError):
                    raise exc
                raise redis.ConnectionError(f"master {name}: {exc}") from exc
            yield item

    def close(self):
        """Disconnect from every master; listen() ends. Never raises."""
        self._closed = True
        self._stop.set()
        self._received.put(_CLOSED)
        for pubsub in list(self._masters.values()):
            try:
                if pubsub.connection is not None:
                    pubsub.connection.disconnect()  # the reader's wait ends at once
                pubsub.close()
            except Exception:  # noqa: BLE001, S110 - a dead master's connection is gone anyway
                pass
        self._masters.clear()
        try:
            self._cluster.close()
        except Exception:  # noqa: BLE001, S110
            pass
