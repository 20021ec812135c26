"""The one way this server makes a Redis client: from REDIS_URL, which names one Redis server
(redis://, rediss://, unix://), the Sentinels that know which server is the master
(redis+sentinel://, as python-socketio writes it), or nodes of a Redis Cluster (redis+cluster://).

With Sentinel, redis-py asks the Sentinels for the master's address whenever a connection
is opened, so a client whose connection broke (the master died or was demoted) reaches the
new master on its next call, without a restart. Each call fails after `timeout` seconds
rather than waiting: a failover is an outage of a few seconds (homeapp.store.outage).

With a Redis Cluster (redis+cluster://, startup nodes), the client learns the slots' masters
from any node that answers, and learns them again when a call meets a dead node or a MOVED
reply, so that a promoted replica is reached without a restart.
"""
import redis
from redis import BlockingConnectionPool
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from homeapp.config import parse_cluster_url, parse_sentinel_url
from homeapp.store.sharded import ShardedPubSub
# ClusterUnreachable: the cluster client's errors, RedisErrors (part of this module's interface)
from homeapp.seams.redis import ClusterUnreachable, LazyCluster, WaitingSentinelPool

# what each connection tells Redis it is (CLIENT SETINFO), given once: without it redis-py reads
# its own package metadata for every connection it opens, about 0.6 ms each, so that a pool
# filling up in a reconnect storm cost a hundred milliseconds of the process's time
_DRIVER = DriverInfo(lib_version=redis.__version__)


def connect(url, timeout, decode_responses=False, subscriber=False, max_connections=None):
    """A client of the Redis at `url` (already checked by homeapp.config).

    `timeout` bounds connecting, and each reply unless `subscriber`: a subscriber's
    connection waits for messages as long as it takes, with TCP keepalive to notice a
    vanished peer. `max_connections` (HOMEAPP_REDIS_MAX_CONNECTIONS; per node on a cluster):
    a call that finds them all busy waits for one, at most `timeout`, then fails as a call
    that timed out (redis-py's own pool raises "Too many connections" at once, which a storm of
    reconnects made look like an outage). Connects lazily: raises nothing until it is used.
    """
    options = {"socket_connect_timeout": timeout, "decode_responses": decode_responses,
               "driver_info": _DRIVER}
    if subscriber:
        options["socket_keepalive"] = True
    else:
        options["socket_timeout"] = timeout
    waiting = {}
    if max_connections is not None:  # `timeout` here is the pool's: how long a call waits for one
        waiting = {"max_connections": max_connections, "timeout": timeout}
    cluster = parse_cluster_url(url)
    if cluster is not None:
        if waiting:
            options.update(waiting, connection_pool_class=BlockingConnectionPool)
        return _cluster(cluster, options)
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        if waiting:
            return redis.Redis(connection_pool=BlockingConnectionPool.from_url(url, **options, **waiting))
        return redis.Redis.from_url(url, **options)
    if waiting:
        options.update(waiting, connection_pool_class=WaitingSentinelPool)
    # the Sentinels themselves always answer within the timeout: a dead one must not hang a call
    watchers = Sentinel(sentinel.sentinels, sentinel_kwargs={"socket_timeout": timeout,
                                                             "socket_connect_timeout": timeout})
    return watchers.master_for(sentinel.service, db=sentinel.db, username=sentinel.username,
                               password=sentinel.password, **options)


def _cluster(cluster, options):
    # One retry, at once, after the client has learnt the slots again (a MOVED reply or a dead
    # node): a failover is then followed on the next call; more, and a call would hold its
    # caller well past the timeout. Made at its first use (homeapp/seams/redis.py).
    nodes = [ClusterNode(host, port) for host, port in cluster.nodes]
    if "connection_pool_class" in options:
        # RedisCluster makes each node's pool of that class only for a client made from a URL
        # (others get redis-py's own pool): the first node as one, the others as startup nodes
        host, port = cluster.nodes[0]
        options["url"] = f"redis://{'[' + host + ']' if ':' in host else host}:{port}"
        nodes = nodes[1:]
    return LazyCluster(startup_nodes=nodes, username=cluster.username, password=cluster.password,
                       retry=Retry(NoBackoff(), 1), **options)


def connected(client):
    """Make sure `client` (one server's, not a cluster's) has a connection open, its handshake
    answered: what is sent right after goes on it. Something whose fate must be known
    (homeapp.engine.durability) is known not to have reached Redis when this fails, where a
    failure after sending proves nothing. Raises RedisError."""
    pool = client.connection_pool
    pool.release(pool.get_connection())


def is_cluster(client):
    """Whether `client` talks to a Redis Cluster, where a call's keys must share a hash slot."""
    return isinstance(client, RedisCluster)


def slot_master(client, key):
    """The node that is the master of `key`'s slot, as the cluster client `client` knows it now,
    for what must reach that very node: `client.info(..., target_nodes=node)`, which has the
    client learn the slots again when the node is dead. Raises RedisError."""
    try:
        return client.get_node_from_key(key)
    except RedisClusterException as exc:
        raise ClusterUnreachable(str(exc)) from exc


def pubsub(url, timeout):
    """A subscriber for the message queue: redis-py's PubSub on one server (or its Sentinels'
    master), or on a cluster a homeapp.store.sharded.ShardedPubSub, which listens on each
    master that owns a subscribed channel's slot. Both raise RedisError from listen() when a
    connection fails; the caller then closes it and makes another one."""
    cluster = parse_cluster_url(url)
    if cluster is None:
        return connect(url, timeout, subscriber=True).pubsub()
    options = {"username": cluster.username, "password": cluster.password,
               "socket_connect_timeout": timeout, "socket_keepalive": True}
    return ShardedPubSub(connect(url, timeout), options)
