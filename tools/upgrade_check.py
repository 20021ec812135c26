"""Would the newest releases of the libraries we patch or subclass still pass our tests?

    python -m tools.upgrade_check                       # every library in LIBRARIES
    python -m tools.upgrade_check --library gevent      # only these (repeatable)
    python -m tools.upgrade_check --keep                # keep the scratch virtualenv

Builds a scratch virtualenv with the project's pinned test requirements, then for each library
whose newest release is not the pinned one: installs that release alone, runs the tests on the
seams (SEAMS), and puts the pins back. A last run has every newest release at once. Prints a
Markdown report (docs/upgrading.md says how to read it) and exits 1 when anything broke, 2 when
the scratch virtualenv could not be built. Needs PyPI and what the live tests need
(redis-server); it changes nothing outside its scratch directory.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-test.txt"

# the libraries homeapp patches, subclasses or reaches into (docs/upgrading.md lists where)
LIBRARIES = ("python-engineio", "python-socketio", "Flask-SocketIO", "gevent", "gevent-websocket",
             "marshmallow", "redis")

# the tests that meet those libraries where homeapp changes or relies on their insides
SEAMS = (
    "tests/test_transport.py",        # homeapp/transport.py: engineio's Socket, gevent-websocket's frames
    "tests/test_live_transport.py",   # the same on the wire
    "tests/test_schemas.py",          # marshmallow
    "tests/test_live_limits.py",      # packet limits, rate limits, malformed packets
    "tests/test_event_refusals.py",   # dispatch on python-socketio, through Flask-SocketIO's test client
    "tests/test_create_app.py",       # Flask-SocketIO's init_app, the Admin UI's instrumentation
    "tests/test_live_hostile.py",     # dispatch's packet guards inside python-socketio's server
    "tests/test_live_admin.py",       # python-socketio's Admin UI beside the tuned frame path
    "tests/test_live_scaleout.py",    # homeapp/queue.py: python-socketio's RedisManager, redis-py
    "tests/test_presence_store.py",   # redis-py: the presence scripts
    "tests/test_live_gunicorn.py",    # homeapp/worker.py: gevent-websocket's handler and worker
)
ALL_TOGETHER = "all newest together"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


class CheckError(Exception):
    """The scratch environment could not be built; the message says which step failed."""


def canonical(name):
    """A distribution name as pip compares them: lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path):
    """{canonical name: version} of every `name==version` line in path and the files it -r includes."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(read_pins(Path(path).parent / line[3:].strip()))
            continue
        match = _PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


@dataclass
class Failure:
    test: str      # pytest's node id
    message: str   # the first line of what failed


@dataclass
class Outcome:
    """One test run: under `label`, with these versions installed that differ from the pins."""
    label: str
    changed: dict = field(default_factory=dict)   # {name: (as pinned, as run)}, pip's names
    passed: int = 0
    failures: list = field(default_factory=list)
    error: str = ""  # the install or the test run itself failed; no test results

    @property
    def broke(self):
        return bool(self.failures or self.error)


def failures_from_junit(xml_text):
    """(passed count, [Failure]) from pytest's --junitxml report."""
    root = ElementTree.fromstring(xml_text)
    passed, failures = 0, []
    for case in root.iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if case.find("skipped") is not None:
            continue
        if problem is None:
            passed += 1
            continue
        path = case.get("classname", "").replace(".", "/") + ".py"
        message = (problem.get("message") or problem.text or problem.tag).strip().splitlines()
        failures.append(Failure(f"{path}::{case.get('name')}", message[0][:200] if message else problem.tag))
    return passed, failures


def report(pins, newest, outcomes):
    """The Markdown report: per library, the pinned and newest versions and what broke."""
    by_label = {outcome.label: outcome for outcome in outcomes}
    lines = ["| library | pinned | newest | result |", "| --- | --- | --- | --- |"]
    for name in sorted(newest, key=str.lower):
        pinned, latest = pins.get(canonical(name), "unpinned"), newest[name]
        outcome = by_label.get(name)
        if outcome is None:
            result = "the pin is the newest" if latest == pinned else "not run"
        else:
            result = _summary(outcome, name)
        lines.append(f"| {name} | {pinned} | {latest} | {result} |")
    together = by_label.get(ALL_TOGETHER)
    if together is not None:
        lines += ["", f"All newest together: {_summary(together, None)}"]
    for outcome in outcomes:
        if outcome.failures or outcome.error:
            lines += ["", f"### {outcome.label}: what broke", ""]
            if outcome.error:
                lines += ["```", outcome.error.strip(), "```"]
            lines += [f"- `{failure.test}`: {failure.message}" for failure in outcome.failures]
    return "\n".join(lines) + "\n"


def _summary(outcome, name):
    if outcome.error:
        text = "could not be run: see below"
    elif outcome.failures:
        text = f"**{len(outcome.failures)} failed**, {outcome.passed} passed: see below"
    else:
        text = f"{outcome.passed} passed"
    also = {other: versions for other, versions in outcome.changed.items() if canonical(other) != canonical(name or "")}
    if also and name is not None:
        text += "; pip also moved " + ", ".join(f"{other} {old} → {new}" for other, (old, new) in sorted(also.items()))
    return text


class Scratch:
    """A throwaway virtualenv with the pinned test requirements, its pip and its pytest."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.python = self.directory / "venv" / "bin" / "python"
        self.baseline = {}  # {canonical name: version} right after installing the pins

    def create(self):
        """Raises CheckError when the virtualenv or the pinned requirements cannot be installed."""
        self._run([sys.executable, "-m", "venv", str(self.directory / "venv")], "creating the virtualenv")
        self.pip("install", "--upgrade", "pip")
        self.pip("install", "-r", str(REQUIREMENTS))
        self.baseline = self.installed()

    def restore(self):
        """Back to exactly what create() installed, unpinned dependencies included: an upgrade
        may have moved or added those too. Raises CheckError when pip fails."""
        frozen = self.directory / "baseline.txt"
        frozen.write_text("".join(f"{name}=={version}\n" for name, version in sorted(self.baseline.items())))
        self.pip("install", "-r", str(frozen))
        extra = sorted(set(self.installed()) - set(self.baseline))
        if extra:
            self.pip("uninstall", "-y", *extra)

    def changed(self):
        """{name: (version after create(), version now or "absent")} of what differs from then."""
        now = self.installed()
        return {name: (self.baseline.get(name, "absent"), now.get(name, "absent"))
                for name in sorted(set(now) | set(self.baseline)) if now.get(name) != self.baseline.get(name)}

    def pip(self, *args):
        return self._run([str(self.python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                         "pip " + " ".join(args))

    def installed(self):
        """{canonical name: version} of what the virtualenv holds."""
        listing = self._run([str(self.python), "-m", "pip", "list", "--format=json",
                             "--disable-pip-version-check"], "pip list")
        return {canonical(item["name"]): item["version"] for item in json.loads(listing)}

    def newest(self, name):
        """The newest release of name that pip would install here. Raises CheckError."""
        output = self._run([str(self.python), "-m", "pip", "index", "versions", name,
                            "--disable-pip-version-check"], f"pip index versions {name}")
        match = re.search(r"\(([^)]+)\)", output)
        if match is None:
            raise CheckError(f"pip index versions {name} named no version:\n{output}")
        return match.group(1)

    def run_tests(self, label):
        """Run SEAMS on this virtualenv; an Outcome, never raising."""
        outcome = Outcome(label, changed=self.changed())
        junit = self.directory / "junit.xml"
        junit.unlink(missing_ok=True)
        proc = subprocess.run([str(self.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"--junitxml={junit}", *SEAMS], cwd=ROOT, capture_output=True, text=True)
        if not junit.is_file():
            outcome.error = f"pytest exited {proc.returncode} without a report:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            return outcome
        outcome.passed, outcome.failures = failures_from_junit(junit.read_text())
        if proc.returncode not in (0, 1):  # 1: tests failed; anything else: pytest itself did
            outcome.error = f"pytest exited {proc.returncode}:\n{proc.stdout[-3000:]}"
        return outcome

    def _run(self, argv, what):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CheckError(f"{what} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        return proc.stdout


def check(scratch, libraries, progress=print):
    """Every library on its own at its newest, then all at once; returns (pins, newest, outcomes).

    Raises CheckError when the scratch virtualenv cannot be built or put back to the pins.
    """
    pins = read_pins(REQUIREMENTS)
    scratch.create()
    newest = {name: scratch.newest(name) for name in libraries}
    outcomes = []
    upgraded = [name for name in libraries if newest[name] != pins.get(canonical(name))]
    for name in upgraded:
        progress(f"upgrade_check: {name} {pins.get(canonical(name))} -> {newest[name]}")
        outcomes.append(_run_with(scratch, name, [f"{name}=={newest[name]}"]))
        scratch.restore()
    if len(upgraded) > 1:
        progress(f"upgrade_check: {ALL_TOGETHER}")
        outcomes.append(_run_with(scratch, ALL_TOGETHER, [f"{n}=={newest[n]}" for n in upgraded]))
    return pins, newest, outcomes


def _run_with(scratch, label, requirements):
    try:
        scratch.pip("install", *requirements)
    except CheckError as exc:
        return Outcome(label, error=str(exc))
    return scratch.run_tests(label)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.upgrade_check", description=__doc__.splitlines()[0])
    parser.add_argument("--library", action="append", choices=LIBRARIES, help="check only this one (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch virtualenv and print where")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="homeapp-upgrade-")
    try:
        pins, newest, outcomes = check(Scratch(directory), args.library or LIBRARIES,
                                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    except CheckError as exc:
        print(f"upgrade_check: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"upgrade_check: the scratch virtualenv is in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(report(pins, newest, outcomes), end="")
    return 1 if any(outcome.broke for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
