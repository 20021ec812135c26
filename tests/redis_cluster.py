"""A private Redis Cluster for live tests: three masters and a replica of each, on loopback."""
import shutil
import signal
import socket
import subprocess

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.processes import RedisServer, free_port, wait_until

# seconds a master may not answer before the cluster promotes its replica: short, for the tests
NODE_TIMEOUT_MS = 2000


# a node also listens on its port + 10000 for the cluster's own bus
BUS_OFFSET = 10000


def cluster_port():
    """A free loopback port whose bus port (+10000) is a port, and free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port


def cluster_node(port=None):
    """A RedisServer in cluster mode, not started, on `port` or one with room for its bus."""
    node = RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",  # in its own dir
                       "--cluster-node-timeout", NODE_TIMEOUT_MS)
    node.port = port or cluster_port()
    node.url = f"redis://127.0.0.1:{node.port}/0"
    return node


def _redis_cli():
    binary = shutil.which("redis-cli")
    if binary is None:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
    return binary


class RedisClusterGroup:
    """`masters` masters with `replicas` replicas each, every one a private redis-server (so
    the tests may kill any): `url` is REDIS_URL in the cluster form, naming every node."""

    def __init__(self, masters=3, replicas=1, ports=None):
        """`ports`: the nodes' ports, masters first (cluster_port() gives them); free ones unless given."""
        self.nodes = []
        self.replicas = replicas
        ports = ports or [None] * (masters * (1 + replicas))
        try:
            for port in ports:
                self.nodes.append(cluster_node(port).start())
            subprocess.run([_redis_cli(), "--cluster", "create",
                            *(f"127.0.0.1:{node.port}" for node in self.nodes),
                            "--cluster-replicas", str(replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            wait_until(self._ready, 60, "the cluster did not reach cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def _ready(self):
        """Every live node says the cluster is ok and knows every other node, and each master
        has as many replicas in sync as asked (a replica that never synced is not promoted)."""
        try:
            for node in self.live_nodes():
                client = node.client()
                if client.cluster("info")["cluster_state"] != "ok" or \
                        len(client.cluster("nodes")) != len(self.nodes):
                    return False
                replication = client.info("replication")
                if replication["role"] == "master" and replication["connected_slaves"] < self.replicas:
                    return False
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
            return True
        except redis.RedisError:
            return False

    def live_nodes(self):
        return [node for node in self.nodes if node.proc.poll() is None]

    def client(self):
        """A cluster client of the live nodes, decoding replies."""
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in self.live_nodes()],
                            decode_responses=True, socket_timeout=2)

    def masters(self):
        """The live nodes that say they are masters now (a stalled one says nothing)."""
        found = []
        for node in self.live_nodes():
            try:
                if node.client().info("replication")["role"] == "master":
                    found.append(node)
            except redis.RedisError:
                continue
        return found

    def master_of(self, key):
        """The node that is the master of `key`'s slot now, as a live master tells."""
        slot = self.client().keyslot(key)
        for start, end, master, *_ in self.masters()[0].client().cluster("slots"):
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == master[1])
        raise AssertionError(f"no master holds the slot of {key!r}")

    def kill(self, node):
        """SIGKILL a node, as a crash would; its replica is promoted after the node timeout."""
        node.proc.kill()
        node.proc.wait(10)

    def wait_until_promoted(self, dead, key, timeout=30):
        """Wait until another master holds `key`'s slot and every master says the cluster is ok."""
        def promoted():
            try:
                return self.master_of(key) is not dead and all(
                    n.client().cluster("info")["cluster_state"] == "ok" for n in self.masters())
            except (redis.RedisError, AssertionError):
                return False
        wait_until(promoted, timeout, f"no replica took over the slot of {key!r}")

    def stop(self):
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)  # a stalled node could not stop
            node.stop()
