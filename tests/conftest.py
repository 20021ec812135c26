"""Session fixtures: a private Redis, server processes on free ports, and connected users;
and the app in this process with its own users (tests/inprocess.py)."""
from functools import partial


import pytest

from tests.inprocess import LocalClient, local_app
from tests.live import peers_on, sockets_of
from tests.processes import RedisServer, ServerProcess

# the shared servers must not rate-limit the tests' bursts; test_live_limits has its own
FAST = {"HOMEAPP_MESSAGE_RATE": 10000, "HOMEAPP_MESSAGE_BURST": 10000,
        "HOMEAPP_TYPING_RATE": 10000, "HOMEAPP_TYPING_BURST": 10000,
        "HOMEAPP_NOTIFICATION_RATE": 10000, "HOMEAPP_NOTIFICATION_BURST": 10000}


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_redis():
    """A redis-server of the module's own, for a module that stops it, or whose servers leave
    behind what the session's must not hold (a killed process's presence)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server_factory():
    """start(**env) runs app.py with those settings; every process is stopped at the end."""
    started = []

    def start(**env):
        process = ServerProcess(env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def shared_servers(server_factory):
    """shared(kind, **env) -> one server per kind for the session."""
    started = {}

    def shared(kind, **env):
        if kind not in started:
            started[kind] = server_factory(**env)
        return started[kind]
    return shared


@pytest.fixture(scope="module")
def memory_server(shared_servers):
    return shared_servers("memory", **FAST)


@pytest.fixture(scope="module")
def redis_backed_server(shared_servers, redis_server):
    return shared_servers("redis", REDIS_URL=redis_server.url, **FAST)


@pytest.fixture(params=["memory", "redis"])
def server(request):
    """Each test using it runs once per presence implementation."""
    return request.getfixturevalue(f"{request.param}_server" if request.param == "memory"
                                   else "redis_backed_server")


@pytest.fixture
def connect(server):
    """Peers on each presence implementation in turn (see tests.live.peers_on)."""
    with peers_on(server) as make:
        yield make


@pytest.fixture
def connect_memory(memory_server):
    """Peers on the in-memory server only: for checks that do not involve presence storage."""
    with peers_on(memory_server) as make:
        yield make


@pytest.fixture
def users(connect):
    """users(n) -> n connected users with growing ids, each live and on its own channel."""
    return _many(connect)


@pytest.fixture
def memory_users(connect_memory):
    """users(n) on the in-memory server only."""
    return _many(connect_memory)


@pytest.fixture
def app():
    """A new app in this process: memory presence, identities from the query, no rate limits."""
    return local_app()


@pytest.fixture
def connect_local(app):
    """connect(user_id=None, live=True, join=True, **kw) -> a LocalClient on `app` (tests.live.sockets_of)."""
    with sockets_of(partial(LocalClient, app)) as make:
        yield make


@pytest.fixture
def local_users(connect_local):
    """users(n) on the app in this process."""
    return _many(connect_local)


def _many(connect):
    """make(n, **kw) -> n sockets, each from connect(**kw)."""
    def make(count, **kwargs):
        return [connect(**kwargs) for _ in range(count)]
    return make


@pytest.fixture
def clients():
    """Every client a test makes is closed after it."""
    made = []
    yield made
    for client in made:
        client.close()
