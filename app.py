"""Development entry: `python app.py` serves the demo page and Socket.IO on HOST:PORT.

SIGTERM or SIGINT shuts it down gracefully (homeapp.operations.shutdown) and it exits 0.
"""
from gevent import monkey

monkey.patch_all()  # before anything else imports socket, ssl or threading

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# HOMEAPP_WEBSOCKET=simple-websocket serves websockets with simple-websocket instead of
# gevent-websocket (unreleased since 2017), so that the two can be measured side by side
# (bench/). engineio and Flask-SocketIO pick gevent-websocket whenever it imports, so it is
# made unimportable before they are imported.
WEBSOCKET = os.environ.get("HOMEAPP_WEBSOCKET", "gevent-websocket")
if WEBSOCKET not in ("gevent-websocket", "simple-websocket"):
    sys.exit(f"homeapp: bad setting: HOMEAPP_WEBSOCKET must be gevent-websocket or "
             f"simple-websocket, got {WEBSOCKET!r}")
if WEBSOCKET == "simple-websocket":
    sys.modules["geventwebsocket"] = None

from homeapp import create_app  # noqa: E402
from homeapp.config import ConfigError  # noqa: E402
from homeapp.operations.shutdown import serve  # noqa: E402


def main():
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"homeapp: bad setting: {exc}")
    logging.getLogger("homeapp").info("HomeApp realtime server on http://%s:%s/",
                                      app.config["HOST"], app.config["PORT"])
    serve(app, app.config["HOST"], app.config["PORT"])


if __name__ == "__main__":
    main()
