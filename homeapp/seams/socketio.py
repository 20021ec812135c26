"""python-socketio's Server and Packet, where homeapp needs more than its public API (versions:
homeapp/seams/versions.py).

Per-server behaviour is never set on a library instance: a Server method is replaced once, for
the class, by one that looks up the hook a server registered (by create_app, through the
functions below) and runs the library's own method where none is. Flask-SocketIO builds the
Server itself (flask_socketio.SocketIO.init_app), so a Server subclass is not an option.

Where homeapp builds on python-socketio's documented extension points instead (the message
queue subclasses its client manager with the `_publish`/`_listen` hooks its PubSubManager
documents for custom queues), that is said where it is done.
"""
import weakref

from socketio import packet
from socketio.server import Server

DISTRIBUTION = "python-socketio"

# python-socketio's own
_library_handle_eio_message = Server._handle_eio_message

# One table per replaced method: id(server) -> the hook that server registered. A server's entry
# goes with the server. (The second pass adds _handle_connect here, for the recovering CONNECT,
# the same way.)
_message_guards = {}  # guard(server, eio_sid, data)


def install():
    """Replace what this module replaces in python-socketio's Server, for the whole class.
    Called by homeapp.seams.install() before any Server is built: a Server hands its bound
    `_handle_eio_message` to Engine.IO when it is built."""
    Server._handle_eio_message = _handle_eio_message


def guard_messages(server, guard):
    """Have `guard(server, eio_sid, data)` receive every Engine.IO message of `server` in place
    of python-socketio's handler; the guard passes those it accepts to handle_message()."""
    _register(_message_guards, server, guard)


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


# handle_message(server, eio_sid, data): python-socketio's own handling of an Engine.IO message,
# decode then dispatch (the library's function itself: no frame more per message)
handle_message = _library_handle_eio_message


def _handle_eio_message(self, eio_sid, data):
    guard = _message_guards.get(id(self))
    if guard is None:
        return _library_handle_eio_message(self, eio_sid, data)
    return guard(self, eio_sid, data)


class TextPacket(packet.Packet):
    """Socket.IO packets that never carry binary attachments (given as the server's `serializer`,
    a public option; the attribute set here is not).

    The protocol is JSON text only. The default packet walks every payload it sends looking
    for bytes before encoding it, a measurable part of a `message` (bench/optimised.md); this
    one skips the walk.
    A client's binary packet still decodes: the schemas refuse bytes where they want text.
    """

    uses_binary_events = False
