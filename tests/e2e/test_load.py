"""Load: eight browser sessions at once on different pages and demos, against one server.

Issue 13: the hosted app must hold under normal shared use. A serial pass first records what
each (demo, page) shows; then eight concurrent sessions visit those views in turn for a fixed
time, and every visit must show exactly what the serial pass showed, with no exception box,
while the server's memory stays flat after the warm-up. All traffic goes to a server on
loopback that this test starts and stops; the loop is bounded in time and in count.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from harness import ARTIFACTS, CHROMIUM_ARGS, EXCEPTION, finished_run, start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 8
DURATION_S = float(os.environ.get("RNNVIZ_LOAD_SECONDS", 120))
MAX_VISITS = 400                      # a bound on the loop whatever the timings
VIEWS = [("race", ""), ("vowels", "trajectories"), ("digits", "saturation"), ("marker", "contributions"),
         ("race", "trajectories"), ("marker", "saturation"), ("vowels", "contributions"), ("digits", "")]
# What a view "shows": its captions, metrics, alerts and headings (not timings or widget chrome).
TEXT_SELECTORS = ('[data-testid="stCaptionContainer"]', '[data-testid="stMetric"]',
                  '[data-testid="stAlert"]', 'h1, h2, h3')


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _finished_runs(pg) -> dict:
    state = {"finished": 0}

    def on_frame(payload) -> None:
        if finished_run(payload):
            state["finished"] += 1

    pg.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return state


async def _charts_drawn(pg, expect: int | None, timeout_s: float) -> int:
    """The number of charts the browser has drawn: ``expect`` of them (waiting up to the
    timeout), or, with no expectation, the count once it has held still for 1.5 s."""
    loc = pg.locator('[data-testid="stVegaLiteChart"]')
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = await loc.count()
        if expect is not None and n >= expect:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif expect is None and time.monotonic() - since > 1.5:
            return n
        await asyncio.sleep(0.1)
    return await loc.count()


async def _visit(pg, state, url: str, timeout_s: float = 120.0, expect: dict | None = None) -> dict:
    """Open one view, wait for its script run to finish and its charts, and read what it shows.

    With ``expect`` (what the serial run showed), wait up to 30 s more for the browser to draw
    the same: a view counts as different only if it never shows the same."""
    expect_charts = expect["charts"] if expect else None
    before = state["finished"]
    await pg.goto(url)
    deadline = time.monotonic() + timeout_s
    while state["finished"] <= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}: no script run finished within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)
    await pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                               timeout=timeout_s * 1000)
    shown = await _shown(pg, expect_charts, timeout_s)
    if expect is None:                # the reference: what the view shows once it holds still
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            again = await _shown(pg, None, 5)
            if again == shown:
                break
            shown = again
    if expect is not None:            # the browser may still be drawing under load: let it finish
        deadline = time.monotonic() + 30
        while shown != expect and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            shown = await _shown(pg, expect_charts, 5)
    return shown


async def _shown(pg, expect_charts: int | None, timeout_s: float) -> dict:
    texts = []
    for sel in TEXT_SELECTORS:
        texts += [t.strip() for t in await pg.locator(sel).all_inner_texts()]
    return {"texts": texts, "charts": await _charts_drawn(pg, expect_charts, timeout_s),
            "exceptions": await pg.locator(EXCEPTION).count()}


@pytest.fixture(scope="module")
def load_server(tmp_path_factory):
    if not shutil.which("chromium"):
        if os.environ.get("RNNVIZ_REQUIRE_BROWSER"):
            pytest.fail("browser tests required (RNNVIZ_REQUIRE_BROWSER is set) but chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    proc, url, log_path = start_server(tmp_path_factory.mktemp("load"))
    yield proc, url
    stop_server(proc)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(log_path, ARTIFACTS / "streamlit-load.log")


def test_eight_concurrent_sessions_show_what_a_serial_run_shows_and_memory_stays_flat(load_server):
    proc, url = load_server
    from playwright.async_api import async_playwright

    async def main() -> dict:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=shutil.which("chromium"),
                                               args=CHROMIUM_ARGS, headless=True)
            # serial pass: the reference of what each view shows
            ctx = await browser.new_context(viewport={"width": 1300, "height": 1000})
            pg = await ctx.new_page()
            pg.set_default_timeout(120_000)
            state = await _finished_runs(pg)
            reference = {}
            for demo, path in VIEWS:
                reference[(demo, path)] = await _visit(pg, state, f"{url}/{path}?demo={demo}")
            await ctx.close()
            warm_rss = _rss_mb(proc.pid)

            stats = {"visits": 0, "mismatches": [], "exceptions": 0, "errors": [], "rss": []}
            t_end = time.monotonic() + DURATION_S

            async def session(i: int) -> None:
                c = await browser.new_context(viewport={"width": 1300, "height": 1000})
                p = await c.new_page()
                p.set_default_timeout(120_000)
                st_ = await _finished_runs(p)
                k = i
                while time.monotonic() < t_end and stats["visits"] < MAX_VISITS:
                    view = VIEWS[k % len(VIEWS)]
                    k += 1
                    try:
                        got = await _visit(p, st_, f"{url}/{view[1]}?demo={view[0]}",
                                           expect=reference[view])
                    except Exception as exc:  # noqa: BLE001 - counted and reported below
                        stats["errors"].append(f"{view}: {exc}")
                        continue
                    stats["visits"] += 1
                    stats["exceptions"] += got["exceptions"]
                    if got != reference[view]:
                        stats["mismatches"].append((view, got, reference[view]))
                await c.close()

            async def sample_memory() -> None:
                while time.monotonic() < t_end:
                    stats["rss"].append((time.monotonic(), _rss_mb(proc.pid)))
                    await asyncio.sleep(2)

            t0 = time.monotonic()
            await asyncio.gather(sample_memory(), *(session(i) for i in range(SESSIONS)))
            stats["wall"] = time.monotonic() - t0
            stats["warm_rss"] = warm_rss
            await browser.close()
            return stats

    # a thread of its own: the session's sync Playwright (other browser tests) runs an event loop
    # in this thread, and asyncio.run refuses to start inside a running loop
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(asyncio.run(main())))
    runner.start()
    runner.join()
    assert result, "the load run ended without results (see the error printed above)"
    stats = result
    rss = [m for _, m in stats["rss"]]
    third = max(1, len(rss) // 3)
    after_warm = rss[third:]
    report = (f"{SESSIONS} sessions, {stats['wall']:.0f} s, {stats['visits']} visits, "
              f"{len(stats['mismatches'])} mismatches, {stats['exceptions']} exception boxes, "
              f"{len(stats['errors'])} errors; server RSS: {stats['warm_rss']:.0f} MB after the serial "
              f"pass, {after_warm[0]:.0f} MB after warm-up, {max(after_warm):.0f} MB peak, "
              f"{after_warm[-1]:.0f} MB at the end")
    print(report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "load.txt").write_text(report + "\n")
    assert not stats["errors"], stats["errors"][:3]
    assert stats["exceptions"] == 0
    if stats["mismatches"]:
        view, got, ref = stats["mismatches"][0]
        diff = [("charts", got["charts"], ref["charts"])] if got["charts"] != ref["charts"] else []
        diff += [(t, "only in the concurrent visit") for t in got["texts"] if t not in ref["texts"]]
        diff += [(t, "only in the serial visit") for t in ref["texts"] if t not in got["texts"]]
        pytest.fail(f"{len(stats['mismatches'])} visits differ from the serial run; first: {view}: {diff}")
    assert stats["visits"] >= SESSIONS * 2, report     # every session did real work
    # flat after warm-up: the last third of the run holds no more than the first third's level
    # plus 20 % (allocator noise), and never grows without bound
    first, last = after_warm[: len(after_warm) // 2], after_warm[len(after_warm) // 2:]
    assert max(last) <= max(first) * 1.2 + 50, report
