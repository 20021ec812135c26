"""Logging, configured in one place: readable lines in development, JSON lines in production.

Every line written while a client event is handled names its socket, user and event.
dispatch puts the connection and the event name in EVENT_CONTEXT once per event; they
are read only when a line is actually written, so an event that logs nothing pays for
one ContextVar.set and reset and nothing more.

Message text and notification bodies are never logged above DEBUG. The transport
libraries log every packet, payload included, at INFO, so they are held at WARNING.
"""
import contextvars
import logging
import sys
from datetime import datetime, timezone

import orjson

# (connection, event name) of the client event this greenlet is handling, or None
EVENT_CONTEXT = contextvars.ContextVar("homeapp_event", default=None)

_CONTEXT_FIELDS = ("sid", "user_id", "event")
# geventwebsocket writes an access line per HTTP request (polling included) at INFO
_TRANSPORT_LOGGERS = ("engineio", "engineio.server", "socketio", "socketio.server", "geventwebsocket")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


class EventContextFilter(logging.Filter):
    """Copy the current event's socket id, user id and name onto the record."""

    def filter(self, record):
        current = EVENT_CONTEXT.get()
        if current is not None:
            conn, event = current
            record.sid, record.user_id, record.event = conn.sid, conn.user_id, event
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [sid=… user=… event=…]: message`, the bracket only inside an event."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record):
        fields = [f"{name}={getattr(record, name)}" for name in _CONTEXT_FIELDS
                  if getattr(record, name, None) is not None]
        record.context = f" [{' '.join(fields)}]" if fields else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid and the event's context."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


FORMATTERS = {"text": TextFormatter, "json": JsonFormatter}


def make_handler(fmt="text", stream=None):
    """A stderr handler with the event-context filter and the named formatter.

    Also the factory gunicorn.conf.py names in its logging dict. Raises KeyError for an
    unknown format (config.py has validated it before).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(EventContextFilter())
    handler.setFormatter(FORMATTERS[fmt]())
    return handler


def configure_logging(level, fmt="text"):
    """Send every logger's records through one handler on the root logger, at `level`.

    Replaces whatever handlers the root logger had (basicConfig's, gunicorn's), so that
    calling it again, as tests do, never doubles the lines.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(fmt))
    root.setLevel(level)
    logging.getLogger("homeapp").setLevel(level)
    transport_level = max(logging.getLevelName(level), logging.WARNING)
    for name in _TRANSPORT_LOGGERS:
        transport = logging.getLogger(name)
        transport.setLevel(transport_level)  # a level set here stops them adding their own handler
        for handler in list(transport.handlers):
            transport.removeHandler(handler)
