"""HTTP pages: the demo page at / and the online list it starts from."""
from flask import Blueprint, current_app, jsonify, render_template
from jinja2.utils import htmlsafe_json_dumps

from homeapp.errors import UNAVAILABLE
from homeapp.presence import PresenceUnavailable
from homeapp.schemas.examples import EXAMPLES

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """The demo page; its default payloads are the protocol's examples, adapted in the browser."""
    # not the tojson filter: it sorts the keys, and a payload reads best in the example's order
    examples = htmlsafe_json_dumps(EXAMPLES)
    return render_template("index.html", auth_mode=current_app.config["AUTH_MODE"], examples=examples)


@bp.get("/api/online-users")
def online_users():
    """The ids in `onlineUsers`; the same facts every socket hears through newOnlineUser."""
    hub = current_app.extensions["homeapp"]
    try:
        online = hub.presence.online_users()
    except PresenceUnavailable as exc:
        hub.health.lost(exc)
        return jsonify({"error": "Presence is unavailable; try again.", "code": UNAVAILABLE}), 503
    return jsonify(sorted(online, key=int))
