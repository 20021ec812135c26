"""chatRoom.join and chatRoom.leave: open and close a chat view (members only)."""
from homeapp import names
from homeapp.events.dispatch import handles
from homeapp.schemas import rooms as schemas
from homeapp.services.access import require_member
from homeapp.services.rooms import room_channel


@handles(names.CHAT_ROOM_JOIN, schema=schemas.chat_room_schema)
def join_chat_room(hub, conn, room_id):
    require_member(conn, room_id)
    hub.enter_channels(conn.sid, (room_channel(room_id),))


@handles(names.CHAT_ROOM_LEAVE, schema=schemas.chat_room_schema)
def leave_chat_room(hub, conn, room_id):
    require_member(conn, room_id)
    hub.server.leave_room(conn.sid, room_channel(room_id))
    conn.rooms.discard(room_channel(room_id))
