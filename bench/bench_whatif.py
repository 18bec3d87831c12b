"""Time the What-if redraw, rv.horizon and rv.unit_dictionary (CPU, one torch thread).

    python bench/bench_whatif.py            # everything (the 100k-sequence runs take minutes)
    python bench/bench_whatif.py --quick    # no 100k runs
    python bench/bench_whatif.py --only browser   # the browser redraw alone (needs chromium)
    python bench/bench_whatif.py --only browser --steps 1000   # one uploaded size only

1. What-if redraw at 100 and 1,000 steps, on the race demo's GRU, the text demo's LSTM fed one
   long sequence and the 64-unit GRU of the browser figure: the server's part of the page's redraw
   after an edit in drawing order, wall and CPU time (rv.what_if with the original kept, both
   heatmaps' binned frames and Vega-Lite specs; the PCA paths in the kept basis; the edited
   sequence's grad_x_state contributions and their chart), and rv.what_if alone for an edit near the
   start, the middle and the end (only the steps after the edit are run again), against a full
   trace of the edited sequence from scratch.
2. rv.horizon (integrated gradients, 16 nodes; and grad_x_state) and rv.unit_dictionary on
   every shipped demo (all its sequences).
3. The same at 100,000 sequences (the marker demo's sequences repeated).
4. (``--browser`` / ``--only browser``) the browser redraw after an edit: the race demo, and files
   of 100 and 1,000 steps uploaded through the sidebar (see :func:`bench_browser`).

Timings on a shared machine: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import rnnviz_core as rv
from rnnviz_core.charts import whatif as cw
from rnnviz_core.demos import list_demos, load_demo
from rnnviz_core.trajectories import StatePCA

torch.set_num_threads(1)


def best(fn, repeat=5):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(np.median(ts)), out


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def long_input(key: str, T: int, seed: int = 0):
    model, ds = load_demo(key)
    rng = np.random.default_rng(seed)
    if ds.X.ndim == 2:
        pool = ds.X[ds.X > 1]
        x = rng.choice(pool, size=(1, T)).astype(np.int64)
    else:
        real = ds.X[np.arange(ds.X.shape[1])[None] < ds.lengths[:, None]]
        x = real[rng.integers(0, len(real), size=T)][None].astype(np.float32)
    return model, x, np.array([T])


def redraw(model, x, L, edits, base, basis):
    """What the page's What-if fragment computes after an edit, in drawing order (the original's
    scores and PCA basis are kept): the answer and parting step, both heatmaps' specs; the PCA paths; then the
    edited contributions. Returns ((wall, CPU) seconds to the heatmaps, to the paths, for the
    contributions, chart rows). CPU is this thread's time: steadier than wall time on a loaded machine."""
    from rnnviz_core.whatif import edited_paths
    w0, c0 = time.perf_counter(), time.thread_time()
    res = rv.what_if(model, x, edits, L, base=base)
    L2 = int(res.lengths[0])
    h_o, h_e = np.asarray(res.original.hidden[0, : L[0]]), np.asarray(res.trace.hidden[0, :L2])
    units, why = cw.pick_units(h_o, h_e)
    per_bin = cw.step_bins(max(int(L[0]), L2))
    part = int(res.parting_step[0])
    for name, h in (("original", h_o), ("edited", h_e)):
        fr = cw.binned_states(h, units, per_bin, name)
        json.dumps(cw.states_chart(fr, parting=part, units_why=why, per_bin=per_bin).to_dict())
    w1, c1 = time.perf_counter(), time.thread_time()
    json.dumps(cw.paths_chart(edited_paths(h_o, h_e, pca=basis), per_bin=per_bin, parting=part).to_dict())
    w2, c2 = time.perf_counter(), time.thread_time()
    sc = rv.contributions(model, res.x[:, :L2], "grad_x_state", res.lengths)[0]
    sf = cw.binned_scores(sc[:L2], per_bin, "edited")
    json.dumps(cw.scores_chart(sf, method="grad_x_state", per_bin=per_bin).to_dict())
    w3, c3 = time.perf_counter(), time.thread_time()
    return (w1 - w0, c1 - c0), (w2 - w1, c2 - c1), (w3 - w2, c3 - c2), (len(fr), len(sf))


def _sized_input(T: int):
    """The browser figure's uploaded model and one of its sequences (tests/e2e/sizes_files.py)."""
    import sys
    import tempfile
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
    from sizes_files import Case, _model, make_case
    case = Case(f"whatif_{T}", steps=T, units=64, n=16, fmt="npz")
    files = make_case(case, Path(tempfile.mkdtemp()) / case.key)
    model = _model(case)
    model.load_state_dict(torch.load(files["model"]))
    d = np.load(files["data"])
    return model.eval(), d["X"][:1].astype(np.float32), d["lengths"][:1]


def bench_redraw():
    print(f"\n== What-if redraw, server side (load {load()}) ==")
    cases = [(f"{key} demo", lambda key=key, T=T: long_input(key, T), T) for key in ("race", "text")
             for T in (100, 1000)]
    cases += [("uploaded 64-unit GRU", lambda T=T: _sized_input(T), T) for T in BROWSER_STEPS]
    for label, make, T in cases:
        model, x, L = make()
        tok = x.ndim == 2
        mid = int(L[0]) // 2
        val = int(np.unique(x)[0]) if tok else float(x[0, mid, 0]) + 1.0
        base = rv.what_if(model, x, [(0, mid, 0, val)], L).base      # the original, kept
        first = rv.what_if(model, x, [(0, mid, 0, val)], L, base=base)
        basis = StatePCA(2, max_points=None).fit(np.asarray(first.original.hidden[:, : L[0]]))
        runs = [redraw(model, x, L, [(0, mid, 0, val)], base, basis) for _ in range(5)]

        def med(i, j):
            return float(np.median([r[i][j] for r in runs])) * 1e3
        print(f"{label:22s} T={T:5d}  edit at {mid}, median of 5 (wall / CPU ms): answer, parting step and both "
              f"heatmaps {med(0, 0):6.1f} / {med(0, 1):6.1f}; PCA paths {med(1, 0):5.1f} / {med(1, 1):5.1f}; "
              f"contributions {med(2, 0):6.1f} / {med(2, 1):6.1f}; chart rows {runs[0][3]}")
    for key in ("race", "text"):
        for T in (100, 1000):
            model, x, L = long_input(key, T)
            tok = x.ndim == 2
            mid = T // 2
            val = int(np.unique(x)[0]) if tok else float(x[0, mid, 0]) + 1.0
            base = rv.what_if(model, x, [(0, mid, 0, val)], L).base
            print(f"{key} demo, T={T}:")
            for at in (1, mid, T - 10):
                e = [(0, at, 0, val)]
                t_wi, _, r = best(lambda: rv.what_if(model, x, e, L, base=base))
                xe, le = rv.apply_edits(x, e, L)
                t_full, _, _ = best(lambda: rv.trace(model, xe, le, gates=True))
                print(f"      rv.what_if edit at step {at:4d}: {t_wi * 1e3:7.1f} ms (restarted at "
                      f"{int(r.recomputed_from[0])}); full trace of the edited input: {t_full * 1e3:7.1f} ms")


def bench_demos():
    print(f"\n== horizon and unit dictionary on the shipped demos (load {load()}) ==")
    for d in list_demos():
        model, ds = load_demo(d.key)
        t_ig, _, _ = best(lambda: rv.horizon(model, ds.X, ds.lengths, method="integrated_gradients", steps=16), 1)
        t_gx, _, _ = best(lambda: rv.horizon(model, ds.X, ds.lengths, method="grad_x_state"), 1)
        t_ud, _, _ = best(lambda: rv.unit_dictionary(model, ds.X, ds.lengths, y=ds.y), 1)
        print(f"{d.key:7s} N={len(ds.X):5d} T={ds.X.shape[1]:3d}  horizon (IG, 16 nodes) {t_ig:6.2f} s, "
              f"horizon (grad_x_state) {t_gx:6.2f} s, unit_dictionary {t_ud:6.2f} s")


def bench_many(n: int = 100_000):
    """horizon (grad_x_state) and unit_dictionary on ``n`` sequences: wall time and this process's
    CPU time (on a shared machine the CPU time is the steadier figure)."""
    print(f"\n== {n:,} sequences (marker demo repeated; load {load()}) ==")
    model, ds = load_demo("marker")
    reps = int(np.ceil(n / len(ds.X)))
    X = np.tile(ds.X, (reps, 1, 1))[:n]
    L = np.tile(ds.lengths, reps)[:n]
    y = np.tile(ds.y, reps)[:n]
    for name, fn in (("horizon (grad_x_state)", lambda: rv.horizon(model, X, L, method="grad_x_state")),
                     ("unit_dictionary", lambda: rv.unit_dictionary(model, X, L, y=y))):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        print(f"{name:24s} wall {time.perf_counter() - w0:7.1f} s, CPU {time.process_time() - c0:7.1f} s "
              f"(load after: {load()})")


#: the browser figure's sizes: a file of this many steps per sequence, written and uploaded as a
#: tutorial would (tests/e2e/sizes_files.py: a tutorial-style GRU saved with torch.save, data in .npz)
BROWSER_STEPS = (100, 1000)


def _upload(pg, label: str, path) -> None:
    """Upload one file through the sidebar's "Use my own files" expander (as tests/e2e/test_sizes.py)."""
    from harness import wait_idle
    side = pg.locator('[data-testid="stSidebar"]')
    exp = side.locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = side.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.first.wait_for(timeout=120_000)
    box.first.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg, 120)


def _painted(pg) -> None:
    """Every chart has its canvas or svg, then two animation frames (the browser has painted)."""
    from harness import CHART
    pg.wait_for_function("(sel) => [...document.querySelectorAll(sel)].every(c => c.querySelector('canvas, svg'))",
                         arg=CHART)
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


#: in the page: click a button by its text at a noted time (a click from the page itself: no
#: Playwright round trip in the figure) and watch: every drawing call on a canvas is noted with its
#: time (the 2D context's methods are wrapped once: a few nanoseconds a call, so the watching does
#: not load the thread it measures), and the app's script state is observed. (1) "answers and edited
#: heatmap": the first animation frame after the edited heatmap (the second chart) was drawn again;
#: (2) "rerun done": the script state back at "notRunning" after it was "running"; (3) "every chart
#: painted": the first animation frame after both the run was over and the last drawing on any
#: chart's canvas, once nothing has been drawn for QUIET_MS. Streamlit updates a chart in place, so
#: no new element marks a redraw, and an edit may leave a chart as it was.
QUIET_MS = 400
_CLICK_AND_WATCH = """(name) => {
  if (!window.__rvDrawn) {
    window.__rvDrawn = new Map();   // canvas -> time of its last drawing call
    const P = CanvasRenderingContext2D.prototype;
    for (const m of ['fillRect', 'clearRect', 'strokeRect', 'fill', 'stroke', 'fillText', 'strokeText',
                     'drawImage', 'putImageData']) {
      const f = P[m];
      P[m] = function (...a) { window.__rvDrawn.set(this.canvas, performance.now()); return f.apply(this, a); };
    }
  }
  const drawnAt = (ch) => {
    const c = ch && ch.querySelector('canvas');
    return (c && window.__rvDrawn.get(c)) || 0;
  };
  const charts = () => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  const app = document.querySelector('[data-testid="stApp"]');
  let ran = false, overAt = null;
  const obs = new MutationObserver(() => {
    const s = app.getAttribute('data-test-script-state');
    if (s === 'running') ran = true;
    else if (ran && s === 'notRunning' && overAt === null) { overAt = performance.now(); window.__rvTrun = overAt; }
  });
  obs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  window.__rvT1 = null; window.__rvT2 = null; window.__rvTrun = null;
  const b = [...document.querySelectorAll('button')].find(e => e.innerText.trim() === name);
  const t0 = performance.now();
  window.__rvT0 = t0;
  b.click();
  let lastDraw = t0, shownAt = null;   // the last drawing after the click; the first frame after it
  const look = () => {
    const now = performance.now();
    const cs = charts();
    if (window.__rvT1 === null && drawnAt(cs[1]) > t0) window.__rvT1 = now;
    const d = Math.max(t0, ...cs.map(drawnAt));
    if (d > lastDraw) { lastDraw = d; shownAt = null; }
    const ready = overAt !== null && lastDraw > t0;
    if (ready && shownAt === null) shownAt = now;        // this frame is after the run and the last drawing
    window.__rvWhy = {ran, over: overAt !== null, drawn: cs.map(c => drawnAt(c) > t0)};
    if (ready && now - Math.max(overAt, lastDraw) > """ + str(QUIET_MS) + """) {
      window.__rvT2 = shownAt; obs.disconnect(); return;
    }
    if (now - t0 < 20000) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
}"""


_VEGA = b"vega.github.io/schema/vega-lite"


def _count_frames(pg) -> dict:
    """Count what the server sends the page (a load-insensitive proxy of the redraw's work): bytes
    of websocket frames and how many of them carry a Vega-Lite chart (one per chart element sent)."""
    tally = {"bytes": 0, "charts": 0}

    def on_frame(payload):
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        tally["bytes"] += len(data)
        tally["charts"] += data.count(_VEGA)
    pg.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return tally


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used so far, from /proc (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _task_s(cdp) -> float:
    """Seconds the page's main thread has spent in tasks (Chrome's Performance.getMetrics)."""
    return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")


def _time_edits(pg, repeats: int, server_pid: int | None = None):
    """Edits made with the controls (a new value for the step the page offers, then "Add this edit"):
    seconds from the click to (a) the edited heatmap redrawn (its drawing changes; the answers and the
    parting step are drawn before it), (b) the app's script state back at "notRunning" (the rerun,
    decision steps and contributions included, has reached the page), (c) every chart that shows the
    edit redrawn with it and one more animation frame (on screen). All three are timed in the page
    (performance.now(), from the click it makes itself: no Playwright round trip in them). Also the
    CPU seconds each edit cost the server process (/proc) and the page's main thread (Chrome's
    TaskDuration) from the click to the page idle again: on a loaded machine these are steadier than
    the wall times."""
    from harness import wait_idle
    heat, runs, drawn, cpu_server, cpu_page, sent, driver = [], [], [], [], [], [], []
    tally = getattr(pg, "_rv_tally", None)
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Performance.enable")
    for k in range(repeats):
        box = pg.get_by_label("Value", exact=True)
        box.fill(str(2 + k))
        box.press("Enter")
        wait_idle(pg)
        s0 = _cpu_s(server_pid) if server_pid else 0.0
        p0 = _task_s(cdp)
        f0 = dict(tally) if tally else None
        w0 = time.perf_counter()
        pg.evaluate(_CLICK_AND_WATCH, "Add this edit")
        wait_idle(pg)
        _painted(pg)
        driver.append(time.perf_counter() - w0)
        cpu_page.append(_task_s(cdp) - p0)
        cpu_server.append(_cpu_s(server_pid) - s0 if server_pid else float("nan"))
        if f0 is not None:
            sent.append((tally["charts"] - f0["charts"], tally["bytes"] - f0["bytes"]))
        try:
            pg.wait_for_function("() => window.__rvT1 !== null && window.__rvT2 !== null", timeout=20_000)
        except Exception as exc:  # say which chart never changed (or that the run never ended)
            raise RuntimeError(f"the edit's redraw was not seen: {pg.evaluate('() => window.__rvWhy')}") from exc
        heat.append(pg.evaluate("() => (window.__rvT1 - window.__rvT0) / 1000"))
        runs.append(pg.evaluate("() => (window.__rvTrun - window.__rvT0) / 1000"))
        drawn.append(pg.evaluate("() => (window.__rvT2 - window.__rvT0) / 1000"))
    return heat, runs, drawn, cpu_server, cpu_page, sent, driver


def bench_browser(repeats: int = 5, steps=BROWSER_STEPS, demo: bool = True):
    """Browser redraw after an edit (Debian chromium through Playwright, one streamlit server):
    on the race demo (``demo``), and on files of 100 and 1,000 steps uploaded through the sidebar.
    Times from clicking "Add this edit" to the answers and the edited heatmap redrawn, to the end of
    the rerun (the What-if section is a fragment: only it reruns) and to every chart painted, timed
    in the page (see ``_CLICK_AND_WATCH``), and the same end as the test driver sees it; median and
    best of ``repeats`` edits. On a machine shared with other work, run it alone: other processes
    skew these wall times several-fold."""
    import statistics
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
    from harness import CHART, launch_browser, new_page, open_app, start_server, stop_server
    from playwright.sync_api import sync_playwright
    from sizes_files import Case, make_case

    tmp = Path(tempfile.mkdtemp())
    print(f"\n== browser: click 'Add this edit' -> view redrawn (load {load()}) ==")
    proc, url, _ = start_server(tmp)

    def dom(pg) -> int:
        """Elements inside the page's charts (an SVG chart makes one per mark; a canvas none)."""
        return int(pg.evaluate("(sel) => document.querySelectorAll(sel + ' *').length", CHART))

    def report(name, heat, runs, drawn, cpu_server, cpu_page, sent, driver, n_dom=None):
        def f(v):
            return f"{statistics.median(v) * 1e3:4.0f} ms (best {min(v) * 1e3:4.0f})"
        print(f"{name}, {repeats} edits, median:\n    answers and edited heatmap redrawn {f(heat)}; "
              f"rerun done {f(runs)}; every chart painted {f(drawn)}  (load {load()})\n"
              f"    seen from the test driver (Playwright's polls and round trips included, the earlier "
              f"figure's way): {f(driver)}\n"
              f"    CPU per edit, click to painted: server process {f(cpu_server)}, page main thread {f(cpu_page)}")
        if sent:
            print(f"    sent to the page per edit (median): {statistics.median(c for c, _ in sent):.0f} charts, "
                  f"{statistics.median(n for _, n in sent) / 1e3:.1f} kB"
                  + (f"; {n_dom:,} elements inside the page's charts" if n_dom is not None else ""))

    try:
        with sync_playwright() as pw:
            b = launch_browser(pw)
            pg = new_page(b, 1400, 1600)
            pg._rv_tally = _count_frames(pg)
            pg.set_default_timeout(120_000)
            if demo:
                open_app(pg, url)
                open_app(pg, f"{url}/What_if?demo=race")
                pg.locator(CHART).first.wait_for()
                res = _time_edits(pg, repeats, proc.pid)
                report("race demo (30 steps, 32-unit GRU)", *res, n_dom=dom(pg))
            pg.context.close()
            for T in steps:
                case = Case(f"whatif_{T}", steps=T, units=64, n=16, fmt="npz")
                files = make_case(case, tmp / case.key)
                pg = new_page(b, 1400, 1600)
                pg._rv_tally = _count_frames(pg)
                pg.set_default_timeout(120_000)
                open_app(pg, url)
                _upload(pg, "Model file", files["model"])
                _upload(pg, "Data file", files["data"])
                pg.locator('[data-testid="stSidebarNav"] a').filter(has_text="What if").first.click()
                from harness import wait_idle
                wait_idle(pg, 120)
                pg.locator(CHART).first.wait_for()
                _painted(pg)
                res = _time_edits(pg, repeats, proc.pid)
                report(f"uploaded file, {T:,} steps (64-unit GRU)", *res, n_dom=dom(pg))
                pg.context.close()
            b.close()
    finally:
        stop_server(proc)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="no 100k-sequence runs")
    ap.add_argument("--browser", action="store_true", help="also time the browser rerun (needs chromium)")
    ap.add_argument("--steps", type=int, nargs="+", default=list(BROWSER_STEPS),
                    help="the browser figure's file sizes (default 100 1000)")
    ap.add_argument("--no-demo", action="store_true", help="browser figure: the uploaded files only, not the race demo")
    ap.add_argument("--repeats", type=int, default=5, help="browser figure: edits timed per case (median and best)")
    ap.add_argument("--only", choices=["redraw", "demos", "100k", "10k", "browser"], help="run one part only")
    args = ap.parse_args()
    parts = {"redraw": bench_redraw, "demos": bench_demos, "100k": bench_many,
             "browser": lambda: bench_browser(repeats=args.repeats, steps=args.steps, demo=not args.no_demo),
             "10k": lambda: bench_many(10_000)}
    if args.only:
        parts[args.only]()
    else:
        bench_redraw()
        bench_demos()
        if not args.quick:
            bench_many()
        if args.browser:
            bench_browser(repeats=args.repeats, steps=args.steps, demo=not args.no_demo)
