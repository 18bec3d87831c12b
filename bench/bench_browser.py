"""Browser benchmark of the dashboard on the default demo (Debian chromium via Playwright).

Prints:
  * open -> first page finished: from ``page.goto`` on a freshly started server (cold caches)
    until the start page's script run has finished and its content is on screen; and the same
    for a second browser session (warm server caches);
  * each page's first render: from clicking its link in the navigation until the run has
    finished and every chart on it has drawn (cold for that page's computations);
  * rerun after a widget change that needs no new computation, on Trajectories: switching
    sequence B back and forth between two sequences already computed (every result from the
    cache; the PCA, norms and distance charts get the new pair's data in place, the play control is
    redrawn), and toggling the distance alignment (one chart rebuilt); medians of several changes. Two clocks: from
    Playwright's click call to the end of the script run with every chart drawn (includes
    Playwright's own checks before it clicks), and the page's own clock from pointer-down to the
    frame painted after the last change to the page (once it has been quiet for 150 ms);
  * own files (issue 9): a ~1 MB pair made the way a tutorial makes it (a GRU state dict saved
    with ``torch.save`` and a 1 MB UCR/UEA ``.ts`` file) uploaded into a fresh session while a
    demo is shown: seconds from the first upload to the start page showing the accuracy, then to
    every page ready (each page opened in turn until its charts drew), all in one figure.

Run: ``python bench/bench_browser.py [--repeats 5] [--cold 5] [--no-upload] [--upload-only]``.
``--cold N`` times open -> start page on N freshly started servers, one after another, and prints
each and their median (``--cold-only``: nothing else). Needs ``apt-get install chromium``.
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
from harness import (CHART, launch_browser, new_page, open_options, selected,  # noqa: E402
                     start_server, stop_server, wait_idle)

PAGES = [("Trajectories", "trajectories"), ("Saturation", "saturation"), ("Contributions", "contributions")]


def _finished(pg, timeout_s: float = 120.0) -> None:
    """Wait until the triggered run ended and every chart drew its canvas/svg."""
    wait_idle(pg, timeout_s)
    pg.wait_for_function(
        """(sel) => [...document.querySelectorAll(sel)].every(
               c => c.querySelector('canvas, svg'))""", arg=CHART, timeout=timeout_s * 1000)


def _timed(action, pg) -> float:
    t0 = time.perf_counter()
    action()
    _finished(pg)
    return time.perf_counter() - t0


# In-page clock for reruns: from the pointer going down on the control to the first frame painted
# after the last change to the page's DOM (a chart drawn anew replaces its canvas; the script
# state flag flips back to notRunning), once the page has been quiet for QUIET_MS.
_PAGE_CLOCK = """
window.__rvT = {down: null, last: 0, painted: 0};
document.addEventListener('pointerdown', () => { window.__rvT.down = performance.now(); }, true);
new MutationObserver(() => {
  window.__rvT.last = performance.now();
  requestAnimationFrame(t => { window.__rvT.painted = Math.max(window.__rvT.painted, performance.now()); });
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""
QUIET_MS = 150


def _timed_rerun(action, pg) -> tuple[float, float]:
    """(seconds from the Python click call to the finished run with every chart drawn,
    seconds on the page's own clock from pointer-down to the frame painted after the last DOM change)."""
    pg.evaluate("() => { window.__rvT.down = null; }")
    wall = _timed(action, pg)
    pg.wait_for_function(f"() => window.__rvT.down !== null && performance.now() - window.__rvT.last > {QUIET_MS}"
                         " && window.__rvT.painted >= window.__rvT.last")
    return wall, pg.evaluate("() => (window.__rvT.painted - window.__rvT.down) / 1000")


def _report(what: str, pairs: list[tuple[float, float]]) -> None:
    wall = [w for w, _ in pairs]
    page = [p for _, p in pairs]
    print(f"{what}, median of {len(pairs)}: {statistics.median(wall):6.3f} s  (min {min(wall):.3f}, max {max(wall):.3f}); "
          f"pointer-down -> painted after the last DOM change: {statistics.median(page):.3f} s "
          f"(min {min(page):.3f}, max {max(page):.3f})")


def _pair(tmp: Path) -> tuple[Path, Path]:
    """A tutorial-shaped GRU state dict and a ~1 MB .ts file it reads (600 x 40 steps x 6 features)."""
    import numpy as np
    import torch
    from torch import nn

    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(6, 32, batch_first=True)
            self.fc = nn.Linear(32, 3)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, t, f, classes = 600, 40, 6, ["low", "high", "mid"]
    X, y = rng.normal(size=(n, t, f)), rng.integers(0, 3, n)
    lines = ["@problemName bench", "@timeStamps false", "@missing false", "@univariate false", f"@dimensions {f}",
             "@equalLength true", f"@seriesLength {t}", f"@classLabel true {' '.join(classes)}", "@data"]
    lines += [":".join(",".join(f"{v:.4f}" for v in X[i, :, j]) for j in range(f)) + ":" + classes[y[i]]
              for i in range(n)]
    data = tmp / "bench_TEST.ts"
    data.write_text("\n".join(lines) + "\n")
    model = tmp / "bench_gru.pt"
    torch.save(GRUNet().state_dict(), model)
    return model, data


def _upload_pair(browser, url: str, tmp: Path) -> None:
    """Seconds from uploading a ~1 MB pair to the start page's accuracy, then to every page ready."""
    model, data = _pair(tmp)
    mb = (model.stat().st_size + data.stat().st_size) / 1e6
    pg = new_page(browser)
    pg.set_default_timeout(300_000)
    pg.goto(url + "/?demo=race")
    wait_idle(pg)
    side = pg.locator('[data-testid="stSidebar"]')
    exp = side.locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    exp.locator("summary").click()
    boxes = exp.locator('[data-testid="stFileUploader"]')
    t0 = time.perf_counter()
    boxes.filter(has_text="Model file").locator('input[type="file"]').set_input_files(str(model))
    wait_idle(pg, 300)
    boxes.filter(has_text="Data file").locator('input[type="file"]').set_input_files(str(data))
    wait_idle(pg, 300)
    pg.locator('[data-testid="stMetricValue"]').first.wait_for()
    start = time.perf_counter() - t0
    for title, _ in PAGES:
        pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        _finished(pg, 300)
        pg.wait_for_selector(CHART)
    total = time.perf_counter() - t0
    print(f"own files: upload of a {mb:.2f} MB pair -> start page with accuracy: {start:6.2f} s; "
          f"-> all pages ready: {total:6.2f} s")
    pg.context.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="widget-change reruns to time")
    ap.add_argument("--upload-only", action="store_true", help="time only the own-files upload")
    ap.add_argument("--no-upload", action="store_true", help="skip the own-files upload")
    ap.add_argument("--cold", type=int, default=1, help="fresh servers to time open -> start page on")
    ap.add_argument("--cold-only", action="store_true", help="time only open -> start page on fresh servers")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="rnnviz-bench-"))
    colds: list[float] = []
    if args.cold > 1 or args.cold_only:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            for _ in range(args.cold - (0 if args.cold_only else 1)):
                proc, url, _ = start_server(tmp)
                try:
                    pg = new_page(browser)
                    pg.set_default_timeout(120_000)
                    colds.append(_timed(lambda: pg.goto(url), pg))
                    pg.wait_for_selector("text=The loaded model")
                    pg.context.close()
                finally:
                    stop_server(proc)
            browser.close()
        if args.cold_only:
            print("open -> first page finished (cold server), each fresh server: "
                  + ", ".join(f"{c:.2f}" for c in colds))
            print(f"open -> first page finished (cold server), median of {len(colds)}: "
                  f"{statistics.median(colds):6.2f} s")
            return
    proc, url, _ = start_server(tmp)
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            if args.upload_only:
                _upload_pair(browser, url, tmp)
                browser.close()
                return
            pg = new_page(browser)
            ctx = pg.context
            pg.set_default_timeout(120_000)
            cold = _timed(lambda: pg.goto(url), pg)
            pg.wait_for_selector("text=The loaded model")
            print(f"open -> first page finished (cold server):   {cold:6.2f} s")
            if colds:
                colds.append(cold)
                print("open -> first page finished (cold server), each fresh server: "
                      + ", ".join(f"{c:.2f}" for c in colds) + f"; median of {len(colds)}: {statistics.median(colds):.2f} s")
            firsts = {}
            for title, path in PAGES:
                link = pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first
                firsts[title] = _timed(link.click, pg)
                print(f"first render of {title:<14}                {firsts[title]:6.2f} s")
            ctx.close()

            pg = new_page(browser)
            pg.add_init_script(_PAGE_CLOCK)
            ctx2 = pg.context
            pg.set_default_timeout(120_000)
            warm = _timed(lambda: pg.goto(url), pg)
            print(f"open -> first page finished (warm server):   {warm:6.2f} s")
            pg.goto(url + "/trajectories")
            _finished(pg)
            first = selected(pg, "Sequence B")

            def choose(index: int) -> tuple[float, float]:
                """Open the list, then time from the click on an option to the finished rerun."""
                opt = open_options(pg, "Sequence B").nth(index)
                return _timed_rerun(opt.click, pg)

            choose(3)                               # computes this pair's results once
            second = selected(pg, "Sequence B")
            choose(1)                               # back to the first pair: all cached
            assert selected(pg, "Sequence B") == first, "option order changed"
            times = [choose(3 if i % 2 == 0 else 1) for i in range(args.repeats)]
            assert selected(pg, "Sequence B") in (first, second)
            _report("rerun after switching sequence B to a cached pair (3 charts updated in place, play control redrawn)", times)
            radio = pg.locator('[data-testid="stRadio"]').filter(has_text="Line the two sequences up")
            _timed(radio.get_by_text("end", exact=True).click, pg)   # computes the end-aligned distance once
            _timed(radio.get_by_text("start", exact=True).click, pg)
            times = [_timed_rerun(radio.get_by_text("end" if i % 2 == 0 else "start", exact=True).click, pg)
                     for i in range(args.repeats)]
            _report("rerun after toggling the alignment (cached, 1 chart rebuilt)", times)
            ctx2.close()
            if not args.no_upload:
                _upload_pair(browser, url, tmp)
            browser.close()
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
