"""startTypingRoom and stopTypingRoom: relayed to the room's open views, never back to the typist."""
from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.schemas import typing_status as schemas
from homeapp.services.access import require_member, require_self
from homeapp.services.rooms import room_channel


def _authorize(conn, payload):
    require_self(conn, payload["user"]["userID"], "user.userID")
    require_member(conn, payload["roomID"])


def _relay(hub, conn, payload, event):
    room_id = payload["roomID"]
    hub.emit(event, schemas.typing_payload(conn, room_id, payload["user"]["username"]),
             to=room_channel(room_id), skip_sid=conn.sid)


@handles(names.START_TYPING, schema=schemas.typing_schema, rate="typing")
def start_typing(hub, conn, payload):
    _authorize(conn, payload)
    # A user is a member of every room id that lists them, so a socket could name endless
    # rooms; past HOMEAPP_TYPING_ROOMS the oldest are no longer remembered for the stop
    # sent at disconnect.
    if len(conn.typing) >= hub.config["TYPING_ROOMS"]:
        conn.typing.pop(next(iter(conn.typing)))
    conn.typing[payload["roomID"]] = None  # so that a disconnect can stop it
    _relay(hub, conn, payload, names.TYPING_START)


@handles(names.STOP_TYPING, schema=schemas.typing_schema, rate="typing")
def stop_typing(hub, conn, payload):
    _authorize(conn, payload)
    conn.typing.pop(payload["roomID"], None)
    _relay(hub, conn, payload, names.TYPING_STOP)
