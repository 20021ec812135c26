"""The one way this server makes a Redis client: from REDIS_URL, which names one Redis server
(redis://, rediss://, unix://) or the Sentinels that know which server is the master
(redis+sentinel://, as python-socketio writes it).

With Sentinel, redis-py asks the Sentinels for the master's address whenever a connection
is opened, so a client whose connection broke (the master died or was demoted) reaches the
new master on its next call, without a restart. Each call fails after `timeout` seconds
rather than waiting: a failover is an outage of a few seconds (homeapp.cluster.outage).
"""
import redis
import redis.cluster
from redis.sentinel import Sentinel

from homeapp.config import parse_sentinel_url


def connect(url, timeout, decode_responses=False, subscriber=False):
    """A client of the Redis at `url` (already checked by homeapp.config).

    `timeout` bounds connecting, and each reply unless `subscriber`: a subscriber's
    connection waits for messages as long as it takes, with TCP keepalive to notice a
    vanished peer. Connects lazily: raises nothing until it is used.
    """
    options = {"socket_connect_timeout": timeout, "decode_responses": decode_responses}
    if subscriber:
        options["socket_keepalive"] = True
    else:
        options["socket_timeout"] = timeout
    sentinel = parse_sentinel_url(url)
    if sentinel is None:
        return redis.Redis.from_url(url, **options)
    # the Sentinels themselves always answer within the timeout: a dead one must not hang a call
    watchers = Sentinel(sentinel.sentinels, sentinel_kwargs={"socket_timeout": timeout,
                                                             "socket_connect_timeout": timeout})
    return watchers.master_for(sentinel.service, db=sentinel.db, username=sentinel.username,
                               password=sentinel.password, **options)


def is_cluster(client):
    """Whether `client` talks to a Redis Cluster (no multi-slot scripts, no INFO run_id)."""
    return isinstance(client, redis.cluster.RedisCluster)


def pubsub(url, timeout):
    """A subscriber for the message queue's listener: subscribe/unsubscribe/ssubscribe/
    sunsubscribe, listen() and close() as redis-py's PubSub, on a connection that waits for
    messages as long as it takes."""
    return connect(url, timeout, subscriber=True).pubsub()
