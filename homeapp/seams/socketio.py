"""python-socketio's Server and Packet, where homeapp needs more than its public API (versions:
homeapp/seams/versions.py).

Per-server behaviour is never set on a library instance: a Server method is replaced once, for
the class, by one that looks up the hook a server registered (by create_app, through the
functions below) and runs the library's own method where none is. Flask-SocketIO builds the
Server itself (flask_socketio.SocketIO.init_app), so a Server subclass is not an option.

homeapp's client managers (the message queue, the in-memory histories) subclass the base
classes at the end of this module, which give them hooks of their own names in place of
python-socketio's: the queue's publish() and listen() stand on the `_publish`/`_listen`
extension points that python-socketio's PubSubManager documents for custom queues; the rest
(the room bookkeeping, `emit`, `initialize`, `set_server`, `_handle_emit`) is not documented
as an extension point.
"""
import logging
import weakref

from socketio import RedisManager, packet
from socketio.manager import Manager
from socketio.server import Server

from homeapp.seams import engineio as engineio_seam

DISTRIBUTION = "python-socketio"

# python-socketio's own
_library_handle_eio_message = Server._handle_eio_message
_library_handle_connect = Server._handle_connect
_library_handle_disconnect = Server._handle_disconnect
_library_send_packet = Server._send_packet

# One table per replaced method: id(server) -> the hook that server registered. A server's entry
# goes with the server.
_message_guards = {}  # guard(server, eio_sid, data)
_connect_handlers = {}  # handler(server, eio_sid, namespace, data)


def install():
    """Replace what this module replaces in python-socketio's Server, for the whole class.
    Called by homeapp.seams.install() before any Server is built: a Server hands its bound
    `_handle_eio_message` to Engine.IO when it is built (`_handle_connect` is looked up at each
    CONNECT)."""
    Server._handle_eio_message = _handle_eio_message
    Server._handle_connect = _handle_connect
    Server._send_packet = _send_packet


def guard_messages(server, guard):
    """Have `guard(server, eio_sid, data)` receive every Engine.IO message of `server` in place
    of python-socketio's handler; the guard passes those it accepts to handle_message()."""
    _register(_message_guards, server, guard)


def handle_connects(server, handler):
    """Have `handler(server, eio_sid, namespace, data)` answer every namespace CONNECT of
    `server` in place of python-socketio's; it may pass one on to handle_connect()."""
    _register(_connect_handlers, server, handler)


def send_packet(server, eio_sid, pkt):
    """Send a Socket.IO packet to Engine.IO session `eio_sid`, as python-socketio does."""
    server._send_packet(eio_sid, pkt)


_EVENT = str(packet.EVENT)


def emit_here(manager, event, data, namespace, room=None, skip_sid=None, text=None):
    """python-socketio's delivery of an emit without an acknowledgement to the sockets of this
    process (Manager.emit), whatever the manager's class does in front of it (a queue, a
    history): the packet encoded once, as Manager.emit does (event_text), and its text written
    to each socket as it is, without the Engine.IO packet and the four calls per recipient that
    python-socketio and Engine.IO make to send it (homeapp.seams.engineio.send_message).
    `text`: that packet, when the caller encoded it already (a memory history keeps it)."""
    server = manager.server
    if "_send_eio_packet" in vars(server):  # wrapped on this server (Flask-SocketIO's test client)
        if text is not None:
            event, *data = server.packet_class.json.loads(text[text.index("["):])
            data = tuple(data)
        return Manager.emit(manager, event, data, namespace, room=room, skip_sid=skip_sid)
    if namespace not in manager.rooms:
        return None
    if text is None:
        text = event_text(server, event, data, namespace)
    if not isinstance(skip_sid, list):
        skip_sid = [skip_sid]
    eio = server.eio
    if room.__class__ is list and len(room) == 1:  # to=[channel], as the handlers give it
        room = room[0]
    if room is None or room.__class__ is str:  # one room: its members (copied, as the library
        # does: a send can end a socket), without the library's generator
        members = manager.rooms[namespace].get(room)
        recipients = () if members is None else list(members.items())
    else:
        recipients = manager.get_participants(namespace, room)
    for sid, eio_sid in recipients:
        if sid not in skip_sid:
            engineio_seam.send_message(eio, eio_sid, text)
    return None


def event_text(server, event, data, namespace="/"):
    """The text of the EVENT packet of an emit without an acknowledgement (Packet.encode of an
    EVENT without an id or attachments, which TextPacket never has, without the packet object).
    `data` as Manager.emit takes it: a tuple is the arguments, anything else one."""
    if isinstance(data, tuple):
        data = list(data)
    elif data is not None:
        data = [data]
    else:
        data = []
    return (_EVENT if namespace == "/" else f"{_EVENT}{namespace},") \
        + server.packet_class.json.dumps([event] + data)


def args_text(server, args):
    """event_text() on "/" of a list of arguments, the event's name first: for a caller that
    has them in one list already (no tuple, and no list made of it)."""
    return _EVENT + server.packet_class.json.dumps(args)


def no_ack(server):
    """What an event handler returns to send no acknowledgement at all: python-socketio's value
    for an event that no handler took (Server.not_handled), for which it sends none."""
    return server.not_handled


def _register(table, server, hook):
    if id(server) not in table:
        weakref.finalize(server, table.pop, id(server), None)
    table[id(server)] = hook


def event_trigger(server):
    """`server`'s dispatch of an event to its handlers, `trigger(event, namespace, *args)`, as it
    is now: python-socketio's `_trigger_event`, or what the Admin UI's instrument() set in its
    place on the instance."""
    return server._trigger_event


def trigger_events_with(server, trigger):
    """Have `server` dispatch its events with `trigger` (which may call what event_trigger gave).
    On the instance, over what instrument() set there: the instrumentation is per server."""
    server._trigger_event = trigger


_ACK = str(packet.ACK)
_SHORT_ID = 15  # digits of an ack id read here; a longer one is left to python-socketio


def handle_message(server, eio_sid, data):
    """python-socketio's handling of an Engine.IO message (decode, then dispatch), with the same
    outcome. An EVENT on "/" whose arguments are a JSON array led by the event's name, with or
    without an ack id (every event of this protocol's clients), is read from its text and its
    handler called, and the ack written as text: no packet objects, and four calls fewer each
    way. Anything else, a socket not connected, python-socketio's logging on, or a hook on the
    instance goes to python-socketio's own handling, which decodes, refuses and logs it as ever."""
    if data[:1] == _EVENT and not server.async_handlers:
        start = data.find("[", 1)
        ack = data[1:start]
        if start > 0 and (not ack or (len(ack) <= _SHORT_ID and ack.isascii() and ack.isdigit())):
            try:
                args = server.packet_class.json.loads(data[start:])
            except ValueError:
                args = None  # refused by python-socketio's decoding below, as ever
            if args.__class__ is list and args and args[0].__class__ is str \
                    and not server.logger.isEnabledFor(logging.INFO) \
                    and not _hooked(server):
                manager = server.manager
                sid = manager.sid_from_eio_sid(eio_sid, "/")
                if sid is not None and manager.is_connected(sid, "/"):
                    return _handle_event(server, eio_sid, sid, args, ack)
    return _library_handle_eio_message(server, eio_sid, data)


def _hooked(server):
    """Whether the Admin UI (_trigger_event) or Flask-SocketIO's test client (the sends) put a
    method of their own on this server: then every packet takes python-socketio's way."""
    own = vars(server)
    return "_trigger_event" in own or "_send_packet" in own or "_send_eio_packet" in own


def _handle_event(server, eio_sid, sid, args, ack):
    """python-socketio's _handle_event_internal on "/": the handler, then the ack, if asked for."""
    event = args[0]
    handlers = server.handlers.get("/")
    handler = handlers.get(event) if handlers is not None else None
    if handler is None or event in server.reserved_events:  # a catch-all's, connect, disconnect
        result = server._trigger_event(event, "/", sid, *args[1:])
    else:
        result = handler(sid, *args[1:])
    if ack and result is not server.not_handled:
        # tuples are several arguments, as python-socketio sends them
        result = [] if result is None else list(result) if isinstance(result, tuple) else [result]
        engineio_seam.send_message(server.eio, eio_sid,
                                   _ACK + str(int(ack)) + server.packet_class.json.dumps(result))


# handle_connect(server, eio_sid, namespace, data): python-socketio's own namespace CONNECT
handle_connect = _library_handle_connect


def _handle_eio_message(self, eio_sid, data):
    guard = _message_guards.get(id(self))
    if guard is None:
        return _library_handle_eio_message(self, eio_sid, data)
    return guard(self, eio_sid, data)


def _send_packet(self, eio_sid, pkt):
    """python-socketio's _send_packet (an acknowledgement, a CONNECT's answer), its text written
    through send_message as emit_here's are."""
    encoded = pkt.encode()
    if isinstance(encoded, list):  # binary attachments: never with TextPacket
        return _library_send_packet(self, eio_sid, pkt)
    engineio_seam.send_message(self.eio, eio_sid, encoded)
    return None


def _handle_connect(self, eio_sid, namespace, data):
    """The namespace CONNECT, python-socketio's or the one a server registered; then, if the
    socket's Engine.IO session ended while it was handled, the socket's disconnect.

    python-socketio passes over a socket that is still connecting when its Engine.IO session
    ends (Server._handle_disconnect: not connected yet), and the CONNECT, when it is done, counts
    it connected all the same: it then stayed in its rooms and among the app's sockets for good,
    sent every emit to them. A session ends so when the write of the CONNECT reply finds its pings
    overdue: a CONNECT that waited (a recovery's turn, a starved process: its client's PONGs wait
    behind it, evented.py), or a client that does not answer them. A reconnect storm left 473
    such sockets (bench/recovery.md). Its reason is not known any more: a transport close."""
    handler = _connect_handlers.get(id(self))
    if handler is None:
        _library_handle_connect(self, eio_sid, namespace, data)
    else:
        handler(self, eio_sid, namespace, data)
    if eio_sid not in self.environ:  # removed by the end of its Engine.IO session
        _library_handle_disconnect(self, eio_sid, namespace or "/", self.reason.TRANSPORT_CLOSE)


class FollowingManager(Manager):
    """A client manager told when its sockets enter and leave rooms, and (with a queue) when a
    message is delivered to this process's sockets: homeapp's managers follow each channel's
    position through these hooks, without overriding python-socketio's room bookkeeping."""

    def joining(self, namespace, room, first):
        """Before a socket enters a room; `first`: no socket of this process is in it yet."""

    def joined(self, sid, namespace, room, first):
        """After socket `sid` entered a room."""

    def left(self, sid, namespace, room, emptied):
        """After socket `sid` left a room; `emptied`: it was the last of this process in it."""

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        first = room not in self.rooms.get(namespace, {})
        self.joining(namespace, room, first)
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.joined(sid, namespace, room, first)

    def basic_leave_room(self, sid, namespace, room):
        held = room in self.rooms.get(namespace, {})
        super().basic_leave_room(sid, namespace, room)
        self.left(sid, namespace, room, held and room not in self.rooms.get(namespace, {}))


class KeepingManager(FollowingManager):
    """A manager without a queue that may keep an emit instead of delivering it at once; as it
    is, the client manager of a process without Redis or recovery. An emit without an
    acknowledgement it does not keep is delivered by emit_here()."""

    def keep(self, event, data, namespace, room, skip_sid):
        """Take an emit without an acknowledgement: True when it did (then it is delivered by
        the keeper), False to have emit_here() deliver it."""
        return False

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None,
             **kwargs):
        room = to or room
        if callback is not None:
            return super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                callback=callback, **kwargs)
        if not self.keep(event, data, namespace, room, skip_sid):
            emit_here(self, event, data, namespace, room, skip_sid)
        return None


class RedisQueue(FollowingManager, RedisManager):
    """python-socketio's Redis manager, for a queue of homeapp's own.

    `_publish` and `_listen` are the extension points python-socketio documents for a custom
    queue (PubSubManager's class docstring): a subclass publishes with publish(data) and yields
    what it hears with listen(). The rest is python-socketio's own, not documented as a hook:
    `started()` runs before its listener starts (`initialize`), `server_set(server)` once the
    server is known (`set_server`), and `delivering(message)` before its delivery of an emit to
    this process's sockets (`_handle_emit`), which it may take over by returning True.
    """

    def publish(self, data):
        """Send `data` to every process."""
        raise NotImplementedError

    def listen(self):
        """Yield the messages of the other processes."""
        raise NotImplementedError

    def started(self):
        """Before python-socketio starts the listener (unless write only)."""

    def server_set(self, server):
        """The server is known."""

    def delivering(self, message):
        """Whether this takes over delivering an emit to this process's sockets."""
        return False

    def deliver_here(self, message):
        """Deliver an emit to this process's sockets, as a message heard from another would be."""
        self._handle_emit(message)

    def _publish(self, data):
        return self.publish(data)

    def _listen(self):
        return self.listen()

    def initialize(self):
        self.started()
        super().initialize()

    def set_server(self, server):
        super().set_server(server)
        self.server_set(server)

    def _handle_emit(self, message):
        if not self.delivering(message):
            super()._handle_emit(message)


class TextPacket(packet.Packet):
    """Socket.IO packets that never carry binary attachments (given as the server's `serializer`,
    a public option; the attribute set here is not).

    The protocol is JSON text only. The default packet walks every payload it sends looking
    for bytes before encoding it, a measurable part of a `message` (bench/optimised.md); this
    one skips the walk.
    A client's binary packet still decodes: the schemas refuse bytes where they want text.
    """

    uses_binary_events = False
