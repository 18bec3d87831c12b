"""The import graph of a package (``rnnviz_core`` by default, ``rnnviz_app`` too), read with ``ast`` (nothing is imported).

``python3 tools/import_graph.py`` prints the cycles and the private names used across modules;
``tests/test_layout.py`` fails on either. A private name is one that starts with ``_`` (not a
dunder); using one is fine inside its own module, and a private *module* (``charts/_steps.py``)
is fine inside its own package.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rnnviz_core"


def modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package``."""
    out = {}
    for p in sorted((root / package).rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(mod: str, is_pkg: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = mod.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _top_level(node: ast.AST, tree: ast.Module) -> bool:
    return node in _top_nodes(tree)


def _top_nodes(tree: ast.Module) -> set:
    """Import statements that run when the module is imported (not inside a def)."""
    out = set()

    def walk(body):
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                out.add(n)
            elif isinstance(n, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody"):
                    walk(getattr(n, field, []) or [])
                for h in getattr(n, "handlers", []) or []:
                    walk(h.body)
            elif isinstance(n, ast.ClassDef):
                walk(n.body)
    walk(tree.body)
    return out


def analyse(root: Path = ROOT, package: str = PACKAGE):
    """-> (edges, private_uses). edges: {module: set(imported modules)} for imports run at import
    time; private_uses: [(module, line, text)] of private names taken from another module."""
    mods = modules(root, package)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private: list[tuple[str, int, str]] = []
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top = _top_nodes(tree)
        aliases: dict[str, str] = {}          # local name -> rnnviz_core module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(package):
                        if node in top:
                            edges[mod].add(a.name)
                        if a.asname:
                            aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(mod, is_pkg, node.level, node.module)
                if not src.startswith(package):
                    continue
                for a in node.names:
                    sub = f"{src}.{a.name}"
                    if sub in mods:                       # `from . import data`: a module
                        if node in top:
                            edges[mod].add(sub)
                        aliases[a.asname or a.name] = sub
                        parent = sub.rsplit(".", 1)[0]
                        if _is_private(a.name) and not (mod == parent or mod.startswith(parent + ".")):
                            private.append((mod, node.lineno, f"from {src} import {a.name}"))
                        continue
                    if node in top and src in mods:
                        edges[mod].add(src)
                    if _is_private(a.name) and src != mod:
                        private.append((mod, node.lineno, f"from {src} import {a.name}"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _is_private(node.attr) and aliases[node.value.id] != mod):
                private.append((mod, node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
        edges[mod].discard(mod)
    # a package imported as part of a dotted import is imported too (its __init__ runs)
    for mod in edges:
        for dst in list(edges[mod]):
            parts = dst.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in mods and parent != mod and not mod.startswith(parent + "."):
                    edges[mod].add(parent)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    e, p = analyse()
    print(f"{len(e)} modules, {sum(len(v) for v in e.values())} import-time edges")
    for c in cycles(e):
        print("cycle:", " <-> ".join(c))
    for m, line, text in p:
        print(f"private: {m}:{line}: {text}")
