"""Would the newest releases of the libraries we patch or subclass still pass our tests?

    python -m tools.upgrade_check                          # every library in LIBRARIES
    python -m tools.upgrade_check --library gevent         # only these (repeatable)
    python -m tools.upgrade_check --release redis==8.0.0   # that release instead of the newest
    python -m tools.upgrade_check --keep                   # keep the scratch virtualenv

Builds a scratch virtualenv with the project's pinned test requirements and runs the tests on
the seams (SEAMS) there as pinned; then, for each library whose newest release is not its pin,
installs that release alone, runs them again and puts the pins back; a last run has every newer
release at once. A test that fails on the pins already is not counted against any release.

Prints a Markdown report (docs/upgrading.md says how to read it); exits 1 when a release broke
a test or would not install, 2 when the scratch virtualenv could not be built or the tests do
not run on the pins. Needs PyPI and what the live tests need (redis-server); it changes nothing
outside its scratch directory.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from homeapp.seams.versions import COVERED

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-test.txt"

# the libraries homeapp patches, subclasses or reaches into, and the tests that meet them where
# homeapp changes or relies on their insides: homeapp/seams/versions.py's table (docs/upgrading.md
# says where each seam is), plus the tests of the seams themselves
LIBRARIES = tuple(COVERED)
SEAMS = tuple(dict.fromkeys(
    [test for _, _, tests in COVERED.values() for test in tests.split()]
    + ["tests/test_overrides.py", "tests/test_seams.py"]))
ALL_TOGETHER = "all newest together"
PINS = "the pins"  # the run before any upgrade: what fails there is not an upgrade's doing
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
    failures: list = field(default_factory=list)  # those that pass on the pins
    known: list = field(default_factory=list)     # those that fail on the pins too
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


def report(pins, newest, outcomes, checked=None):
    """The Markdown report: per library, the pinned and newest versions and what broke.

    `checked` names the releases run instead of the newest (--release).
    """
    by_label = {outcome.label: outcome for outcome in outcomes}
    checked = checked or {}
    lines = ["| library | pinned | newest | result |", "| --- | --- | --- | --- |"]
    for name in sorted(newest, key=str.lower):
        pinned, latest = pins.get(canonical(name), "unpinned"), newest[name]
        release = checked.get(name, latest)
        outcome = by_label.get(name)
        if outcome is None:
            result = "the pin is the newest" if release == latest == pinned else "not run"
        else:
            result = _summary(outcome, name)
        if release != latest:
            result = f"{release} checked: {result}"
        lines.append(f"| {name} | {pinned} | {latest} | {result} |")
    together = by_label.get(ALL_TOGETHER)
    if together is not None:
        lines += ["", f"All newest together: {_summary(together, None)}"]
    for outcome in outcomes:
        if outcome.label != PINS and (outcome.failures or outcome.error):
            lines += ["", f"### {outcome.label}: what broke", ""]
            if outcome.error:
                lines += ["```", outcome.error.strip(), "```"]
            lines += [f"- `{failure.test}`: {failure.message}" for failure in outcome.failures]
    on_pins = by_label.get(PINS)
    if on_pins is not None and on_pins.failures:
        lines += ["", "### Failing on the pins already (not counted above)", ""]
        lines += [f"- `{failure.test}`: {failure.message}" for failure in on_pins.failures]
    return "\n".join(lines) + "\n"


def _summary(outcome, name):
    if outcome.error:
        text = "could not be run: see below"
    elif outcome.failures:
        text = f"**{len(outcome.failures)} failed**, {outcome.passed} passed: see below"
    else:
        text = f"{outcome.passed} passed"
    if outcome.known:
        text += f" ({len(outcome.known)} failing on the pins too)"
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
        # the releases under test are outside the ranges start-up accepts (homeapp/seams/versions.py)
        env = dict(os.environ, HOMEAPP_ALLOW_UNTESTED_LIBRARIES="1")
        proc = subprocess.run([str(self.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"--junitxml={junit}", *SEAMS], cwd=ROOT, capture_output=True, text=True,
                              env=env)
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


def check(scratch, libraries, releases=None, progress=print):
    """Every library on its own at its newest release (or the one `releases` names), then all at
    once; returns (pins, newest, outcomes).

    Raises CheckError when the scratch virtualenv cannot be built or put back to the pins.
    """
    pins = read_pins(REQUIREMENTS)
    scratch.create()
    newest = {name: scratch.newest(name) for name in libraries}
    target = dict(newest, **(releases or {}))
    moved = [name for name in libraries if target[name] != pins.get(canonical(name))]
    if not moved:
        return pins, newest, []
    progress("upgrade_check: the pins, for the failures that are not an upgrade's")
    on_pins = scratch.run_tests(PINS)
    if on_pins.error:
        raise CheckError(f"the tests do not run on the pins:\n{on_pins.error}")
    known = {failure.test for failure in on_pins.failures}
    outcomes = [on_pins]
    for name in moved:
        progress(f"upgrade_check: {name} {pins.get(canonical(name))} -> {target[name]}")
        outcomes.append(_run_with(scratch, name, [f"{name}=={target[name]}"], known))
        scratch.restore()
    if len(moved) > 1:
        progress(f"upgrade_check: {ALL_TOGETHER}")
        outcomes.append(_run_with(scratch, ALL_TOGETHER, [f"{n}=={target[n]}" for n in moved], known))
    return pins, newest, outcomes


def _run_with(scratch, label, requirements, known):
    """Install requirements and run the tests; failures that are known on the pins set apart."""
    try:
        scratch.pip("install", *requirements)
    except CheckError as exc:
        return Outcome(label, error=str(exc))
    outcome = scratch.run_tests(label)
    outcome.known = [failure for failure in outcome.failures if failure.test in known]
    outcome.failures = [failure for failure in outcome.failures if failure.test not in known]
    return outcome


def _release(text):
    """(library, version) from NAME==VERSION, NAME one of LIBRARIES. Raises ArgumentTypeError."""
    name, _, version = text.partition("==")
    library = next((known for known in LIBRARIES if canonical(known) == canonical(name)), None)
    if library is None or not version:
        raise argparse.ArgumentTypeError(f"expected NAME==VERSION with NAME one of {', '.join(LIBRARIES)}")
    return library, version


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.upgrade_check", description=__doc__.splitlines()[0])
    parser.add_argument("--library", action="append", choices=LIBRARIES, help="check only this one (repeatable)")
    parser.add_argument("--release", action="append", type=_release, default=[], metavar="NAME==VERSION",
                        help="check this release instead of the newest (repeatable; implies --library NAME)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch virtualenv and print where")
    args = parser.parse_args(argv)
    releases = dict(args.release)
    libraries = list(dict.fromkeys((args.library or ([] if releases else list(LIBRARIES))) + list(releases)))
    directory = tempfile.mkdtemp(prefix="homeapp-upgrade-")
    try:
        pins, newest, outcomes = check(Scratch(directory), libraries, releases,
                                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    except CheckError as exc:
        print(f"upgrade_check: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"upgrade_check: the scratch virtualenv is in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(report(pins, newest, outcomes, releases), end="")
    return 1 if any(outcome.broke for outcome in outcomes if outcome.label != PINS) else 0


if __name__ == "__main__":
    sys.exit(main())
