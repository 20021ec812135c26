"""Where homeapp uses a library's insides: a scan of the source (AST) and of its classes (MRO).

    python -m tools.seamscan [ROOT]     # one line per finding: file:line, kind, library, seam

A finding is
- `private`: a library's private name (`_x`, not a dunder) read or written: through a name bound
  to a library import (`Socket._websocket_handler`), through `self`/`super()` in a class with a
  library base when a library class of its MRO defines the name, on any other object when some
  library's source defines the name (`ws._sock`), with get/set/has/delattr, or imported;
- `assign`: an attribute of a library module or class assigned (`Socket.send = ...`);
- `unbound-call`: a library class's method called with the instance as an argument
  (`Manager.emit(manager, ...)`);
- `local-subclass`: a class statement inside a function (its base cannot be resolved here);
- `override`: a name given in a homeapp class body (or a mixin's) that a later library class of
  the MRO has, unless it is a documented hook (HOOKS).

Each has a `key`, `Owner.name` (`Socket.send`, `Field._validate`; `?._sock` when the owner is not
known), the form docs/upgrading.md lists it in, and `libraries`, the top packages it belongs to.
tests/test_seams.py holds the findings to homeapp/seams/ and to docs/upgrading.md;
tools/seam_count.py counts the lines around them.
"""
import ast
import importlib
import inspect
import pathlib
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache

LIBS = frozenset({"engineio", "socketio", "gevent", "geventwebsocket", "flask_socketio", "redis", "gunicorn",
                  "marshmallow", "prometheus_client", "werkzeug", "flask"})
# the library methods and attributes a subclass is documented to give (marshmallow's custom
# fields, a schema's Meta); every other override of a library name is a seam
HOOKS_OF = {"marshmallow.fields": ("_deserialize", "_serialize", "default_error_messages"),
            "marshmallow.schema.Schema": ("Meta",)}
SOURCES = ("app.py", "wsgi.py", "gunicorn.conf.py")


@dataclass(frozen=True)
class Finding:
    path: str         # relative to the root
    line: int
    kind: str
    what: str         # the dotted library name, or the expression
    key: str          # Owner.name
    libraries: tuple  # top packages whose insides these are

    def __str__(self):
        return f"{self.path}:{self.line}\t{self.kind}\t{self.what}\t{'|'.join(self.libraries)}"


def _private(name):
    return name.startswith("_") and not name.endswith("__")


def private_defined(tree):
    """The private names a source defines: functions, classes, stored names and attributes."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = n.name
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            name = n.attr
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            name = n.id
        else:
            continue
        if _private(name):
            out.add(name)
    return out


@lru_cache(maxsize=None)
def library_private():
    """{private name: top packages whose sources define it}."""
    site = pathlib.Path(importlib.import_module("socketio").__file__).parents[1]
    found = {}
    for lib in sorted(LIBS):
        for f in site.glob(f"{lib}/**/*.py"):
            for name in private_defined(ast.parse(f.read_bytes())):
                found.setdefault(name, set()).add(lib)
    return {name: tuple(sorted(libs)) for name, libs in found.items()}


def lib_class(dotted):
    module, _, name = dotted.rpartition(".")
    try:
        k = getattr(importlib.import_module(module), name)
    except Exception:  # not a module attribute: a name bound further down
        return None
    return k if inspect.isclass(k) else None


@lru_cache(maxsize=None)
def mro_private(dotted):
    """The private names the library classes of `dotted`'s MRO define."""
    k = lib_class(dotted)
    if k is None:
        return frozenset()
    return frozenset().union(*(private_defined(ast.parse(textwrap.dedent(inspect.getsource(c))))
                               for c in k.__mro__ if c.__module__.split(".")[0] in LIBS))


def _key(dotted):
    parts = dotted.split(".")
    return ".".join(parts[-2:])


def _top(dotted):
    return dotted.split(".")[0]


class Scan(ast.NodeVisitor):
    def __init__(self, path):
        self.path, self.lib, self.ours, self.cls, self.found = path, {}, set(), [], []

    def origin(self, n):
        """The dotted library name an expression is bound to, or None."""
        if isinstance(n, ast.Name):
            return self.lib.get(n.id)
        if isinstance(n, ast.Attribute):
            base = self.origin(n.value)
            return base and f"{base}.{n.attr}"
        return None

    def hit(self, n, kind, what, key, libraries):
        self.found.append(Finding(self.path, n.lineno, kind, what, key, tuple(libraries)))

    def visit_Import(self, n):
        for a in n.names:
            top = a.name.split(".")[0]
            if top in LIBS:
                self.lib[a.asname or top] = a.name if a.asname else top
            elif top == "homeapp":
                self.ours.add(a.asname or top)

    def visit_ImportFrom(self, n):
        module = n.module or ""
        if n.level == 0 and module.split(".")[0] in LIBS:
            for a in n.names:
                self.lib[a.asname or a.name] = f"{module}.{a.name}"
                if _private(a.name):
                    self.hit(n, "private", f"{module}.{a.name}", _key(f"{module}.{a.name}"), [_top(module)])
        elif n.level or module.split(".")[0] == "homeapp":
            self.ours.update(a.asname or a.name for a in n.names)

    def visit_FunctionDef(self, n):
        for c in ast.walk(n):
            if isinstance(c, ast.ClassDef) and c.bases:
                base = ast.unparse(c.bases[0])
                self.hit(c, "local-subclass", f"{c.name}({base})", f"{c.name}({base})", ["?"])
        self.generic_visit(n)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, n):
        bases = [o for o in map(self.origin, n.bases) if o]
        if bases:
            self.lib.setdefault(n.name, bases[0])
        self.cls.append((bases[0] if bases else None, frozenset().union(*map(mro_private, bases))))
        self.generic_visit(n)
        self.cls.pop()

    def check(self, n, value, attr, kind):
        if not _private(attr):
            return
        o = self.origin(value)
        if o:
            return self.hit(n, kind, f"{o}.{attr}", _key(f"{o}.{attr}"), [_top(o)])
        base, private = self.cls[-1] if self.cls else (None, frozenset())
        if (isinstance(value, ast.Call) and getattr(value.func, "id", None) == "super"
                or isinstance(value, ast.Name) and value.id in ("self", "cls")):
            if base and attr in private:
                self.hit(n, kind, f"{base}.{attr} (self)", f"{lib_owner(base, attr)}.{attr}", [_top(base)])
        elif isinstance(value, ast.Name) and value.id in self.ours:
            return  # one of homeapp's modules or objects
        elif attr in library_private():
            self.hit(n, kind, f"{ast.unparse(value)}.{attr}", f"?.{attr}", library_private()[attr])

    def visit_Attribute(self, n):
        self.check(n, n.value, n.attr, "private-store" if isinstance(n.ctx, ast.Store) else "private")
        self.generic_visit(n)

    def visit_Assign(self, n):
        for t in n.targets:
            if isinstance(t, ast.Attribute) and not _private(t.attr):
                o = self.origin(t.value)
                if o:
                    self.hit(n, "assign", f"{o}.{t.attr}", _key(f"{o}.{t.attr}"), [_top(o)])
        self.generic_visit(n)

    def visit_Call(self, n):
        f = n.func
        if (getattr(f, "id", None) in ("getattr", "setattr", "hasattr", "delattr") and len(n.args) > 1
                and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str)):
            self.check(n, n.args[0], n.args[1].value, f.id)
        if isinstance(f, ast.Attribute) and n.args:
            o = self.origin(f.value)
            k = o and lib_class(o)
            if k and inspect.isfunction(inspect.getattr_static(k, f.attr, None)):
                self.hit(n, "unbound-call", f"{o}.{f.attr}", _key(f"{o}.{f.attr}"), [_top(o)])
        self.generic_visit(n)


def lib_owner(dotted, name):
    """The name of the library class of `dotted`'s MRO that defines `name` first."""
    k = lib_class(dotted)
    for c in (k.__mro__ if k else ()):
        if c.__module__.split(".")[0] in LIBS and name in vars(c):
            return c.__qualname__
    return dotted.rpartition(".")[2]


def scan_source(path, text):
    s = Scan(path)
    s.visit(ast.parse(text))
    return s.found


def _hook(lib_class_, name):
    dotted = f"{lib_class_.__module__}.{lib_class_.__qualname__}"
    return any((dotted == owner or lib_class_.__module__ == owner) and name in names
               for owner, names in HOOKS_OF.items())


def overrides(classes, root):
    """Findings for names given in the bodies of `classes` (homeapp's, and the homeapp classes of
    their MROs) that a later library class of the MRO has."""
    found, bodies = [], {}
    for c in classes:
        for i, k in enumerate(c.__mro__):
            if not k.__module__.startswith("homeapp"):
                continue
            # a mixin is read in each class it is mixed into: what it overrides depends on
            # the library classes after it there (QuietAccept in a gevent server)
            if k not in bodies:
                try:
                    lines, first = inspect.getsourcelines(k)
                    path = str(pathlib.Path(inspect.getsourcefile(k)).resolve().relative_to(root))
                    bodies[k] = (path, first, ast.parse(textwrap.dedent("".join(lines))).body[0].body)
                except (OSError, TypeError, ValueError):  # made by type() or namedtuple: no body
                    bodies[k] = None
            if bodies[k] is None:
                continue
            path, first, body = bodies[k]
            for node in body:
                targets = getattr(node, "targets", None) or [node]
                for t in targets:
                    name = getattr(t, "name", None) or getattr(t, "id", None)
                    if not name or name.startswith("__"):
                        continue
                    libs = [b for b in c.__mro__[i + 1:]
                            if b.__module__.split(".")[0] in LIBS and name in vars(b)]
                    lib = libs[0] if libs else None
                    if lib is not None and not _hook(lib, name):
                        what = f"{lib.__module__}.{lib.__qualname__}.{name}"
                        # it stands in front of each library's method of that name in the MRO
                        tops = tuple(dict.fromkeys(_top(b.__module__) for b in libs))
                        finding = Finding(path, first + node.lineno - 1, "override", what,
                                          f"{lib.__qualname__}.{name}", tops)
                        if finding not in found:
                            found.append(finding)
    return found


def files(root):
    root = pathlib.Path(root)
    return sorted(root.glob("homeapp/**/*.py")) + [root / p for p in SOURCES if (root / p).exists()]


def scan(root):
    """Every finding in the tree at `root`, whose homeapp package is the one importable (its
    classes are imported for the override rule)."""
    root = pathlib.Path(root).resolve()
    found = []
    for f in files(root):
        found += scan_source(str(f.relative_to(root)), f.read_text())
    classes = []
    for f in sorted(root.glob("homeapp/**/*.py")):
        name = ".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        classes += [c for _, c in inspect.getmembers(importlib.import_module(name), inspect.isclass)
                    if c.__module__.startswith("homeapp")]
    found += overrides(sorted(set(classes), key=lambda c: f"{c.__module__}.{c.__qualname__}"), root)
    return sorted(set(found), key=lambda x: (x.path, x.line, x.kind, x.what))


if __name__ == "__main__":
    tree = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    sys.path.insert(0, str(tree))
    for finding in scan(tree):
        print(finding)
