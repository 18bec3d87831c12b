"""Screenshots of every page at real sizes through the real app (issue 18): a tutorial-style GRU
(state_dict) and a UCR-style .ts file of long sequences are uploaded as a user would, then each page
is opened and saved as a full-page PNG under test-artifacts/e2e/sizes_*.png, with the largest
dataset any drawn chart embeds and any exception or warning box printed.

Run: PYTHONPATH=. python3 bench/shots_sizes.py [steps] [units] [features] [bi2]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import ARTIFACTS, CHART, EXCEPTION, launch_browser, new_page, open_app, start_server, stop_server, wait_idle  # noqa: E402

CLASSES = ["calm", "burst"]


def make_files(d: Path, T: int, U: int, F: int, N: int = 16, bi2: bool = False):
    import torch
    from torch import nn
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, N)
    X = rng.normal(0, 1, (N, T, F)).astype(np.float32)
    X[:, :, 0] = np.abs(X[:, :, 0]) * 3000           # a feature running 0-6,557-ish
    for i in np.flatnonzero(y == 1):
        s = rng.integers(0, T - 32)
        X[i, s:s + 32, 1] += 3.0
    lines = ["@problemName long", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {F}", "@equalLength true", f"@seriesLength {T}",
             f"@classLabel true {' '.join(CLASSES)}", "@data"]
    for xi, yi in zip(X, y):
        lines.append(":".join(",".join(f"{v:.4f}" for v in xi[:, j]) for j in range(F)) + ":" + CLASSES[yi])
    ts = d / f"long_{T}_TEST.ts"
    ts.write_text("\n".join(lines) + "\n")

    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, U, batch_first=True, num_layers=2 if bi2 else 1, bidirectional=bi2)
            self.fc = nn.Linear(U * (2 if bi2 else 1), 2)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    pt = d / f"gru_{U}.pt"
    torch.save(GRUNet().state_dict(), pt)
    return pt, ts


def main() -> None:
    T, U, F = (int(a) for a in (sys.argv[1:4] if len(sys.argv) > 3 else (2000, 32, 6)))
    bi2 = "bi2" in sys.argv[4:]   # a bidirectional 2-layer GRU
    tmp = Path(tempfile.mkdtemp())
    pt, ts = make_files(tmp, T, U, F, bi2=bi2)
    proc, url, log = start_server(tmp)
    from playwright.sync_api import sync_playwright
    try:
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            pg = new_page(browser, 1400, 4800)  # tall: the app scrolls inside its main element
            open_app(pg, url)
            side = pg.locator('[data-testid="stSidebar"]')
            exp = side.locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
            exp.locator("summary").click()
            for label, path in (("Model file", pt), ("Data file", ts)):
                box = exp.locator('[data-testid="stFileUploader"]').filter(has_text=label)
                box.locator('input[type="file"]').set_input_files(str(path))
                wait_idle(pg, 600)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for title in ("Trajectories", "Saturation", "Contributions"):
                t0 = time.perf_counter()
                side.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
                wait_idle(pg, 600)
                pg.wait_for_timeout(1500)
                n = pg.locator(CHART).count()
                exc = [pg.locator(EXCEPTION).nth(i).inner_text()[:200] for i in range(pg.locator(EXCEPTION).count())]
                warn = pg.locator('[data-testid="stAlertContentWarning"]')
                warns = [warn.nth(i).inner_text()[:200] for i in range(warn.count())]
                out = ARTIFACTS / f"sizes_{title.lower()}_{T}x{U}x{F}.png"
                pg.screenshot(path=str(out), full_page=True)
                print(f"{title}: {n} charts, ready in {time.perf_counter() - t0:.1f} s, exceptions {exc}, "
                      f"warnings {warns} -> {out}")
            browser.close()
    finally:
        stop_server(proc)
        print("server log tail:\n" + Path(log).read_text()[-1500:])


if __name__ == "__main__":
    main()
