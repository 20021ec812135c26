"""Client events, one module per feature; importing them registers their handlers."""
from functools import partial

from homeapp.events import groups, lifecycle, messaging, notifications, rooms, typing_status  # noqa: F401
from homeapp.events.dispatch import bind


def register(server, hub):
    """Bind every event handler, the connection lifecycle and expiry to the Socket.IO server."""
    def on_disconnect(sid, reason=None):
        lifecycle.disconnect(hub, sid, reason)
    hub.expiry.on_due = partial(lifecycle.expire, hub)
    bind(server, hub, partial(lifecycle.connect, hub), on_disconnect)


__all__ = ["register"]
