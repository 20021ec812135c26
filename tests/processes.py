"""Real processes for live tests: a private redis-server and server processes on free ports."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, message):
    """Poll predicate until it is true; raise AssertionError(message) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(message)


def answers_http(proc, url, log, what):
    """True once url answers 200; raises AssertionError with the log if proc has exited."""
    if proc.poll() is not None:
        raise AssertionError(f"{what} exited with {proc.returncode}; log:\n{log()}")
    try:
        return requests.get(url + "/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def redis_binary():
    """The redis-server program; its `--sentinel` mode is Redis Sentinel."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return binary


class _RedisProcess:
    """What a redis-server and a Sentinel started here share: `client()` answers once it is up."""

    def _answers(self):
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class RedisServer(_RedisProcess):
    """A redis-server this test session owns, so it may flush and stop it.

    `options` are more redis-server arguments, e.g. ("--replicaof", "127.0.0.1", "6379").
    """

    def __init__(self, *options):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="homeapp-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self._binary = redis_binary()
        self._options = [str(option) for option in options]

    def start(self):
        self.proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *self._options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, f"redis-server did not start on port {self.port}")
        return self

    def client(self):
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2)



class RedisSentinel(_RedisProcess):
    """`redis-server --sentinel` watching `master` as SERVICE, alone: it is the quorum, and it
    declares the master down after `down_after_ms` without an answer."""

    SERVICE = "homeapp"

    def __init__(self, master, down_after_ms=1000):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="homeapp-sentinel-"))
        self.master = master
        self.down_after_ms = down_after_ms
        self.proc = None

    def start(self):
        config = self.dir / "sentinel.conf"  # Sentinel rewrites it: a file of its own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.SERVICE} 10000\n")
        self.proc = subprocess.Popen([redis_binary(), str(config), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, f"redis-sentinel did not start on port {self.port}")
        return self

    def client(self):
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)

    def master_port(self):
        """The port of the server this Sentinel calls the master now."""
        return int(self.client().sentinel_get_master_addr_by_name(self.SERVICE)[1])

    def ready_replicas(self):
        """Ports of the replicas Sentinel knows and could promote."""
        replicas = self.client().sentinel_slaves(self.SERVICE)
        return {int(r["port"]) for r in replicas
                if not (r["is_sdown"] or r["is_odown"] or r["is_disconnected"])
                and r.get("master-link-status") == "ok"}



def cpu_seconds(pid):
    """CPU time (user + system, all threads) that process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """`python app.py` on a free port with the given settings; its output goes to a log file."""

    def __init__(self, env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port), PYTHONUNBUFFERED="1")
        self.env.pop("REDIS_URL", None)
        self.env.update({k: str(v) for k, v in env.items()})
        self.log_path = Path(tempfile.mkstemp(prefix="homeapp-server-", suffix=".log")[1])
        self.proc = None

    def start(self, entry=("app.py",)):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *entry], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, f"server did not start; log:\n{self.log()}")
        return self

    def _answers(self):
        return answers_http(self.proc, self.url, self.log, "server")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self):
        """The process's resident memory now, in bytes (Linux: /proc/<pid>/status).

        Raises AssertionError when the process has exited.
        """
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024  # the kernel counts in kB
        except FileNotFoundError:
            pass
        raise AssertionError(f"server {self.proc.pid} is gone; log:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the process and wait for it; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self):
        return self.stop(signal.SIGKILL)
