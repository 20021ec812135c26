"""Every use of a library's insides (tools/seamscan.py finds them) is in homeapp/seams/, in the
module of its library, and has its row in docs/upgrading.md; COVERED guards every library those
rows name, with the versions they say."""
import importlib.util
import re
import sys
import textwrap

import pytest

from homeapp import seams
from tests.processes import ROOT
from tools import seamscan, upgrade_check

# the seam module of each library's top package
SEAM_MODULES = {lib: f"homeapp/seams/{lib}.py" for lib in (
    "engineio", "socketio", "flask_socketio", "gevent", "geventwebsocket", "gunicorn", "marshmallow",
    "redis")}

FINDINGS = seamscan.scan(ROOT)
SEAMS = sorted({f"{finding.path} {finding.key}" for finding in FINDINGS})


def _found(seam):
    return [finding for finding in FINDINGS if f"{finding.path} {finding.key}" == seam]


def _rows():
    """(entries of the first column, library, where, versions) of each row of docs/upgrading.md's tables."""
    rows = []
    for line in (ROOT / "docs" / "upgrading.md").read_text().splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1], cells[3], cells[4]))
    return rows


def _lists(entry, key):
    """Does the docs entry `Owner.name` list the finding `key` (`?.name`: any owner)?"""
    return entry == key or key.startswith("?.") and entry.endswith(key[1:])


@pytest.mark.parametrize("seam", SEAMS)
def test_a_seam_is_in_the_module_of_its_library(seam):
    where = {SEAM_MODULES.get(lib) for finding in _found(seam) for lib in finding.libraries}
    path = seam.split(" ")[0]
    lines = "\n".join(str(finding) for finding in _found(seam))
    assert path in where, f"{lines}\nbelongs in one of {sorted(filter(None, where))}"


@pytest.mark.parametrize("seam", SEAMS)
def test_a_seam_has_its_row_in_the_upgrading_page(seam):
    path, key = seam.split(" ")
    assert any(any(_lists(entry, key) for entry in entries) and f"`{path}`" in where
               for entries, _, where, _ in _rows()), \
        f"{_found(seam)[0]}: docs/upgrading.md has no row listing `{key}` whose where names `{path}`"


def test_each_row_names_a_covered_library_with_its_versions():
    rows = _rows()
    for entries, library, _, versions in rows:
        assert library in seams.COVERED, entries
        assert versions == seams.COVERED[library][0], (entries, versions)
    assert {library for _, library, _, _ in rows} == set(seams.COVERED)


def test_every_seam_module_is_guarded_and_the_upgrade_check_covers_every_library():
    for path in SEAM_MODULES.values():
        distribution = re.search(r'^DISTRIBUTION = "([^"]+)"', (ROOT / path).read_text(), re.M).group(1)
        assert distribution in seams.COVERED, (path, distribution)
    assert upgrade_check.LIBRARIES == tuple(seams.COVERED)
    for _, _, tests in seams.COVERED.values():
        for test in tests.split():
            assert (ROOT / test).exists(), test
            assert test in upgrade_check.SEAMS


# each rule of tools/seamscan.py, on inline sources: the kind it reports, and what it must not
SOURCES = [
    ("from engineio.socket import Socket\nh = Socket._websocket_handler\n", "private", "Socket._websocket_handler"),
    ("from engineio.socket import Socket\nSocket.send = print\n", "assign", "Socket.send"),
    ("import gevent\ngevent.config.track_greenlet_tree = False\n", "assign", "config.track_greenlet_tree"),
    ("def f(ws):\n    return ws._sock\n", "private", "?._sock"),
    ("def f(server):\n    return getattr(server, '_send_packet')\n", "getattr", "?._send_packet"),
    ("from socketio.server import _x\n", "private", "server._x"),
    ("from socketio import manager\ndef f(m):\n    manager.Manager.emit(m, 'e')\n", "unbound-call",
     "Manager.emit"),
    ("def f(base):\n    class H(base):\n        pass\n", "local-subclass", "H(base)"),
    ("from socketio import RedisManager\nclass Q(RedisManager):\n    def f(self):\n"
     "        self._handle_emit({})\n", "private", "PubSubManager._handle_emit"),
]
SILENT = [
    "from socketio import RedisManager\nclass Q(RedisManager):\n    def f(self):\n"
    "        self._own = 1\n        return self._own\n",
    "def f(app, wrap):\n    app.wsgi_app = wrap(app.wsgi_app)\n",
    "from homeapp.transport import websocket\ndef f(m):\n    return websocket._decode_error(m)\n",
    "class Plain:\n    def f(self):\n        return self._sock\n",
]


@pytest.mark.parametrize("source, kind, key", SOURCES, ids=[kind + ":" + key for _, kind, key in SOURCES])
def test_the_scan_finds_each_kind_of_seam(source, kind, key):
    found = seamscan.scan_source("inline.py", source)
    assert [(f.kind, f.key) for f in found] == [(kind, key)]


@pytest.mark.parametrize("source", SILENT)
def test_the_scan_is_silent_on_own_names_and_public_attributes(source):
    assert seamscan.scan_source("inline.py", source) == []


def test_the_scan_finds_overrides_in_classes_and_mixins_but_not_documented_hooks(tmp_path):
    (tmp_path / "homeapp_inline.py").write_text(textwrap.dedent("""\
        from marshmallow import Schema, fields

        class Fast:
            def _validate(self, value):
                pass

        class Text(Fast, fields.String):
            def _deserialize(self, value, attr, data, **kwargs):
                return value

        class Lean(Schema):
            class Meta:
                pass

            def _deserialize(self, data, **kwargs):
                return data
        """))
    spec = importlib.util.spec_from_file_location("homeapp_inline", tmp_path / "homeapp_inline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["homeapp_inline"] = module
    try:
        spec.loader.exec_module(module)
        found = seamscan.overrides([module.Text, module.Lean], tmp_path)
    finally:
        del sys.modules["homeapp_inline"]
    assert sorted((f.path, f.line, f.key) for f in found) == [
        ("homeapp_inline.py", 4, "Field._validate"), ("homeapp_inline.py", 15, "Schema._deserialize")]


def test_the_count_follows_names_within_a_package_only(tmp_path):
    """tools/seam_count.py: a statement with a finding, what it names in its own package, not beyond."""
    from tools import seam_count
    (tmp_path / "homeapp" / "x").mkdir(parents=True)
    (tmp_path / "homeapp" / "y").mkdir()
    (tmp_path / "homeapp" / "x" / "a.py").write_text(
        "from homeapp.x import b\nfrom homeapp.y.c import far\n\n\n"
        "def patched():\n    b.helper()\n    far()\n\n\ndef unrelated():\n    pass\n")
    (tmp_path / "homeapp" / "x" / "b.py").write_text("def helper():\n\n    return 1\n\n\ndef other():\n    pass\n")
    (tmp_path / "homeapp" / "y" / "c.py").write_text("def far():\n    pass\n")
    seed = seamscan.Finding("homeapp/x/a.py", 6, "private", "b._x", "?._x", ("socketio",))
    per, total = seam_count.count(tmp_path, [seed])
    assert per == {"homeapp/x/a.py": 3, "homeapp/x/b.py": 2}
    assert total == 7 + 4 + 2
