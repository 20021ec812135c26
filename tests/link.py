"""A TCP link between clients and a server process that a test can cut, as the network or a
load balancer does: the client keeps its own reconnection logic and never knows it was told."""
import select
import socket
import struct
import threading

# SO_LINGER on, 0 s: close() resets the connection instead of closing it
RESET = struct.pack("ii", 1, 0)


class _Pair:
    def __init__(self, link, client, upstream):
        self.link = link
        self.client, self.upstream = client, upstream
        self.cut = False
        self.thread = threading.Thread(target=self._pump, daemon=True)

    def _pump(self):
        ends = (self.client, self.upstream)
        link = self.link
        try:
            while not self.cut:
                readable, _, _ = select.select(ends, [], [], 0.05)
                for end in readable:
                    data = end.recv(65536)
                    if not data:  # one side closed: close the other too, as a proxy does
                        return
                    if end is self.client:
                        if link.mute_marker is not None and link.mute_marker in data:
                            link.muted = True  # before the server can answer this very chunk
                        self.upstream.sendall(data)
                    elif not link.muted:
                        self.client.sendall(data)
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
    mute_after(marker): once a client sends a chunk containing `marker`, the server still gets
    all the clients send but they get nothing back, as if the server stalled right after it
    carried that out, until unmute().
    """

    mute_marker = None
    muted = False

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
                pair = _Pair(self, client, upstream)
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

    def mute_after(self, marker):
        self.mute_marker = marker

    def unmute(self):
        """Answers flow again: the connections that lost some are reset, new ones are whole."""
        target = self._target
        self.cut()
        self.mute_marker, self.muted = None, False
        self.restore(target)

    def close(self):
        self._listener.close()
        self.cut()
