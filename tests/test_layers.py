"""The layers of homeapp (.importlinter at the repository's root): import-linter's `lint-imports`
fails when a module imports from a layer above its own, or a feature imports another."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.processes import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(config, cwd):
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(config)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_homeapp_keeps_its_layers():
    result = _lint(ROOT / ".importlinter", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout, result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The check itself: a low layer importing a high one is reported, with its line."""
    package = tmp_path / "layered"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "high.py").write_text("from layered import low  # noqa: F401\n")
    (package / "low.py").write_text("from layered import high  # noqa: F401\n")
    config = tmp_path / ".importlinter"
    config.write_text(textwrap.dedent("""\
        [importlinter]
        root_package = layered
        [importlinter:contract:layers]
        name = layered
        type = layers
        layers =
            layered.high
            layered.low
        """))
    result = _lint(config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "layered.low -> layered.high (l.1)" in result.stdout, result.stdout
