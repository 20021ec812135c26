"""Client events, one module per feature; importing them registers their handlers."""
from functools import partial

from homeapp.events import groups, messaging, notifications, presence, rooms, typing  # noqa: F401
from homeapp.events.dispatch import Hub, bind


def register(server, hub):
    """Bind every event handler, the connection lifecycle and expiry to the Socket.IO server."""
    def on_disconnect(sid, reason=None):
        presence.disconnect(hub, sid)
    hub.expiry.on_due = partial(presence.expire, hub)
    bind(server, hub, partial(presence.connect, hub), on_disconnect)


__all__ = ["Hub", "register"]
