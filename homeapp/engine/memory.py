"""The client manager of a deployment without Redis, with recovery on."""
import itertools

from homeapp.engine.channels import NAMESPACE, channel_of_room, to_channel
from homeapp.engine.copies import channels_of, copy_for
from homeapp.seams.socketio import KeepingManager
from homeapp.store.redis_keys import EVERYONE
from homeapp.transport import jsoncodec

# stands for the sender in the entries of this process's histories, which only it reads
_SENDER = "local"


class LoggingManager(KeepingManager):
    """The client manager of a deployment without Redis, with recovery on: it appends every emit
    to a channel to the channel's history in this process's memory (homeapp.engine.history),
    and sends each copy with its offset."""

    recovery = None  # set by create_app
    history = None   # a MemoryHistory, set by homeapp.engine.recovery.build_recovery

    def __init__(self):
        super().__init__()
        self._numbers = itertools.count(1)

    def last_id(self, channel):
        """The id of a channel's newest entry: a socket joining it now gets what comes after."""
        return self.history.newest([channel])[channel]

    def joined(self, sid, namespace, room, first):
        channel = channel_of_room(namespace, room)
        if channel is not None and self.recovery is not None:
            self.recovery.positions.joined(sid, channel)

    def left(self, sid, namespace, room, emptied):
        channel = channel_of_room(namespace, room)
        if channel is not None and self.recovery is not None:
            self.recovery.positions.left(sid, channel)
            if emptied and channel != EVERYONE:
                self.recovery.positions.unused(channel)

    def keep(self, event, data, namespace, room, skip_sid):
        """An emit to a channel goes into its history, and out with its offset."""
        if self.recovery is None or not to_channel(namespace, room):
            return False
        message = {"method": "emit", "event": event, "namespace": namespace, "room": room,
                   "skip_sid": skip_sid,
                   "data": list(data) if isinstance(data, tuple) else [] if data is None else [data]}
        origin = (_SENDER, next(self._numbers))
        text = f"{_SENDER} {origin[1]} {jsoncodec.dumps(message)}"
        if isinstance(room, str):  # one channel: the copy is the message
            self.recovery.deliver(self, message, room, self.history.append(room, text), origin)
            return True
        for channel in channels_of(room):
            copy = copy_for(self, message, channel)
            if copy is not None:
                self.recovery.deliver(self, copy, channel, self.history.append(channel, text), origin)
        return True

    def publish_cut(self, user_id, channel):
        """Append to a channel's history that a user was taken out of it (homeapp.engine.recovery)."""
        message = {"method": "cut", "namespace": NAMESPACE, "room": channel, "user": user_id}
        self.history.append(channel, f"{_SENDER} {next(self._numbers)} {jsoncodec.dumps(message)}")
