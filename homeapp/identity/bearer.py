"""Bearer tokens in the Authorization header, compared in constant time."""
import hmac


def presented_token(headers):
    """The token of an `Authorization: Bearer <token>` header, as bytes; None without one."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode()


def matches_any(presented, tokens):
    """True when presented (bytes) is one of tokens. Every token is compared, each in constant
    time, so that the time taken tells nothing about how close a guess came."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token.encode())
    return matched
