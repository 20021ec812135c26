"""POST /api/events: the REST API performs a client event as one of its users, over HTTP.

The REST API saves a message, a comment or a rating and then asks this server to relay it,
instead of relying on the browser to emit it. The event takes a socket's own path
(homeapp.events.dispatch.perform): the same schema, permission rules, handler and emits.
The answer's body is the object a socket's ack would be.

Checks run in this order, and the first that fails answers: the bearer token (401), the body's
size (413), its shape (400), the Idempotency-Key (400, 409), then the event's own (400, 403).
Without HOMEAPP_API_TOKENS the endpoint does not exist (404).
"""
import hashlib
import json
import logging

from flask import Blueprint, Response, current_app, request

from homeapp import errors
from homeapp import names
from homeapp.api.idempotency import Answer, Conflict, IdempotencyUnavailable, create_idempotency
from homeapp.config import ConfigError
from homeapp.engine import durability
from homeapp.errors import EventError, error_payload
from homeapp.events import dispatch
from homeapp.identity import bearer
from homeapp.schemas.api import MAX_EVENT_NAME, event_request_schema
from homeapp.telemetry import metrics
from homeapp.transport import jsoncodec
from homeapp.transport.bodies import body_within

log = logging.getLogger("homeapp.api.endpoint")
bp = Blueprint("api", __name__)

# the client events whose data the REST API saves, and so may ask this server to perform
EVENTS = (names.MESSAGE, names.CREATE_USER_GROUP, names.ADD_USER_TO_GROUP, names.KICK_USER_FROM_GROUP,
          names.DELETE_USER_ROOM, names.COMMENT_NOTIFICATION, names.RATING_NOTIFICATION)
STATUS = {errors.VALIDATION_ERROR: 400, errors.UNKNOWN_EVENT: 400, errors.UNAUTHENTICATED: 401,
          errors.FORBIDDEN: 403, errors.CONFLICT: 409, errors.RATE_LIMITED: 429,
          errors.INTERNAL_ERROR: 500, errors.UNAVAILABLE: 503, errors.UNKNOWN_OUTCOME: 504}
TOO_LARGE = 413
MAX_KEY_LENGTH = 200
REPLAYED = "replayed"  # the metrics outcome of an answer given again for a repeated key
_STORE = "homeapp.api.idempotency"


def check_config(config):
    """Raise ConfigError when HOMEAPP_SERVER_ONLY_EVENTS names an event the API does not perform,
    or is set without the API's tokens: sockets could no longer send it, and nothing else could."""
    if config["SERVER_ONLY_EVENTS"] and not config["API_TOKENS"]:
        raise ConfigError("HOMEAPP_SERVER_ONLY_EVENTS needs HOMEAPP_API_TOKENS: without the backend "
                          "API nothing could send those events")
    unknown = sorted(set(config["SERVER_ONLY_EVENTS"]) - set(EVENTS))
    if unknown:
        raise ConfigError(f"HOMEAPP_SERVER_ONLY_EVENTS names events that the backend API does not "
                          f"perform: {', '.join(unknown)}; it performs {', '.join(EVENTS)}")


def init_app(app, redis_client=None):
    """Serve the endpoint when HOMEAPP_API_TOKENS is set; without tokens there is none."""
    if not app.config["API_TOKENS"]:
        return
    app.extensions[_STORE] = create_idempotency(app.config, redis_client)
    app.register_blueprint(bp)


class Refusal(Exception):
    """A request answered with an error object; `status` is the HTTP status."""

    def __init__(self, error, event=None, status=None):
        super().__init__(error.message)
        self.code = error.code
        self.answer = _answer(status or STATUS.get(error.code, 500), error_payload(error, event))


def _answer(status, body):
    return Answer(status, jsoncodec.dumps(body).encode())


@bp.post("/api/events")
def perform_event():
    """Perform the body's event as its userID; answer as a socket's ack would."""
    event = user_id = None
    headers = {}
    try:
        _check_token()
        body = _parse(_read_body(current_app.config["MAX_PACKET_BYTES"]))
        event, user_id, payload = _envelope(body)
        key = _idempotency_key(event)
        answer, outcome = _perform_once(body, key, event, user_id, payload)
    except Refusal as refusal:
        answer, outcome = refusal.answer, refusal.code
    if outcome == REPLAYED:
        headers["Idempotent-Replayed"] = "true"
    elif answer.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    label = event if event in EVENTS else metrics.UNKNOWN_EVENT_LABEL
    metrics.API_REQUESTS.labels(label, outcome).inc()
    # the event, the user and the outcome: never the payload, never the token
    log.info("%s as user %s: %d %s", label, user_id or "-", answer.status, outcome)
    return Response(answer.body, answer.status, headers, mimetype="application/json")


def _check_token():
    """Raises Refusal (UNAUTHENTICATED) unless a configured token is presented."""
    presented = bearer.presented_token(request.headers)
    if presented is None or not bearer.matches_any(presented, current_app.config["API_TOKENS"]):
        raise Refusal(EventError(errors.UNAUTHENTICATED, "A valid bearer token is required."))


def _read_body(limit):
    """The request's body. Raises Refusal (413) when it is larger than limit bytes."""
    body = body_within(request.environ, limit)
    if body is None:
        raise Refusal(EventError(errors.VALIDATION_ERROR, f"The body is larger than {limit} bytes."),
                      status=TOO_LARGE)
    return body


def _parse(raw):
    """The body as a dict. Raises Refusal (VALIDATION_ERROR) unless it is a JSON object."""
    try:
        body = jsoncodec.loads(raw)
    except (ValueError, RecursionError):
        raise Refusal(EventError(errors.VALIDATION_ERROR, "The body is not JSON.")) from None
    if not isinstance(body, dict):
        raise Refusal(EventError(errors.VALIDATION_ERROR, "The body must be a JSON object."))
    return body


def _envelope(body):
    """(event, userID, payload) of the body.

    Raises Refusal (VALIDATION_ERROR) when its event or userID is missing or malformed; the
    error's `event` is the body's once the body names one.
    """
    named = body.get("event")
    named = named if isinstance(named, str) and len(named) <= MAX_EVENT_NAME else None
    try:
        data = dispatch.validated(event_request_schema, body)
    except EventError as error:
        raise Refusal(error, named) from None
    return data["event"], data["userID"], data["payload"]


def _idempotency_key(event):
    """The Idempotency-Key header, or None without one. Raises Refusal (VALIDATION_ERROR)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise Refusal(EventError(errors.VALIDATION_ERROR, f"Idempotency-Key must be 1 to "
                                 f"{MAX_KEY_LENGTH} printable ASCII characters."), event)
    return key


def _fingerprint(body):
    """A digest of the body's JSON, whatever its spacing and key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _perform_once(body, key, event, user_id, payload):
    """Perform the event, or answer again what a request with the same key was answered.

    Returns (Answer, metrics outcome), 200 once Redis holds what the event emitted (503 when it
    did not within HOMEAPP_ACK_TIMEOUT: then nothing of it is delivered). Raises Refusal: CONFLICT
    for a key in use by another request, UNAVAILABLE when the key cannot be looked up.
    """
    hub = current_app.extensions["homeapp"]
    if key is None:
        return _perform(hub, event, user_id, payload)
    store = current_app.extensions[_STORE]
    try:
        ticket = store.claim(key, _fingerprint(body))
    except Conflict as exc:
        raise Refusal(EventError(errors.CONFLICT, str(exc)), event) from None
    except IdempotencyUnavailable as exc:
        hub.health.lost(exc)
        raise Refusal(EventError(errors.UNAVAILABLE, "Redis is unreachable; try again."), event) from None
    if ticket.answer is not None:
        return ticket.answer, REPLAYED
    answer = None
    try:
        answer, outcome = _perform(hub, event, user_id, payload)
    finally:
        _settle(hub, store, ticket, answer)
    return answer, outcome


def _settle(hub, store, ticket, answer):
    """Remember the answer under its key; forget the key after a 5xx or a failure, so that a
    retry is performed. Never raises: the event has been handled either way."""
    try:
        if answer is None or answer.status >= 500:
            store.release(ticket)
        else:
            store.finish(ticket, answer)
    except IdempotencyUnavailable as exc:
        hub.health.lost(exc)
        # the claim runs out by itself (homeapp.api.idempotency.IN_FLIGHT_SECONDS)
        log.warning("could not record the answer to an Idempotency-Key: %s", exc)


def _perform(hub, event, user_id, payload):
    """Returns (Answer, metrics outcome): the ack, or the error object of a refusal."""
    try:
        if event not in EVENTS:
            raise EventError(errors.UNKNOWN_EVENT, f"The backend API does not perform {event!r}.")
        return _answer(200, dispatch.perform(hub, event, user_id, payload)), metrics.OK
    except EventError as error:
        return _answer(STATUS.get(error.code, 500), error_payload(error, event)), error.code
    except durability.Unknown:  # a socket gets no ack then (a guess); a request needs an answer
        error = EventError(errors.UNKNOWN_OUTCOME, "Redis could not tell whether it took this "
                                                   "event: it may be delivered or not.")
        return _answer(STATUS[error.code], error_payload(error, event)), error.code
