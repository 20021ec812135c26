import pytest

from homeapp.api import endpoint as api
from homeapp.config import ConfigError, check_production, load_config


def test_defaults_follow_the_contract():
    config = load_config({})
    assert (config["HOST"], config["PORT"], config["REDIS_URL"], config["AUTH_MODE"]) == \
        ("127.0.0.1", 5000, None, "open")
    assert config["CORS_ORIGINS"] == []
    assert (config["MAX_MESSAGE_LENGTH"], config["MAX_USERNAME_LENGTH"], config["MAX_ROOM_MEMBERS"],
            config["MAX_NOTIFICATIONS"], config["MAX_PACKET_BYTES"]) == (5000, 64, 50, 100, 65536)


def test_settings_are_read():
    config = load_config({"PORT": "8080", "REDIS_URL": "redis://h:1/0", "HOMEAPP_AUTH": "JWT",
                          "HOMEAPP_JWT_SECRET": "s" * 32,
                          "HOMEAPP_CORS_ORIGINS": "https://a.example, https://b.example",
                          "HOMEAPP_MESSAGE_RATE": "2.5"})
    assert config["PORT"] == 8080 and config["REDIS_URL"] == "redis://h:1/0"
    assert config["AUTH_MODE"] == "jwt" and config["MESSAGE_RATE"] == 2.5
    assert config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("name, value", [
    ("PORT", "http"),
    ("HOMEAPP_AUTH", "basic"),
    ("HOMEAPP_MAX_MESSAGE_LENGTH", "0"),
    ("HOMEAPP_MAX_ROOM_MEMBERS", "1"),
    ("HOMEAPP_MESSAGE_RATE", "-1"),
    ("HOMEAPP_TYPING_ROOMS", "0"),
    ("HOMEAPP_TIMEZONE", "Mars/Olympus"),
])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_operations_defaults():
    config = load_config({})
    assert (config["LOG_LEVEL"], config["LOG_FORMAT"], config["METRICS_TOKEN"]) == ("INFO", "text", None)
    assert (config["SHUTDOWN_GRACE"], config["READY_TIMEOUT"]) == (10.0, 0.5)
    assert (config["PING_INTERVAL"], config["PING_TIMEOUT"]) == (25, 20)
    assert (config["MAX_PENDING_OUTPUT_BYTES"], config["HEADER_TIMEOUT"]) == (1024 * 1024, 10.0)
    assert config["BODY_TIMEOUT"] == 10.0
    assert (config["ADMIN_LOGIN_ATTEMPTS"], config["ADMIN_LOGIN_WINDOW"]) == (5, 60.0)


@pytest.mark.parametrize("name, value", [
    ("HOMEAPP_LOG_LEVEL", "LOUD"),
    ("HOMEAPP_LOG_FORMAT", "xml"),
    ("HOMEAPP_SHUTDOWN_GRACE", "soon"),
    ("HOMEAPP_SHUTDOWN_GRACE", "0"),
    ("HOMEAPP_READY_TIMEOUT", "0"),
    ("HOMEAPP_PING_INTERVAL", "0.5"),  # Engine.IO announces whole seconds: 0.5 would be 0
    ("HOMEAPP_PING_TIMEOUT", "0"),
    ("HOMEAPP_MAX_PENDING_OUTPUT_BYTES", "1000"),  # less than one packet could ever wait
    ("HOMEAPP_HEADER_TIMEOUT", "0"),
    ("HOMEAPP_BODY_TIMEOUT", "0"),
    ("HOMEAPP_BODY_TIMEOUT", "inf"),
    ("HOMEAPP_ADMIN_LOGIN_ATTEMPTS", "0"),
    ("HOMEAPP_ADMIN_LOGIN_ATTEMPTS", "five"),
    ("HOMEAPP_ADMIN_LOGIN_WINDOW", "0.5"),
])
def test_bad_operations_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


LONG = "s" * 32


def test_auth_settings_have_defaults():
    config = load_config({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": f" {LONG}, old-one ",
                          "REDIS_URL": "redis://h:1/0"})
    assert config["SESSION_SECRETS"] == [LONG, "old-one"]
    assert (config["SESSION_COOKIE"], config["SESSION_PREFIX"]) == ("sessionLog", "sess:")
    assert (config["JWT_LEEWAY"], config["JWT_AUDIENCE"], config["JWT_ISSUER"]) == (10.0, None, None)
    assert config["CORS_CREDENTIALS"] is True and config["ALLOW_OPEN"] is False


@pytest.mark.parametrize("env, message", [
    ({"HOMEAPP_AUTH": "jwt"}, "needs HOMEAPP_JWT_SECRET"),
    ({"HOMEAPP_AUTH": "session", "REDIS_URL": "redis://h/0"}, "needs HOMEAPP_SESSION_SECRET"),
    ({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": LONG}, "needs REDIS_URL"),
    ({"HOMEAPP_CORS_ORIGINS": "*"}, "may not be '\\*' while credentials"),
    ({"HOMEAPP_CORS_ORIGINS": "https://a.example/"}, "HOMEAPP_CORS_ORIGINS entries"),
    ({"HOMEAPP_CORS_ORIGINS": "a.example"}, "HOMEAPP_CORS_ORIGINS entries"),
    ({"HOMEAPP_CORS_CREDENTIALS": "maybe"}, "HOMEAPP_CORS_CREDENTIALS"),
    ({"HOMEAPP_JWT_LEEWAY": "3600"}, "HOMEAPP_JWT_LEEWAY"),
    ({"HOMEAPP_JWT_LEEWAY": "-1"}, "HOMEAPP_JWT_LEEWAY"),
    ({"HOMEAPP_SESSION_COOKIE": "my cookie"}, "HOMEAPP_SESSION_COOKIE"),
])
def test_bad_auth_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_star_origin_is_allowed_only_without_credentials():
    config = load_config({"HOMEAPP_CORS_ORIGINS": "*", "HOMEAPP_CORS_CREDENTIALS": "0"})
    assert config["CORS_ORIGINS"] == ["*"] and config["CORS_CREDENTIALS"] is False


@pytest.mark.parametrize("env, message", [
    ({}, "HOMEAPP_ALLOW_OPEN=1"),
    ({"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": "short"}, "HOMEAPP_JWT_SECRET is too short"),
    ({"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": f"{LONG},short", "REDIS_URL": "redis://h/0"},
     "HOMEAPP_SESSION_SECRET is too short"),
])
def test_production_refuses_open_mode_and_short_secrets(env, message):
    with pytest.raises(ConfigError, match=message):
        check_production(load_config(env))


@pytest.mark.parametrize("env", [
    {"HOMEAPP_ALLOW_OPEN": "1"},
    {"HOMEAPP_AUTH": "jwt", "HOMEAPP_JWT_SECRET": LONG},
    {"HOMEAPP_AUTH": "session", "HOMEAPP_SESSION_SECRET": f"{LONG},{LONG}x", "REDIS_URL": "redis://h/0"},
])
def test_production_accepts_safe_settings(env):
    check_production(load_config(env))


def test_backend_api_defaults():
    config = load_config({})
    assert (config["API_TOKENS"], config["SERVER_ONLY_EVENTS"]) == ([], frozenset())
    assert (config["IDEMPOTENCY_SECONDS"], config["IDEMPOTENCY_KEYS"]) == (86400, 10000)
    assert (config["NOTIFICATION_RATE"], config["NOTIFICATION_BURST"]) == (1.0, 5)


def test_backend_api_settings_are_read():
    config = load_config({"HOMEAPP_API_TOKENS": f" {LONG}, {LONG}-next ",
                          "HOMEAPP_SERVER_ONLY_EVENTS": "commentNotification, ratingNotification",
                          "HOMEAPP_IDEMPOTENCY_SECONDS": "3600"})
    assert config["API_TOKENS"] == [LONG, f"{LONG}-next"]
    assert config["SERVER_ONLY_EVENTS"] == {"commentNotification", "ratingNotification"}
    assert config["IDEMPOTENCY_SECONDS"] == 3600
    api.check_config(config)


@pytest.mark.parametrize("env, message", [
    ({"HOMEAPP_API_TOKENS": "short"}, "token 1 has 5 characters; each must have at least 32"),
    ({"HOMEAPP_API_TOKENS": f"{LONG},{'t' * 31}"}, "token 2 has 31 characters"),
    ({"HOMEAPP_API_TOKENS": f"{LONG} with spaces"}, "token 1 may hold only visible ASCII"),
    ({"HOMEAPP_API_TOKENS": "é" * 32}, "token 1 may hold only visible ASCII"),
    ({"HOMEAPP_IDEMPOTENCY_SECONDS": "0"}, "HOMEAPP_IDEMPOTENCY_SECONDS"),
    ({"HOMEAPP_IDEMPOTENCY_KEYS": "0"}, "HOMEAPP_IDEMPOTENCY_KEYS"),
    ({"HOMEAPP_NOTIFICATION_RATE": "-1"}, "HOMEAPP_NOTIFICATION_RATE"),
    ({"HOMEAPP_NOTIFICATION_BURST": "0"}, "HOMEAPP_NOTIFICATION_BURST"),
], ids=["short-token", "short-second-token", "token-with-spaces", "non-ascii-token", "no-window",
        "no-keys", "negative-notification-rate", "no-notification-burst"])
def test_bad_backend_api_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(env)
    assert LONG not in str(refused.value)  # a token is never printed


@pytest.mark.parametrize("events", ["joinRoom", "commentNotification,noSuchEvent", "addOnlineUser"],
                         ids=["socket-only", "unknown", "presence"])
def test_server_only_events_must_be_ones_the_api_performs(events):
    config = load_config({"HOMEAPP_SERVER_ONLY_EVENTS": events, "HOMEAPP_API_TOKENS": LONG})
    with pytest.raises(ConfigError, match="HOMEAPP_SERVER_ONLY_EVENTS names events that the backend API "
                                          "does not perform"):
        api.check_config(config)


def test_server_only_events_need_the_backend_api():
    with pytest.raises(ConfigError, match="HOMEAPP_SERVER_ONLY_EVENTS needs HOMEAPP_API_TOKENS"):
        api.check_config(load_config({"HOMEAPP_SERVER_ONLY_EVENTS": "commentNotification"}))


def test_the_admin_ui_is_off_by_default_and_reports_figures_only_when_on():
    assert (load_config({})["ADMIN_USERNAME"], load_config({})["ADMIN_PASSWORD"]) == (None, None)
    config = load_config({"HOMEAPP_ADMIN_USERNAME": "ops", "HOMEAPP_ADMIN_PASSWORD": "p" * 12})
    assert (config["ADMIN_USERNAME"], config["ADMIN_PASSWORD"], config["ADMIN_MODE"]) == \
        ("ops", "p" * 12, "production")
    assert load_config({"HOMEAPP_ADMIN_MODE": "Development"})["ADMIN_MODE"] == "development"


@pytest.mark.parametrize("env, message", [
    ({"HOMEAPP_ADMIN_USERNAME": "ops"}, "go together"),
    ({"HOMEAPP_ADMIN_PASSWORD": "p" * 12}, "go together"),
    ({"HOMEAPP_ADMIN_MODE": "debug"}, "HOMEAPP_ADMIN_MODE"),
])
def test_bad_admin_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)


@pytest.mark.parametrize("password, refused", [("p" * 11, True), ("p" * 12, False)])
def test_production_refuses_a_short_admin_password(password, refused):
    config = load_config({"HOMEAPP_ALLOW_OPEN": "1", "HOMEAPP_ADMIN_USERNAME": "ops",
                          "HOMEAPP_ADMIN_PASSWORD": password})
    if refused:
        with pytest.raises(ConfigError, match="HOMEAPP_ADMIN_PASSWORD is too short"):
            check_production(config)
    else:
        check_production(config)


def test_the_handler_pool():
    assert load_config({})["HANDLER_POOL"] == 1000
    assert load_config({"HOMEAPP_HANDLER_POOL": "64"})["HANDLER_POOL"] == 64


@pytest.mark.parametrize("name, value", [("HOMEAPP_HANDLER_POOL", "0"), ("HOMEAPP_HANDLER_POOL", "many")])
def test_bad_handler_pool_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_tls_files_go_together_and_must_be_readable(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("c"), key.write_text("k")
    assert load_config({})["TLS_CERT"] is None
    assert load_config({"HOMEAPP_TLS_CERT": str(cert), "HOMEAPP_TLS_KEY": str(key)})["TLS_KEY"] == str(key)
    with pytest.raises(ConfigError, match="go together"):
        load_config({"HOMEAPP_TLS_CERT": str(cert)})
    with pytest.raises(ConfigError, match="HOMEAPP_TLS_KEY is not a readable file"):
        load_config({"HOMEAPP_TLS_CERT": str(cert), "HOMEAPP_TLS_KEY": str(tmp_path / "missing.pem")})
