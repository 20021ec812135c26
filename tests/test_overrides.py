"""The library seams: installed by create_app only, and refused on versions the tests do not cover."""
import subprocess
import sys

import pytest

from homeapp import create_app
from homeapp import seams
from homeapp.seams import versions
from tests.processes import ROOT


def test_the_installed_libraries_are_the_ones_the_tests_cover():
    seams.check_versions()


@pytest.mark.parametrize("distribution, version", [
    ("python-engineio", "4.16.0"), ("python-engineio", "4.13.0"), ("python-socketio", "6.0.0"),
    ("gevent-websocket", "0.10.2"), ("gevent", "25.4.1"), ("marshmallow", "5.0.0"),
    ("Flask-SocketIO", "5.8.0"), ("gunicorn", "28.0.0"), ("redis", "9.0.0"), ("prometheus-client", "0.27.0"),
])
def test_the_app_refuses_to_start_on_a_version_out_of_range(monkeypatch, distribution, version):
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda name: version if name == distribution else real(name))
    with pytest.raises(seams.UnsupportedLibrary) as refusal:
        create_app()
    message = str(refusal.value)
    assert f"{distribution} {version} is installed" in message
    assert seams.COVERED[distribution][0] in message   # the range the tests cover
    assert seams.COVERED[distribution][2] in message   # and what to re-test
    assert "docs/upgrading.md" in message


def test_importing_the_package_replaces_nothing_in_the_libraries():
    """Only create_app installs the overrides: a fresh interpreter that imports every module
    still has the libraries' own code."""
    script = (
        "import engineio.socket\n"
        "before = (engineio.socket.Socket.send, engineio.socket.Socket.schedule_ping, engineio.socket.Socket._websocket_handler)\n"
        "import homeapp, homeapp.seams, homeapp.transport.evented, homeapp.events\n"
        "after = (engineio.socket.Socket.send, engineio.socket.Socket.schedule_ping, engineio.socket.Socket._websocket_handler)\n"
        "assert before == after, after\n"
        "homeapp.create_app()\n"
        "assert engineio.socket.Socket.send is homeapp.seams.engineio._send\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_creating_the_app_twice_installs_each_seam_once():
    create_app()
    create_app()
    from engineio.socket import Socket

    from homeapp.seams import engineio
    assert Socket.send is engineio._send and Socket.poll is engineio._poll


def test_the_upgrade_check_may_start_on_an_untested_version_but_production_may_not(monkeypatch, caplog):
    from homeapp.config import ConfigError, check_production, load_config
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda name: "4.16.0" if name == "python-engineio" else real(name))
    with caplog.at_level("WARNING", logger="homeapp.transport"):
        seams.check_versions(allow_untested=True)
    assert "python-engineio 4.16.0 is installed" in caplog.text
    create_app({"ALLOW_UNTESTED_LIBRARIES": True})  # starts (create_app replaces the log handlers)
    with pytest.raises(ConfigError, match="HOMEAPP_ALLOW_UNTESTED_LIBRARIES"):
        check_production(load_config({"HOMEAPP_ALLOW_UNTESTED_LIBRARIES": "1", "HOMEAPP_AUTH": "jwt",
                                      "HOMEAPP_JWT_SECRET": "s" * 40}))


def test_the_versions_are_checked_before_any_library_object_is_built(monkeypatch):
    """A refused version stops create_app before it builds the queue manager or the server."""
    import homeapp
    from homeapp import engine
    from homeapp.seams import flask_socketio

    def built(*args, **kwargs):
        raise AssertionError("a library object was built before the version check")

    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda name: "6.0.0" if name == "python-socketio" else real(name))
    monkeypatch.setattr(engine, "QueueManager", built)
    monkeypatch.setattr(homeapp, "connect_redis", built)
    monkeypatch.setattr(flask_socketio, "build_server", built)
    with pytest.raises(seams.UnsupportedLibrary, match="python-socketio 6.0.0 is installed"):
        create_app({"REDIS_URL": "redis://127.0.0.1:1"})
