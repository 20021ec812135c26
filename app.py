"""Development entry: `python app.py` serves the demo page and Socket.IO on HOST:PORT."""
from gevent import monkey

monkey.patch_all()  # before anything else imports socket, ssl or threading

import sys  # noqa: E402

from homeapp import create_app  # noqa: E402
from homeapp.config import ConfigError  # noqa: E402
from homeapp.extensions import socketio  # noqa: E402


def main():
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"homeapp: bad setting: {exc}")
    print(f"HomeApp realtime server on http://{app.config['HOST']}:{app.config['PORT']}/", flush=True)
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], log_output=False)


if __name__ == "__main__":
    main()
