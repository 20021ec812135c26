"""The client manager of a deployment without Redis, with recovery on."""
from homeapp.engine.channels import NAMESPACE, channel_of_room, to_channel
from homeapp.engine.copies import channels_of, copy_for
from homeapp.engine.history import LOCAL
from homeapp.engine.positions import offset_of
from homeapp.seams.socketio import KeepingManager, args_text, emit_here
from homeapp.store.redis_keys import EVERYONE
from homeapp.transport import jsoncodec


class LoggingManager(KeepingManager):
    """The client manager of a deployment without Redis, with recovery on: it adds every emit
    to a channel to the channel's history in this process's memory (homeapp.engine.history),
    and sends each copy with its offset: the packet encoded once, for the history and the
    sockets alike."""

    recovery = None  # set by create_app
    history = None   # a MemoryHistory, set by homeapp.engine.recovery.build_recovery

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
        if self.recovery is None:
            return False
        if type(room) is list and len(room) == 1:  # hub.emit(to=[channel]): one room
            room = room[0]
        if not to_channel(namespace, room):
            return False
        data = data if isinstance(data, tuple) else () if data is None else (data,)
        history = self.history
        if room is None or isinstance(room, str):  # one channel: the copy is the message
            channel = EVERYONE if room is None else room
            entry_id = history.reserve()
            text = args_text(self.server, [event, *data, offset_of(entry_id, channel)])
            history.add(channel, text, room, skip_sid)
            recovery = self.recovery
            if recovery.restoring or recovery.settling or recovery.shutting_down:
                recovery.deliver_text(self, text, channel, entry_id, (LOCAL, history.number),
                                      event, data, room, skip_sid)
            else:  # all deliver_text() would do (NumberedPositions keep nothing), less a call
                emit_here(self, event, None, NAMESPACE, room=room, skip_sid=skip_sid, text=text)
            return True
        message = {"method": "emit", "event": event, "namespace": namespace, "room": room,
                   "skip_sid": skip_sid, "data": list(data)}
        first = None  # the number of the emit's first entry: its origin, in every channel
        for channel in channels_of(room):
            copy = copy_for(self, message, channel)
            if copy is not None:
                entry_id = history.reserve()
                first = first or history.number
                text = args_text(self.server, [event, *data, offset_of(entry_id, channel)])
                history.add(channel, text, room, skip_sid, first)
                self.recovery.deliver(self, copy, channel, entry_id, (LOCAL, first), text)
        return True

    def publish_cut(self, user_id, channel):
        """Add to a channel's history that a user was taken out of it (homeapp.engine.recovery);
        a cut is no emit, and has no origin (0)."""
        message = {"method": "cut", "namespace": NAMESPACE, "room": channel, "user": user_id}
        self.history.append(channel, f"{LOCAL} 0 {jsoncodec.dumps(message)}")
