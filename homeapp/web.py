"""HTTP pages: the demo page at / and the online list it starts from."""
from flask import Blueprint, current_app, jsonify, render_template

from homeapp.errors import UNAVAILABLE
from homeapp.presence import PresenceUnavailable

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return render_template("index.html", auth_mode=current_app.config["AUTH_MODE"])


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
