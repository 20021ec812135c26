"""The client manager of a deployment without Redis, with recovery on."""
from socketio import manager as socketio_manager

from homeapp.recovery.channels import to_channel


class LoggingManager(socketio_manager.Manager):
    """The client manager of a deployment without Redis, with recovery on: it logs every emit to a
    channel in this process's memory and sends it with its offset."""

    recovery = None  # set by create_app

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None,
             **kwargs):
        room = to or room
        if self.recovery is None or callback is not None or not to_channel(namespace, room):
            return super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                callback=callback, **kwargs)
        message = {"method": "emit", "event": event, "namespace": namespace, "room": room,
                   "skip_sid": skip_sid,
                   "data": list(data) if isinstance(data, tuple) else [] if data is None else [data]}
        self.recovery.deliver(self, message, self.recovery.events.append(message))
