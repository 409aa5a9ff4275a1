"""Imports flow downward: nothing outside ``dingo_gw/cli`` imports ``dingo_gw.cli``, and the dingo_gw
modules import each other without cycles (module-level and function-level imports alike, parsed with
``ast``, so that no import hidden in a function body escapes the check)."""

from __future__ import annotations

import ast
from pathlib import Path

import dingo_gw

PACKAGE_ROOT = Path(dingo_gw.__file__).resolve().parent


def module_names(root: Path) -> dict[str, Path]:
    """Module name -> file of every module of the package at ``root`` (a package is its __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its file (``from a import b`` counts as
    ``a.b`` when that is a module, else as ``a``; relative imports resolved)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for a in node.names:
                    targets.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        edges = set()
        for t in targets:
            while t and t not in modules:  # `import a.b.c` of a name inside a module
                t = t.rpartition(".")[0]
            if t and t != name:
                edges.add(t)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cli_importers(graph: dict[str, set[str]]) -> list[str]:
    """Modules outside dingo_gw.cli that import a dingo_gw.cli module."""
    def in_cli(m):
        return m == "dingo_gw.cli" or m.startswith("dingo_gw.cli.")

    return sorted(f"{m} -> {t}" for m, ts in graph.items() if not in_cli(m) for t in ts if in_cli(t))


def test_the_graph_sees_function_level_imports():
    graph = import_graph(PACKAGE_ROOT)
    assert "dingo_gw.inference.analyze" in graph["dingo_gw.cli.analyze"]  # imported inside main()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_outside_cli_imports_cli():
    assert cli_importers(import_graph(PACKAGE_ROOT)) == []


def test_no_import_cycles():
    assert cycles(import_graph(PACKAGE_ROOT)) == []
