"""A host's analysis bundle in the browser (issue 21): time to each page drawn and the server's
memory, with Debian's chromium through Playwright on a real ``streamlit run`` server.

    RNNVIZ_BENCH_KEEP=/work/bench_keep python bench/bench_bundle.py --scale 1000000 --engines local
    python bench/bench_bundle_browser.py /work/bench_keep/scale-1000000-local

The bundle is the server's ``$RNNVIZ_BUNDLE`` (opened lazily, as a host sets it). Prints:
  * cold: a freshly started server, the first visitor: from ``page.goto`` until the Start page's
    script run has finished and its charts have drawn; then each other page from the click on its
    link in the navigation until its run has finished and every chart on it has drawn;
  * after the first open: a second browser session on the same server (caches warm), the same
    walk, and a third visit to each page in that session;
  * the server process's memory (VmRSS now and VmHWM, its peak) after the walks;
  * screenshots of every page (``test-artifacts/bench/bundle_<page>.png``, tall viewport) to read.

Measured (issue 21, 2026-12-06, the 2-core VM idle but for the bench; the 1M x 100-step bundle of
``bench_bundle.py --scale 1000000``, 2.47 GB; two runs):
  cold, first visitor:     Start 4.06 / 4.35 s (about 2.5 s of it the server's first imports)
  cold, first page visits: Trajectories 3.00 / 3.69 s, Saturation 0.59 / 0.58 s, Contributions 1.15 / 1.21 s
  second session:          Start 1.73 / 1.49 s, Trajectories 1.42 / 1.24 s, Saturation 0.60 / 0.49 s,
                           Contributions 0.92 / 0.80 s; a third visit 0.19-0.84 s
  server memory:           peak 459 / 464 MB
  before this session's changes (same bundle but for the horizon tables): first visitor 8.93 s,
  Trajectories 3.32 s, Saturation 3.71 s, Contributions 5.61 s; second session Contributions 2.13 s
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import (CHART, EXCEPTION, launch_browser, new_page, start_server, stop_server,  # noqa: E402
                     wait_idle)

PAGES = ["Trajectories", "Saturation", "Contributions", "Start"]
SHOTS = ROOT / "test-artifacts" / "bench"


def _drawn(pg, minimum: int = 0) -> int:
    """Wait until at least ``minimum`` charts are on the page and every chart has drawn (a canvas or
    svg inside each); return the count. A page's later visits wait for as many charts as its first
    visit drew (a finished script run of the page before can end the wait for the run too early)."""
    pg.wait_for_function(
        """([sel, n]) => { const c = [...document.querySelectorAll(sel)];
               return c.length >= n && c.every(e => e.querySelector('canvas, svg')); }""",
        arg=[CHART, minimum], timeout=120_000)
    return pg.locator(CHART).count()


def _memory(pid: int) -> str:
    st = {l.split(":")[0]: l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith(("VmRSS", "VmHWM"))}
    return f"{int(st['VmRSS']) / 1024:.0f} MB now, peak {int(st['VmHWM']) / 1024:.0f} MB"


def _walk(pg, label: str, shots: bool, expect: dict | None = None) -> dict:
    out, counts = [], {}
    for name in PAGES:
        t0 = time.perf_counter()
        pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=name).first.click()
        wait_idle(pg, 300)
        pg.get_by_role("heading", name=name if name != "Start" else None).first.wait_for()
        n = _drawn(pg, (expect or {}).get(name, 0))
        dt = time.perf_counter() - t0
        counts[name] = n
        errs = pg.locator(EXCEPTION).count()
        out.append(f"{name} {dt:.2f} s ({n} charts{', ' + str(errs) + ' exceptions' if errs else ''})")
        if shots:
            SHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SHOTS / f"bundle_{name.lower()}.png"), full_page=True)
    print(f"  {label}: " + ", ".join(out), flush=True)
    return counts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    size = sum(f.stat().st_size for f in a.bundle.rglob("*") if f.is_file()) if a.bundle.is_dir() \
        else a.bundle.stat().st_size
    print(f"bundle {a.bundle.name}: {size / 1e9:.2f} GB  [{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}]")
    with tempfile.TemporaryDirectory() as d, sync_playwright() as pw:
        proc, url, log = start_server(Path(d), extra_env={"RNNVIZ_BUNDLE": str(a.bundle.resolve())})
        browser = launch_browser(pw)
        try:
            print(f"  server started, {_memory(proc.pid)}", flush=True)
            pg = new_page(browser, 1400, 2400)
            t0 = time.perf_counter()
            pg.goto(url)
            wait_idle(pg, 300)
            n = _drawn(pg)
            print(f"  cold, first visitor: Start {time.perf_counter() - t0:.2f} s ({n} charts)", flush=True)
            expect = _walk(pg, "cold, each page's first visit", shots=False)
            pg.context.close()
            pg = new_page(browser, 1400, 2400)
            t0 = time.perf_counter()
            pg.goto(url)
            wait_idle(pg, 300)
            n = _drawn(pg)
            print(f"  after the first open, a second session: Start {time.perf_counter() - t0:.2f} s ({n} charts)",
                  flush=True)
            _walk(pg, "second session", shots=True, expect=expect)
            _walk(pg, "second session, again", shots=False, expect=expect)
            print(f"  server memory: {_memory(proc.pid)}  "
                  f"[{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}]")
        finally:
            browser.close()
            stop_server(proc)
            tail = Path(log).read_text()[-2000:]
            if "Traceback" in tail:
                print(tail)


if __name__ == "__main__":
    main()
