"""The delivery engine: how an emit reaches the sockets of its channels, on this process and
through Redis, and how a socket that dropped gets back what it missed (docs/recovery.md).

Its modules: history (each channel's history, in Redis or in memory), copies (one emit, several
channels: which copy reaches which socket), positions (where a socket is in each channel, from
its one offset). The message queue (homeapp.cluster.message_queue) and recovery
(homeapp.recovery) build on them.
"""


def cut(hub, user_id, channel):
    """A user is taken out of a channel by the server (a kick, a deleted room): a session of
    theirs that dropped meanwhile must not get it back. Nothing to do with recovery off."""
    if hub.recovery is not None:
        hub.recovery.cut(user_id, channel)
