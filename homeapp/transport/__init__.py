"""The websocket frame path beneath the events: the tuned gevent-websocket writer, the JSON codec,
the allowed origins and the connection handler / gunicorn worker."""
