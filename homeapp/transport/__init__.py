"""The transport beneath the events: the websocket frame path (frames.py, evented.py), Engine.IO's
sockets tuned (websocket.py), the JSON codec, the allowed origins and the connection handler /
gunicorn worker."""
