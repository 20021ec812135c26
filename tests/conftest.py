"""Session fixtures: a private Redis, server processes on free ports, and connected users."""
import pytest

from tests.live import Peer, new_user_id
from tests.processes import RedisServer, ServerProcess

# the shared servers must not rate-limit the tests' bursts; test_live_limits has its own
FAST = {"HOMEAPP_MESSAGE_RATE": 10000, "HOMEAPP_MESSAGE_BURST": 10000,
        "HOMEAPP_TYPING_RATE": 10000, "HOMEAPP_TYPING_BURST": 10000}


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


@pytest.fixture(scope="session")
def memory_server(server_factory):
    return server_factory(**FAST)


@pytest.fixture(scope="session")
def redis_backed_server(server_factory, redis_server):
    return server_factory(REDIS_URL=redis_server.url, **FAST)


@pytest.fixture(params=["memory", "redis"])
def server(request):
    """Each test using it runs once per presence implementation."""
    return request.getfixturevalue(f"{request.param}_server" if request.param == "memory"
                                   else "redis_backed_server")


def _peers_of(server):
    """connect(user_id=None, live=True, join=True, **kw) -> a Peer on `server`, and the peers made.

    `live` sends addOnlineUser, `join` sends joinRoom for the user's own channel:
    what the existing client does on every connect.
    """
    peers = []

    def make(user_id=None, username=None, live=True, join=True, url=None, **kwargs):
        user_id = user_id or new_user_id()
        username = username or f"user{user_id}"
        peer = Peer(url or server.url, user_id, username, **kwargs)
        peers.append(peer)
        if live:
            assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": username}) == {"ok": True}
        if join:
            assert peer.call("joinRoom", user_id) == {"ok": True}
        return peer

    return make, peers


@pytest.fixture
def connect(server):
    """Peers on each presence implementation in turn (see _peers_of)."""
    make, peers = _peers_of(server)
    yield make
    for peer in peers:
        peer.close()


@pytest.fixture
def connect_memory(memory_server):
    """Peers on the in-memory server only: for checks that do not involve presence storage."""
    make, peers = _peers_of(memory_server)
    yield make
    for peer in peers:
        peer.close()


@pytest.fixture
def users(connect):
    """users(n) -> n connected users with growing ids, each live and on its own channel."""
    def make(count, **kwargs):
        return [connect(**kwargs) for _ in range(count)]
    return make


@pytest.fixture
def memory_users(connect_memory):
    """users(n) on the in-memory server only."""
    def make(count, **kwargs):
        return [connect_memory(**kwargs) for _ in range(count)]
    return make
