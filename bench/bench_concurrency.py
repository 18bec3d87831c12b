"""Does one session's heavy work block another session's cheap reruns? (issue 13)

One real server (``streamlit run``), two browser sessions (Debian chromium via Playwright):

* session A sits on Trajectories (default demo) and keeps toggling "Line the two sequences up
  at their" start/end: a rerun whose results are all cached (one chart redrawn);
* session B, meanwhile, does something heavy: opens Contributions for the first time (its first
  computation), then uploads the largest data file a user may send (a ~190 MB long-form CSV of
  5M rows: 200,000 sequences x 25 steps x 3 features, made with ``DataFrame.to_csv`` the way users
  export tables), then the same table as Parquet, through the sidebar's "Data file" uploader
  ("Use my own files").

For each phase it prints A's rerun times (from the click to the end of the script run with the
chart drawn): median, 90th percentile and max, and how long B's work took. Target: A's reruns
stay at or under 0.5 s while B works.

``--torch-threads N`` starts the server with ``OMP_NUM_THREADS=N`` (torch's intra-op threads), to
compare a server that lets one session's computation take every core with one that does not.

``--inproc`` measures without a server or browser: the longest time the GIL is held away from
a probe thread (which sleeps 1 ms in a loop) while ``load_data`` reads each file, and while
``contributions`` runs on the default demo at 1 and at the default number of torch threads;
these figures depend little on other load on the machine.

Run: ``python bench/bench_concurrency.py [--files DIR] [--phases contrib,csv,parquet] [--torch-threads N]``
or ``python bench/bench_concurrency.py --inproc``. The files are made once under ``--files``
(default: a temporary folder; ~260 MB of disk).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import (CHART, launch_browser, new_page, start_server, stop_server,  # noqa: E402
                     wait_idle, warm_up)

TARGET_S = 0.5


def make_files(folder: Path, n: int = 200_000, t: int = 25) -> tuple[Path, Path]:
    """A long-form CSV near the 200 MB limit and the same table as Parquet (made once)."""
    import numpy as np
    import pandas as pd
    csv, pq = folder / "big_longform.csv", folder / "big_longform.parquet"
    if csv.exists() and pq.exists():
        return csv, pq
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n * t, 3)).astype(np.float32)
    df = pd.DataFrame({"seq_id": np.repeat(np.arange(n), t), "step": np.tile(np.arange(t), n),
                       "label": np.repeat(rng.choice(["up", "down", "flat"], n), t),
                       "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]})
    df.to_csv(csv, index=False, float_format="%.5f")
    df.to_parquet(pq, index=False)
    return csv, pq


def _finished(pg, timeout_s: float = 120.0) -> None:
    wait_idle(pg, timeout_s)
    pg.wait_for_function(
        """(sel) => [...document.querySelectorAll(sel)].every(c => c.querySelector('canvas, svg'))""",
        arg=CHART, timeout=timeout_s * 1000)


class Toggler:
    """Session A: toggles the alignment radio and times each rerun."""

    def __init__(self, pg):
        self.pg = pg
        self.radio = pg.locator('[data-testid="stRadio"]').filter(has_text="Line the two sequences up")
        self.state = "start"

    def once(self) -> float:
        self.state = "end" if self.state == "start" else "start"
        t0 = time.perf_counter()
        self.radio.get_by_text(self.state, exact=True).click()
        _finished(self.pg)
        return time.perf_counter() - t0


def _b_done(pg_b, shows: str | None) -> bool:
    """B's triggered run has finished (and, for an upload, the sidebar names the file read)."""
    st = pg_b._rv_runs
    if st["finished"] <= st["seen"]:
        return False
    if shows is None:
        return True
    st["seen"] = st["finished"]                       # a run that ended before the file was read
    cap = pg_b.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]').filter(has_text=shows)
    err = pg_b.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]')
    if err.count():
        raise RuntimeError(f"B's upload was refused: {err.first.inner_text()}")
    if cap.count():
        st["seen"] -= 1                               # let wait_idle below see the finished run
        return True
    return False


def _while_b(a: Toggler, pg_b, start_b, shows: str | None = None,
             timeout_s: float = 600.0) -> tuple[list[float], float]:
    """Start B's work, toggle A until B's run has finished; return (A's times, B's seconds)."""
    t0 = time.perf_counter()
    start_b()
    times = []
    while not _b_done(pg_b, shows):
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError("session B did not finish")
        times.append(a.once())
    wait_idle(pg_b, timeout_s)
    return times, time.perf_counter() - t0


def _fmt(label: str, times: list[float], extra: str = "") -> str:
    if not times:
        return f"{label:<44} (no rerun of A completed) {extra}"
    q = sorted(times)
    p90 = q[min(len(q) - 1, int(0.9 * len(q)))]
    over = sum(x > TARGET_S for x in times)
    return (f"{label:<44} A reruns n={len(times):3d}  median {statistics.median(times):5.3f} s  "
            f"p90 {p90:5.3f}  max {max(times):6.3f}  >{TARGET_S}s: {over:3d}  {extra}")


def _upload(pg, path: Path):
    exp = pg.locator('[data-testid="stSidebar"] [data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = exp.locator('[data-testid="stFileUploader"]').filter(has_text="Data file")
    return lambda: box.locator('input[type="file"]').set_input_files(str(path))


def _probe_during(job) -> tuple[float, float, int]:
    """Run ``job`` in a thread; return (its seconds, longest probe stall in s, stalls over 50 ms)."""
    import threading
    out: list = []
    th = threading.Thread(target=lambda: out.append(job()))
    t0 = time.perf_counter()
    th.start()
    worst, over, last = 0.0, 0, time.perf_counter()
    while th.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        gap = now - last - 0.001
        worst, over, last = max(worst, gap), over + (gap > 0.05), now
    th.join()
    return time.perf_counter() - t0, worst, over


def inproc(csv: Path, pq: Path) -> None:
    import torch

    from rnnviz_core import contributions
    from rnnviz_core.data import load_data
    from rnnviz_core.demos import load_demo
    for path in (csv, pq):
        raw = path.read_bytes()
        dt, worst, over = _probe_during(lambda: load_data(raw, name=path.name))
        print(f"load_data {path.name:<24} {dt:6.1f} s   longest GIL stall {worst * 1000:6.0f} ms, "
              f"stalls >50 ms: {over}", flush=True)
    model, ds = load_demo()
    default = torch.get_num_threads()
    for n in sorted({1, default}):
        torch.set_num_threads(n)
        dt, worst, over = _probe_during(lambda: contributions(model, ds.X, "integrated_gradients", ds.lengths,
                                                              device="cpu"))
        print(f"contributions IG, torch threads={n:<2}          {dt:6.1f} s   longest probe stall "
              f"{worst * 1000:6.0f} ms, stalls >50 ms: {over}", flush=True)
    torch.set_num_threads(default)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=Path, default=None, help="folder for the big files (made once)")
    ap.add_argument("--phases", default="contrib,csv,parquet")
    ap.add_argument("--baseline", type=int, default=8, help="A's reruns timed with B idle")
    ap.add_argument("--torch-threads", type=int, default=None, help="OMP_NUM_THREADS for the server")
    ap.add_argument("--inproc", action="store_true", help="GIL stalls in this process, no server")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="with --inproc: the checkout whose rnnviz_core is measured (before/after a change)")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the server, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="rnnviz-conc-"))
    csv, pq = make_files(args.files or tmp / "files")
    print(f"files: {csv.name} {csv.stat().st_size / 2**20:.0f} MB, {pq.name} {pq.stat().st_size / 2**20:.0f} MB")
    if args.inproc:
        sys.path.insert(0, str(args.root))
        return inproc(csv, pq)
    # a store big enough that the 185 MB file is kept (the default per-visitor share is smaller)
    env = {"RNNVIZ_UPLOAD_MAX_BYTES": str(2 << 30), **dict(kv.split("=", 1) for kv in args.server_env)}
    if args.torch_threads is not None:
        env["OMP_NUM_THREADS"] = str(args.torch_threads)
    proc, url, log = start_server(tmp, env)
    print(f"server environment: {env or 'default'}")
    print(f"server pid {proc.pid} at {url}", flush=True)
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            warm_up(browser, url)
            pa = new_page(browser)
            pa.set_default_timeout(600_000)
            pa.goto(url + "/Trajectories")
            _finished(pa)
            a = Toggler(pa)
            a.once(), a.once()                       # both alignments computed once
            print(_fmt("before (B idle)", [a.once() for _ in range(args.baseline)]), flush=True)
            pb = new_page(browser)
            pb.set_default_timeout(600_000)
            pb.goto(url)
            wait_idle(pb)
            phases = args.phases.split(",") if args.phases else []
            if "contrib" in phases:
                link = pb.locator('[data-testid="stSidebarNav"] a[href$="/Contributions"]')
                times, tb = _while_b(a, pb, link.click)
                print(_fmt("during B: first Contributions computation", times, f"(B took {tb:.1f} s)"), flush=True)
            for kind, path in (("csv", csv), ("parquet", pq)):
                if kind in phases:
                    times, tb = _while_b(a, pb, _upload(pb, path), shows=path.name)
                    print(_fmt(f"during B: upload + parse {path.stat().st_size / 2**20:.0f} MB {kind}", times,
                               f"(B took {tb:.1f} s)"), flush=True)
            print(_fmt("after (B idle)", [a.once() for _ in range(args.baseline)]), flush=True)
            browser.close()
    finally:
        stop_server(proc)
        print(f"server log: {log}")


if __name__ == "__main__":
    main()
