"""The websocket frame path: an open websocket without a greenlet.

A greenlet per connection blocked in a reader, with its saved stack, pywsgi's handler, its read
buffer and gevent's socket with two watchers, took 41.5 KB per idle socket (bench/evented.md).
Here, once the upgrade is answered (homeapp/transport/worker.py hands the descriptor over), a
connection is one Connection, one event-loop watcher and the kernel's socket; with TLS that
this process terminates, gevent's TLS socket too, read and written without blocking (TlsSocket):

- The read watcher calls back when bytes arrive: one non-blocking read into a buffer every
  connection shares (the loop runs one callback at a time), then every complete frame is
  parsed and an incomplete one kept for the next call.
- The frame rules are RFC 6455's (tests/test_rfc6455.py checks them case by case):
  client frames masked (1002), no reserved bits or opcodes (1002), control frames final and at
  most 125 bytes (1002), fragments in order (1002), text strict UTF-8 (1007), a close frame
  with a valid code and reason (1002, 1007), a message
  over `max_message` bytes refused at the header of the frame that takes it past (1009), and
  one of more than MAX_FRAGMENTS frames refused (1008). A fragmented message is gathered in one
  buffer, so what it holds is its bytes, however many frames brought them.
  Complete messages go to the listener (homeapp/transport/evented.py), text as str, binary
  as bytes, in the event loop: it must not block.
- Writes never block: frames wait on the connection and leave in one system call per
  connection when the loop next runs; what the kernel does not take waits for a write
  watcher, made only then. More than `max_pending` bytes waiting, and the client is cut off.
- The server's close frame starts `close_grace` seconds for the client to answer it; then
  the connection is cut (a client gone silent would otherwise hold it until TCP gives up).

Imports only the standard library, gevent and wsaccel.
"""
import logging
import ssl
import struct
import gevent
from wsaccel.xormask import XorMaskerSimple

log = logging.getLogger("homeapp.transport")

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
PROTOCOL_ERROR, INVALID_TEXT, POLICY, TOO_BIG = 1002, 1007, 1008, 1009
# fragments in one message: bytes alone do not bound the work or the bookkeeping of a message
# sent as endless empty continuation frames
MAX_FRAGMENTS = 1024

_scratch = bytearray(65536)
_scratch_view = memoryview(_scratch)
_to_flush = []  # connections written to since the event loop last flushed


class ProtocolError(Exception):
    """A frame this side refuses; `code` is the close code it is answered with."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def frame(opcode, payload):
    """A final, unmasked frame, as a server writes it."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


class Connection:
    """One open websocket on a non-blocking standard-library socket, at rest between callbacks.

    start(listener) begins reading; the listener's received(message) gets each message and
    its ended() the end, once, however it came. send() queues a message, close_gracefully()
    the server's close frame; neither blocks nor raises.
    """

    # what Engine.IO's gevent driver copies from the websocket it is handed
    version, path, origin, protocol = "13", None, None, None

    __slots__ = ("sock", "limits", "early", "listener", "reader", "writer", "unparsed", "fragments",
                 "fragmented", "fragment_count", "pending", "pending_bytes", "flush_due", "closing",
                 "closed", "grace")

    def __init__(self, sock, early, limits):
        self.sock = sock
        self.limits = limits  # a worker.FrameLimits, shared by every connection
        self.early = early  # what arrived with the request, read before the hand-over
        self.listener = None
        self.reader = gevent.get_hub().loop.io(sock.fileno(), 1)
        self.writer = None  # a write watcher while the kernel's send buffer is full
        self.unparsed = b""  # the start of a frame that has not fully arrived
        self.fragments = None  # the payload so far of a fragmented message in progress
        self.fragmented = None  # that message's opcode
        self.fragment_count = 0  # and its frames so far
        self.pending = None  # frames to write when the loop next runs
        self.pending_bytes = 0
        self.flush_due = False  # in _to_flush
        self.closing = False  # the server's close frame is written: nothing more is
        self.closed = False  # the descriptor is closed
        self.grace = None  # the timer that cuts a connection whose client never answers the close

    def start(self, listener):
        self.listener = listener
        if self.closed:
            return
        self.reader.start(self._on_readable)
        early, self.early = self.early, b""
        if early:
            self._received(early)
        if self.sock.__class__ is TlsSocket and not self.closed:
            # TLS may hold decrypted bytes that the request's reader left: the descriptor
            # would not wake the watcher for them
            self._on_readable()

    def pause(self):
        """Stop reading (the listener has enough waiting); resume() starts again."""
        self.reader.stop()

    def resume(self):
        if not self.closed and not self.reader.active:
            self.reader.start(self._on_readable)

    # ------------------------------------------------------------ reading

    def _on_readable(self):
        """Runs in the event loop: one non-blocking read of what the kernel holds."""
        try:
            size = self.sock.recv_into(_scratch)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        if not size:  # the client closed its side
            self.close()
            return
        view = _scratch_view[:size]
        self._received(self.unparsed + view if self.unparsed else view.tobytes())

    def _received(self, data):
        """Hand every complete frame in `data` on; keep an incomplete one for the next read."""
        pos, end = 0, len(data)
        try:
            while end - pos >= 2 and not self.closed:
                first, second = data[pos], data[pos + 1]
                size, head = second & 0x7F, pos + 2
                if size == 126:
                    if end - head < 2:
                        break
                    size, head = int.from_bytes(data[head:head + 2], "big"), head + 2
                elif size == 127:
                    if end - head < 8:
                        break
                    size, head = int.from_bytes(data[head:head + 8], "big"), head + 8
                if not second & 0x80 or first & 0x70:  # unmasked, or an extension none agreed
                    raise ProtocolError(PROTOCOL_ERROR)
                self._check_size(first, size)  # before the payload is waited for
                start = head + 4
                if end - start < size:
                    break
                payload = XorMaskerSimple(data[head:start]).process(data[start:start + size])
                pos = start + size
                self._frame(first, payload)
        except ProtocolError as exc:
            self.close(struct.pack("!H", exc.code))
            return
        self.unparsed = data[pos:] if pos < end else b""

    def _check_size(self, first, size):
        opcode = first & 0x0F
        if opcode >= CLOSE:
            if size > 125 or not first & 0x80:  # control frames: small, never fragmented
                raise ProtocolError(PROTOCOL_ERROR)
        elif size + (len(self.fragments) if opcode == CONTINUATION and self.fragments is not None
                     else 0) > self.limits.max_message:
            raise ProtocolError(TOO_BIG)

    def _frame(self, first, payload):
        """One unmasked frame. Raises ProtocolError for a frame out of order, or text that is
        not UTF-8."""
        opcode = first & 0x0F
        if first & 0x80 and opcode == TEXT and self.fragments is None:  # nearly every frame
            self._message(opcode, payload)
            return
        if opcode >= CLOSE:
            if opcode == PING:
                if not self.closing:
                    self._write(frame(PONG, payload))
            elif opcode == CLOSE:
                _check_close(payload)
                self.close(payload[:2])  # the client's code back, as the close handshake asks
            elif opcode != PONG:
                raise ProtocolError(PROTOCOL_ERROR)
            return
        if opcode == CONTINUATION and self.fragments is not None:
            self.fragment_count += 1
            if self.fragment_count > MAX_FRAGMENTS:
                raise ProtocolError(POLICY)
            self.fragments += payload  # one buffer: an empty fragment adds nothing to hold
        elif opcode in (TEXT, BINARY) and self.fragments is None:
            self.fragments = bytearray(payload)
            self.fragmented = opcode
            self.fragment_count = 1
        else:
            raise ProtocolError(PROTOCOL_ERROR)
        if first & 0x80:
            message, self.fragments = bytes(self.fragments), None
            self._message(self.fragmented, message)

    def _message(self, opcode, payload):
        if self.closing:  # after the server's close frame, only the client's answer counts
            return
        if opcode == TEXT:
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(INVALID_TEXT) from None
        self.listener.received(payload)

    # ------------------------------------------------------------ writing

    def send(self, message):
        """Queue a message (str: a text frame, bytes: a binary one), written when the event
        loop next runs. Never blocks, never raises: after the close it is dropped."""
        if self.closing or self.closed:
            return
        if message.__class__ is str:
            self._write(frame(TEXT, message.encode()))
        else:
            self._write(frame(BINARY, message))

    def _write(self, data):
        if self.pending is None:
            self.pending = []
        self.pending.append(data)
        self.pending_bytes += len(data)
        max_pending = self.limits.max_pending
        if max_pending is not None and self.pending_bytes > max_pending:
            self._give_up()
        elif not self.flush_due and self.writer is None:  # else the write watcher will
            if not _to_flush:
                gevent.get_hub().loop.run_callback(_flush_all)
            _to_flush.append(self)
            self.flush_due = True

    def flush(self):
        """Write what the kernel takes now; the rest waits for the write watcher, which calls
        this again. Runs in the event loop (or where a close frame must leave at once)."""
        if self.closed or not self.pending:
            return
        data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client is gone
            self.close()
            return
        self.pending_bytes -= sent
        if sent == len(data):
            self.pending = None
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            return
        self.pending = [data[sent:]]
        if self.writer is None:
            self.writer = gevent.get_hub().loop.io(self.sock.fileno(), 2)
            self.writer.start(self.flush)

    def _give_up(self):
        """Drop what a client that does not read was sent, and cut it off."""
        try:
            peer = self.sock.getpeername()
        except OSError:
            peer = None
        log.info("cutting the connection of %s, which did not read %d bytes", peer, self.pending_bytes)
        self.pending = None
        self.pending_bytes = 0
        self.close()

    # ------------------------------------------------------------ the end

    def close_gracefully(self):
        """The server's close frame, written now if the kernel takes it; the connection ends
        when the client answers it, or close_grace seconds later."""
        if self.closing or self.closed:
            return
        self._write(frame(CLOSE, b""))  # no code: what Engine.IO's close means has no number
        self.closing = True
        self.flush()
        grace = self.limits.close_grace
        if grace is not None and not self.closed:
            self.grace = gevent.get_hub().loop.timer(grace)
            self.grace.start(self.close)

    def close(self, close_payload=None):
        """End the connection now, once: a close frame with `close_payload` first if given
        (written if the kernel takes it at once), then the descriptor; then the listener hears
        of the end."""
        if self.closed:
            return
        if close_payload is not None and not self.closing and self.writer is None:
            self._write(frame(CLOSE, close_payload))
            self.flush()
            if self.closed:  # the write failed and closed it
                return
        self.closed = True
        self.reader.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.grace is not None:
            self.grace.close()
            self.grace = None
        self.sock.close()
        self.pending = None
        self.pending_bytes = 0
        if self.listener is not None:
            self.listener.ended()


class TlsSocket:
    """A TLS connection (gevent's SSLSocket, past its handshake) that Connection reads and writes
    as it does a plain non-blocking socket: a read that OpenSSL cannot complete yet raises
    BlockingIOError, a write it cannot complete sends 0 bytes (OpenSSL writes a record whole
    or not at all, and is given the same bytes first when it is retried).

    Connection's 64 KB reads take a TLS record (16 KB at most) whole, so after a read OpenSSL
    holds nothing the descriptor's readiness would not announce.

    gevent's server closes the TLS socket when the request's handler ends, right after the
    hand-over. A socket closes its descriptor only once every file made from it is closed
    too (socket.makefile), so `held` keeps this connection's open until close()."""

    __slots__ = ("tls", "held")

    def __init__(self, tls):
        tls.settimeout(0)
        self.tls = tls
        self.held = tls.makefile("rb", buffering=0)

    def fileno(self):
        return self.tls.fileno()

    def recv_into(self, buffer):
        try:
            return self.tls.recv_into(buffer)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None

    def send(self, data):
        return self.tls.send(data)

    def getpeername(self):
        return self.tls.getpeername()

    def close(self):
        self.held.close()
        self.tls.close()


def _check_close(payload):
    """A client's close frame: no payload, or a code a client may send (RFC 6455 section 7.4:
    the protocol's, as IANA registered them up to 1014, but not 1004-1006, which are never
    sent; 3000-4999 for libraries and applications) and a UTF-8 reason. Raises ProtocolError."""
    if not payload:
        return
    if len(payload) < 2:
        raise ProtocolError(PROTOCOL_ERROR)
    code = int.from_bytes(payload[:2], "big")
    if not (1000 <= code <= 1014 and not 1004 <= code <= 1006 or 3000 <= code <= 4999):
        raise ProtocolError(PROTOCOL_ERROR)
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_TEXT) from None


def _flush_all():
    """Runs in the event loop once per turn that wrote anything: each connection's frames in
    one system call."""
    batch = _to_flush[:]
    _to_flush.clear()
    for conn in batch:
        conn.flush_due = False
        if conn.writer is None:  # else its write watcher is waiting for the kernel
            conn.flush()
