"""redis-py's cluster client, made at its first use (versions: homeapp/seams/versions.py).

RedisCluster asks a node for the slots as it is made, and raises RedisClusterException, which is
no RedisError, when none answers or no master holds a slot. LazyCluster runs RedisCluster's
__init__ at the first use instead, as a single server's client connects: a process starts while
no node answers, and counts an outage until one does; and its errors are all RedisErrors
(ClusterUnreachable), so that such a failure is an outage like any other.
"""
import threading

import redis
from redis.cluster import RedisCluster
from redis.connection import BlockingConnectionPool, Encoder
from redis.exceptions import RedisClusterException
from redis.sentinel import SentinelConnectionPool

DISTRIBUTION = "redis"


class ClusterUnreachable(redis.ConnectionError):
    """No node of the cluster answers, or no master holds a slot: redis-py's RedisClusterException,
    which is no RedisError, made one, so that it is an outage like any other."""


class WaitingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel master's pool, waiting for a free connection (BlockingConnectionPool's
    `max_connections` and `timeout`) rather than raising "Too many connections". redis-py has
    no such pool: SentinelConnectionPool's own methods (the master's address, its connection
    class) come first, BlockingConnectionPool's take and give connections; both are built on
    ConnectionPool and call it through super(), which this order keeps."""


class _Lazy:
    """Whether a LazyCluster has been made yet."""

    def __init__(self, options):
        self.options = options
        self.lock = threading.RLock()  # a greenlet's calls wait while another one makes it
        self.starting = False
        self.ready = False


class LazyCluster(RedisCluster):
    """RedisCluster, made at its first use rather than when created. Its errors are all RedisErrors."""

    def __init__(self, **options):  # RedisCluster.__init__ runs in __getattr__, at the first use
        # what a registered script needs before any call: the encoder
        self.encoder = Encoder(options.get("encoding", "utf-8"), options.get("encoding_errors", "strict"),
                               options.get("decode_responses", False))
        self._lazy = _Lazy(options)

    def __getattr__(self, name):
        # called only for an attribute that is missing: before RedisCluster.__init__ has run
        lazy = self.__dict__.get("_lazy")
        if lazy is None or name.startswith("__"):
            raise AttributeError(name)
        with lazy.lock:
            try:
                return object.__getattribute__(self, name)  # another greenlet made it meanwhile
            except AttributeError:
                if lazy.starting or lazy.ready:  # RedisCluster.__init__'s own look-ups
                    raise
            lazy.starting = True
            try:
                RedisCluster.__init__(self, **lazy.options)
            except RedisClusterException as exc:
                raise ClusterUnreachable(str(exc)) from exc
            finally:
                lazy.starting = False
            lazy.ready = True
        return object.__getattribute__(self, name)

    def close(self):
        if self._lazy.ready:
            super().close()

    def execute_command(self, *args, **kwargs):
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterUnreachable(str(exc)) from exc

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def guarded(*args, **kwargs):
            try:
                return execute(*args, **kwargs)
            except RedisClusterException as exc:
                raise ClusterUnreachable(str(exc)) from exc
        pipe.execute = guarded
        return pipe

