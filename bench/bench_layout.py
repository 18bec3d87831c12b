"""Figure for the README (issue 20): lines per module of rnnviz_core before and after the layout by
concern, the same for the app (rnnviz_app and pages/), and the import graphs' state (cycles,
private names taken across modules).

    python3 bench/bench_layout.py [BEFORE_REF [APP_BEFORE_REF]]
    # defaults: the commit before the core's layout (7883196), the app before its layout (804fc25)

"Before" is read from git at BEFORE_REF, "after" from the working tree. A module that only
re-exports an old path (one release) is marked "(old path)". Nothing is timed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import import_graph as ig  # noqa: E402

LIMIT = 600


def lines_at(ref: str, folder: str = "rnnviz_core") -> dict[str, int]:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", ref, folder],
                           capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for f in files:
        if f.endswith(".py"):
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{f}"], capture_output=True, text=True,
                                  check=True).stdout
            out[f] = len(text.splitlines())
    return out


def lines_now(folder: str = "rnnviz_core") -> dict[str, int]:
    return {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in sorted((ROOT / folder).rglob("*.py"))}


def is_old_path(path: str) -> bool:
    text = (ROOT / path).read_text()
    return "kept for one release" in text.split('"""')[1] if text.startswith('"""') else False


def table(title: str, before: dict[str, int], after: dict[str, int], ref: str) -> None:
    print(f"{title} lines per module: before = git {ref}, after = working tree")
    print(f"{'module':48s} {'before':>7s} {'after':>7s}")
    for path in sorted(set(before) | set(after)):
        b, a = before.get(path), after.get(path)
        mark = "  (old path)" if a is not None and is_old_path(path) else ""
        flag = "  > %d" % LIMIT if (a or 0) > LIMIT else ""
        print(f"{path:48s} {b if b is not None else '':>7} {a if a is not None else '':>7}{mark}{flag}")
    for name, d in (("before", before), ("after", after)):
        big = sorted((n, p) for p, n in d.items() if n > LIMIT)
        print(f"{name}: {len(d)} files, {sum(d.values())} lines, largest {max(d.values())}, "
              f"{len(big)} over {LIMIT}: " + ", ".join(f"{p} {n}" for n, p in big[::-1]))


def main(ref: str = "7883196", app_ref: str = "804fc25") -> None:
    table("rnnviz_core", lines_at(ref), lines_now(), ref)
    for package in ("rnnviz_core", "rnnviz_app"):
        edges, private = ig.analyse(ROOT, package)
        print(f"{package} import graph now: {len(edges)} modules, {sum(map(len, edges.values()))} import-time "
              f"edges, {len(ig.cycles(edges))} cycles, {len(private)} private names taken across modules")
    print()
    app_before = {**lines_at(app_ref, "rnnviz_app"), **lines_at(app_ref, "pages")}
    app_after = {**lines_now("rnnviz_app"), **lines_now("pages")}
    table("rnnviz_app and pages/", app_before, app_after, app_ref)
    pages = {p: n for p, n in app_after.items() if p.startswith("pages/")}
    print(f"pages now: {', '.join(f'{p[6:]} {n}' for p, n in pages.items())} lines")


if __name__ == "__main__":
    main(*sys.argv[1:])
