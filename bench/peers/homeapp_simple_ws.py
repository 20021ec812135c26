"""HomeApp's `python app.py` served by simple-websocket instead of gevent-websocket, so that
bench/ can measure the two side by side (target homeapp-simple-ws).

engineio and Flask-SocketIO pick gevent-websocket whenever it imports, so it is made
unimportable before they are imported; homeapp's frame path and worker then step aside.
"""
import runpy
import sys
from pathlib import Path

from gevent import monkey

monkey.patch_all()  # before anything else imports socket, ssl or threading

ROOT = Path(__file__).resolve().parents[2]
sys.modules["geventwebsocket"] = None
sys.path.insert(0, str(ROOT))
runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
