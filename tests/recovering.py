"""A Socket.IO client on a bare websocket that speaks connection state recovery's fields itself
(Socket.IO 4.6): it keeps the `pid` of the CONNECT reply and the offset of the last event, and
presents both when it connects again. python-socketio's client has no recovery."""
import json
import socket
import time

import requests
import websocket
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import wait_until


class RawClient:
    def __init__(self, server, user_id=None, auth=None, pid=None, offset=None, headers=None):
        query = f"&userID={user_id}" if user_id else ""
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket{query}",
            timeout=5, header=headers or [])
        assert self.ws.recv().startswith("0")
        self.events = []       # [(event, args without the offset, offset or None)], in order
        self.before_reply = 0  # how many of them came before the CONNECT reply
        self._acks = {}
        self._next_ack = 0
        self.offset = offset
        payload = dict(auth or {})
        if pid is not None:
            payload.update(pid=pid, offset=offset)
        self.ws.send("40" + (json.dumps(payload) if payload else ""))
        self.reply = None
        self.disconnected = False
        while self.reply is None:
            self._read()
        self.before_reply = len(self.events)
        self.sid = self.reply.get("sid")
        self.pid = self.reply.get("pid")
        self.recovered = pid is not None and self.pid == pid

    def _read(self):
        text = self.ws.recv()
        if text == "2":
            self.ws.send("3")
        elif text.startswith("40"):
            self.reply = json.loads(text[2:])
        elif text.startswith("41"):
            self.disconnected = True  # by the server
        elif text.startswith("44"):
            self.reply = {"error": json.loads(text[2:])}
        elif text.startswith("42"):
            event, *args = json.loads(text[2:])
            offset = None
            if self.pid_expected() and args and isinstance(args[-1], str):
                offset = args.pop()
                self.offset = offset
            self.events.append((event, args, offset))
        elif text.startswith("43"):
            number, _, body = text[2:].partition("[")
            self._acks[int(number)] = json.loads("[" + body)

    def pid_expected(self):
        # before the reply, a recovering client cannot know yet: events then carry offsets only
        # if the server recovers it, and a fresh session sends none before its reply
        return self.reply is None or bool(self.reply.get("pid"))

    def call(self, event, data, timeout=5):
        number = self._next_ack
        self._next_ack += 1
        self.ws.send(f"42{number}" + json.dumps([event, data]))
        deadline = time.monotonic() + timeout
        while number not in self._acks:
            assert time.monotonic() < deadline, f"no ack for {event}"
            self._read()
        return self._acks.pop(number)[0]

    def wait_for(self, count, timeout=5):
        """Read until `count` events have come; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} events of {count}: {self.events}"
            self._read_for(0.2)
        return self.events

    def quiet(self, seconds=0.3):
        """Read whatever comes within `seconds`."""
        self._read_for(seconds)
        return self.events

    def _read_for(self, seconds):
        """Read what comes within about `seconds`."""
        self.ws.settimeout(0.1)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                try:
                    self._read()
                except websocket.WebSocketTimeoutException:
                    pass
        finally:
            self.ws.settimeout(5)

    def drop(self):
        """End the connection without a close: the TCP connection is reset."""
        reset(self.ws)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def reset(ws):
    """End websocket `ws`'s connection without a close: the TCP connection is reset."""
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    ws.sock.close()


def again(server, client, **kwargs):
    """Connect again as `client` would after a drop: its pid and its last offset."""
    return RawClient(server, pid=client.pid, offset=client.offset, **kwargs)


__all__ = ["RawClient", "again", "reset", "wait_until"]


def metric(process, name, **labels):
    """The sum of a metric's samples with these labels, as a server process's /metrics gives it."""
    text = requests.get(process.url + "/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
