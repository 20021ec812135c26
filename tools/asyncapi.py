"""Writes docs/asyncapi.yaml, the AsyncAPI 3.0 description of every event, from the schemas.

    .venv/bin/python -m tools.asyncapi           # (re)write docs/asyncapi.yaml
    .venv/bin/python -m tools.asyncapi --check   # exit 1 when the file is not what it would write

Client events come from the handlers bound in homeapp/events (their schema, rate limit and
whether they need an identity), server events and acknowledgements from
homeapp/schemas/outgoing.py, examples from homeapp/schemas/examples.py, limits at their
defaults from homeapp/schemas/limits.py. Only the prose below is written here by hand.
tests/test_docs.py fails when the file in the repository differs from what this writes.
"""
import argparse
import json
import sys
import textwrap
from pathlib import Path

from marshmallow import fields as mm_fields
from marshmallow import RAISE, missing, validate

from homeapp import events  # noqa: F401  (binds every handler to its event)
from homeapp import names
from homeapp.events.dispatch import _HANDLERS
from homeapp.schemas import common, messaging
from homeapp.schemas.examples import EXAMPLES
from homeapp.schemas.limits import LIMITS
from homeapp.schemas.outgoing import ACKS, SERVER_EVENTS, AckSchema, RefusalSchema

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "asyncapi.yaml"
COMMAND = ".venv/bin/python -m tools.asyncapi"

# the setting that moves each limit (homeapp/config.py); text_length is fixed
LIMIT_SETTINGS = {"message_length": "HOMEAPP_MAX_MESSAGE_LENGTH",
                  "username_length": "HOMEAPP_MAX_USERNAME_LENGTH",
                  "room_members": "HOMEAPP_MAX_ROOM_MEMBERS",
                  "notifications": "HOMEAPP_MAX_NOTIFICATIONS"}

INFO = """\
The Socket.IO protocol of the HomeApp realtime server, generated from its marshmallow schemas
by tools/asyncapi.py; docs/protocol.md explains it in prose. Clients speak Socket.IO 5 over
Engine.IO 4 (socket.io-client 4) on the default namespace. A socket's identity is fixed when it
connects: in `open` mode from the handshake query `userID` or its first `addOnlineUser`; in
`jwt` and `session` mode from a token or the REST API's session cookie (docs/auth.md). Each
client event is checked in this order: identity, rate limit, schema, permission. An accepted
event is acknowledged with `{"ok": true}`; a refused one changes nothing, and the sender gets one
`error` event and the same object as the acknowledgement. Fields a schema does not name are
dropped, never forwarded. Events the server does not know are ignored, but acknowledged with
code UNKNOWN_EVENT when the client asked for an acknowledgement. With connection state
recovery on (HOMEAPP_RECOVERY_SECONDS, docs/recovery.md), every event sent to a channel carries
one more, last, argument: its offset, an opaque string; the payloads below are the
first argument. Limits are shown at their defaults; each is a setting named in its description."""

# client event -> (summary, what the server does)
CLIENT_EVENTS = {
    names.ADD_ONLINE_USER: (
        "Count this socket as live: its user is online while it is connected.",
        "In `open` mode it also fixes the socket's identity when the handshake named none; "
        "otherwise `userID` must be the socket's own. The user's first live socket, on any "
        "process, sends `newOnlineUser` `Add` to everyone. `username` is read when "
        "`userUsername` is missing."),
    names.JOIN_ROOM: (
        "Subscribe this socket to its user's channel, `user:{userID}`.",
        "Everything addressed to a user arrives on that channel, in every tab. The id must be "
        "the socket's own."),
    names.LEAVE_ROOM: (
        "Unsubscribe this socket from `user:{userID}`.",
        "The id must be the socket's own."),
    names.CHAT_ROOM_JOIN: (
        "Open a room's chat view: subscribe this socket to `room:{roomID}`.",
        "`messageRoom`, the typing events and the in-room group changes arrive there. Members "
        "of the room only."),
    names.CHAT_ROOM_LEAVE: (
        "Close a room's chat view: leave `room:{roomID}`.",
        "Members of the room only."),
    names.MESSAGE: (
        "Send a message to a room.",
        "`data.from` must be the sender, a member of `data.roomID`. `messageRoom` goes to the "
        "room's open views, the sender's included; each other member gets `messagePage`, or "
        "`firstMessageConversation` when `contact` is true, and its own `messageResponseNotify`. "
        "`unreadMessArray` entries name distinct other members; `roomKey`, when sent, must be "
        "`room:{roomID}`. A `date` that is not a valid date is replaced by the server's clock. "
        "The acknowledgement carries the message's id and date."),
    names.START_TYPING: (
        "Show the room that the sender is typing.",
        "`typingMessageStart` to `room:{roomID}`, not back to this socket. A socket that "
        "disconnects while typing sends the room `typingMessageStop`."),
    names.STOP_TYPING: (
        "Show the room that the sender stopped typing.",
        "`typingMessageStop` to `room:{roomID}`, not back to this socket."),
    names.CREATE_USER_GROUP: (
        "Add a user to a private chat, which becomes a group.",
        "`newRoomID` must be `roomID` plus `newUserID`; `clientID` must be the sender, a member "
        "of `roomID`; every notification's `from` must be the sender. Each other member of "
        "`newRoomID` gets `createUserToGroupNotify` with the notification addressed to it (if "
        "any) and `createUserGroupChange`."),
    names.ADD_USER_TO_GROUP: (
        "Add a user to a group.",
        "The rules of createUserGroup. `addUserToGroupChangeInRoom` goes to `room:{roomID}`; "
        "each other member of `newRoomID` gets `addUserToGroupNotify` with the notification "
        "addressed to it (if any) and `addUserToGroupChange`."),
    names.KICK_USER_FROM_GROUP: (
        "Remove a member from a group.",
        "`newRoomID` must be `roomID` minus `kickedUserID`; `clientID` must be the sender, a "
        "member of `roomID`. `kickUserFromGroupChangeInRoom` goes to `room:{roomID}`; each other "
        "member of `roomID`, the removed one included, gets `kickUserFromGroupNotify` (if a "
        "notification is addressed to it) and `kickUserFromGroupChange`; then the removed "
        "user's sockets leave `room:{roomID}`."),
    names.DELETE_USER_ROOM: (
        "Delete a room.",
        "`clientID` must be the sender, a member of `roomID`. Each other member gets "
        "`deleteUserRoomNotify` (if a notification is addressed to it) and "
        "`deleteUserRoomChange`; then every socket leaves `room:{roomID}`."),
    names.COMMENT_NOTIFICATION: (
        "Tell a houseworker about a new comment.",
        "`notificationObj.to` must be `newComment.houseworkerID` and its `from` the sender. "
        "`privateCommentNotify` (the whole payload) and `newCommentChange` (the comment) go to "
        "`user:{houseworkerID}`."),
    names.RATING_NOTIFICATION: (
        "Tell a houseworker about a new rating.",
        "`notification.to` must be `houseworkerID` and its `from` the sender. "
        "`privateRatingNotify-{houseworkerID}` goes to `user:{houseworkerID}` only."),
}

EACH_MEMBER = "to `user:{id}` of each member of the room but the sender"
WITH_NOTIFICATION = (", with the notification addressed to that member (`to` its id, or `\"room\"`); "
                     "a member with none gets no such event")

# server event -> (summary, who receives it)
SERVER_EVENT_DOCS = {
    names.ERROR: ("Why an event of this socket was refused.",
                  "to the sending socket only; the event's acknowledgement is the same object"),
    names.NEW_ONLINE_USER: ("A user came online (its first live socket) or went offline (its last one "
                            "closed).", "to every socket"),
    names.MESSAGE_ROOM: ("A message, for the room's open chat views.",
                         "to `room:{roomID}`, the sender's sockets included"),
    names.MESSAGE_PAGE: ("A room's last message, for the list of conversations.",
                         EACH_MEMBER + ", when `contact` is false"),
    names.FIRST_MESSAGE_CONVERSATION: ("The first message of a conversation a client started.",
                                       EACH_MEMBER + ", when `contact` is true"),
    names.MESSAGE_RESPONSE_NOTIFY: ("A new message, for one recipient's unread count.",
                                    EACH_MEMBER + "; `userID` names the recipient"),
    names.TYPING_START: ("A member started typing.",
                         "to `room:{roomID}` but the typing socket"),
    names.TYPING_STOP: ("A member stopped typing, or its socket closed while typing.",
                        "to `room:{roomID}` but the typing socket"),
    names.CREATE_GROUP_NOTIFY: ("You were added to a new group, or someone was added to yours.",
                                EACH_MEMBER.replace("the room", "`newRoomID`") + WITH_NOTIFICATION),
    names.CREATE_GROUP_CHANGE: ("A private chat became a group.",
                                EACH_MEMBER.replace("the room", "`newRoomID`")),
    names.ADD_TO_GROUP_NOTIFY: ("Someone was added to a group.",
                                EACH_MEMBER.replace("the room", "`newRoomID`") + WITH_NOTIFICATION),
    names.ADD_TO_GROUP_CHANGE: ("A group has a new member and a new room id.",
                                EACH_MEMBER.replace("the room", "`newRoomID`")),
    names.ADD_TO_GROUP_CHANGE_IN_ROOM: ("The new room id, for the open views of the old room.",
                                        "to `room:{roomID}` of the old room"),
    names.KICK_NOTIFY: ("A member was removed from a group.",
                        EACH_MEMBER.replace("the room", "the old room") + ", the removed one included"
                        + WITH_NOTIFICATION),
    names.KICK_CHANGE: ("A group lost a member and has a new room id.",
                        EACH_MEMBER.replace("the room", "the old room") + ", the removed one included"),
    names.KICK_CHANGE_IN_ROOM: ("A member was removed, for the open views of the old room.",
                                "to `room:{roomID}` of the old room"),
    names.DELETE_ROOM_NOTIFY: ("A room was deleted: the notification and the room id.",
                               EACH_MEMBER + WITH_NOTIFICATION),
    names.DELETE_ROOM_CHANGE: ("A room was deleted.", EACH_MEMBER),
    names.PRIVATE_COMMENT_NOTIFY: ("A new comment on your profile, with its notification.",
                                   "to `user:{houseworkerID}`"),
    names.NEW_COMMENT_CHANGE: ("A new comment, for your list of comments.", "to `user:{houseworkerID}`"),
    names.private_rating_notify("{houseworkerID}"): (
        "A new rating, with its notification; the event's name carries the houseworker's id.",
        "to `user:{houseworkerID}` only"),
}


# ---------------------------------------------------------------- marshmallow -> JSON Schema

# the project's field types, each a named schema described by its docstring
DESCRIBED_FIELDS = (common.UserId, common.RoomId, common.RecordId)


class Components:
    """The named schemas of the document, one per marshmallow Schema class."""

    def __init__(self):
        self.schemas = {}
        self._classes = {}

    def ref(self, schema):
        """A $ref to the component describing `schema` (a Schema instance or class), made on first use.

        Raises ValueError when two different classes would get the same name.
        """
        cls = schema if isinstance(schema, type) else type(schema)
        name = cls.__name__.removesuffix("Schema")
        if self._classes.setdefault(name, cls) is not cls:
            raise ValueError(f"two schemas are both called {name}")
        if name not in self.schemas:
            self.schemas[name] = None  # reserved: a schema may refer to itself
            self.schemas[name] = schema_of(cls(), self)
        return {"$ref": f"#/components/schemas/{name}"}

    def field_type(self, field):
        """A $ref to the component describing one of the project's field types (DESCRIBED_FIELDS)."""
        name = type(field).__name__
        if name not in self.schemas:
            self.schemas[name] = {**_base(field, self), "description": _doc(type(field))}
        return {"$ref": f"#/components/schemas/{name}"}


def _doc(cls):
    """The first paragraph of a class's own docstring, on one line; None without one."""
    if not cls.__doc__:
        return None
    return " ".join(cls.__doc__.strip().split("\n\n")[0].split())


def schema_of(schema, components):
    """JSON Schema of a marshmallow Schema instance: an object, or the one value of a ScalarSchema."""
    if isinstance(schema, common.ScalarSchema):
        result = field_of(schema.fields[schema.value_name], components)
        if "$ref" in result:  # a description beside a $ref would be ignored
            result = {"allOf": [result]}
    else:
        result = {"type": "object"}
        result["properties"] = {_key(name, f): field_of(f, components)
                                for name, f in schema.load_fields.items()}
        required = [_key(name, f) for name, f in schema.load_fields.items() if f.required]
        if required:
            result["required"] = required
        if schema.opts.unknown == RAISE:  # what the server sends: exactly these fields
            result["additionalProperties"] = False
    if _doc(type(schema)):
        result["description"] = _doc(type(schema))
    return result


def _key(name, field):
    return field.data_key or name


def _user_id():
    digits = {"type": "string", "pattern": "^[0-9]{1,20}$"}
    return {"anyOf": [digits, {"type": "integer", "minimum": 0, "exclusiveMaximum": 10**20}]}


def _base(field, components):
    """The field's type, before its validators and null."""
    if isinstance(field, messaging.LenientDate):
        return {"oneOf": [components.ref(field.nested), {"type": "null"}], "description": _doc(type(field))}
    if isinstance(field, mm_fields.Nested):
        return components.ref(field.nested)
    if isinstance(field, mm_fields.List):
        return {"type": "array", "items": field_of(field.inner, components)}
    if isinstance(field, common.Recipient):
        return {"anyOf": [*_user_id()["anyOf"], {"const": "room"}]}
    if isinstance(field, common.UserId):
        return _user_id()
    if isinstance(field, common.RoomId):
        return {"type": "string", "pattern": "^[0-9]{1,20}(:[0-9]{1,20})+$"}
    if isinstance(field, common.RecordId):
        return {"anyOf": [{"type": "integer", "minimum": 0},
                          {"type": "string", "minLength": 1, "maxLength": 64}]}
    if isinstance(field, common.BoundedString):
        return {"type": "string", "minLength": 1, **_limit(field.limit_name, "maxLength")}
    if isinstance(field, mm_fields.String):
        return {"type": "string"}
    if isinstance(field, mm_fields.Boolean):
        return {"type": "boolean"}
    if isinstance(field, mm_fields.Integer):
        return {"type": "integer"}
    if isinstance(field, mm_fields.Dict):
        return {"type": "object"}
    raise TypeError(f"tools/asyncapi.py cannot describe a {type(field).__name__} field yet")


def _limit(limit_name, keyword):
    setting = LIMIT_SETTINGS.get(limit_name)
    value = {keyword: getattr(LIMITS, limit_name)}
    return {**value, "x-setting": setting} if setting else value


def _validator(validator, is_array):
    """JSON Schema keywords of one validator. Raises TypeError for a validator it cannot express."""
    if isinstance(validator, validate.Range):
        return {k: v for k, v in (("minimum", validator.min), ("maximum", validator.max)) if v is not None}
    if isinstance(validator, validate.Length):
        low, high = ("minItems", "maxItems") if is_array else ("minLength", "maxLength")
        return {k: v for k, v in ((low, validator.min), (high, validator.max)) if v is not None}
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Equal):
        return {"const": validator.comparable}
    if isinstance(validator, validate.Regexp):
        return {"pattern": validator.regex.pattern}
    if hasattr(validator, "limit_name"):  # common.at_most
        return _limit(validator.limit_name, "maxItems" if is_array else "maxLength")
    raise TypeError(f"tools/asyncapi.py cannot describe the validator {validator!r} yet")


def field_of(field, components):
    """JSON Schema of one marshmallow field: type, validators, null and default."""
    if isinstance(field, DESCRIBED_FIELDS):
        result = components.field_type(field)
    else:
        result = dict(_base(field, components))
    extra = {}
    for validator in field.validators:
        extra.update(_validator(validator, isinstance(field, mm_fields.List)))
    if field.load_default is not missing:
        extra["default"] = field.load_default() if callable(field.load_default) else field.load_default
    if field.allow_none and not isinstance(field, messaging.LenientDate):  # LenientDate says it itself
        if "type" in result:
            result["type"] = [result["type"], "null"]
        else:
            result = {"oneOf": [result, {"type": "null"}]}
    if "$ref" in result and extra:  # keywords beside a $ref would be ignored
        result = {"allOf": [result]}
    return {**result, **extra}


# ---------------------------------------------------------------- the document

def _message(name, summary, payload, **extra):
    return {"name": name, "summary": summary, "payload": payload, **extra}


def _rules(spec):
    """What dispatch applies to an event besides its schema: identity and rate limit."""
    _, _, rate, anonymous = spec
    rules = ["Allowed before the socket has an identity." if anonymous
             else "Refused with UNAUTHENTICATED until the socket has an identity."]
    if rate is not None:
        setting = f"HOMEAPP_{rate.upper()}"
        rules.append(f"Rate-limited per socket: {setting}_RATE events per second, bursts of "
                     f"{setting}_BURST (RATE_LIMITED).")
    return " ".join(rules)


def _key_of(event):
    """A component key for an event name (keys allow letters, digits, '.', '-' and '_')."""
    return event.split("-{")[0]


def build():
    """The AsyncAPI document, as plain data.

    Raises KeyError for a client event without its prose, handler or example, or a server
    event without its prose; TypeError for a field or validator it cannot describe.
    """
    components = Components()
    messages, channel, acks, operations = {}, {}, {}, {}

    if set(CLIENT_EVENTS) != set(_HANDLERS):
        raise KeyError(f"client events without prose, or prose without a handler: "
                       f"{sorted(set(CLIENT_EVENTS) ^ set(_HANDLERS))}")
    for event, (summary, description) in CLIENT_EVENTS.items():
        spec = _HANDLERS[event]
        key = _key_of(event)
        messages[key] = _message(event, summary, components.ref(spec[1]),
                                 description=f"{description} {_rules(spec)}",
                                 examples=[{"summary": 'As user "1" sends it', "payload": EXAMPLES[event]}])
    for event, schema in SERVER_EVENTS.items():
        summary, recipients = SERVER_EVENT_DOCS[event]
        messages[_key_of(event)] = _message(event, summary, components.ref(schema),
                                            description=f"Sent {recipients}.")
    for key in messages:
        channel[key] = {"$ref": f"#/components/messages/{key}"}

    ack_schemas = {"ack": AckSchema(), "refusal": RefusalSchema(),
                   **{f"{_key_of(e)}Ack": s for e, s in ACKS.items()}}
    for key, schema in ack_schemas.items():
        messages[key] = _message(key, _doc(type(schema)), components.ref(schema))
        acks[key] = {"$ref": f"#/components/messages/{key}"}

    for event in CLIENT_EVENTS:
        key = _key_of(event)
        accepted = f"{key}Ack" if event in ACKS else "ack"
        operations[key] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/socket"},
            "summary": CLIENT_EVENTS[event][0],
            "messages": [{"$ref": f"#/channels/socket/messages/{key}"}],
            "reply": {"channel": {"$ref": "#/channels/acknowledgements"},
                      "messages": [{"$ref": f"#/channels/acknowledgements/messages/{accepted}"},
                                   {"$ref": "#/channels/acknowledgements/messages/refusal"}]},
        }
    for event in SERVER_EVENTS:
        key = _key_of(event)
        operations[f"send.{key}"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/socket"},
            "summary": SERVER_EVENT_DOCS[event][0],
            "description": f"Sent {SERVER_EVENT_DOCS[event][1]}.",
            "messages": [{"$ref": f"#/channels/socket/messages/{key}"}],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {"title": "HomeApp realtime", "version": "1.0.0", "description": " ".join(INFO.split())},
        "defaultContentType": "application/json",
        "servers": {"development": {
            "host": "127.0.0.1:5000", "protocol": "ws", "pathname": "/socket.io/",
            "description": "`python app.py`; the handshake query `userID` names the user in `open` mode."}},
        "channels": {
            "socket": {"address": "/", "title": "The Socket.IO default namespace",
                       "description": "Every event, in both directions, on one socket.",
                       "messages": channel},
            "acknowledgements": {"address": None, "title": "Acknowledgements",
                                 "description": "The answer to a client event that asked for one.",
                                 "messages": acks},
        },
        "operations": operations,
        "components": {"schemas": dict(sorted(components.schemas.items())), "messages": messages},
    }


# ---------------------------------------------------------------- YAML

_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/ ")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
WIDTH = 96


def _scalar(value):
    """A YAML scalar: plain where YAML reads it back as the same string, JSON-quoted otherwise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if (value and set(value) <= _PLAIN and value.lower() not in _RESERVED and value[0].isalpha()
            and value[-1] not in ". " and " #" not in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _folded(value, indent):
    """Long prose as a folded block, which YAML joins back with single spaces; None when that
    would not give back the same string."""
    if len(value) + indent < WIDTH or "\n" in value or "  " in value or value != value.strip():
        return None
    lines = textwrap.wrap(value, WIDTH - indent, break_long_words=False, break_on_hyphens=False)
    if " ".join(lines) != value or any(line[0] in "#- " for line in lines[1:]):
        return None
    pad = " " * indent
    return [">-"] + [pad + line for line in lines]


def _yaml(value, indent):
    """The lines of `value` at `indent` spaces, for a mapping or sequence; never empty."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines += _entry(pad + _scalar(key) + ":", item, indent)
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = _yaml(item, indent + 2)
                lines.append(pad + "- " + nested[0][indent + 2:])
                lines += nested[1:]
            else:
                lines += _entry(pad + "-", item, indent)
    return lines


def _entry(head, item, indent):
    if isinstance(item, (dict, list)) and item:
        return [head] + _yaml(item, indent + 2)
    if isinstance(item, (dict, list)):
        return [f"{head} {'{}' if isinstance(item, dict) else '[]'}"]
    if isinstance(item, str):
        folded = _folded(item, indent + 2)
        if folded:
            return [f"{head} {folded[0]}"] + folded[1:]
    return [f"{head} {_scalar(item)}"]


def render():
    """docs/asyncapi.yaml's text."""
    header = [f"# Generated by `{COMMAND}` from homeapp/schemas and homeapp/events: do not edit."]
    return "\n".join(header + _yaml(build(), 0)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
