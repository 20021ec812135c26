"""orjson behind the ``dumps``/``loads`` interface Socket.IO expects.

Packet encoding and decoding is on the hot path of every event; orjson is several
times faster than the standard library. The standard library remains the fallback
for what orjson refuses (integers beyond 64 bits), so that such a payload is judged
by the schemas like any other instead of failing inside the transport.
"""
import json

import orjson


def dumps(obj, **kwargs):
    """Serialise to a str; Socket.IO's separators argument is orjson's default."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def loads(text, **kwargs):
    """Parse JSON text; raises ValueError on malformed input."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)

