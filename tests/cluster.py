"""Several server processes on one private redis-server, and peers connected to any of them."""
import threading

from homeapp import redis_keys
from tests.live import Peer, new_user_id
from tests.processes import RedisServer, ServerProcess, wait_until


# the tests' bursts must not be rate-limited
UNLIMITED = {"HOMEAPP_MESSAGE_RATE": 0, "HOMEAPP_TYPING_RATE": 0}


class Cluster:
    """`count` processes of app.py sharing a redis-server this cluster owns (so it may stop it)."""

    def __init__(self, count=2, **env):
        self.redis = RedisServer().start()
        self.env = dict(UNLIMITED, REDIS_URL=self.redis.url, **env)
        self.processes = []
        self.peers = []
        try:
            for _ in range(count):
                self.add_process()
        except BaseException:
            self.close()
            raise

    def add_process(self):
        process = ServerProcess(self.env).start()
        self.processes.append(process)
        return process

    def __getitem__(self, index):
        return self.processes[index]

    def peer(self, process, user_id=None, live=True, join=True, **kwargs):
        """A Peer on `process` (an index or a ServerProcess), doing what the client does on connect."""
        if isinstance(process, int):
            process = self.processes[process]
        user_id = user_id or new_user_id()
        peer = Peer(process.url, user_id, f"user{user_id}", **kwargs)
        self.peers.append(peer)
        if live:
            assert peer.call("addOnlineUser", {"userID": user_id, "userUsername": peer.username}) \
                == {"ok": True}
        if join:
            assert peer.call("joinRoom", user_id) == {"ok": True}
        return peer

    def client(self):
        return self.redis.client()

    def online(self):
        return self.client().smembers(redis_keys.ONLINE_USERS)

    def wait_for_queue(self, listeners, timeout=10):
        """Wait until `listeners` processes listen on the message queue (each does from its first client)."""
        def subscribed():
            try:
                counts = self.client().pubsub_numsub("flask-socketio")
            except Exception:
                return False
            return counts and counts[0][1] >= listeners
        wait_until(subscribed, timeout, "the processes did not all subscribe to the message queue")

    def close(self):
        for peer in self.peers:
            try:
                peer.close()
            except Exception:
                pass
        for process in self.processes:
            process.stop()
        self.redis.stop()


def all_at_once(actions, timeout=20):
    """Run each callable in its own thread, released together; re-raise the first failure."""
    barrier = threading.Barrier(len(actions))
    failures = []

    def run(action):
        try:
            barrier.wait(timeout)
            action()
        except BaseException as exc:  # noqa: B902 - reported to the test below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(action,), daemon=True) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "some actions did not finish"
    if failures:
        raise failures[0]
