"""The one error type of the event layer and the one payload it becomes (docs/protocol.md)."""
from datetime import datetime, timezone

VALIDATION_ERROR = "VALIDATION_ERROR"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
RATE_LIMITED = "RATE_LIMITED"
UNAVAILABLE = "UNAVAILABLE"
UNKNOWN_EVENT = "UNKNOWN_EVENT"
INTERNAL_ERROR = "INTERNAL_ERROR"
CONFLICT = "CONFLICT"  # the backend API's Idempotency-Key reused for another request
# backend API only (a socket gets no ack then): Redis could not tell whether it took the event
UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"


class EventError(Exception):
    """An event is refused: nothing changes and the sender is told why."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def forbidden(message):
    """Build the FORBIDDEN error used by every permission check."""
    return EventError(FORBIDDEN, message)


def utc_timestamp():
    """ISO-8601 UTC time with milliseconds, as JavaScript's toISOString() prints it."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def error_payload(error, event):
    """The object sent as the `error` event and returned as the ack."""
    payload = {
        "ok": False,
        "error": error.message,
        "code": error.code,
        "event": event,
        "timestamp": utc_timestamp(),
    }
    if error.details is not None:
        payload["details"] = error.details
    return payload
