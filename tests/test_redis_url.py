"""REDIS_URL: one Redis server, the Sentinels of one, or nodes of a Redis Cluster; anything else stops
start-up with the reason."""
import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from homeapp.store.redis_client import ClusterUnreachable, connect
from homeapp.config import (ClusterURL, ConfigError, SentinelURL, load_config, parse_cluster_url,
                            parse_sentinel_url)
from tests.processes import free_port


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0",
    "redis://:secret@redis.internal/3",
    "rediss://user:secret@redis.internal:6380",
    "unix:///run/redis/redis.sock",
    "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/0/homeapp",
    "redis+sentinel://user:secret@[::1]:26379/2/homeapp",
    "redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000",
    "redis+cluster://app:secret@[::1]:7000/",
])
def test_a_server_its_sentinels_or_a_cluster_are_accepted(url):
    assert load_config({"REDIS_URL": url})["REDIS_URL"] == url


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_masters_credentials():
    assert parse_sentinel_url("redis+sentinel://app:p%40ss@s1:26379,s2:26380/1/homeapp") == \
        SentinelURL([("s1", 26379), ("s2", 26380)], "homeapp", 1, "app", "p@ss")
    assert parse_sentinel_url("redis://h:6379/0") is None


@pytest.mark.parametrize("url, reason", [
    ("http://redis.internal:6379", "must start with one of redis://"),
    ("localhost:6379", "must start with one of redis://"),
    ("redis://redis.internal:port/0", "the port is not a number"),
    ("redis://redis.internal:6379/zero", "the database must be a number"),
    ("unix://", "names the socket's path"),
    ("redis+sentinel://s1:26379/0", "ends with /<db>/<service name>"),
    ("redis+sentinel://s1:26379", "ends with /<db>/<service name>"),
    ("redis+sentinel://s1:26379/0/", "ends with /<db>/<service name>"),
    ("redis+sentinel://s1/0/homeapp", "each Sentinel is host:port, got 's1'"),
    ("redis+sentinel://s1:26379,/0/homeapp", "each Sentinel is host:port, got ''"),
    ("redis+sentinel://s1:70000/0/homeapp", "each Sentinel is host:port"),
    ("redis+sentinel://s1:26379/first/homeapp", "the database must be a number"),
    ("redis+sentinel://s1:26379/0/homeapp?ssl=true", "takes no ?options"),
    ("redis+cluster://", "each cluster node is host:port, got ''"),
    ("redis+cluster://n1", "each cluster node is host:port, got 'n1'"),
    ("redis+cluster://n1:7000,", "each cluster node is host:port, got ''"),
    ("redis+cluster://n1:7000,:7001", "each cluster node is host:port, got ':7001'"),
    ("redis+cluster://n1:0", "each cluster node is host:port"),
    ("redis+cluster://n1:65536", "each cluster node is host:port"),
    ("redis+cluster://n1:7o00", "each cluster node is host:port"),
    ("redis+cluster://n1:7000/0", "a cluster has only database 0"),
    ("redis+cluster://n1:7000/1/homeapp", "a cluster has only database 0"),
    ("redis+cluster://n1:7000?read_from_replicas=1", "takes no ?options"),
    ("redis+cluster://n1:7000#top", "takes no ?options"),
    ("redis+clusters://n1:7000", "must start with one of redis://"),
    ("rediss+cluster://n1:7000", "must start with one of redis://"),
], ids=["scheme", "no-scheme", "port", "db", "unix-path", "no-service", "no-path", "empty-service",
        "sentinel-port", "empty-sentinel", "sentinel-port-range", "sentinel-db", "query",
        "cluster-no-node", "cluster-no-port", "cluster-empty-node", "cluster-no-host", "cluster-port-zero",
        "cluster-port-range", "cluster-port-letters", "cluster-db", "cluster-path", "cluster-query",
        "cluster-fragment", "cluster-scheme-typo", "cluster-tls"])
def test_a_malformed_url_stops_start_up_with_the_reason(url, reason):
    with pytest.raises(ConfigError, match="REDIS_URL") as refused:
        load_config({"REDIS_URL": url})
    assert reason in str(refused.value)


@pytest.mark.parametrize("url", ["redis+sentinel://app:hunter2@s1:26379/zero/homeapp",
                                 "redis+cluster://app:hunter2@n1:7000/3",
                                 "redis+cluster://app:hunter2@n1:port"])
def test_the_reason_never_shows_the_password(url):
    with pytest.raises(ConfigError) as refused:
        load_config({"REDIS_URL": url})
    assert "hunter2" not in str(refused.value)


def test_a_cluster_url_names_the_startup_nodes_and_their_credentials():
    assert parse_cluster_url("redis+cluster://app:p%40ss@n1:7000, n2:7001,[::1]:7002") == \
        ClusterURL([("n1", 7000), ("n2", 7001), ("::1", 7002)], "app", "p@ss")
    assert parse_cluster_url("redis+cluster://n1:7000") == ClusterURL([("n1", 7000)], None, None)
    assert parse_cluster_url("redis+sentinel://s1:26379/0/homeapp") is None


def test_a_cluster_that_does_not_answer_is_a_redis_error_at_its_first_use():
    """The cluster's client is made at its first use, as a single server's connects: start-up
    needs no node to answer, and a call while none does is a RedisError (redis-py's own
    exception is not one), which is an outage like any other."""
    client = connect(f"redis+cluster://127.0.0.1:{free_port()}", 0.5)
    script = client.register_script("return 1")
    for call in (client.ping, lambda: script(keys=["k"]), lambda: client.get_node_from_key("k")):
        with pytest.raises(ClusterUnreachable):
            call()
    assert issubclass(ClusterUnreachable, redis.RedisError)


def test_a_sentinel_url_makes_a_client_of_the_master_the_sentinels_name():
    client = connect("redis+sentinel://app:p%40ss@s1:26379,s2:26380/1/homeapp", 0.5, decode_responses=True)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "homeapp"
    options = pool.connection_kwargs
    assert (options["db"], options["username"], options["password"]) == (1, "app", "p@ss")
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.5, 0.5)
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels] == [("s1", 26379), ("s2", 26380)]
    # a Sentinel that does not answer must not hang a call either
    assert all(s.connection_pool.connection_kwargs["socket_timeout"] == 0.5 for s in sentinels)


def test_a_subscriber_waits_for_messages_without_a_read_timeout():
    client = connect("redis://127.0.0.1:6379/0", 0.5, subscriber=True)
    assert isinstance(client, redis.Redis)
    options = client.connection_pool.connection_kwargs
    assert options.get("socket_timeout") is None and options["socket_keepalive"] is True
    assert options["socket_connect_timeout"] == 0.5
