"""Every page at real sizes in a real browser (issue 18): time to a fully drawn page, the largest
chart's row count, browser memory.

For each size case (tests/e2e/sizes_files.py: the browser matrix of tests/e2e/test_sizes.py plus
the issue's targets, 1,000 steps x 128 units x 1,000 sequences and 10,000 steps x 32 units x 100
sequences) the files are made the way tutorials make them (a few seconds of training), uploaded
once through the real app into one session, and then each page is opened by its link (the
uploaded files' hashes are in it) in a fresh browser session, as a colleague opening a shared
link would, twice:

  * ``cold``: the first visit to that page (its computations run: trace, PCA, scores, ...),
  * ``warm``: a second fresh session on the same link (computations cached on the server),

timed from ``page.goto`` until ``[data-testid="stApp"][data-test-script-state="notRunning"]``
after the script run has finished and every Vega-Lite chart on the page has drawn its canvas/svg.
Also printed per page: the largest chart's rows (rows of all its datasets, read from the
Vega-Lite specs Streamlit sent to the page), the number of charts, ``sent`` = the bytes of the
websocket messages the server sent to the tab for that page (chart specs with their data, the
play control's arrays, tables), and browser memory after the page drew and one forced garbage
collection in the tab (DevTools ``HeapProfiler.collectGarbage``: what the page holds, not what a
run left for the collector), one tab open:

  * ``heap``: DevTools ``Performance.getMetrics`` JSHeapUsedSize of the tab;
  * ``tab``: the proportional set size (PSS, /proc/PID/smaps_rollup: shared pages split between
    the processes sharing them) of the tab's renderer process: the largest ``--type=renderer``
    process (the only tab open; chromium also keeps a small spare renderer);
  * ``all``: the summed PSS of every chromium process (browser, GPU, utility, zygote, renderers);
  * printed once per run: ``all`` with one empty page (about:blank) open = what the browser itself
    costs before any page of the app (headless chromium with its GPU and utility processes).

The issue's "browser memory <= 500 MB" is read as the tab (its renderer process): that is what
the app's page costs; the browser's own processes are there for any page.
Exception boxes and error alerts are counted (``exc``/``err``).

Targets (issue 18): every page ready <= 5 s at 1,000 x 128 x 1,000; <= 15 s at 10,000 steps;
browser memory <= 500 MB.

Run: ``python bench/bench_sizes.py [--cases long,wide,...] [--timeout 180]``. Needs chromium.
Measure on an otherwise idle machine and print ``uptime`` with the figures.
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
import page_specs as ps  # noqa: E402
from harness import CHART, EXCEPTION, launch_browser, new_page, start_server, stop_server, wait_idle  # noqa: E402
from sizes_files import CASES, MATRIX, TARGETS, make_case  # noqa: E402

PAGES = ("", "Trajectories", "Saturation", "Contributions")
ERROR = '[data-testid="stAlertContentError"]'


def _chromium_pss_mb() -> float:
    """Summed PSS of every chromium process (MB); see :func:`_chromium_pss`."""
    return sum(_chromium_pss().values()) / 1024


def _tab_pss_mb() -> float:
    """PSS of the largest renderer process (MB): the one tab open (see the module docstring)."""
    procs = _chromium_pss()
    rend = [kb for pid, kb in procs.items() if "--type=renderer" in _cmdline(pid)]
    return max(rend, default=0) / 1024


def _cmdline(pid: str) -> str:
    try:
        return (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _chromium_pss() -> dict:
    """{pid: PSS in kB} of every chromium process that descends from this process, read from /proc
    (PSS: shared pages split between the processes sharing them, so a page shared by the browser
    and a renderer is not counted twice; the sum of RSS counts it in each)."""
    parent, comm, pss = {}, {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            comm[d.name] = stat[stat.index("(") + 1:stat.rindex(")")]
            parent[d.name] = stat[stat.rindex(")") + 2:].split()[1]
            rollup = (d / "smaps_rollup").read_text()
            pss[d.name] = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
        except (OSError, ValueError, IndexError):
            continue
    me, out = str(os.getpid()), {}
    for pid in comm:
        p, seen = pid, 0
        while p in parent and p != me and seen < 64:
            p, seen = parent[p], seen + 1
        if p == me and pid != me and ("chrom" in comm[pid].lower() or "headless" in comm[pid].lower()):
            out[pid] = pss[pid]
    return out


def _collect_garbage(pg) -> None:
    cdp = pg.context.new_cdp_session(pg)
    try:
        cdp.send("HeapProfiler.enable")
        cdp.send("HeapProfiler.collectGarbage")
    finally:
        cdp.detach()


def _heap_mb(pg) -> float:
    cdp = pg.context.new_cdp_session(pg)
    try:
        cdp.send("Performance.enable")
        m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
        return m.get("JSHeapUsedSize", float("nan")) / 2 ** 20
    finally:
        cdp.detach()


def _upload(pg, label: str, path: Path, timeout_s: float) -> None:
    side = pg.locator('[data-testid="stSidebar"]')
    exp = side.locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = side.locator('[data-testid="stFileUploader"]').filter(has_text=label).first
    box.wait_for(timeout=timeout_s * 1000)
    box.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg, timeout_s)


def _choose(pg, label: str, option: str) -> None:
    from harness import select_option
    box = pg.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label, exact=True)
    if box.count() and box.first.is_visible() and box.first.input_value().strip() != option:
        select_option(pg, label, option)


def upload_case(browser, url: str, files: dict, timeout_s: float) -> tuple[str, float]:
    """Upload the case's files in one session; return (the link's query string, seconds to the start page)."""
    pg = new_page(browser, 1400, 1200)
    pg.set_default_timeout(timeout_s * 1000)
    try:
        pg.goto(url)
        wait_idle(pg, timeout_s)
        t0 = time.perf_counter()
        _upload(pg, "Model file", files["model"], timeout_s)
        _upload(pg, "Data file", files["data"], timeout_s)
        if files["vocab"] is not None:
            _upload(pg, "Vocabulary file", files["vocab"], timeout_s)
        case = files["case"]
        if case.fmt == "csv_long":
            _choose(pg, "Sequence id column", "sequence_id")
            _choose(pg, "Label column", "label")
        if case.fmt == "text_csv":
            _choose(pg, "Label column", "sentiment")
        pg.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=timeout_s * 1000)
        took = time.perf_counter() - t0
        query = pg.url.split("?", 1)[1] if "?" in pg.url else ""
        return query, took
    finally:
        pg.context.close()


def visit(browser, url: str, path: str, query: str, timeout_s: float) -> dict:
    """Open one page by its link in a fresh session; time it and read what it drew."""
    pg = new_page(browser, 1400, 2400)
    pg.set_default_timeout(timeout_s * 1000)
    ps.record(pg)
    out = {"page": path or "Start"}
    sent = [0]
    pg.on("websocket", lambda ws: ws.on("framereceived", lambda payload: sent.__setitem__(
        0, sent[0] + (len(payload) if isinstance(payload, (bytes, str)) else 0))))
    try:
        t0 = time.perf_counter()
        pg.goto(f"{url}/{path}?{query}")
        wait_idle(pg, timeout_s)
        pg.wait_for_function("(sel) => [...document.querySelectorAll(sel)].every(c => c.querySelector('canvas, svg'))",
                             arg=CHART, timeout=timeout_s * 1000)
        out["s"] = time.perf_counter() - t0
        charts = ps.drawn_charts(pg)
        out["charts"] = len(charts)
        out["max_rows"] = max((ps.row_count(c) for c in charts), default=0)
        out["exc"] = pg.locator(EXCEPTION).count()
        out["err"] = pg.locator(ERROR).count()
        out["sent"] = sent[0] / 2 ** 20
        _collect_garbage(pg)
        time.sleep(0.5)   # let the renderer return freed memory before /proc is read
        out["heap"] = _heap_mb(pg)
        out["tab"] = _tab_pss_mb()
        out["pss"] = _chromium_pss_mb()
    except Exception as e:  # noqa: BLE001 - a page that never finishes is a figure too
        out["fail"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    finally:
        pg.context.close()
    return out


def _fmt(r: dict) -> str:
    if "fail" in r:
        return f"{r['page']:<14} FAILED {r['fail']}"
    return (f"{r['page']:<14} {r['s']:6.2f} s  charts {r['charts']:2d}  largest chart {r['max_rows']:6,d} rows  "
            f"sent {r['sent']:5.1f} MB  heap {r['heap']:5.1f} MB  tab {r['tab']:6.1f} MB  all {r['pss']:6.1f} MB  "
            f"exc {r['exc']} err {r['err']}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(c.key for c in TARGETS + MATRIX),
                    help="comma-separated case keys (default: all)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds one page may take")
    ap.add_argument("--no-warm", action="store_true", help="only the first (cold) visit of each page")
    ap.add_argument("--pages", default=",".join(p or "Start" for p in PAGES),
                    help="the pages visited after the upload, in this order (default: Start,Trajectories,Saturation,"
                         "Contributions); e.g. Contributions first measures it with no head start for the work "
                         "started in the background after the upload")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, log = start_server(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = launch_browser(pw)
                empty = new_page(browser)
                empty.goto("about:blank")
                time.sleep(1.0)
                print(f"browser with one empty page: all {_chromium_pss_mb():.1f} MB "
                      f"(largest renderer {_tab_pss_mb():.1f} MB)", flush=True)
                empty.context.close()
                warm = new_page(browser)
                warm.goto(url)
                wait_idle(warm)
                warm.context.close()
                for key in args.cases.split(","):
                    case = CASES[key]
                    t0 = time.perf_counter()
                    files = make_case(case, Path(tmp) / key)
                    made = time.perf_counter() - t0
                    print(f"\n{case.label}\n  files made in {made:.1f} s (data {files['data'].stat().st_size / 1e6:.1f} MB, "
                          f"model {files['model'].stat().st_size / 1e6:.1f} MB)", flush=True)
                    try:
                        query, took = upload_case(browser, url, files, args.timeout)
                    except Exception as e:  # noqa: BLE001
                        print(f"  upload FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}", flush=True)
                        continue
                    print(f"  upload -> start page figure: {took:.2f} s", flush=True)
                    for path in ["" if p == "Start" else p for p in args.pages.split(",")]:
                        for run in ("cold",) if args.no_warm else ("cold", "warm"):
                            print(f"  {run:<5} {_fmt(visit(browser, url, path, query, args.timeout))}", flush=True)
                browser.close()
        finally:
            stop_server(proc)
    print("\nuptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
