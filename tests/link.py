"""A TCP link between clients and a server process that a test can cut, as the network or a
load balancer does: the client keeps its own reconnection logic and never knows it was told."""
import select
import socket
import struct
import threading

# SO_LINGER on, 0 s: close() resets the connection instead of closing it
RESET = struct.pack("ii", 1, 0)


class _Pair:
    def __init__(self, client, upstream):
        self.client, self.upstream = client, upstream
        self.cut = False
        self.thread = threading.Thread(target=self._pump, daemon=True)

    def _pump(self):
        ends = (self.client, self.upstream)
        try:
            while not self.cut:
                readable, _, _ = select.select(ends, [], [], 0.05)
                for end in readable:
                    data = end.recv(65536)
                    if not data:  # one side closed: close the other too, as a proxy does
                        return
                    (self.upstream if end is self.client else self.client).sendall(data)
        except OSError:
            return
        finally:
            for end in ends:
                if self.cut:
                    end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                end.close()


class Link:
    """Listens on `url`, forwarding each connection to `server` (anything with a `port`).

    cut() resets every connection through it and refuses new ones (each is reset at once, as
    when the network is down) until restore(), which may point it at another process.
    """

    def __init__(self, server):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._target = server
        self._pairs = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:  # so that cut() sees every pair made before it
                try:
                    if self._target is None:
                        raise OSError("the link is cut")
                    upstream = socket.create_connection(("127.0.0.1", self._target.port), timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                    client.close()
                    continue
                pair = _Pair(client, upstream)
                self._pairs.append(pair)
            pair.thread.start()

    def cut(self):
        """Reset every connection and refuse new ones; returns once both ends of each are reset."""
        with self._lock:
            self._target, pairs, self._pairs = None, self._pairs, []
        for pair in pairs:
            pair.cut = True
        for pair in pairs:
            pair.thread.join(5)

    def restore(self, server):
        """Forward new connections to `server` from now on."""
        with self._lock:
            self._target = server

    def close(self):
        self._listener.close()
        self.cut()
