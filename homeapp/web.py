"""HTTP pages: the demo page at / and the online list it starts from."""
from flask import Blueprint, current_app, jsonify, render_template, request
from jinja2.utils import htmlsafe_json_dumps

from homeapp.errors import UNAUTHENTICATED, UNAVAILABLE, EventError, error_payload
from homeapp.identity import Refused
from homeapp.presence import PresenceUnavailable
from homeapp.schemas.examples import EXAMPLES

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """The demo page; its default payloads are the protocol's examples, adapted in the browser."""
    # not the tojson filter: it sorts the keys, and a payload reads best in the example's order
    examples = htmlsafe_json_dumps(EXAMPLES)
    # the cookie's name, for the page's words on how session mode proves a panel's user
    return render_template("index.html", auth_mode=current_app.config["AUTH_MODE"], examples=examples,
                           session_cookie=current_app.config["SESSION_COOKIE"])


@bp.get("/api/online-users")
def online_users():
    """The ids in `onlineUsers`; the same facts every socket hears through newOnlineUser.

    In jwt and session modes only a caller with the proof a socket needs (a token, a session
    cookie) may read it, since only such a caller could hear newOnlineUser. In open mode anyone
    can connect and hear it, so the list is public.
    """
    hub = current_app.extensions["homeapp"]
    if current_app.config["AUTH_MODE"] != "open":
        try:
            hub.identifier.identify(request.environ, None)
        except Refused as refusal:
            return _error(UNAUTHENTICATED, str(refusal), 401)
    try:
        online = hub.presence.online_users()
    except PresenceUnavailable as exc:
        hub.health.lost(exc)
        return _error(UNAVAILABLE, "Presence is unavailable; try again.", 503)
    return jsonify(sorted(online, key=int))


def _error(code, message, status):
    return jsonify(error_payload(EventError(code, message), None)), status
