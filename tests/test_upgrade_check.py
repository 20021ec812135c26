"""tools/upgrade_check.py's own logic, on a fake scratch virtualenv: nothing is downloaded."""
from tools import upgrade_check
from tools.upgrade_check import ALL_TOGETHER, CheckError, Failure, Outcome

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_transport" name="test_frames_leave_together" time="0.1"/>
<testcase classname="tests.test_transport" name="test_close_frame" time="0.1">
  <failure message="AssertionError: assert b'' == b'\\x88\\x00'&#10;more lines">traceback</failure></testcase>
<testcase classname="tests.test_live_admin" name="test_wrong_credentials_are_refused[none]" time="0.1">
  <error message="failed on setup with &quot;KeyError: 'Session not found'&quot;">traceback</error></testcase>
<testcase classname="tests.test_schemas" name="test_skipped" time="0.0"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


class FakeScratch:
    """The scratch virtualenv's interface: what was asked of it, and canned answers."""

    def __init__(self, newest, broken_install=(), failing=None):
        self.newest_versions = newest
        self.broken_install = broken_install
        self.failing = failing or {}
        self.calls = []

    def create(self):
        self.calls.append("create")

    def newest(self, name):
        return self.newest_versions[name]

    def pip(self, *args):
        self.calls.append(" ".join(args))
        if any(requirement.split("==")[0] in self.broken_install for requirement in args[1:]):
            raise CheckError("pip install failed (1):\nResolutionImpossible")

    def restore(self):
        self.calls.append("restore")

    def run_tests(self, label):
        self.calls.append(f"test {label}")
        return Outcome(label, passed=10, failures=self.failing.get(label, []))


def test_pins_are_read_through_included_files(tmp_path):
    (tmp_path / "base.txt").write_text("# runtime\nFlask-SocketIO==5.7.0\ngunicorn[gevent]==27.0.1\n")
    (tmp_path / "test.txt").write_text("-r base.txt\npytest==9.2.0  # the runner\nrequests>=2\n")
    assert upgrade_check.read_pins(tmp_path / "test.txt") == {
        "flask-socketio": "5.7.0", "gunicorn": "27.0.1", "pytest": "9.2.0"}


def test_failures_are_read_from_pytests_report():
    passed, failures = upgrade_check.failures_from_junit(JUNIT)
    assert passed == 1
    assert failures == [
        Failure("tests/test_transport.py::test_close_frame", "AssertionError: assert b'' == b'\\x88\\x00'"),
        Failure("tests/test_live_admin.py::test_wrong_credentials_are_refused[none]",
                "failed on setup with \"KeyError: 'Session not found'\""),
    ]


def test_each_newer_library_runs_alone_then_all_run_together():
    pins = upgrade_check.read_pins(upgrade_check.REQUIREMENTS)
    newest = {"gevent": pins["gevent"], "redis": "99.0.0", "marshmallow": "99.1.0"}
    scratch = FakeScratch(newest)
    _, found, outcomes = upgrade_check.check(scratch, ["gevent", "redis", "marshmallow"], progress=lambda line: None)
    assert found == newest
    assert scratch.calls == ["create", "test the pins",
                             "install redis==99.0.0", "test redis", "restore",
                             "install marshmallow==99.1.0", "test marshmallow", "restore",
                             "install redis==99.0.0 marshmallow==99.1.0", f"test {ALL_TOGETHER}"]
    assert [outcome.label for outcome in outcomes] == ["the pins", "redis", "marshmallow", ALL_TOGETHER]


def test_the_report_names_versions_and_what_broke():
    pins = {"gevent": "26.9.0", "redis": "8.1.0", "python-socketio": "5.18.1"}
    newest = {"gevent": "26.9.0", "redis": "9.0.0", "python-socketio": "6.0.0"}
    broke = [Failure("tests/test_transport.py::test_close_frame", "AssertionError: assert 1 == 2")]
    scratch = FakeScratch(newest, broken_install=("redis",), failing={"python-socketio": broke})
    _, _, outcomes = upgrade_check.check(scratch, ["gevent", "redis", "python-socketio"], progress=lambda line: None)
    outcomes[2].changed = {"python-socketio": ("5.18.1", "6.0.0"), "bidict": ("0.23.1", "0.24.0")}
    text = upgrade_check.report(pins, newest, outcomes)
    assert text.splitlines()[:5] == [
        "| library | pinned | newest | result |",
        "| --- | --- | --- | --- |",
        "| gevent | 26.9.0 | 26.9.0 | the pin is the newest |",
        "| python-socketio | 5.18.1 | 6.0.0 | **1 failed**, 10 passed: see below; pip also moved bidict 0.23.1 → 0.24.0 |",
        "| redis | 8.1.0 | 9.0.0 | could not be run: see below |",
    ]
    assert "All newest together: could not be run: see below" in text  # redis cannot be installed
    assert "### redis: what broke\n\n```\npip install failed (1):\nResolutionImpossible\n```" in text
    assert "### python-socketio: what broke\n\n- `tests/test_transport.py::test_close_frame`: AssertionError: assert 1 == 2" in text
    assert any(outcome.broke for outcome in outcomes)


def test_nothing_broke_when_every_run_passed():
    newest = {"redis": "99.0.0"}
    _, _, outcomes = upgrade_check.check(FakeScratch(newest), ["redis"], progress=lambda line: None)
    text = upgrade_check.report({"redis": "8.1.0"}, newest, outcomes)
    assert "| redis | 8.1.0 | 99.0.0 | 10 passed |" in text and "what broke" not in text
    assert not any(outcome.broke for outcome in outcomes)


def test_a_test_failing_on_the_pins_already_is_no_releases_fault():
    stale = Failure("tests/test_live_limits.py::test_stale", "AssertionError: assert False")
    broke = Failure("tests/test_transport.py::test_close_frame", "AssertionError: assert 1 == 2")
    newest = {"redis": "99.0.0"}
    scratch = FakeScratch(newest, failing={"the pins": [stale], "redis": [stale, broke]})
    _, _, outcomes = upgrade_check.check(scratch, ["redis"], progress=lambda line: None)
    text = upgrade_check.report({"redis": "8.1.0"}, newest, outcomes)
    assert "| redis | 8.1.0 | 99.0.0 | **1 failed**, 10 passed: see below (1 failing on the pins too) |" in text
    assert "### redis: what broke\n\n- `tests/test_transport.py::test_close_frame`" in text
    assert text.endswith("### Failing on the pins already (not counted above)\n\n"
                         "- `tests/test_live_limits.py::test_stale`: AssertionError: assert False\n")


def test_nothing_runs_when_every_pin_is_the_newest():
    scratch = FakeScratch({"redis": "8.1.0"})
    _, _, outcomes = upgrade_check.check(scratch, ["redis"], progress=lambda line: None)
    assert outcomes == [] and scratch.calls == ["create"]


def test_a_named_release_is_checked_instead_of_the_newest():
    newest = {"redis": "99.0.0", "gevent": "26.9.0"}
    scratch = FakeScratch(newest)
    pins, _, outcomes = upgrade_check.check(scratch, ["redis", "gevent"], {"gevent": "25.0.0"},
                                            progress=lambda line: None)
    assert "install redis==99.0.0 gevent==25.0.0" in scratch.calls
    text = upgrade_check.report(pins, newest, outcomes, {"gevent": "25.0.0"})
    assert f"| gevent | {pins['gevent']} | 26.9.0 | 25.0.0 checked: 10 passed |" in text
