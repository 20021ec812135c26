"""The hub: what every handler acts on, built whole by build_hub()."""
import random
import secrets
import uuid
from datetime import datetime
from time import time
from zoneinfo import ZoneInfo

from homeapp import names
from homeapp.connections import Connections
from homeapp.engine.recovery import build_recovery
from homeapp.identity import OpenIdentifier, create_identifier
from homeapp.identity.expiry import ExpiryWatch
from homeapp.presence import PresenceUnavailable, create_presence
from homeapp.presence.keeper import PresenceKeeper, heartbeat_schedule
from homeapp.services.rooms import is_room_channel, rooms_after_opening
from homeapp.store.outage import RedisHealth
from homeapp.telemetry import metrics



class Hub:
    """The Socket.IO server, presence, this process's sockets, settings, how sockets prove who
    they are and when those proofs run out; and the one place that tells everyone a user came
    online or went offline."""

    def __init__(self, server, presence, connections, config, identifier=None, health=None):
        self.server = server
        self.presence = presence
        self.connections = connections
        self.config = config
        self.identifier = identifier or OpenIdentifier()
        self.expiry = ExpiryWatch(server.start_background_task, server.sleep)
        self.health = health or RedisHealth()
        self.keeper = None  # the PresenceKeeper, when presence lives in Redis
        self.recovery = None  # homeapp.engine.recovery's Recovery, when HOMEAPP_RECOVERY_SECONDS is set
        self.timezone = ZoneInfo(config["TIMEZONE"])
        self.emit = metrics.counting_emits(_emitter(server))
        self.draining = False  # set by homeapp.operations.shutdown: refuse new sockets, report not ready
        self._date_minute, self._date = None, None
        self._ids = random.Random(secrets.randbits(128))

    def announce(self, kind, user_id):
        """Tell everyone that a user came online (PRESENCE_ADD) or went offline (PRESENCE_REMOVE)."""
        self.emit(names.NEW_ONLINE_USER, {"type": kind, "userID": user_id})

    def add_live_socket(self, user_id, sid):
        """Count a socket in presence; announces Add when it is its user's first.

        Returns whether the user came online. Raises PresenceUnavailable.
        """
        came_online = self.presence.add_socket(user_id, sid)
        if came_online:
            self.announce(names.PRESENCE_ADD, user_id)
        return came_online

    def remove_live_socket(self, user_id, sid):
        """Take a socket out of presence; announces Remove when it was its user's last.

        Returns whether the user went offline. Raises PresenceUnavailable.
        """
        went_offline = self.presence.remove_socket(user_id, sid)
        if went_offline:
            self.announce(names.PRESENCE_REMOVE, user_id)
        return went_offline

    def enter_channels(self, sid, rooms):
        """Put a socket in channels (user:, room:). With the message queue, return once Redis has
        confirmed this process listens to them (one round trip, only for a channel new to the
        process): from the join's acknowledgement on, nothing sent to them is missed here.

        Raises EventError(RATE_LIMITED), before anything changes, when the socket would be in
        more than HOMEAPP_MAX_ROOMS rooms.
        """
        conn = self.connections.get(sid)
        if conn is not None:
            opening = [room for room in rooms if is_room_channel(room) and room not in conn.rooms]
            if opening:
                members = self.server.manager.rooms.get("/", {})
                conn.rooms = rooms_after_opening(conn.rooms, opening, self.config["MAX_ROOMS"],
                                                 lambda room: sid in members.get(room, ()))
        for room in rooms:
            self.server.enter_room(sid, room)
        following = getattr(self.server.manager, "wait_until_following", None)
        if following is not None:
            following(rooms, self.config["REDIS_TIMEOUT"])

    def keep_online(self, user_id, sid):
        """add_live_socket for a socket that is not open here yet (a recovery waiting for its
        turn); returns whether presence holds it now. While Redis is unreachable, False: the
        restore's own reinstate, or the client's addOnlineUser, tries again."""
        try:
            self.add_live_socket(user_id, sid)
            return True
        except PresenceUnavailable as exc:
            self.health.lost(exc)
            return False

    def take_offline(self, user_id, sid):
        """remove_live_socket; while Redis is unreachable, a departure the keeper settles when
        it is back."""
        try:
            self.remove_live_socket(user_id, sid)
        except PresenceUnavailable as exc:
            self.health.lost(exc)
            if self.keeper is not None:
                self.keeper.owe_departure(user_id, sid)

    def now_date(self):
        """The server's clock in the protocol's date shape, formatted once a minute: that
        cost more than a whole emit."""
        minute = int(time()) // 60
        if minute != self._date_minute:
            now = datetime.fromtimestamp(minute * 60, self.timezone)
            self._date = {"day": now.day, "month": now.month, "year": now.year,
                          "time": now.strftime("%H:%M")}
            self._date_minute = minute
        return dict(self._date)

    def new_message_id(self):
        """32 hex digits, random: unique across processes, and telling nobody how many
        messages came before (uuid4 read the kernel's random source for every message)."""
        return f"{self._ids.getrandbits(128):032x}"


def _emitter(server):
    """python-socketio's Server.emit on the app's namespace, without its log line per emit (at
    INFO, which python-socketio's logger is never at here): the manager's emit, looked up at
    each call (the Admin UI wraps it)."""
    manager = server.manager

    def emit(event, data=None, to=None, skip_sid=None):
        manager.emit(event, data, "/", to, skip_sid)  # (namespace, room, skip_sid) by position

    return emit


def build_hub(server, config, redis_client=None, health=None):
    """A hub for `server` with everything wired: presence in Redis when `redis_client` is given
    (with its keeper, not yet started) and in memory otherwise, the per-socket rate limits, and
    the identity mode's identifier, and recovery when it is on."""
    health = health or RedisHealth()
    # a new id per process start: a restarted process never takes over another's sockets
    server_id = uuid.uuid4().hex
    _, heartbeat_ttl = heartbeat_schedule(config["PRESENCE_TIMEOUT"])
    presence = create_presence(config, redis_client, server_id, heartbeat_ttl, health)
    connections = Connections({
        "message": (config["MESSAGE_RATE"], config["MESSAGE_BURST"]),
        "typing": (config["TYPING_RATE"], config["TYPING_BURST"]),
        "notification": (config["NOTIFICATION_RATE"], config["NOTIFICATION_BURST"]),
    })
    hub = Hub(server, presence, connections, config, create_identifier(config, redis_client), health)
    if redis_client is not None:
        hub.keeper = PresenceKeeper(hub, presence, config["PRESENCE_TIMEOUT"])
    hub.recovery = build_recovery(hub, config, redis_client)
    return hub
