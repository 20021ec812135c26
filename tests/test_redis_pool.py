"""HOMEAPP_REDIS_MAX_CONNECTIONS: a process's Redis clients open at most that many connections,
and a call that finds them all busy waits for one instead of failing at once with "Too many
connections" (which a reconnect storm's thousand calls made look like a Redis outage)."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from homeapp.config import ConfigError, load_config
from homeapp.store import redis_client


def our_connections(server, name):
    return sum(1 for c in server.client().client_list() if c["name"] == name)


def test_more_calls_than_connections_wait_for_one_and_all_succeed(redis_server):
    client = redis_client.connect(redis_server.url, 2.0, decode_responses=True, max_connections=3)
    client.client_setname("pooled")  # each connection of the pool names itself once made
    names = []

    def call(i):
        # each call holds its connection a moment (BLPOP on an empty list times out after 0.1 s)
        client.execute_command("CLIENT", "SETNAME", "pooled")
        names.append(our_connections(redis_server, "pooled"))
        return client.blpop([f"nothing:{i}"], timeout=0.1)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    assert results == [None] * 20  # none failed: each waited for a free connection
    assert max(names) <= 3


def test_a_call_that_finds_none_free_within_the_timeout_fails_as_a_timed_out_call(redis_server):
    client = redis_client.connect(redis_server.url, 0.3, decode_responses=True, max_connections=2)
    held = [client.connection_pool.get_connection() for _ in range(2)]  # both busy
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.connection_pool.release(held[0])
    assert client.ping()  # one came free


@pytest.mark.parametrize("value", ["1", "0", "many", "-3"])
def test_a_bad_pool_size_names_the_variable(value):
    with pytest.raises(ConfigError, match="HOMEAPP_REDIS_MAX_CONNECTIONS"):
        load_config({"HOMEAPP_REDIS_MAX_CONNECTIONS": value})


def test_the_pool_size_defaults_to_redis_py_s_own():
    assert load_config({})["REDIS_MAX_CONNECTIONS"] == 100
