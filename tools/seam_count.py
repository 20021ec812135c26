"""The lines of homeapp/ that exist only to replace or work around library code, by one mechanical rule.

    python -m tools.seam_count [ROOT]                  # ROOT: a checkout (default: this one)
    python -m tools.seam_count --through-seams [ROOT]  # callers of homeapp/seams/ are seeds too

- seeds: each top-level statement of a homeapp/ module (a def, a class or an assignment, with its
  decorators, docstring and comments) that contains a finding of tools/seamscan.py, plus the
  version table's modules whole (homeapp/seams/__init__.py and versions.py; before them,
  homeapp/transport/overrides.py);
- closure: any top-level statement of a module in the same package directory that a counted
  statement names (`name`, `module.name`, a from-import), transitively;
- with --through-seams, each top-level statement outside homeapp/seams/ that names something
  imported from homeapp.seams is a seed too: code that reaches a library's insides through a seam
  module's hook or accessor, which the plain rule stops following at the package's edge
  (create_app aside: it installs the seams, as it installed the overrides before, uncounted);
- count: the non-blank lines of the counted statements; total: the non-blank lines of
  homeapp/**/*.py (app.py, wsgi.py and gunicorn.conf.py are in neither).

Run on another checkout, it imports that checkout's homeapp package (the override rule needs its
classes): run it in a fresh interpreter per checkout.
"""
import ast
import pathlib
import sys

VERSION_TABLES = ("homeapp/seams/__init__.py", "homeapp/seams/versions.py", "homeapp/transport/overrides.py")


def _statements(tree):
    """(first line, last line, names it binds, node) of each top-level statement."""
    out = []
    for node in tree.body:
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = {node.name}
        else:
            names = {t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
        out.append((start, node.end_lineno, names, node))
    return out


def _imports(root, tree):
    """{local name: (module path, its attribute or None)} of the homeapp from-imports."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("homeapp"):
            package = root / node.module.replace(".", "/")
            for a in node.names:
                if (package / f"{a.name}.py").exists():
                    found[a.asname or a.name] = (str((package / f"{a.name}.py").relative_to(root)), None)
                else:
                    module = package.with_suffix(".py")
                    if not module.exists():
                        module = package / "__init__.py"
                    found[a.asname or a.name] = (str(module.relative_to(root)), a.name)
    return found


def _names_seams(node, imports):
    return not isinstance(node, (ast.Import, ast.ImportFrom)) and any(
        isinstance(n, ast.Name) and imports.get(n.id, ("",))[0].startswith("homeapp/seams/")
        for n in ast.walk(node))


def count(root, findings, through_seams=False):
    """({module: counted lines}, total non-blank lines of homeapp/)."""
    modules, seeds = {}, {}
    for finding in findings:
        seeds.setdefault(finding.path, set()).add(finding.line)
    for f in sorted(root.glob("homeapp/**/*.py")):
        rel = str(f.relative_to(root))
        text = f.read_text()
        tree = ast.parse(text)
        modules[rel] = (text.splitlines(), _statements(tree), _imports(root, tree))
    todo = [(m, i) for m, (_, statements, imports) in modules.items()
            for i, (start, end, _, node) in enumerate(statements)
            if m in VERSION_TABLES or any(start <= line <= end for line in seeds.get(m, ()))
            or through_seams and not m.startswith("homeapp/seams/") and m != "homeapp/__init__.py"
            and _names_seams(node, imports)]
    counted = set()
    while todo:
        m, i = todo.pop()
        if (m, i) in counted:
            continue
        counted.add((m, i))
        _, statements, imports = modules[m]
        for n in ast.walk(statements[i][3]):
            target = None
            if isinstance(n, ast.Name):
                target = imports.get(n.id, (m, n.id))
            elif (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in imports
                  and imports[n.value.id][1] is None):
                target = (imports[n.value.id][0], n.attr)
            if (target and target[1] and target[0] in modules
                    and pathlib.Path(target[0]).parent == pathlib.Path(m).parent):
                todo += [(target[0], j) for j, s in enumerate(modules[target[0]][1]) if target[1] in s[2]]
    per = {}
    for m, i in counted:
        lines, statements, _ = modules[m]
        start, end = statements[i][0], statements[i][1]
        per[m] = per.get(m, 0) + sum(1 for line in lines[start - 1:end] if line.strip())
    total = sum(sum(1 for line in lines if line.strip()) for lines, _, _ in modules.values())
    return per, total


def main(root, through_seams=False):
    sys.path.insert(0, str(root))
    sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))
    from tools import seamscan
    per, total = count(root, seamscan.scan(root), through_seams)
    for module, lines in sorted(per.items(), key=lambda item: (-item[1], item[0])):
        print(f"{lines:5d} {module}")
    seam = sum(per.values())
    print(f"{seam} of {total} non-blank lines of homeapp/ ({100 * seam / total:.0f} %) exist only to replace "
          f"or work around library code")


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg != "--through-seams"]
    main(pathlib.Path(args[0] if args else ".").resolve(), "--through-seams" in sys.argv)
