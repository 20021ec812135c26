"""homeapp.telemetry.logs: the two formats, the event context, and the transports held back."""
import io
import json
import logging

import pytest

from homeapp.connections import Connection
from homeapp.telemetry.logs import EVENT_CONTEXT, configure_logging, make_handler


@pytest.fixture
def capture():
    """capture(fmt) -> (logger, stream): a logger writing through homeapp's handler into a string."""
    loggers = []

    def make(fmt):
        stream = io.StringIO()
        logger = logging.getLogger(f"homeapp.test.{fmt}.{len(loggers)}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(make_handler(fmt, stream))
        loggers.append(logger)
        return logger, stream

    yield make
    for logger in loggers:
        logger.handlers.clear()


def in_event(func, sid="abc", user_id="42", event="message"):
    token = EVENT_CONTEXT.set((Connection(sid, user_id), event))
    try:
        func()
    finally:
        EVENT_CONTEXT.reset(token)


def test_json_line_carries_the_event_context(capture):
    logger, stream = capture("json")
    in_event(lambda: logger.info("refused %s", "FORBIDDEN"))
    line = json.loads(stream.getvalue())
    assert {k: line[k] for k in ("level", "message", "sid", "user_id", "event")} == \
        {"level": "INFO", "message": "refused FORBIDDEN", "sid": "abc", "user_id": "42", "event": "message"}
    assert line["logger"] == logger.name and line["time"].endswith("+00:00")


def test_json_line_outside_an_event_has_no_context_and_keeps_the_traceback(capture):
    logger, stream = capture("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    line = json.loads(stream.getvalue())
    assert "sid" not in line and "event" not in line
    assert "ValueError: boom" in line["exception"]


@pytest.mark.parametrize("user_id, expected", [
    ("42", "[sid=abc user_id=42 event=message]: hello"),
    (None, "[sid=abc event=message]: hello"),  # before addOnlineUser the socket has no user
])
def test_text_line_names_the_event_in_brackets(capture, user_id, expected):
    logger, stream = capture("text")
    in_event(lambda: logger.info("hello"), user_id=user_id)
    assert stream.getvalue().rstrip("\n").endswith(f"INFO {logger.name} {expected}")


def test_text_line_outside_an_event_has_no_brackets(capture):
    logger, stream = capture("text")
    logger.warning("plain")
    assert stream.getvalue().rstrip("\n").endswith(f"WARNING {logger.name}: plain")


def test_each_line_is_one_json_object_even_with_newlines(capture):
    logger, stream = capture("json")
    logger.info("two\nlines")
    assert len(stream.getvalue().splitlines()) == 1


@pytest.mark.parametrize("level, transport_level", [
    ("DEBUG", logging.WARNING),  # their INFO lines carry whole packets, message text included
    ("INFO", logging.WARNING),
    ("ERROR", logging.ERROR),
])
def test_configure_logging_holds_the_transports_back(level, transport_level):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging(level, "json")
        configure_logging(level, "json")
        assert len(root.handlers) == 1  # configuring twice never doubles the lines
        for name in ("engineio.server", "socketio.server", "geventwebsocket"):
            assert logging.getLogger(name).getEffectiveLevel() == transport_level
        assert logging.getLogger("homeapp").level == logging.getLevelName(level)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
