import pytest

from homeapp.config import ConfigError, load_config


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
    ("HOMEAPP_TIMEZONE", "Mars/Olympus"),
])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})
