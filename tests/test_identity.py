"""Identities per HOMEAPP_AUTH mode: token verification, cookie signatures, sessions in Redis."""
import time
from types import SimpleNamespace

import pytest
import socketio

from homeapp.connections import Connections
from homeapp.events import lifecycle
from homeapp.identity.expiry import ExpiryWatch
from homeapp.identity import Identity, OpenIdentifier, Refused
from homeapp.identity.sessions import SessionIdentifier, SessionStore, cookie_value, sign, unsign
from homeapp.identity.tokens import TokenIdentifier, token_from
from tests import credentials as cred
from tests.credentials import JWT_SECRET, OLD_SESSION_SECRET, SESSION_SECRET


@pytest.fixture
def verifier():
    return TokenIdentifier(JWT_SECRET, leeway=0)


def test_a_valid_token_proves_its_user_until_exp(verifier):
    body = cred.claims("42", "ana")
    identity = verifier.verify(cred.token("42", "ana"))
    assert (identity.user_id, identity.username, identity.expires_at) == ("42", "ana", body["exp"])


def valid():
    return cred.token("42")


@pytest.mark.parametrize("make_token, reason", [
    (lambda: cred.token("42", expires_in=-30), "token expired"),
    (lambda: cred.token("42", secret="another-secret-0123456789abcdef-0123"), "bad token signature"),
    (lambda: cred.with_claims(valid(), sub="1"), "bad token signature"),
    (lambda: cred.with_claims(valid(), exp=int(time.time()) + 10**6), "bad token signature"),
    (lambda: cred.unsigned_token(cred.claims("42")), "algorithm not allowed"),
    (lambda: cred.rs256_token(cred.claims("42")), "algorithm not allowed"),
    (lambda: cred.public_key_as_hmac_token(cred.claims("42")), "bad token signature"),
    (lambda: cred.token("42", exp=cred.OMIT), "token lacks the exp claim"),
    (lambda: cred.token("42", username=cred.OMIT), "token lacks the username claim"),
    (lambda: cred.token("0x2a"), "sub must be a user id"),
    (lambda: cred.token("1" * 21), "sub must be a user id"),
    (lambda: cred.token(42), "sub must be a user id"),
    (lambda: cred.token("42", username="x" * 65), "username must be a string"),
    (lambda: cred.token("42", nbf=int(time.time()) + 3600), "token not yet valid"),
    (lambda: cred.token("42", aud="somebody-else"), "wrong token audience"),
    (lambda: "not.a.token", "malformed token"),
    (lambda: "garbage", "malformed token"),
])
def test_bad_tokens_are_refused_saying_why(verifier, make_token, reason):
    with pytest.raises(Refused, match=reason):
        verifier.verify(make_token())


def test_leeway_absorbs_clock_skew_on_exp():
    late = cred.token("42", expires_in=-5)
    identity = TokenIdentifier(JWT_SECRET, leeway=10).verify(late)
    assert identity.expires_at == pytest.approx(time.time() + 5, abs=1.5)
    with pytest.raises(Refused, match="token expired"):
        TokenIdentifier(JWT_SECRET, leeway=2).verify(late)


@pytest.mark.parametrize("extra, reason", [
    ({"aud": "homeapp"}, "token lacks the iss claim"),
    ({"iss": "rest-api"}, "token lacks the aud claim"),
    ({"aud": "other", "iss": "rest-api"}, "wrong token audience"),
    ({"aud": "homeapp", "iss": "someone"}, "wrong token issuer"),
])
def test_audience_and_issuer_are_checked_when_set(extra, reason):
    strict = TokenIdentifier(JWT_SECRET, audience="homeapp", issuer="rest-api")
    with pytest.raises(Refused, match=reason):
        strict.verify(cred.token("42", **extra))
    assert strict.verify(cred.token("42", aud="homeapp", iss="rest-api")).user_id == "42"


@pytest.mark.parametrize("environ, auth, expected", [
    ({}, {"token": "abc"}, "abc"),
    ({"HTTP_AUTHORIZATION": "Bearer from-header"}, {"token": "from-auth"}, "from-auth"),
    ({"HTTP_AUTHORIZATION": "Bearer from-header"}, None, "from-header"),
    ({"HTTP_AUTHORIZATION": "bearer  spaced "}, {}, "spaced"),
])
def test_token_comes_from_auth_then_header(environ, auth, expected):
    assert token_from(environ, auth) == expected


@pytest.mark.parametrize("environ, auth, reason", [
    ({}, None, "missing token"),
    ({}, {"userID": "1"}, "missing token"),
    ({}, {"token": ""}, "malformed token"),
    ({}, {"token": 5}, "malformed token"),
    ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}, None, "malformed Authorization header"),
    ({"HTTP_AUTHORIZATION": "Bearer"}, None, "malformed Authorization header"),
])
def test_missing_or_malformed_token_is_refused(environ, auth, reason):
    with pytest.raises(Refused, match=reason):
        token_from(environ, auth)


# cookie-signature 1.0.7 (express-session 1.19) printed this for sign("abc+/=", "secret1")
NODE_SIGNED = "abc+/=.Pn/mTyDjONQZqR8qToKq5Aqrmiuy0WGzh7gvRj5DTgA"


def test_signature_matches_cookie_signature_output():
    assert sign("abc+/=", "secret1") == NODE_SIGNED
    assert unsign(NODE_SIGNED, ["secret1"]) == "abc+/="


@pytest.mark.parametrize("signed", [
    NODE_SIGNED.replace("abc", "abd"),           # tampered session id
    NODE_SIGNED[:-1] + "B",                      # tampered signature
    NODE_SIGNED + "=",                           # padded signature
    "abc+/=",                                    # no signature
    "abc+/=.",                                   # empty signature
    NODE_SIGNED.replace("Pn/", "Pń/"),           # not ASCII
])
def test_tampered_signatures_fail(signed):
    assert unsign(signed, ["secret1"]) is None


def test_any_rotated_secret_verifies():
    assert unsign(NODE_SIGNED, ["new-secret", "secret1"]) == "abc+/="
    assert unsign(NODE_SIGNED, ["new-secret"]) is None


@pytest.mark.parametrize("header, expected", [
    ("sessionLog=s%3Aabc.sig", "s:abc.sig"),
    ("a=1; sessionLog=s%3Aabc.sig; b=2", "s:abc.sig"),
    ('sessionLog="s:abc.sig"', "s:abc.sig"),
    ("sessionLog=first; sessionLog=second", "first"),
    ("xsessionLog=nope; sessionLog= spaced ", "spaced"),
    ("other=1", None),
    ("", None),
])
def test_cookie_value_parses_as_the_cookie_package_does(header, expected):
    assert cookie_value(header, "sessionLog") == expected


@pytest.fixture
def sessions(redis_server):
    client = redis_server.client()
    return client, SessionIdentifier("sessionLog", [SESSION_SECRET, OLD_SESSION_SECRET],
                                     SessionStore(client, "sess:"))


def cookie_environ(signed, name="sessionLog"):
    from urllib.parse import quote
    return {"HTTP_COOKIE": f"theme=dark; {name}={quote(signed, safe='')}"}


def test_a_stored_session_proves_its_user_until_it_expires(sessions):
    client, identifier = sessions
    cred.store_session(client, "sid-good", 77, "bob", expires_in=600)
    identity = identifier.identify(cookie_environ(cred.python_signed("sid-good")), None)
    assert (identity.user_id, identity.username, identity.session_id) == ("77", "bob", "sid-good")
    assert identity.expires_at == pytest.approx(time.time() + 600, abs=2)
    assert identifier.identify(cookie_environ(cred.python_signed("sid-good", OLD_SESSION_SECRET)),
                               None).user_id == "77"


def test_a_session_without_cookie_expiry_ends_with_its_key(sessions):
    client, identifier = sessions
    client.set("sess:sid-ttl", cred.session_json("5", expires_in=None), ex=90)
    identity = identifier.identify(cookie_environ(cred.python_signed("sid-ttl")), None)
    assert identity.expires_at == pytest.approx(time.time() + 90, abs=2)
    client.set("sess:sid-forever", cred.session_json("5", expires_in=None))
    assert identifier.identify(cookie_environ(cred.python_signed("sid-forever")), None).expires_at is None


@pytest.mark.parametrize("stored, environ, reason", [
    (None, {}, "missing session cookie sessionLog"),
    (None, cookie_environ(cred.python_signed("sid-x"), name="connect.sid"), "missing session cookie"),
    (None, cookie_environ("sid-x"), "session cookie is not signed"),
    (None, cookie_environ(cred.python_signed("sid-x", "wrong-secret")), "bad session cookie signature"),
    (None, cookie_environ(cred.python_signed("sid-x").replace("sid-x", "sid-y")), "bad session cookie signature"),
    (None, cookie_environ(cred.python_signed("sid-unknown")), "unknown session"),
    ("not json", cookie_environ(cred.python_signed("sid-x")), "unreadable session"),
    (cred.session_json("1", user=False), cookie_environ(cred.python_signed("sid-x")), "session has no user"),
    (cred.session_json(True), cookie_environ(cred.python_signed("sid-x")), "no valid userID"),
    (cred.session_json("-3"), cookie_environ(cred.python_signed("sid-x")), "no valid userID"),
    (cred.session_json("9", username=""), cookie_environ(cred.python_signed("sid-x")), "no valid username"),
    (cred.session_json("9", expires_in=-5), cookie_environ(cred.python_signed("sid-x")), "session expired"),
])
def test_bad_sessions_are_refused_saying_why(sessions, stored, environ, reason):
    client, identifier = sessions
    client.delete("sess:sid-x")
    if stored is not None:
        client.set("sess:sid-x", stored)
    with pytest.raises(Refused, match=reason):
        identifier.identify(environ, None)


def test_session_store_down_refuses_with_a_retry_hint():
    import redis
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
    identifier = SessionIdentifier("sessionLog", [SESSION_SECRET], SessionStore(dead, "sess:"))
    with pytest.raises(Refused, match="session store unavailable"):
        identifier.identify(cookie_environ(cred.python_signed("sid")), None)


def test_renewal_rereads_the_session(sessions):
    client, identifier = sessions
    cred.store_session(client, "sid-roll", "8", expires_in=5)
    conn = Connections({}).open("s", "8", session_id="sid-roll")
    cred.store_session(client, "sid-roll", "8", expires_in=500)
    assert identifier.renew(conn).expires_at == pytest.approx(time.time() + 500, abs=2)
    cred.store_session(client, "sid-roll", "9", expires_in=500)
    with pytest.raises(Refused, match="another user"):
        identifier.renew(conn)
    client.delete("sess:sid-roll")
    with pytest.raises(Refused, match="unknown session"):
        identifier.renew(conn)


class StubIdentifier:
    def __init__(self, outcome):
        self.outcome = outcome

    def identify(self, environ, auth):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def renew(self, conn):
        return self.identify(None, None)


def fake_hub(identifier):
    server = SimpleNamespace(disconnected=[])
    server.disconnect = server.disconnected.append
    return SimpleNamespace(identifier=identifier, connections=Connections({}), server=server,
                           expiry=ExpiryWatch(lambda task: None, None))


def test_a_refused_connection_leaves_no_trace():
    hub = fake_hub(StubIdentifier(Refused("token expired")))
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        lifecycle.connect(hub, "sid1", {}, {"token": "x"})
    assert refused.value.error_args == {"message": "token expired"}
    assert len(hub.connections) == 0 and len(hub.expiry) == 0


def test_connect_fixes_the_identity_and_watches_its_expiry():
    hub = fake_hub(StubIdentifier(Identity("5", "eve", expires_at=1000.0, session_id="s")))
    lifecycle.connect(hub, "sid1", {}, None)
    conn = hub.connections.get("sid1")
    assert (conn.user_id, conn.username, conn.expires_at, conn.session_id) == ("5", "eve", 1000.0, "s")
    assert hub.expiry.due(999.0) == [] and hub.expiry.due(1000.0) == ["sid1"]


def test_expiry_keeps_a_renewed_socket_and_drops_the_rest():
    hub = fake_hub(StubIdentifier(Identity("5", "eve", expires_at=2000.0)))
    hub.connections.open("kept", "5", expires_at=1000.0)
    lifecycle.expire(hub, "kept")
    assert hub.connections.get("kept").expires_at == 2000.0 and hub.expiry.due(2000.0) == ["kept"]
    hub.identifier.outcome = Refused("unknown session")
    lifecycle.expire(hub, "kept")
    assert hub.server.disconnected == ["kept"]
    lifecycle.expire(hub, "gone-already")
    assert hub.server.disconnected == ["kept"]


def test_open_mode_takes_the_query_user_id():
    assert OpenIdentifier().identify({"QUERY_STRING": "userID=12"}, None).user_id == "12"
    assert OpenIdentifier().identify({}, None) is None
    with pytest.raises(Refused, match="1 to 20 digits"):
        OpenIdentifier().identify({"QUERY_STRING": "userID=abc"}, None)
