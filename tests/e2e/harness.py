"""Shared by the browser tests and bench/bench_browser.py: start ``streamlit run`` on loopback,
launch Debian's chromium through Playwright, and wait for Streamlit's script runs to finish."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RUNNING = '[data-testid="stApp"][data-test-script-state="running"]'
CHART = '[data-testid="stVegaLiteChart"]'
EXCEPTION = '[data-testid="stException"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, extra_env: dict | None = None):
    """Start ``streamlit run streamlit_app.py`` on a free loopback port; return (proc, url, log)."""
    port = _free_port()
    log_path = tmp / f"streamlit-{port}.log"
    env = dict(os.environ, RNNVIZ_UPLOAD_DIR=str(tmp / "uploads"),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **(extra_env or {}))
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url, log_path
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("streamlit did not answer its health check within 90 s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def launch_browser(pw):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    return pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)


def finished_run(payload) -> bool:
    """Whether a websocket frame is Streamlit's "script finished" message (not one cut short by a
    rerun). Reading the protocol is exact: a fast rerun can flip the app's running/notRunning
    attribute within one frame, where a DOM observer would miss it."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    if isinstance(payload, str):
        return False
    msg = ForwardMsg()
    try:
        msg.ParseFromString(payload)
    except Exception:  # noqa: BLE001 - not a ForwardMsg
        return False
    return msg.WhichOneof("type") == "script_finished" and \
        msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN


def _count_finished_runs(pg) -> None:
    """Count Streamlit "script finished" messages on the page's websocket."""
    state = {"finished": 0, "seen": 0}
    pg._rv_runs = state

    def on_frame(payload) -> None:
        if finished_run(payload):
            state["finished"] += 1

    pg.on("websocket", lambda ws: ws.on("framereceived", on_frame))


def new_page(browser, width: int = 1400, height: int = 1000):
    """A page in a fresh browser context that counts finished Streamlit script runs."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    pg = ctx.new_page()
    _count_finished_runs(pg)
    return pg


def wait_idle(pg, timeout_s: float = 90.0) -> None:
    """Wait until a script run that has not been waited for yet has finished.

    Call it once after each action that reruns the script (widget change, upload, load)."""
    import time as _t
    state = pg._rv_runs
    deadline = _t.monotonic() + timeout_s
    while state["finished"] <= state["seen"]:
        if _t.monotonic() > deadline:
            raise TimeoutError(f"no Streamlit script run finished within {timeout_s:.0f} s")
        pg.wait_for_timeout(10)
    state["seen"] = state["finished"]
    pg.wait_for_selector(IDLE, timeout=timeout_s * 1000)


def open_app(pg, url: str) -> None:
    pg.goto(url)
    wait_idle(pg)


def assert_clean(pg) -> None:
    assert pg.locator(EXCEPTION).count() == 0, pg.locator(EXCEPTION).first.inner_text()


def warm_up(browser, url: str) -> None:
    """Be the server's first visitor at the root page.

    Streamlit 1.67 handles a folder named pages/ as a v1 multipage app until the first
    st.navigation call in the server process; the first session that opens a deep link before
    that sees a "Page not found" notice (the right page still runs). One visit to the root
    ends that phase for every later session.
    """
    pg = new_page(browser)
    try:
        open_app(pg, url)
    finally:
        pg.context.close()


def combobox(pg, label: str):
    """Streamlit 1.67's selectbox: a react-aria combobox whose aria-label is the widget label."""
    return pg.get_by_role("combobox", name=label, exact=True).first


def selected(pg, label: str) -> str:
    return combobox(pg, label).input_value().strip()


def open_options(pg, label: str):
    """Open a selectbox's list. The page's script may still be drawing its later sections (a click
    then lands while the widget is re-rendered and the list closes again): wait for the run to end,
    and click again if no option shows within 15 s."""
    pg.wait_for_selector(IDLE, timeout=90_000)
    box = combobox(pg, label)
    opts = pg.locator('[role="option"]')
    for attempt in range(3):
        box.click()
        try:
            opts.first.wait_for(timeout=15_000 if attempt < 2 else None)
            return opts
        except Exception:
            if attempt == 2:
                raise
            pg.keyboard.press("Escape")
            pg.wait_for_selector(IDLE, timeout=90_000)
    return opts


def select_option(pg, label: str, option: str | None = None, index: int | None = None) -> str:
    """Pick an option (by exact text or by position) in a selectbox; wait for the rerun.

    Returns the text of the chosen option."""
    import re
    opts = open_options(pg, label)
    if option is not None:
        target = opts.filter(has_text=re.compile(rf"^\s*{re.escape(option)}\s*$")).first
    else:
        target = opts.nth(index or 0)
    text = target.inner_text().strip()
    target.click()
    wait_idle(pg)
    return text


def charts_drawn(pg, minimum: int = 1, timeout_s: float = 90) -> int:
    """Wait until at least ``minimum`` Altair charts have drawn; return how many there are."""
    pg.wait_for_function(
        """([sel, n]) => { const c = [...document.querySelectorAll(sel)];
               return c.length >= n && c.every(e => e.querySelector('canvas, svg')); }""",
        arg=[CHART, minimum], timeout=timeout_s * 1000)
    return pg.locator(CHART).count()


def charts_past_their_column(pg) -> tuple[list[tuple[int, int]], int]:
    """``(over, measured)``: (index, pixels) of every drawn chart whose right edge lies past the
    column (or main block) that holds it, and how many charts were measured (charts in a closed
    expander are not drawn and are left out)."""
    sizes = pg.evaluate("""(sel) => [...document.querySelectorAll(sel)].map(c => {
        const box = c.closest('[data-testid="stColumn"]') || c.closest('[data-testid="stMain"] [data-testid="stVerticalBlock"]');
        const drawn = c.querySelector('canvas, svg');
        const r = drawn ? drawn.getBoundingClientRect() : null;
        return r && r.width ? [Math.round(r.right), Math.round(box.getBoundingClientRect().right)] : null;
    }).filter(x => x)""", CHART)
    return [(i, r - edge) for i, (r, edge) in enumerate(sizes) if r > edge + 1], len(sizes)
