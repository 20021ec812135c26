"""Session fixtures: a private Redis, server processes on free ports, and connected users;
and the app in this process with its own users (tests/inprocess.py)."""
import os
from functools import partial

from homeapp.config import load_config

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


# HOMEAPP_FRAME_PATH's values; a module runs its tests on both by overriding frame_path:
#   @pytest.fixture(scope="module", params=FRAME_PATHS)
#   def frame_path(request): return request.param
FRAME_PATHS = ("greenlet", "evented")


@pytest.fixture(scope="module")
def frame_path():
    """The frame path of the servers a module starts, unless it runs both: the default, or
    HOMEAPP_FRAME_PATH's (which every server process inherits): `HOMEAPP_FRAME_PATH=greenlet
    pytest` runs the whole suite on the greenlet path."""
    return load_config(os.environ)["FRAME_PATH"]


@pytest.fixture(scope="session")
def shared_servers(server_factory):
    """shared(kind, frame_path, **env) -> one server per (kind, frame path) for the session."""
    started = {}

    def shared(kind, frame_path, **env):
        if (kind, frame_path) not in started:
            started[kind, frame_path] = server_factory(HOMEAPP_FRAME_PATH=frame_path, **env)
        return started[kind, frame_path]
    return shared


@pytest.fixture(scope="module")
def memory_server(shared_servers, frame_path):
    return shared_servers("memory", frame_path, **FAST)


@pytest.fixture(scope="module")
def redis_backed_server(shared_servers, frame_path, redis_server):
    return shared_servers("redis", frame_path, REDIS_URL=redis_server.url, **FAST)


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
