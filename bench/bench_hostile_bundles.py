"""Hostile analysis bundles (issue 19): refused?, peak RSS, seconds and the sentence, per case.

    python bench/bench_hostile_bundles.py              # every case, each in a fresh process
    python bench/bench_hostile_bundles.py text_bomb    # some cases

Each bundle is made by ``tests/hostile_bundles.py`` the way an attacker would (forged files
re-signed in the manifest), then opened in its own fresh Python process with the app's limits
(``RNNVIZ_BUNDLE_MAX_BYTES`` 200 MB, ``RNNVIZ_BUNDLE_MAX_MEMORY`` 512 MB) and, when it opens, read
the way every bundle page reads it. Peak RSS is the process's ``VmHWM`` (imports of numpy,
pandas, pyarrow, torch and streamlit included: about 300 MB before any bundle). Prints one row
per case and the load average (the project's VM has 2 shared cores: seconds are pessimistic).

Measured (2 shared cores, load average 13-17 from other jobs): 32 of 32 hostile bundles refused
at 304-332 MB peak RSS in 0.00-0.36 s; the valid bundle read by every page at 333 MB in 0.39 s.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> None:
    import torch

    import hostile_bundles as hb

    torch.set_num_threads(1)
    names = argv or list(hb.CASES)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base = hb.build_base(d)
        rows = []
        for name in names:
            path = hb.CASES[name](base, d)
            out, peak, secs = hb.run_cases({name: path})[name]
            refused = out.startswith("REFUSED")
            msg = out.split(" ", 1)[1] if refused else out
            msg = msg.replace(" Build it again with rnnviz_core.bundle.build or `rnnviz precompute`.", "")
            rows.append((name, "refused" if refused else out.split(" ")[0].lower(), peak / 1024, secs, msg))
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} "
          f"({os.cpu_count()} cores)")
    print(f"{'case':<24} {'outcome':<8} {'peak RSS':>9} {'seconds':>8}  sentence")
    for name, what, mb, secs, msg in rows:
        print(f"{name:<24} {what:<8} {mb:>6.0f} MB {secs:>8.2f}  {msg[:150]}")
    bad = [r for r in rows if r[0] != "honest" and (r[1] != "refused" or r[2] > 1024 or r[3] > 5)]
    print(f"{len(rows) - len(bad)} of {len(rows)} within the target (refused, or read for 'honest'; "
          f"under 1 GB and 5 s)")


if __name__ == "__main__":
    main(sys.argv[1:])
