"""No project import inside a function (ARCHITECTURE.md "Rules": a cycle is a design question).

An import inside a function is how a cycle hides from the module graph: the two modules still
need each other, only later. `tests/function_imports.txt` lists the ones main still has; it may
only shrink. A new one fails here (move it to the top of its module; if that makes a cycle,
resolve the cycle). A listed one that is gone fails too, so the list stays true: delete its line
in the commit that removes the import.

Not counted: `AppConfig.ready` (Django's place for start-up wiring), migrations, settings, and
the process entry points' imports of Django-dependent code after they set Django up (`AFTER_SETUP`).
The module boundaries themselves are the import-linter contracts in `.importlinter`.
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = Path(__file__).with_name("function_imports.txt")
PROJECT = (
    "accounts",
    "amisite",
    "collection",
    "loadcontrol",
    "meters",
    "portal",
    "reports",
    "vending",
)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# A process entry point configures the environment and Django first; these imports need models
# or the ASGI application and so can only come after that (no cycle involved).
AFTER_SETUP = {
    "amisite/launcher.py main -> meters.demo",  # after django.setup() and migrate
    "amisite/serve.py application -> amisite.asgi",  # uvicorn's factory, in each worker
}


def _package_of(path: Path, root: Path) -> list[str]:
    """The package a relative import starts from: the folder (an `__init__` is its own)."""
    return list(path.relative_to(root).parts[:-1])


def _is_app_config(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(b, ast.Name) and b.id == "AppConfig")
        or (isinstance(b, ast.Attribute) and b.attr == "AppConfig")
        for b in node.bases
    )


def _imported(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package[: len(package) - node.level + 1]
        return [".".join(base + ([node.module] if node.module else []))]
    return [node.module or ""]


def _excluded(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return "migrations" in rel.parts or rel.name == "settings.py"


def _in_functions(node: ast.AST, stack: list[ast.AST], package: list[str]):
    """(qualname, module) of each project import inside a function below `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (*FUNCTIONS, ast.ClassDef)):
            ready = (
                isinstance(child, FUNCTIONS)
                and child.name == "ready"
                and stack
                and isinstance(stack[-1], ast.ClassDef)
                and _is_app_config(stack[-1])
            )
            if not ready:
                yield from _in_functions(child, [*stack, child], package)
            continue
        in_function = any(isinstance(s, FUNCTIONS) for s in stack)
        if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
            qualname = ".".join(s.name for s in stack)  # type: ignore[attr-defined]
            for module in _imported(child, package):
                if module.split(".")[0] in PROJECT:
                    yield qualname, module
        yield from _in_functions(child, stack, package)


def _parse(path: Path, rel: str) -> ast.Module:
    """`ast.parse`, or, when this interpreter's parser state is broken, a fresh one's.

    CPython 3.11.7 can leave its AST recursion counter off after an earlier error elsewhere in
    the process (cpython gh-106905, fixed in 3.11.8); every later parse in that process then
    raises ``SystemError: AST constructor recursion depth mismatch``. The scan must not depend
    on what another test did in the same worker, so the file is parsed again in a new process.
    """
    text = path.read_text(encoding="utf-8")
    try:
        return ast.parse(text, filename=rel)
    except SystemError:
        code = (
            "import ast, pickle, sys; "
            "sys.stdout.buffer.write(pickle.dumps(ast.parse(sys.stdin.read(), sys.argv[1])))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, rel], input=text.encode(), capture_output=True, check=True
        )
        return pickle.loads(out.stdout)  # noqa: S301 - our own child's output


def function_imports(root: Path = ROOT) -> Counter[str]:
    """`path qualname -> module` for each project import inside a function, counted."""
    found: Counter[str] = Counter()
    for app in PROJECT:
        for path in sorted((root / app).rglob("*.py")):
            if _excluded(path, root):
                continue
            rel = path.relative_to(root).as_posix()
            tree = _parse(path, rel)
            for qualname, module in _in_functions(tree, [], _package_of(path, root)):
                entry = f"{rel} {qualname} -> {module}"
                if entry not in AFTER_SETUP:
                    found[entry] += 1
    return found


def allowed() -> Counter[str]:
    lines = ALLOWLIST.read_text(encoding="utf-8").splitlines()
    return Counter(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def test_no_new_import_inside_a_function():
    new = function_imports() - allowed()
    assert not new, (
        "Project import(s) inside a function: move each to the top of its module; if that makes "
        "a cycle, resolve the cycle (never add to tests/function_imports.txt):\n"
        + "\n".join(sorted(new.elements()))
    )


def test_the_allowlist_names_only_imports_that_still_exist():
    gone = allowed() - function_imports()
    assert not gone, (
        "These imports are no longer inside a function: delete their lines from "
        "tests/function_imports.txt:\n" + "\n".join(sorted(gone.elements()))
    )


def test_the_scan_sees_nested_relative_and_skips_app_ready(tmp_path):
    app = tmp_path / "meters"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "apps.py").write_text(
        "from django.apps import AppConfig\n"
        "class MetersConfig(AppConfig):\n"
        "    def ready(self):\n"
        "        from . import signals\n"
    )
    (app / "views.py").write_text(
        "import meters.models\n"
        "class View:\n"
        "    def get(self):\n"
        "        import json\n"
        "        from .models import Meter\n"
        "        def inner():\n"
        "            from collection import actions\n"
    )
    found = function_imports(tmp_path)
    assert sorted(found) == [
        "meters/views.py View.get -> meters.models",
        "meters/views.py View.get.inner -> collection",
    ]
