"""Tokens and session cookies for the tests: genuine ones, and each kind of forgery."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_SECRET = "jwt-test-secret-0123456789abcdef-0123456789"
SESSION_SECRET = "session-secret-now-0123456789abcdef-0123"
OLD_SESSION_SECRET = "session-secret-before-rotation-0123456789"
# the Socket.IO Admin UI's login (homeapp/operations/admin.py), as auth and as the server's settings
ADMIN = {"username": "operator", "password": "a long admin passphrase"}
ADMIN_ENV = {"HOMEAPP_ADMIN_USERNAME": ADMIN["username"], "HOMEAPP_ADMIN_PASSWORD": ADMIN["password"]}
NODE_DIR = Path(__file__).resolve().parent / "node"
OMIT = object()  # a claim or field to leave out


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(user_id, username=None, expires_in=60, **extra):
    """Claims of a token for user_id that expires in `expires_in` seconds (negative: expired).

    A claim given as OMIT is left out.
    """
    result = {"sub": user_id, "username": f"user{user_id}" if username is None else username,
              "exp": int(time.time()) + expires_in}
    result.update(extra)
    return {k: v for k, v in result.items() if v is not OMIT}


def token(user_id, username=None, expires_in=60, secret=JWT_SECRET, **extra):
    """A genuine HS256 token."""
    return jwt.encode(claims(user_id, username, expires_in, **extra), secret, algorithm="HS256")


def unsigned_token(body):
    """`alg: none`: claims with no signature at all."""
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(body).encode())}."


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rs256_token(body):
    """A real RS256 token, signed with a fresh RSA key the server never heard of."""
    pem = _rsa_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return jwt.encode(body, pem, algorithm="RS256")


def public_key_as_hmac_token(body):
    """Key confusion: HS256 'signed' with an RSA public key PEM, as if the server verified RS256 with it."""
    public_pem = _rsa_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}." \
                    f"{_b64(json.dumps(body).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def with_claims(genuine, **changes):
    """A genuine token whose claims were edited after signing; the signature is kept."""
    header, payload, signature = genuine.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    return f"{header}.{_b64(json.dumps(body).encode())}.{signature}"


def session_json(user_id, username=None, expires_in=3600, user=True):
    """A session as express-session + connect-redis store it (JSON.stringify of the session)."""
    expires = datetime.fromtimestamp(time.time() + expires_in, timezone.utc) if expires_in is not None else None
    session = {"cookie": {"originalMaxAge": None if expires is None else expires_in * 1000,
                          "expires": None if expires is None else
                          expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                          "secure": False, "httpOnly": True, "path": "/"}}
    if user:
        session["user"] = {"userID": user_id, "username": f"user{user_id}" if username is None else username,
                           "type": "Client"}
    return json.dumps(session)


def store_session(redis_client, session_id, user_id, username=None, expires_in=3600, prefix="sess:",
                  user=True):
    """Write a session as connect-redis does: the JSON with a TTL until the cookie expires."""
    value = session_json(user_id, username, expires_in, user)
    ttl = max(1, expires_in) if expires_in is not None and expires_in > 0 else 86400
    redis_client.set(prefix + session_id, value, ex=ttl)


def python_signed(session_id, secret=SESSION_SECRET):
    """`s:<sid>.<sig>` computed here, for tests that need no node."""
    mac = hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).digest()
    return f"s:{session_id}.{base64.b64encode(mac).decode().rstrip('=')}"


def require_node():
    """Skip the test when express's own signer cannot run here; in CI (env CI set), fail it."""
    if shutil.which("node") is None:
        reason = "node is not installed: the express-session compatibility test needs Node.js"
    elif not (NODE_DIR / "node_modules" / "cookie-signature").is_dir():
        reason = "tests/node/node_modules is missing: run `npm ci --prefix tests/node`"
    else:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def express_cookie(name, session_id, secret=SESSION_SECRET):
    """`name=value` as a browser sends it back after express-session's Set-Cookie, signed by node."""
    require_node()
    set_cookie = subprocess.run(["node", str(NODE_DIR / "express_cookie.js"), name, session_id, secret],
                                capture_output=True, text=True, check=True, timeout=30).stdout
    return set_cookie.split(";", 1)[0]
