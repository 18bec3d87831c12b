"""How to animate A's and B's heatmaps through time: the canvas play control vs a server loop.

Starts ``streamlit run tests/e2e/play_app.py`` on loopback, opens it in Debian's chromium, plays
for a few seconds in each mode and reports, per mode: steps shown per second in the browser
(distinct frame positions seen by a requestAnimationFrame probe, over the time it moved: the
control stops at the last step), the longest gap between two
frame moves, and the server's CPU seconds per second of playing (from /proc/<pid>/stat).

    python bench/bench_play.py [--seconds 5] [--units 32] [--steps 100]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import _free_port, launch_browser  # noqa: E402

PROBE = """(sel) => new Promise((done) => {
  const seen = [], t0 = performance.now();
  let last = null, lastT = t0, maxGap = 0, firstT = null;
  const look = (now) => {
    const el = sel();
    const v = el ? el : null;
    if (v !== null && v !== last) { if (last !== null) maxGap = Math.max(maxGap, now - lastT); seen.push(v); last = v; lastT = now; if (firstT === null) firstT = now; }
    if (now - t0 < SECONDS * 1000) requestAnimationFrame(look); else done({moves: seen.length, maxGap, span: (lastT - (firstT ?? lastT)) / 1000});
  };
  requestAnimationFrame(look);
})"""


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "tests/e2e/play_app.py", "--server.headless",
                             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=open("/tmp/bench_play_server.log", "w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/?units={args.units}&ta={args.steps}&tb={args.steps // 2}"
    from playwright.sync_api import sync_playwright
    try:
        time.sleep(4)
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            probe = PROBE.replace("SECONDS", str(args.seconds))
            for mode in ("component", "fragment"):
                pg = browser.new_page(viewport={"width": 1400, "height": 1000})
                pg.goto(url + f"&mode={mode}")
                if mode == "component":
                    pg.locator(".rnnviz-play").wait_for(timeout=60_000)
                    pg.get_by_label("Speed").select_option("fast")
                    pg.get_by_role("button", name="Play").click()
                    sel = ("() => { const h = [...document.querySelectorAll('*')].find((e) => e.shadowRoot && "
                           "e.shadowRoot.querySelector('.rnnviz-play')); "
                           "return h.shadowRoot.querySelector('.rnnviz-play').dataset.step; }")
                else:
                    pg.get_by_text("frag-step").wait_for(timeout=60_000)
                    pg.get_by_role("button", name="Play / Stop").click()
                    sel = ("() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
                           ".map((e) => e.textContent).find((x) => x.startsWith('frag-step'))")
                pg.wait_for_timeout(500)
                c0, w0 = _cpu(proc.pid), time.perf_counter()
                res = pg.evaluate(f"() => ({probe})({sel})")
                cpu = (_cpu(proc.pid) - c0) / (time.perf_counter() - w0)
                extra = ""
                if mode == "component":
                    root = pg.locator(".rnnviz-play")
                    draws, ms = int(root.get_attribute("data-draws")), float(root.get_attribute("data-draw-ms"))
                    extra = f", browser draw {ms / max(draws, 1):.3f} ms/frame"
                print(f"{mode:9s}: {(res['moves'] - 1) / max(res['span'], 1e-9):5.1f} steps shown/s, longest gap "
                      f"{res['maxGap']:6.0f} ms, server CPU {cpu:.2f} s/s{extra}")
                pg.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
