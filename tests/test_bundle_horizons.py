"""Horizon columns of a bundle against ``rv.horizon`` on the whole data, and against the hand-built
k-step GRU (horizon_90 = k, decision step by hand); a bundle without them still opens."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_horizon import ShiftRegister, _by_hand

import rnnviz_core as rv
from rnnviz_core import bundle, bundle_format, bundle_horizons
from rnnviz_core.data import from_arrays
from rnnviz_core.horizons import DEFAULT_HORIZON_METHOD, HORIZON_METRICS

IG = {"integrated_gradients": {"steps": 16}}


@pytest.fixture(scope="module")
def race():
    model, ds = rv.demos.load_demo("race")[:2]
    return model, ds.subset(np.arange(70))


@pytest.fixture(scope="module")
def race_path(race, tmp_path_factory):
    model, ds = race
    path = tmp_path_factory.mktemp("hz") / "race"
    # 3 blocks, the last one short: the decision step and horizons must not depend on the blocks
    bundle.build(model, ds, path, batch_size=30, sample=0, methods=["grad_norm", "integrated_gradients"],
                 method_options=IG)
    return path


def test_constants_are_the_horizon_modules():
    assert bundle_horizons.COLUMNS == tuple(HORIZON_METRICS)
    assert bundle_horizons.TRUSTED_METHOD == DEFAULT_HORIZON_METHOD
    assert bundle_horizons.horizon_method(["grad_norm", "occlusion"]) == "grad_norm"
    assert bundle_horizons.horizon_method(["grad_norm", "integrated_gradients"]) == "integrated_gradients"


def test_bundle_horizons_equal_rv_horizon_on_the_whole_data(race, race_path):
    model, ds = race
    b = bundle.open(race_path)
    got = bundle_horizons.read(b)
    ref = rv.horizon(model, ds.X, ds.lengths, method="integrated_gradients", device="cpu", steps=16)
    assert (got["method"] == "integrated_gradients").all()
    assert b.manifest["analysis"]["horizons"]["method"] == "integrated_gradients"
    assert np.array_equal(got["seq"], np.arange(70)) and np.array_equal(got["length"], ds.lengths)
    for c in ("decision_step", "steps_after_decision"):
        assert np.array_equal(got[c].to_numpy(), ref[c].to_numpy()), c
    for c in ("horizon_50", "horizon_90"):
        a, r = got[c].to_numpy(), ref[c].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(r)) and np.array_equal(a[~np.isnan(a)], r[~np.isnan(r)]), c
    # the table the pages read carries them too
    assert np.array_equal(b.sequences["decision_step"].to_numpy(), ref["decision_step"].to_numpy())


def test_hand_built_gru_bundle_remembers_exactly_k_steps(tmp_path):
    k, T, n = 4, 12, 25
    net = ShiftRegister(k).eval()
    rng = np.random.default_rng(1)
    x = (0.1 * rng.choice([-1.0, 1.0], size=(n, T))).astype(np.float32)
    lengths = rng.integers(k + 2, T + 1, size=n)
    x[np.arange(T)[None] >= lengths[:, None]] = 0.0
    ds = from_arrays(x[..., None], lengths=lengths, y=np.arange(n) % 2)
    b = bundle.open(bundle.build(net, ds, tmp_path / "k", batch_size=10, sample=0,
                                 methods=["integrated_gradients"], method_options={"integrated_gradients": {"steps": 32}}))
    got = bundle_horizons.read(b)
    assert (got["horizon_90"] == k).all(), got["horizon_90"].tolist()
    assert (got["horizon_50"] == (k + 1) // 2).all(), got["horizon_50"].tolist()
    s = _by_hand(x, k)
    for i in range(n):   # the first t from which sign(s_t) is the final sign through the end
        sign = np.sign(s[i, : lengths[i]])
        same = sign == sign[-1]
        expect = lengths[i] - np.argmin(same[::-1]) if not same.all() else 0
        assert got["decision_step"][i] == expect, (i, sign)
    assert (got["steps_after_decision"] == lengths - 1 - got["decision_step"]).all()


def _rewrite(path: Path, change_table, change_manifest) -> None:
    """Rewrite the parts and the manifest (sizes and hashes kept true)."""
    m = json.loads((path / "manifest.json").read_text())
    for p in sorted((path / "sequences").glob("*.parquet")):
        pq.write_table(change_table(pq.read_table(p)), p)
        m["files"][p.relative_to(path).as_posix()] = dict(zip(("sha256", "bytes"), bundle_format.file_sha256(p)))
    change_manifest(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_a_bundle_without_horizons_still_opens(race_path, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(race_path, old)
    _rewrite(old, lambda t: t.drop_columns(list(bundle_horizons.COLUMNS)),
             lambda m: m["analysis"].pop("horizons"))
    b = bundle.open(old)
    assert "decision_step" not in b.sequences
    assert bundle_horizons.read(b) is None


def test_a_horizon_longer_than_its_sequence_is_refused(race_path, tmp_path):
    import shutil

    import pyarrow as pa

    bad = tmp_path / "bad"
    shutil.copytree(race_path, bad)

    def longer(t):
        i = t.column_names.index("horizon_90")
        return t.set_column(i, "horizon_90", pa.compute.add(t["length"].cast(pa.float64()), 1.0))

    _rewrite(bad, longer, lambda m: None)
    with pytest.raises(bundle.BundleError, match="horizon columns hold values"):
        bundle_horizons.read(bundle.open(bad))


# ----------------------------------------------------------------------------- the page's section
def _app_dir():
    import sys

    root = str(Path(__file__).resolve().parents[1])   # rnnviz_app beside streamlit_app.py
    if root not in sys.path:
        sys.path.insert(0, root)


def test_the_bundle_sections_statistics_are_the_live_ones(race, race_path):
    """Summary and wrong-vs-correct comparison from the bundle's columns equal those of rv.horizon
    and the live sequence table on the model and data themselves."""
    _app_dir()
    import pandas as pd

    from rnnviz_app.views import page_horizons as ph
    from rnnviz_core.groups import sequence_table
    from rnnviz_core.horizons import compare_horizons, horizon_summary

    model, ds = race
    frame, table, regression = ph.bundle_frames(bundle.open(race_path))
    assert not regression
    ref = rv.horizon(model, ds.X, ds.lengths, method="integrated_gradients", device="cpu", steps=16)
    live = sequence_table(rv.predict(model, ds.X, ds.lengths, device="cpu"), ds.y, class_names=ds.class_names)
    got_s = horizon_summary(frame, table, by="predicted_class")
    ref_s = horizon_summary(ref, live, by="predicted_class")
    pd.testing.assert_frame_equal(got_s.astype({"group": str}), ref_s.astype({"group": str}))
    got_c = compare_horizons(frame, table, "correct", "wrong", "correct")
    ref_c = compare_horizons(ref, live, "correct", "wrong", "correct")
    assert (live["correct"] == 0).sum() >= 2   # the comparison has two groups to compare
    pd.testing.assert_frame_equal(got_c.reset_index(drop=True), ref_c.reset_index(drop=True))
    shown = ph.summary_table(got_s)
    assert list(shown["Sequences"]) == list(ref_s["size"]) and shown["Group"].tolist() == ref_s["group"].astype(str).tolist()


def _section(path: str) -> None:
    from rnnviz_app.views import page_horizons as ph
    from rnnviz_core import bundle as rvb

    ph.bundle_section(rvb.open(path))


def test_the_section_draws_and_an_old_bundle_says_so(race_path, tmp_path):
    _app_dir()
    import shutil

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_section, args=(str(race_path),), default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    assert len(at.dataframe) == 2                      # the summary and the comparison
    assert "decision step is the first step" in " ".join(c.value for c in at.caption)
    old = tmp_path / "old"
    shutil.copytree(race_path, old)
    _rewrite(old, lambda t: t.drop_columns(list(bundle_horizons.COLUMNS)), lambda m: m["analysis"].pop("horizons"))
    at = AppTest.from_function(_section, args=(str(old),), default_timeout=120)
    at.run()
    assert not at.exception and not at.error and len(at.dataframe) == 0
    assert "built before rnnviz kept" in at.info[0].value


def test_regression_bundle_in_one_block_equals_rv_horizon_and_its_section_draws(tmp_path):
    """One output: decided = within 5% of the final outputs' spread over the whole data, computed
    once before the blocks, so a bundle of several blocks equals rv.horizon on all of the data;
    the manifest says which tolerance. Unlabelled here (the labelled case: the next test)."""
    _app_dir()
    from streamlit.testing.v1 import AppTest

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = rv.build_model(rv.ModelConfig(cell="GRU", input_size=2, hidden_size=5, num_outputs=1,
                                          task="regression")).eval()
    rng = np.random.default_rng(2)
    ds = from_arrays(rng.normal(size=(40, 10, 2)).astype(np.float32), lengths=rng.integers(3, 11, 40))
    path = bundle.build(model, ds, tmp_path / "reg", batch_size=16, sample=0, methods=["grad_norm"])
    b = bundle.open(path)
    got = bundle_horizons.read(b)
    ref = rv.horizon(model, ds.X, ds.lengths, method="grad_norm", device="cpu")
    assert np.array_equal(got["decision_step"].to_numpy(), ref["decision_step"].to_numpy())
    for c in ("horizon_50", "horizon_90"):
        assert np.array_equal(got[c].to_numpy(), ref[c].to_numpy()), c
    assert "over every sequence, the same for every block" in b.manifest["analysis"]["horizons"]["decision_tolerance"]
    at = AppTest.from_function(_section, args=(str(path),), default_timeout=120)
    at.run()
    assert not at.exception and not at.error and len(at.dataframe) == 1   # the summary; no true values
    assert "No comparison of right and wrong answers" in " ".join(c.value for c in at.caption)


def _labelled_regression_bundle(path, seed: int, data_seed: int, n: int):
    """(model, dataset, true values, bundle path): a one-output GRU and n sequences of 3-10 steps
    with true values, built in blocks of 16 (the last one short), grad_norm only."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = rv.build_model(rv.ModelConfig(cell="GRU", input_size=2, hidden_size=5, num_outputs=1,
                                          task="regression")).eval()
    rng = np.random.default_rng(data_seed)
    y = rng.normal(size=n).astype(np.float32)
    ds = from_arrays(rng.normal(size=(n, 10, 2)).astype(np.float32), y=y, lengths=rng.integers(3, 11, n))
    return model, ds, y, bundle.build(model, ds, path, batch_size=16, sample=0, methods=["grad_norm"])


def test_labelled_regression_bundle_opens_with_its_errors_and_whole_data_tolerance(tmp_path):
    """A one-output model with true values: the bundle opens (right/wrong does not apply: 'correct'
    is empty), its absolute errors are |prediction - true value| by hand, and its decision steps,
    over three blocks, equal rv.horizon's on all of the data with the tolerance of the whole data."""
    from rnnviz_core.horizon_findings import regression_tolerance
    model, ds, y, path = _labelled_regression_bundle(tmp_path / "reg_y", seed=1, data_seed=3, n=40)
    b = bundle.open(path)
    t = b.sequences.sort_values("seq") if "seq" in b.sequences else b.sequences
    pred = rv.predict(model, ds.X, ds.lengths).reshape(-1)
    np.testing.assert_allclose(t["abs_error"].to_numpy(), np.abs(pred - y), rtol=1e-5, atol=1e-6)
    assert t["correct"].isna().all()
    got = bundle_horizons.read(b)
    tol = regression_tolerance(pred)
    ref = rv.horizon(model, ds.X, ds.lengths, method="grad_norm", device="cpu", tol=tol)
    assert np.array_equal(got["decision_step"].to_numpy(), ref["decision_step"].to_numpy())
    assert f"{tol:g}" in b.manifest["analysis"]["horizons"]["decision_tolerance"]


def _frames_equal(got, ref) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True), check_dtype=False,
                                  rtol=1e-12, atol=0)


def test_the_stored_horizon_tables_are_the_live_ones(race, race_path, monkeypatch):
    """The build-time tables (summary per predicted class, wrong vs correct) equal horizon_summary
    and compare_horizons on rv.horizon and the live sequence table; the page reads them without
    reading any sequence's column."""
    from rnnviz_core import bundle_horizon_tables as bht
    from rnnviz_core.bundle_lazy import LazyTable
    from rnnviz_core.groups import sequence_table
    from rnnviz_core.horizons import compare_horizons, horizon_summary

    model, ds = race
    ref = rv.horizon(model, ds.X, ds.lengths, method="integrated_gradients", device="cpu", steps=16)
    live = sequence_table(rv.predict(model, ds.X, ds.lengths, device="cpu"), ds.y, class_names=ds.class_names)
    assert (live["correct"] == 0).sum() >= 2
    b = bundle.open(race_path, read=False)
    monkeypatch.setattr(LazyTable, "column", lambda *a, **k: pytest.fail("a sequence column was read"))
    by, summ, cmp = bht.stored(b)
    assert by == "predicted_class"
    ref_s = horizon_summary(ref, live, by="predicted_class")
    _frames_equal(summ, ref_s.astype({"group": str}))
    _frames_equal(cmp, compare_horizons(ref, live, "correct", "wrong", "correct"))
    _app_dir()
    from rnnviz_app.views import page_horizons as ph
    got = ph.bundle_tables(b)
    assert got[:4] == ("integrated_gradients", False, 70, "predicted_class")


def test_a_labelled_regression_bundle_stores_the_error_quarters_comparison(tmp_path):
    from rnnviz_core import bundle_horizon_tables as bht
    from rnnviz_core.groups import sequence_table
    from rnnviz_core.horizon_findings import regression_tolerance
    from rnnviz_core.horizons import compare_horizons, horizon_summary

    model, ds, y, path = _labelled_regression_bundle(tmp_path / "reg", seed=4, data_seed=5, n=48)
    by, summ, cmp = bht.stored(bundle.open(path))
    pred = rv.predict(model, ds.X, ds.lengths).reshape(-1)
    ref = rv.horizon(model, ds.X, ds.lengths, method="grad_norm", device="cpu", tol=regression_tolerance(pred))
    live = sequence_table(pred, y)
    assert by == "all"
    _frames_equal(summ, horizon_summary(ref, live, by=["all"] * 48).astype({"group": str}))
    a, b = cmp["group_a"].iloc[0], cmp["group_b"].iloc[0]
    _frames_equal(cmp, compare_horizons(ref, live, "error_size", a, b))
    from rnnviz_core.groups import assign_groups
    quarters = assign_groups(live, "error_size").cat.categories
    assert (a, b) == (str(quarters[-1]), str(quarters[0]))   # the largest error quarter vs the smallest


def test_a_bundle_built_before_the_horizon_tables_computes_them_from_its_columns(race_path, tmp_path):
    """Older bundles (no hz.* arrays) still show the section, from every sequence's columns."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from rnnviz_core import bundle_horizon_tables as bht

    old = tmp_path / "old"
    shutil.copytree(race_path, old)
    arrays = {k: v for k, v in load_file(old / "aggregates.safetensors").items() if not k.startswith("hz.")}
    save_file(arrays, old / "aggregates.safetensors")

    def drop(m):
        m["analysis"]["aggregates"].pop("horizon_tables")
        p = old / "aggregates.safetensors"
        m["files"]["aggregates.safetensors"] = dict(zip(("sha256", "bytes"), bundle_format.file_sha256(p)))

    _rewrite(old, lambda t: t, drop)
    b = bundle.open(old)
    assert bht.stored(b) is None
    _app_dir()
    from rnnviz_app.views import page_horizons as ph
    got, want = ph.bundle_tables(b), ph.bundle_tables(bundle.open(race_path))
    assert got[:4] == want[:4]
    _frames_equal(got[4], want[4])
    _frames_equal(got[5], want[5])


@pytest.mark.parametrize("class_names", [None, ["dog", "cat", "bird"]])
def test_the_classifier_tables_numpy_path_equals_the_live_frames(class_names):
    """bundle_horizon_tables computes a classifier's tables without data frames; they equal
    horizon_summary and compare_horizons on the frames the page reads (rows out of order, missing
    horizons, classes named or numbered)."""
    import pyarrow as pa

    from rnnviz_core import bundle_horizon_tables as bht

    rng = np.random.default_rng(3)
    n = 300
    names = class_names or ["2", "10", "0"]
    lengths = rng.integers(5, 40, n)
    dec = rng.integers(0, 5, n) * (rng.random(n) < 0.7)
    h50 = np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 20, n).astype(float))
    per_seq = pa.table({
        "row": pa.array(rng.permutation(n).astype(np.int64)), "length": pa.array(lengths.astype(np.int64)),
        "decision_step": pa.array(dec.astype(np.int64)), "steps_after_decision": pa.array((lengths - 1 - dec).astype(np.int64)),
        "horizon_50": pa.array(h50), "horizon_90": pa.array(h50 + rng.integers(0, 5, n)),
        "predicted_class": pa.array([names[i] for i in rng.integers(0, 2, n)], pa.string()),
        "outcome": pa.array(np.where(rng.random(n) < 0.3, "wrong", "correct").tolist(), pa.string())})
    fast = bht._classifier_tables(per_seq, class_names, True)
    frame, table = bht.frames_from_table(per_seq, class_names, False, True, "grad_norm")
    by, summ, cmp = bht.section(frame, table, False)
    assert fast[1]["groups"] == [str(g) for g in summ["group"]] and by == fast[1]["by"] == "predicted_class"
    np.testing.assert_allclose(fast[0]["hz.summary"], summ[list(bht.SUMMARY_FIELDS)].to_numpy(np.float64),
                               rtol=1e-12, atol=0)
    from rnnviz_core.bundle_compare import FIELDS
    np.testing.assert_allclose(fast[0]["hz.compare"], cmp[list(FIELDS)].to_numpy(np.float64), rtol=1e-12, atol=0)
    assert fast[1]["compare"]["binary"] == [t == "Fisher's exact" for t in cmp["test"]]
