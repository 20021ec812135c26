"""Development entry: `python app.py` serves the demo page and Socket.IO on HOST:PORT.

SIGTERM or SIGINT shuts it down gracefully (homeapp.operations.shutdown) and it exits 0.
"""
from gevent import monkey

monkey.patch_all()  # before anything else imports socket, ssl or threading

import logging  # noqa: E402
import sys  # noqa: E402

from homeapp import create_app  # noqa: E402
from homeapp.config import ConfigError  # noqa: E402
from homeapp.operations.shutdown import serve  # noqa: E402
from homeapp.seams import UnsupportedLibrary  # noqa: E402


def main():
    try:
        app = create_app()
    except UnsupportedLibrary as exc:
        sys.exit(f"homeapp: cannot start: {exc}")
    except ConfigError as exc:
        sys.exit(f"homeapp: bad setting: {exc}")
    scheme = "https" if app.config["TLS_CERT"] else "http"
    logging.getLogger("homeapp").info("HomeApp realtime server on %s://%s:%s/", scheme,
                                      app.config["HOST"], app.config["PORT"])
    serve(app, app.config["HOST"], app.config["PORT"])


if __name__ == "__main__":
    main()
