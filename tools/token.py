"""Development only: prove a user to this server without the REST API, to try the demo page.

    python -m tools.token USER_ID [--username NAME] [--expires-in SECONDS]

Reads the same settings as the server (HOMEAPP_AUTH and its secrets, from the environment), so
run it with the server's environment.

- `jwt`: prints an HS256 token for USER_ID signed with HOMEAPP_JWT_SECRET (with `aud` and `iss`
  when HOMEAPP_JWT_AUDIENCE / HOMEAPP_JWT_ISSUER are set). Paste it into a demo panel's Token field.
- `session`: stores a session for USER_ID in the Redis at REDIS_URL, as the REST API's
  connect-redis would, and prints its signed cookie with how to give it to the browser.
- `open`: nothing to prove; says so and exits 2.

Anyone who holds the secret can be anyone: never point this at a production secret you do not
already hold for that purpose. Exits 2 on a bad argument or setting, 1 when Redis is unreachable.
"""
import argparse
import json
import secrets
import sys
import time
from datetime import datetime, timezone
from urllib.parse import quote

import jwt
import redis

from homeapp.config import ConfigError, load_config
from homeapp.identity.sessions import SIGNED, sign
from homeapp.identity.tokens import ALGORITHMS
from homeapp.services.rooms import is_user_id
from homeapp.store import redis_keys
from homeapp.store.redis_client import connect

DEFAULT_EXPIRES_IN = 8 * 3600  # a working day of trying things


def jwt_token(config, user_id, username, expires_in, now=None):
    """An HS256 token the server's TokenIdentifier accepts for user_id until now + expires_in."""
    now = int(time.time() if now is None else now)
    claims = {"sub": user_id, "username": username, "iat": now, "exp": now + expires_in}
    if config["JWT_AUDIENCE"]:
        claims["aud"] = config["JWT_AUDIENCE"]
    if config["JWT_ISSUER"]:
        claims["iss"] = config["JWT_ISSUER"]
    return jwt.encode(claims, config["JWT_SECRET"], algorithm=ALGORITHMS[0])


def session_cookie(config, redis_client, user_id, username, expires_in):
    """Store a session as connect-redis does and return the cookie's value, URL-encoded.

    The first secret of HOMEAPP_SESSION_SECRET signs, as express-session does while rotating.
    """
    session_id = secrets.token_urlsafe(24)
    expires = datetime.fromtimestamp(time.time() + expires_in, timezone.utc)
    session = {"cookie": {"originalMaxAge": expires_in * 1000, "httpOnly": True, "path": "/",
                          "expires": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
               "user": {"userID": user_id, "username": username, "type": "Client"}}
    redis_client.set(redis_keys.session(config["SESSION_PREFIX"], session_id), json.dumps(session),
                     ex=expires_in)
    return quote(SIGNED + sign(session_id, config["SESSION_SECRETS"][0]), safe="")


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m tools.token",
                                     description="Development only: a token (jwt mode) or a session "
                                                 "cookie (session mode) for USER_ID, for the demo page.")
    parser.add_argument("user_id", metavar="USER_ID", help="1 to 20 digits")
    parser.add_argument("--username", help="default: user<USER_ID>")
    parser.add_argument("--expires-in", type=int, default=DEFAULT_EXPIRES_IN, metavar="SECONDS",
                        help=f"lifetime, default {DEFAULT_EXPIRES_IN}")
    args = parser.parse_args(argv)
    if not is_user_id(args.user_id):
        parser.error("USER_ID must be 1 to 20 digits")
    if args.expires_in <= 0:
        parser.error("--expires-in must be a positive number of seconds")
    if args.username is None:
        args.username = f"user{args.user_id}"
    return args


def main(argv=None):
    args = _arguments(argv)
    try:
        config = load_config()
    except ConfigError as error:
        print(f"tools.token: {error}", file=sys.stderr)
        return 2
    if len(args.username) > config["MAX_USERNAME_LENGTH"]:
        print(f"tools.token: --username is longer than HOMEAPP_MAX_USERNAME_LENGTH "
              f"({config['MAX_USERNAME_LENGTH']})", file=sys.stderr)
        return 2
    mode = config["AUTH_MODE"]
    if mode == "jwt":
        print(jwt_token(config, args.user_id, args.username, args.expires_in))
        return 0
    if mode == "session":
        try:
            value = session_cookie(config, connect(config["REDIS_URL"], timeout=5), args.user_id,
                                   args.username, args.expires_in)
        except redis.RedisError as error:
            print(f"tools.token: cannot store the session in {config['REDIS_URL']}: {error}", file=sys.stderr)
            return 1
        name = config["SESSION_COOKIE"]
        print(f"{name}={value}")
        print(f"# in the demo page's browser console, then Connect:\n"
              f"#   document.cookie = \"{name}={value}; path=/\"", file=sys.stderr)
        return 0
    print("tools.token: HOMEAPP_AUTH is open: a client just says who it is, no token needed", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
