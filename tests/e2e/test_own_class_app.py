"""Your own model class live, in Debian's chromium (issue 20).

A model class written here (an attention GRU with a conv front end: nothing the built-in family
can rebuild from a state dict), trained a little and saved as a state dict, with a factory in a
module file, is started by ``rnnviz app`` (a real ``streamlit run`` started by the command line).
The start page shows the accuracy the training script measured itself; every page, with the
resilience sweep, every contribution method and the deletion check, draws with no exception box
and no failed section. Screenshots: test-artifacts/e2e/own_class_*.png.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import own_class_files as ocf  # noqa: E402
from harness import ARTIFACTS, CHART, EXCEPTION, ROOT, _free_port, new_page, open_app  # noqa: E402

pytestmark = pytest.mark.browser

FAILED_SECTION = ("could not be drawn", "cannot be shown", "could not be loaded", "Something went wrong")


@pytest.fixture(scope="module")
def own_app(tmp_path_factory):
    """``rnnviz app --model-factory ... --weights ... --data ... --port N`` started from the
    folder of the user's files; yields (address, files)."""
    folder = tmp_path_factory.mktemp("own_class_app")
    files = ocf.write_files(folder)
    port = _free_port()
    log = open(folder / "rnnviz-app.log", "w")
    env = dict(os.environ, PYTHONPATH=str(ROOT), RNNVIZ_UPLOAD_DIR=str(folder / "uploads"))
    proc = subprocess.Popen([sys.executable, "-m", "rnnviz_core.cli", "app", "--model-factory", ocf.FACTORY,
                             "--weights", "weights.pt", "--data", "test_data.npz", "--port", str(port)],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        assert proc.poll() is None, (folder / "rnnviz-app.log").read_text()[-3000:]
        assert time.time() < deadline, "rnnviz app did not answer within 120 s"
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            time.sleep(0.3)
    yield url, files
    proc.terminate()   # the command line stops its server when it is stopped
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "own_class_app.log").write_text((folder / "rnnviz-app.log").read_text())


def _open(browser, url: str, name: str):
    pg = new_page(browser, 1400, 2200)
    pg.set_default_timeout(120_000)
    open_app(pg, url)
    pg._rv_name = name
    return pg


def _shot(pg) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"own_class_{pg._rv_name}.png"), full_page=True)
    except Exception:  # noqa: BLE001
        pass


def _clean(pg) -> str:
    assert pg.locator(EXCEPTION).count() == 0, pg.locator(EXCEPTION).first.inner_text()
    text = pg.locator('[data-testid="stMain"]').inner_text()
    for phrase in FAILED_SECTION:
        assert phrase not in text, text[:3000]
    return text


def _charts(pg, n: int) -> None:
    pg.wait_for_function(
        """([sel, n]) => { const c = [...document.querySelectorAll(sel)];
               return c.length >= n && c.every(e => e.querySelector('canvas, svg')); }""",
        arg=[CHART, n], timeout=120_000)


def test_start_page_shows_the_training_scripts_accuracy(browser, own_app):
    url, files = own_app
    pg = _open(browser, url, "start")
    try:
        text = _clean(pg)
        assert "Your own model class is loaded" in text
        assert ocf.FACTORY in text and "test_data.npz" in text
        value = pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
        assert value == f"{files['accuracy']:.1%}"   # measured by the training script with plain torch
        side = pg.locator('[data-testid="stSidebar"]').inner_text()
        assert "rnnviz app" in side and "Use my own files" not in side
    finally:
        _shot(pg)
        pg.context.close()


@pytest.mark.parametrize("path,charts,expect", [
    ("Trajectories", 3, "Paths in one shared picture"),
    # captions of charts that re-run the model: the resilience sweep, every method's deletion check
    ("Saturation", 4, "how much the model's answer moves when the input is damaged"),
    ("Contributions?faith=True", 6, "when the steps a method ranks highest are blanked"),
    ("What_if", 2, "What if"),
    ("Units", 0, "Units 1 to 36 of 36 shown"),                  # 12 units: h and the r, z gates
])
def test_every_page_draws_on_the_users_class(browser, own_app, path, charts, expect):
    url, _ = own_app
    pg = _open(browser, f"{url}/{path}", path.split("?")[0].lower())
    try:
        if charts:
            _charts(pg, charts)
        text = _clean(pg)
        assert expect in text, text[:3000]
    finally:
        _shot(pg)
        pg.context.close()


SHOW_SCRIPT = ocf.MODULE_SOURCE.replace("def make_model", "def _unused") + '''
import sys
import time

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
import own_class_files as ocf
import rnnviz_core as rv

# the class is defined in this script's __main__, as in a notebook cell: it travels by value
torch.manual_seed(1)
model = AttnConvGRU().eval()
X, lengths, y = ocf.task()
with torch.no_grad():
    pred = model(torch.from_numpy(X), torch.from_numpy(lengths)).argmax(1).numpy()
url = rv.show(model, (X, y, lengths), inline=False)
print(f"{url} {float((pred == y).mean())!r}", flush=True)
time.sleep(600)
'''


def test_show_serves_a_model_object_whose_class_lives_in_main(browser, tmp_path):
    """``rv.show(model, (X, y, lengths))`` from a script whose class is defined in ``__main__``
    (as in a notebook) returns an address whose start page shows that script's accuracy; the
    server stops once that script is killed."""
    script = tmp_path / "notebook.py"
    script.write_text(SHOW_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), RNNVIZ_UPLOAD_DIR=str(tmp_path / "uploads"))
    env.pop("RNNVIZ_TEST_IMPORT_MARKER", None)
    proc = subprocess.Popen([sys.executable, str(script), str(Path(__file__).resolve().parents[1])], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    try:
        line = proc.stdout.readline().split()
        assert len(line) == 2, proc.stderr.read()[-3000:] if proc.poll() is not None else line
        url, acc = line[0], float(line[1])
        pg = _open(browser, url, "show")
        try:
            text = _clean(pg)
            assert "AttnConvGRU (from Python)" in text
            assert pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip() == f"{acc:.1%}"
        finally:
            _shot(pg)
            pg.context.close()
    finally:
        proc.kill()   # a killed kernel runs no atexit: the server notices its launcher is gone and stops
        proc.wait(timeout=20)
    deadline = time.time() + 30
    while url and time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2).close()
            time.sleep(0.5)
        except OSError:
            break
    else:
        if url:
            pytest.fail(f"the server at {url} kept running after its launcher was killed")
