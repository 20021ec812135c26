"""The servers under test, how each is started on its core, and the private Redis beside them."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SERVER_CORE = "0"
LOADGEN_CORE = "1"

# The settings the brief fixes for every HomeApp run: no per-socket rate limit.
HOMEAPP_ENV = {"HOMEAPP_MESSAGE_RATE": "0", "HOMEAPP_TYPING_RATE": "0"}


@dataclass(frozen=True)
class Target:
    """A server the load generator can drive.

    `flavour` tells the generator how deliveries come back: "server" (the protocol's events)
    or "echo" (the ceiling returns the incoming frame as it came).
    """

    name: str
    label: str
    argv: tuple
    env: dict = field(default_factory=dict)
    flavour: str = "server"
    uses_redis: bool = False

    def command(self, port):
        return [part.replace("{port}", str(port)) for part in self.argv]


PYTHON = sys.executable
EVENTED_POOL = 64  # greenlets handling packets at once in evented-echo-pool, for 200 relay sockets

TARGETS = {t.name: t for t in (
    Target("homeapp", "HomeApp as shipped", (PYTHON, "app.py"), HOMEAPP_ENV),
    Target("node", "Node.js Socket.IO 4.8 peer", ("node", "bench/peers/node-server/server.js")),
    Target("echo", "gevent-websocket echo ceiling",
           (PYTHON, "bench/peers/echo_server.py", "--port", "{port}"), flavour="echo"),
    Target("echo-nodelay", "echo ceiling + TCP_NODELAY",
           (PYTHON, "bench/peers/echo_server.py", "--port", "{port}", "--nodelay"), flavour="echo"),
    Target("evented-echo", "evented echo, no greenlet per socket",
           (PYTHON, "bench/peers/evented_echo.py", "--port", "{port}"), flavour="echo"),
    Target("evented-echo-pool", "evented echo, handlers in a greenlet pool",
           (PYTHON, "bench/peers/evented_echo.py", "--port", "{port}", "--pool", str(EVENTED_POOL)),
           flavour="echo"),
)}


def with_redis(target):
    """The same server with presence in Redis (and, for HomeApp, the Redis message queue)."""
    return Target(target.name + "+redis", target.label + ", Redis presence", target.argv,
                  target.env, target.flavour, uses_redis=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, timeout=20.0):
    """Return once something accepts on 127.0.0.1:port; raise if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout:.0f} s")


def stop(process, timeout=5.0):
    """SIGTERM our own child, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class RunningServer:
    """A target started on the server core; use as a context manager."""

    def __init__(self, target, log_path, redis_url=None, cwd=ROOT):
        self.target = target
        self.cwd = cwd  # another checkout of the server, to compare two versions in one run
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ, **target.env, PORT=str(self.port), HOST="127.0.0.1")
        env.pop("REDIS_URL", None)
        if target.uses_redis:
            if not redis_url:
                raise RuntimeError(f"{target.name} needs Redis, and none is running")
            env["REDIS_URL"] = redis_url
        self._env = env

    def __enter__(self):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *self.target.command(self.port)], cwd=self.cwd, env=self._env,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, self.process)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def pid(self):
        return self.process.pid  # taskset execs the server: same pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        stop(self.process)
        self._log.close()


class PrivateRedis:
    """A throw-away redis-server on a free port, pinned beside the load generator; never 6379."""

    def __init__(self, log_path):
        self.port = free_port()
        self.log_path = log_path

    @staticmethod
    def available():
        return shutil.which("redis-server") is not None

    def __enter__(self):
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["taskset", "-c", LOADGEN_CORE, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        return self

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self):
        """Empty this private instance between runs (it holds nothing else)."""
        import redis
        redis.Redis(port=self.port).flushall()

    def __exit__(self, *exc):
        stop(self.process)
        self._log.close()
