"""Several server processes on one private redis-server, peers connected to any of them, nginx in front."""
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from homeapp.presence.keeper import SETTLE_SECONDS
from homeapp.store import redis_keys
from tests import payloads
from tests.live import Peer, new_user_id, settle
from tests.processes import (ROOT, RedisSentinel, RedisServer, ServerProcess, answers_http, free_port,
                             wait_until)

# the tests' bursts must not be rate-limited
UNLIMITED = {"HOMEAPP_MESSAGE_RATE": 0, "HOMEAPP_TYPING_RATE": 0, "HOMEAPP_NOTIFICATION_RATE": 0}


class Cluster:
    """`count` processes of app.py sharing a redis-server this cluster owns (so it may stop it).

    `redis_server` is another one to own instead, started: anything with `url`, `client()` and
    `stop()`, such as a SentinelGroup.
    """

    def __init__(self, count=2, redis_server=None, **env):
        self.redis = redis_server or RedisServer().start()
        self.env = dict(UNLIMITED, REDIS_URL=self.redis.url, **env)
        self.processes = []
        self.peers = []
        try:
            for _ in range(count):
                self.add_process()
        except BaseException:
            self.close()
            raise

    def add_process(self, entry=("app.py",), **env):
        process = ServerProcess(dict(self.env, **env)).start(entry)
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

    def carries_on_after_failover(self, sender, receiver, room, observer, within):
        """After a failover, without a restart: a message from `sender` (on process 0) reaches
        `receiver` (on process 1) again, then a new user's addOnlineUser on process 1 works and
        `observer` hears it announced, each within `within()` seconds; a refusal meanwhile is
        UNAVAILABLE, never a crash. Returns the new user's peer."""
        def crossed():
            sender.emit("message", payloads.message(sender.user_id, room, "after"))
            time.sleep(0.3)
            return any(p["message"] == "after" for _, p in receiver.got("messageRoom"))
        wait_until(crossed, within(), "no message crossed processes after the failover")

        newcomer = self.peer(1, live=False)
        hello = {"userID": newcomer.user_id, "userUsername": newcomer.username}

        def added():
            ack = newcomer.call("addOnlineUser", hello)
            if ack == {"ok": True}:
                return True
            assert ack["code"] == "UNAVAILABLE", ack
            time.sleep(0.2)
            return False
        wait_until(added, within(), "addOnlineUser kept failing after the failover")
        observer.wait_for("newOnlineUser", lambda p: p == {"type": "Add", "userID": newcomer.user_id},
                          timeout=within())
        return newcomer

    def keeps_everyone_online_after_failover(self, live, observers, outage_began, presence_timeout,
                                             within):
        """After a failover: onlineUsers on the new master is exactly the peers `live` (within
        `within()` seconds), and past the time any reaper holds off after the outage
        (`presence_timeout`: HOMEAPP_PRESENCE_TIMEOUT) no observer heard any of them Remove."""
        users = {peer.user_id for peer in live}
        wait_until(lambda: self.online() == users, within(),
                   f"onlineUsers on the new master is {self.online()}, not {users}")
        time.sleep(max(0.0, outage_began + SETTLE_SECONDS + presence_timeout + 1 - time.monotonic()))
        settle(*observers)
        for observer in observers:
            assert [p for p in observer.presence_of(*users) if p["type"] == "Remove"] == []
        assert self.online() == users

    def client(self):
        return self.redis.client()

    def online(self):
        return self.client().smembers(redis_keys.ONLINE_USERS)

    def listeners(self, channel=redis_keys.QUEUE):
        """How many connections listen on a message-queue channel, by sharded or plain pub/sub."""
        client = self.client()
        return client.pubsub_shardnumsub(channel)[0][1] + client.pubsub_numsub(channel)[0][1]

    def wait_for_queue(self, listeners, timeout=10):
        """Wait until `listeners` processes listen on the message queue (each does from its first client)."""
        def subscribed():
            try:
                return self.listeners() >= listeners
            except redis.RedisError:
                return False
        wait_until(subscribed, timeout, "the processes did not all subscribe to the message queue")

    def close(self):
        for peer in self.peers:
            peer.close()
        for process in self.processes:
            process.stop()
        self.redis.stop()


class SentinelGroup:
    """A master, one replica of it and a Sentinel watching both, each a private process:
    `url` is REDIS_URL in the Sentinel form. Kill the master and Sentinel promotes the replica."""

    def __init__(self):
        self.master = self.replica = self.sentinel = None
        try:
            self.master = RedisServer().start()
            self.replica = RedisServer("--replicaof", "127.0.0.1", self.master.port).start()
            wait_until(self._replicating, 10, "the replica did not connect to the master")
            self.sentinel = RedisSentinel(self.master).start()
            wait_until(lambda: self.replica.port in self.sentinel.ready_replicas(), 30,
                       "Sentinel did not find the replica")
        except BaseException:
            self.stop()
            raise
        self.url = f"redis+sentinel://127.0.0.1:{self.sentinel.port}/0/{RedisSentinel.SERVICE}"

    def _replicating(self):
        return self.replica.client().info("replication").get("master_link_status") == "up"

    def client(self):
        """A client of whichever server is the master now."""
        return Sentinel([("127.0.0.1", self.sentinel.port)], socket_timeout=2).master_for(
            RedisSentinel.SERVICE, decode_responses=True, socket_timeout=2)

    def stop(self):
        for process in (self.sentinel, self.replica, self.master):
            if process is not None:
                process.stop()


def all_at_once(actions, timeout=20):
    """Run each callable in its own thread, released together; re-raise the first failure."""
    barrier = threading.Barrier(len(actions))
    failures = []

    def run(action):
        try:
            barrier.wait(timeout)
            action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(action,), daemon=True) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "some actions did not finish"
    if failures:
        raise failures[0]


NGINX = Path("/usr/sbin/nginx")


class NginxProxy:
    """A private nginx running deploy/nginx.conf in front of the given processes, on a free port."""

    def __init__(self, processes):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="homeapp-nginx-"))
        self.dir.chmod(0o755)  # its workers run as nobody
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        backends = "".join(f"    server 127.0.0.1:{p.port};\n" for p in processes)
        servers = re.compile(r"(?m)^    server 127\.0\.0\.1:\d+;\n")
        first = servers.search(site)
        upstreams = first is not None
        if upstreams:  # the example's backends give way to this test's, where they stood
            site = site[:first.start()] + backends + servers.sub("", site[first.start():])
        site, listens = re.subn(r"(?m)^    listen 80;$", f"    listen 127.0.0.1:{self.port};", site)
        assert upstreams and listens == 1, "deploy/nginx.conf no longer has the lines this test rewrites"
        (self.dir / "homeapp.conf").write_text(site)
        (self.dir / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  access_log {self.dir}/access.log;\n"
            + "".join(f"  {kind}_temp_path {self.dir}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + f"  include {self.dir}/homeapp.conf;\n}}\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(NGINX), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, 10, f"nginx did not start:\n{self.log()}")
        return self

    def _answers(self):
        return answers_http(self.proc, self.url, self.log, "nginx")

    def log(self):
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
