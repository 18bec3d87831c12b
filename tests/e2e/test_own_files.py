"""Issue 9 in a real browser: a user's own model and data, made here the way tutorials make them.

Each model is a tutorial-style class (``self.gru``/``self.fc`` reading ``out[:, -1]``;
``self.lstm``/``self.linear`` reading ``h[-1]``; a bidirectional GRU with a mean-pooling head),
trained a little on a toy task and saved with ``torch.save(model.state_dict(), path)``. The data
is a UCR/UEA ``.ts`` file whose ``@classLabel`` line declares string class names in an order
that is not sorted (the order the training script used), or a long-form CSV whose columns
rnnviz cannot guess. The accuracy the "script" prints is the reference the start page must show.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ARTIFACTS, CHART, EXCEPTION, assert_clean, open_app, select_option, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser

CLASSES = ["zebra", "apple", "mango"]        # declared order (not sorted): output 0 is "zebra"
F, T, N = 6, 12, 120
ERROR = '[data-testid="stAlertContentError"]'


# ----------------------------------------------------------------------------- the "user's" files
def _toy(seed: int):
    """Three classes; class c shifts feature c (and c+3) a little at every step, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, N)
    X = rng.normal(0, 1, (N, T, F)).astype(np.float32)
    for c in range(3):
        X[y == c, :, c] += 0.25
        X[y == c, :, c + 3] -= 0.25
    return X, y


def _write_ts(path: Path, X, y) -> None:
    lines = ["@problemName toy", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {F}", "@equalLength true", f"@seriesLength {T}",
             f"@classLabel true {' '.join(CLASSES)}", "@data"]
    for xi, yi in zip(X, y):
        dims = [",".join(f"{v:.5f}" for v in xi[:, j]) for j in range(F)]
        lines.append(":".join(dims) + ":" + CLASSES[yi])
    path.write_text("\n".join(lines) + "\n")


def _train(model, X, y, epochs: int = 30):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())   # what the script prints


def _models():
    import torch
    from torch import nn

    class GRUNet(nn.Module):                      # the PyTorch-tutorial shape
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, 16, batch_first=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(F, 16, batch_first=True)
            self.linear = nn.Linear(16, 3)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.linear(h[-1])

    class BiGRUMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, 12, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(24, 3)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out.mean(dim=1))

    torch.manual_seed(1)
    return {"gru": GRUNet(), "lstm": LSTMNet(), "bigru_mean": BiGRUMean()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import torch
    d = tmp_path_factory.mktemp("own")
    X, y = _toy(7)
    out = {"ts": d / "toy_TEST.ts"}
    _write_ts(out["ts"], X, y)
    for name, model in _models().items():
        acc = _train(model, X, y)
        path = d / f"{name}.pt"
        torch.save(model.state_dict(), path)
        out[name] = (path, f"{acc:.1%}")
    # a long-form CSV whose id and label columns rnnviz cannot guess; labels sorted as LabelEncoder does
    import pandas as pd
    rows = []
    names = sorted(CLASSES)
    for i in range(N):
        for t in range(T):
            rows.append({"patient": f"p{i:03d}", "t": t, "diagnosis": names[y[i]],
                         **{f"m{j}": X[i, t, j] for j in range(F)}})
    out["csv"] = d / "long_form.csv"
    pd.DataFrame(rows).to_csv(out["csv"], index=False)
    model = _models()["gru"]
    acc = _train(model, X, y)          # trained on labels in sorted order: class index = sorted position
    path = d / "gru_csv.pt"
    torch.save(model.state_dict(), path)
    out["gru_csv"] = (path, f"{acc:.1%}")
    return out


# ----------------------------------------------------------------------------- browser helpers
def sidebar(pg):
    return pg.locator('[data-testid="stSidebar"]')


def main(pg):
    return pg.locator('[data-testid="stMain"]')


def upload(pg, label: str, path: Path) -> None:
    exp = sidebar(pg).locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = exp.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg)


def metric(pg) -> str:
    pg.locator('[data-testid="stMetricValue"]').first.wait_for()
    return pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def no_error_box(pg) -> None:
    assert pg.locator(ERROR).count() == 0, pg.locator(ERROR).first.inner_text()
    assert_clean(pg)


def every_page_draws(pg) -> None:
    """Visit each page through the navigation (same session): charts, no exception box."""
    for title, n in (("Trajectories", 2), ("Saturation", 2), ("Contributions", 2)):
        sidebar(pg).locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        wait_idle(pg, 300)
        pg.wait_for_function(
            """([sel, n]) => { const c = [...document.querySelectorAll(sel)];
                   return c.length >= n && c.every(e => e.querySelector('canvas, svg')); }""",
            arg=[CHART, n], timeout=300_000)
        assert pg.locator(EXCEPTION).count() == 0, f"{title}: {pg.locator(EXCEPTION).first.inner_text()}"
        assert pg.locator(ERROR).count() == 0, f"{title}: {pg.locator(ERROR).first.inner_text()}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"own_files_{title.lower()}.png"), full_page=True)


# ----------------------------------------------------------------------------- tests
def test_model_then_data_while_another_demo_is_selected(page, app_url, files):
    path, script_acc = files["gru"]
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", path)
    text = main(page).inner_text()
    assert "6 features per step" in text and "Data file" in text    # which file, what it must look like
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "own_files_waiting_for_data.png"), full_page=True)
    side = sidebar(page).inner_text()
    assert "My own files" in side and f"Model: {path.name}" in side
    upload(page, "Data file", files["ts"])
    assert metric(page) == script_acc
    side = sidebar(page).inner_text()
    assert f"Model: {path.name}" in side and f"Data: {files['ts'].name}" in side
    assert "shipped" not in side
    assert re.search(r"demo=own", page.url) and re.search(r"model=[0-9a-f]{64}", page.url)
    text = main(page).inner_text()
    assert "assumed" in text.lower() and "Class order" in text       # assumptions and where to change them
    no_error_box(page)
    every_page_draws(page)


def test_data_then_model_lstm_reading_h_last(page, app_url, files):
    path, script_acc = files["lstm"]
    open_app(page, f"{app_url}/?demo=vowels")
    upload(page, "Data file", files["ts"])
    text = main(page).inner_text()
    assert "Model file" in text and "6 features per step" in text
    no_error_box(page)
    upload(page, "Model file", path)
    assert metric(page) == script_acc
    no_error_box(page)
    # the link reproduces the pair in a new session
    link = page.url
    page.goto("about:blank")
    open_app(page, link)
    assert metric(page) == script_acc


def test_bidirectional_mean_pooling_needs_mean_reading(page, app_url, files):
    path, script_acc = files["bigru_mean"]
    open_app(page, app_url)
    upload(page, "Model file", path)
    upload(page, "Data file", files["ts"])
    options = sidebar(page).get_by_role("combobox", name="How the model reads the sequence", exact=True)
    assert options.count() == 1
    default_acc = metric(page)
    choice = select_option(page, "How the model reads the sequence", index=2)   # last, h_n, mean, max
    assert "mean" in choice.lower() and script_acc in choice                    # the option shows its accuracy
    assert metric(page) == script_acc
    assert default_acc != script_acc                                            # the default was not this model's reading
    assert "readout=mean" in page.url
    no_error_box(page)
    every_page_draws(page)


def test_shipped_vowels_files_load_while_race_is_selected(page, app_url):
    from rnnviz_core.demos import list_demos
    info = next(d for d in list_demos() if d.key == "vowels")
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", Path(info.model_path))
    upload(page, "Data file", Path(info.data_path))
    open_app(page, f"{app_url}/?demo=vowels")
    # the same accuracy as the vowels demo itself
    demo_acc = metric(page)
    page.go_back()
    wait_idle(page)
    assert metric(page) == demo_acc
    no_error_box(page)


def test_long_form_csv_whose_columns_need_choosing(page, app_url, files):
    path, script_acc = files["gru_csv"]
    open_app(page, app_url)
    upload(page, "Model file", path)
    upload(page, "Data file", files["csv"])
    side = sidebar(page)
    assert side.get_by_role("combobox", name="Sequence id column", exact=True).is_visible()
    assert "Traceback" not in page.locator("body").inner_text()
    select_option(page, "Sequence id column", "patient")
    select_option(page, "Label column", "diagnosis")
    assert metric(page) == script_acc
    assert "idc=patient" in page.url and "labc=diagnosis" in page.url
    no_error_box(page)


def test_back_to_the_demo_is_one_click_and_files_stay(page, app_url, files):
    path, script_acc = files["gru"]
    open_app(page, f"{app_url}/?demo=digits")
    upload(page, "Model file", path)
    upload(page, "Data file", files["ts"])
    assert metric(page) == script_acc
    sidebar(page).get_by_role("button", name="Back to the demo").click()
    wait_idle(page)
    assert "Handwritten digits" in sidebar(page).inner_text() and "shipped" in sidebar(page).inner_text()
    assert "model=" not in page.url
    # the files are still in their uploaders: choosing own files again brings the pair back
    select_option(page, "Demo", "My own files")
    assert metric(page) == script_acc
