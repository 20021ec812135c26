"""The Socket.IO Admin UI: python-socketio's `/admin` namespace, and the UI's own page at /admin/.

Only with HOMEAPP_ADMIN_USERNAME and HOMEAPP_ADMIN_PASSWORD set; otherwise neither exists.
The page is the npm package @socket.io/admin-ui (pinned in static/package.json), served from
this server so that it works offline and loads nothing from third parties.

HOMEAPP_ADMIN_MODE=production (the default) reports figures only: servers, sockets per
namespace, connections and bytes over time. python-socketio declares the emit, join, leave and
disconnect actions in this mode but handles them only in development mode, so they are turned
off here rather than offered and silently ignored. development adds every socket, room and
event with its payload (message texts included) and those actions, to whoever holds the
credentials; it also costs time on every event and emit. Even there it never shows a token,
a cookie or an Authorization header: python-socketio reports each socket's handshake headers
and query as they came, and those carry users' bearer tokens and session cookies.

The login is rate-limited per client address (LoginLimit): HOMEAPP_ADMIN_LOGIN_ATTEMPTS failed
logins in HOMEAPP_ADMIN_LOGIN_WINDOW seconds, then every login from there is refused for a window,
the right one included; the failures are logged as one line per address and window.
"""
import hmac
import logging
import math
import time
from pathlib import Path

from flask import Blueprint, abort, send_from_directory, url_for
from socketio.exceptions import ConnectionRefusedError

from homeapp.events.dispatch import CONNECT, DISCONNECT
from homeapp.seams.socketio import event_trigger, trigger_events_with

log = logging.getLogger("homeapp.operations.admin")

NAMESPACE = "/admin"
STATIC = Path(__file__).resolve().parents[2] / "static"
UI = STATIC / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
ICONS = "node_modules/@mdi/font/css/materialdesignicons.min.css"  # under static/
LOGIN_SCRIPT = "admin-login.js"  # under static/
# what the UI's index.html fetches from CDNs; the icons come from static/ instead, and the
# text falls back from Roboto to the browser's sans-serif
_ICONS_CDN = "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"
_FONT_CDN = '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:100,300,400,500,700,900">'
# the connect_error message on which the UI keeps its login form open, with its own wording
REFUSED = "invalid credentials"
LOCKED_OUT = "too many failed logins from this address: try again in {seconds} s"
# handshake headers (WSGI names) and query parameters whose values the UI never shows
SECRET_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "HTTP_COOKIE")
SECRET_QUERY = ("token", "access_token", "auth", "authorization", "session", "sessionlog", "password")
REDACTED = "[redacted]"

bp = Blueprint("admin", __name__)
_instrumented = []  # the InstrumentedServer of the newest app in this process


def init_app(app, server, config):
    """Instrument the Socket.IO server and serve the UI when the admin credentials are set.

    Returns python-socketio's InstrumentedServer, or None when the Admin UI is off.
    """
    if config["ADMIN_USERNAME"] is None:
        return None
    development = config["ADMIN_MODE"] == "development"
    # python-socketio patches engineio's Socket class, for every server in the process: an app
    # created again in the same process (tests) takes the instrumentation over from the one
    # before, instead of stacking a second one on it
    release()
    own_trigger = event_trigger(server)
    instrumented = server.instrument(
        auth=credentials_check(config["ADMIN_USERNAME"], config["ADMIN_PASSWORD"]),
        mode=config["ADMIN_MODE"], read_only=not development, namespace=NAMESPACE)
    limit = LoginLimit(config["ADMIN_LOGIN_ATTEMPTS"], config["ADMIN_LOGIN_WINDOW"], server)
    server.on("connect", limit.guard(server.handlers[NAMESPACE]["connect"], config["TRUST_PROXY"]),
              namespace=NAMESPACE)
    if development:
        trigger_events_with(server, _lifecycle_reported(server, event_trigger(server), own_trigger))
        # every socket the UI is shown goes through it (connect, the initial list, pings)
        instrumented.serialize_socket = _redacted(instrumented.serialize_socket)
    _instrumented.append(instrumented)
    if not (UI / "index.html").is_file():
        log.warning("the Admin UI is not installed (npm ci --prefix static): /admin/ answers 404, "
                    "the %s namespace works", NAMESPACE)
    app.register_blueprint(bp)
    return instrumented


def release():
    """Take the newest instrumentation back, if any: engineio's Socket class as it was before.

    For tests, which build many apps in one process: the class is the whole process's.
    """
    while _instrumented:
        _instrumented.pop().uninstrument()


def credentials_check(username, password):
    """auth for server.instrument(): True for the right {"username", "password"}.

    Raises ConnectionRefusedError for anything else, which the client gets as connect_error.
    """
    expected = (username.encode(), password.encode())

    def check(auth):
        given = auth if isinstance(auth, dict) else {}
        user, secret = given.get("username"), given.get("password")
        if isinstance(user, str) and isinstance(secret, str):
            # both compared, always, in constant time: neither tells which one was wrong
            if hmac.compare_digest(user.encode(), expected[0]) & hmac.compare_digest(secret.encode(), expected[1]):
                return True
        raise ConnectionRefusedError(REFUSED)  # logged by LoginLimit, once per address and window
    return check


class LoginLimit:
    """Failed Admin UI logins per client address: at most `attempts` in a window of `window`
    seconds (from the address's first failure); then every login from that address, the right
    one included, is refused for `window` seconds. Each address's failures are logged as one line
    at the end of its window: a guesser made thousands a second, and each was a WARNING line.

    The address is the socket's peer, or with `trust_proxy` the one our proxy appended to
    X-Forwarded-For (deploy/nginx.conf): behind a proxy every peer is the proxy.
    """

    def __init__(self, attempts, window, server):
        self.attempts, self.window, self.server = attempts, window, server
        self.windows = {}  # address: [wrong credentials, refused while locked out] in its window
        self.locked_until = {}  # address: time.monotonic() at which its lockout ends

    def guard(self, admin_connect, trust_proxy):
        """python-socketio's connect handler of the admin namespace, behind this limit."""
        def connect(sid, environ, auth=None):
            address = client_address(environ, trust_proxy)
            left = self.lockout_left(address)
            if left:
                self._failed(address, locked=True)
                raise ConnectionRefusedError(LOCKED_OUT.format(seconds=math.ceil(left)))
            try:
                return admin_connect(sid, environ, auth)
            except ConnectionRefusedError:
                self._failed(address, locked=False)
                raise
        return connect

    def lockout_left(self, address):
        """Seconds for which logins from `address` are still refused; 0 when they are not."""
        until = self.locked_until.get(address)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            del self.locked_until[address]
            return 0
        return left

    def _failed(self, address, locked):
        counts = self.windows.get(address)
        if counts is None:
            counts = self.windows[address] = [0, 0]
            self.server.start_background_task(self._report, address)
        counts[locked] += 1
        if not locked and counts[0] >= self.attempts:
            self.locked_until[address] = time.monotonic() + self.window

    def _report(self, address):
        """At the end of an address's window: its one log line, and forget what has expired."""
        self.server.sleep(self.window)
        wrong, while_locked = self.windows.pop(address)
        left = self.lockout_left(address)
        for other in list(self.locked_until):  # addresses that never came back
            self.lockout_left(other)
        log.warning("refused %d Admin UI logins from %s in %.0f s: %d with wrong credentials, "
                    "%d while locked out%s", wrong + while_locked, address, self.window, wrong,
                    while_locked, f"; locked out for {math.ceil(left)} s more" if left else "")


def client_address(environ, trust_proxy):
    """The client's address: the socket's peer, or with trust_proxy the last X-Forwarded-For
    entry, which our proxy appended (the ones before it are the client's word)."""
    forwarded = environ.get("HTTP_X_FORWARDED_FOR") if trust_proxy else None
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return environ.get("REMOTE_ADDR", "")


def _redacted(serialize_socket):
    """python-socketio's serialize_socket, without the values of SECRET_HEADERS and SECRET_QUERY."""
    headers = {name[5:].lower() for name in SECRET_HEADERS}

    def serialize(*args, **kwargs):
        shown = serialize_socket(*args, **kwargs)
        handshake = shown.get("handshake", {})
        for section, secret in (("headers", headers.__contains__),
                                ("query", lambda key: key.lower() in SECRET_QUERY)):
            values = handshake.get(section) or {}
            for key in values:
                if secret(key):
                    values[key] = REDACTED
        return shown
    return serialize


def _lifecycle_reported(server, reported, own):
    """The development mode's event hook, for the lifecycle only.

    A client may send an event named `connect` or `disconnect` (homeapp.events.dispatch answers
    it as unknown); python-socketio's admin hook would take it for the real thing, and a forged
    disconnect made it forget the socket, so that the real one later failed before the app
    saw it and the user stayed online. Such events go straight to the app's handlers.
    """
    def trigger(event, namespace, *args):
        if event in (CONNECT, DISCONNECT) and _forged(server, event, namespace, args):
            return own(event, namespace, *args)
        return reported(event, namespace, *args)
    return trigger


def _forged(server, event, namespace, args):
    """True when a lifecycle-named event is a client's packet rather than python-socketio's own."""
    sid = args[0]
    if event == DISCONNECT:  # a real disconnect has begun by now: the socket counts as gone
        return server.manager.is_connected(sid, namespace)
    eio_sid = server.manager.eio_sid_from_sid(sid, namespace)
    # a real connect hands over the handshake's own environ; a client can only send JSON
    return len(args) < 2 or args[1] is not server.environ.get(eio_sid)


@bp.get("/admin/")  # /admin redirects here: the page's assets are relative to it
def ui_page():
    """The UI's page, its icon font from static/ and no third-party font."""
    page = _page()
    if page is None:
        abort(404)
    return page


@bp.get("/admin/<path:name>")
def ui_asset(name):
    """The UI's scripts, styles and images."""
    return send_from_directory(UI, name)


def _page():
    """index.html as served, or None when the UI is not installed."""
    try:
        html = (UI / "index.html").read_text()
    except FileNotFoundError:
        return None
    icons = url_for("static", filename=ICONS)
    # before the UI's scripts: it pre-fills and checks the login's Server URL
    login = f'<script src="{url_for("static", filename=LOGIN_SCRIPT)}"></script>'
    return html.replace(_ICONS_CDN, icons).replace(_FONT_CDN, "").replace("</head>", login + "</head>", 1)
