"""`HOMEAPP_AUTH=jwt`: an HS256 token from the `auth` payload or an `Authorization: Bearer` header."""
import jwt

from homeapp.identity import Identity, Refused
from homeapp.services.rooms import is_user_id

# Fixed here, never read from the token: accepting the token's own `alg` is how
# `none` and RS256/HS256 key-confusion forgeries get in.
ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["exp", "sub", "username"]

# checked in order: the first class the error is an instance of names the reason
_REASONS = [
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed: HS256 only"),
    (jwt.InvalidSignatureError, "bad token signature"),
    (jwt.DecodeError, "malformed token"),
    (jwt.InvalidAudienceError, "wrong token audience"),
    (jwt.InvalidIssuerError, "wrong token issuer"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.exceptions.InvalidSubjectError, "token sub must be a user id of 1 to 20 digits"),
]


def token_from(environ, auth):
    """The raw token: `auth.token` first, else the Bearer header.

    Raises Refused when neither carries one.
    """
    if isinstance(auth, dict) and "token" in auth:
        token = auth["token"]
        if not isinstance(token, str) or not token:
            raise Refused("malformed token: auth.token must be a non-empty string")
        return token
    header = environ.get("HTTP_AUTHORIZATION")
    if header:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused("malformed Authorization header: expected 'Bearer <token>'")
        return token.strip()
    raise Refused("missing token: send auth {token} or an Authorization: Bearer header")


def _reason(error):
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"token lacks the {error.claim} claim"
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "invalid token"


class TokenIdentifier:
    """Verifies HS256 tokens signed with the shared secret; a token's identity ends at its `exp`."""

    def __init__(self, secret, audience=None, issuer=None, leeway=10.0, max_username_length=64):
        self._secret = secret
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._max_username_length = max_username_length

    def verify(self, token):
        """The identity a token proves.

        Raises Refused naming what is wrong: expired, bad signature, algorithm, claims.
        """
        try:
            claims = jwt.decode(token, self._secret, algorithms=ALGORITHMS, audience=self._audience,
                                issuer=self._issuer, leeway=self._leeway,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.InvalidTokenError as error:
            raise Refused(_reason(error)) from None
        user_id, username = claims["sub"], claims["username"]
        if not is_user_id(user_id):
            raise Refused("token sub must be a user id of 1 to 20 digits")
        if not isinstance(username, str) or not 0 < len(username) <= self._max_username_length:
            raise Refused(f"token username must be a string of 1 to {self._max_username_length} characters")
        # PyJWT accepted it until exp + leeway, so it lives until then
        return Identity(user_id, username, expires_at=int(claims["exp"]) + self._leeway)

    def identify(self, environ, auth):
        """The identity of the handshake's token. Raises Refused without a valid one."""
        return self.verify(token_from(environ, auth))

    def renew(self, conn):
        """A token cannot be extended: at its expiry the socket goes."""
        raise Refused("token expired")
