"""The Saturation page's group comparison tables, computed when a bundle is built (issue 21),
against ``compare_groups`` / ``comparison_table`` on the full per-sequence table: the live model's
(``sequence_table`` of its trace) and the bundle's own table read whole."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rnnviz_core as rv
from rnnviz_core import bundle
from rnnviz_core import saturation as sa
from rnnviz_core.bundle_compare import MAX_GROUPS
from rnnviz_core.groups import compare_groups, comparison_table, sequence_table

FIELDS = ["n_a", "n_b", "mean_a", "mean_b", "ci_a_low", "ci_a_high", "ci_b_low", "ci_b_high", "median_a", "median_b",
          "statistic", "p_value", "p_adjusted", "effect_size"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(130))
    path = bundle.build(model, ds, tmp_path_factory.mktemp("cmp") / "b", batch_size=30, sample=4)
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    h = tr.get("h", layer=-1, direction="fwd")
    live = sequence_table(tr.logits, ds.y, states=h, lengths=tr.lengths, class_names=ds.class_names,
                          gates=sa.trace_gates(tr, layer=-1, direction="fwd") or None)
    return path, live, ds


def test_stored_comparisons_equal_compare_groups_on_every_sequence(built):
    path, live, ds = built
    b = bundle.open(path, read=False)
    entry = b.manifest["analysis"]["aggregates"]["comparisons"]
    stored = entry["groupings"]
    assert {"outcome", "true_class", "predicted_class"} <= set(stored)
    whole = bundle.open(path).sequences   # the bundle's own per-sequence table, read whole
    metrics = entry["metrics"]
    assert metrics == [m for m in ("correct", "loss", "confidence", "frac_saturated", "frac_saturated_final")
                       if m in live.columns]
    checked = 0
    for g, groups in stored.items():
        if g.startswith("data:"):   # the data's own column (the race demo's "grade")
            name = g[len("data:"):]
            live_lab = ds.groups[name].reset_index(drop=True).astype(str)
            whole_lab = whole[name if name in whole else f"{name}_data"].astype(str)
        else:
            live_lab, whole_lab = live[g].astype(str), whole[g].astype(str)
        assert groups == sorted(set(live_lab))
        for a in groups:
            for c in groups:
                if a == c:
                    continue
                got = b.group_comparison(g, a, c)
                ref = compare_groups(live, live_lab, a, c, metrics=metrics)
                assert list(got.columns) == list(ref.columns)
                assert list(got["metric"]) == list(ref["metric"]) and list(got["test"]) == list(ref["test"])
                assert list(got["effect_name"]) == list(ref["effect_name"])
                np.testing.assert_allclose(got[FIELDS].to_numpy(float), ref[FIELDS].to_numpy(float),
                                           rtol=1e-5, atol=1e-5, equal_nan=True)
                own = compare_groups(whole, whole_lab, a, c, metrics=metrics)
                pd.testing.assert_frame_equal(comparison_table(got), comparison_table(own))
                checked += 1
    assert checked >= 4
    assert b.group_comparison("outcome", "correct", "correct") is None
    assert b.group_comparison("outcome", "correct", "no such group") is None
    assert b.group_comparison("no grouping", "a", "b") is None


def test_a_bundle_whose_comparisons_do_not_match_its_manifest_is_refused(built, tmp_path):
    import json
    import shutil

    from rnnviz_core.errors import BundleError

    path = built[0]
    copy = tmp_path / "b"
    shutil.copytree(path, copy)
    man = json.loads((copy / "manifest.json").read_text())
    groups = man["analysis"]["aggregates"]["comparisons"]["groupings"]["outcome"]
    groups.append("a third")      # the arrays hold 2 groups' pairs, the manifest now says 3
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError, match="another type or shape"):
        bundle.open(copy, read=False)
    man["analysis"]["aggregates"]["comparisons"]["groupings"]["outcome"] = ["g"] * (MAX_GROUPS + 1)
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError, match="group comparisons is not one"):
        bundle.open(copy, read=False)


def test_a_regression_bundle_compares_what_the_page_compares(tmp_path):
    """A one-output model: no confidence or loss compared (as page_saturation.compare skips them),
    the error size and saturation shares are, equal to compare_groups on the live table."""
    model, ds = rv.demos.load_demo("window_sum")[:2]
    ds = ds.subset(np.arange(120))
    b = bundle.open(bundle.build(model, ds, tmp_path / "ws", batch_size=50, methods=("grad_norm",), sample=4),
                    read=False)
    entry = b.manifest["analysis"]["aggregates"]["comparisons"]
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    live = sequence_table(tr.logits, ds.y, states=tr.get("h", layer=-1, direction="fwd"), lengths=tr.lengths,
                          gates=sa.trace_gates(tr, layer=-1, direction="fwd") or None)
    assert "confidence" not in entry["metrics"] and "loss" not in entry["metrics"]
    assert "abs_error" in entry["metrics"] and entry["groupings"], entry
    checked = 0
    for g, groups in entry["groupings"].items():   # here the data's own window_length only
        lab = (ds.groups[g[len("data:"):]].reset_index(drop=True) if g.startswith("data:") else live[g]).astype(str)
        assert groups == sorted(set(lab))
        for a, c in [(groups[0], groups[-1]), (groups[-1], groups[0]), (groups[1], groups[2])]:
            got = b.group_comparison(g, a, c)
            ref = compare_groups(live, lab, a, c, metrics=entry["metrics"])
            assert list(got["test"]) == list(ref["test"])
            np.testing.assert_allclose(got[FIELDS].to_numpy(float), ref[FIELDS].to_numpy(float),
                                       rtol=1e-5, atol=1e-5, equal_nan=True)
            checked += 1
    assert checked >= 3


def test_group_sizes_are_the_live_groups_counts(built):
    """The Saturation page's groups and their sizes come from the build-time comparisons: each
    stored grouping's labels and counts equal those of the live model's sequence table."""
    path, live, ds = built
    b = bundle.open(path, read=False)
    stored = b.manifest["analysis"]["aggregates"]["comparisons"]["groupings"]
    for g in stored:
        if g.startswith("data:"):
            lab = ds.groups[g[len("data:"):]].reset_index(drop=True).astype(str)
        else:
            lab = live[g].astype(str)
        want = lab.value_counts().to_dict()
        got = b.group_sizes(g)
        assert list(got) == sorted(want) and got == want, g
    assert b.group_sizes("no such grouping") is None


def test_a_data_column_of_many_values_gets_no_comparison_and_the_others_keep_theirs(tmp_path):
    """A data column that reaches more than 20 values only in a later part (the build drops it from
    the per-sequence columns it keeps as soon as it does) is neither compared nor given saturation
    curves; a column of 3 values is compared as compare_groups compares it on every sequence."""
    from rnnviz_core.data import from_arrays

    model, ds0 = rv.demos.load_demo("race")[:2]
    ds0 = ds0.subset(np.arange(90))
    many = [f"v{i % 5}" if i < 30 else f"v{i}" for i in range(90)]      # 5 values in the first part, 65 after
    few = [("a", "b", "c")[i % 3] for i in range(90)]
    ds = from_arrays(ds0.X, lengths=ds0.lengths, y=ds0.y, class_names=ds0.class_names,
                     feature_names=ds0.feature_names, groups=pd.DataFrame({"many": many, "few": few}))
    b = bundle.open(bundle.build(model, ds, tmp_path / "b", batch_size=30, sample=4))
    entry = b.manifest["analysis"]["aggregates"]["comparisons"]
    assert "data:many" not in entry["groupings"] and "data:many" not in b.manifest["analysis"]["saturation_groupings"]
    assert entry["groupings"]["data:few"] == ["a", "b", "c"]
    whole = b.sequences
    labels = pd.Series(few)
    ref = compare_groups(whole, labels, "a", "c", metrics=entry["metrics"], test="mann-whitney")
    got = b.group_comparison("data:few", "a", "c")
    for f in FIELDS:
        np.testing.assert_allclose(got[f].to_numpy(float), ref[f].to_numpy(float), rtol=1e-12, equal_nan=True)


def test_text_codes_equal_python_text_of_every_value():
    """The groupings' labels of a part's column (bundle_aggregates.text_codes: Arrow encodes the
    values, only the distinct ones become text) equal numpy's unique over str() of every value,
    for text with missing values, numbers, floats with NaN, -0.0 and missing, bools, dictionary
    columns, chunked columns, non-ASCII text and an empty column."""
    import pyarrow as pa

    from rnnviz_core.bundle_aggregates import text_codes
    cols = [pa.array(["b", "a", None, "b", "c"]), pa.array([3, 1, None, 3, 10]),
            pa.array([1.0, float("nan"), None, 0.1 + 0.2, -0.0, 0.0, float("nan")]),
            pa.array([True, False, None, True]), pa.array(["x", "y", "x", None]).dictionary_encode(),
            pa.chunked_array([pa.array(["q", "p"]), pa.array(["p", None])]), pa.array([], type=pa.string()),
            pa.array(["é", "e", "E", "10", "9"]), pa.array([1, 2, -1], type=pa.int8())]
    for col in cols:
        ref_u, ref_i = np.unique(np.asarray([str(v) for v in col.to_pylist()], dtype=str), return_inverse=True)
        got_u, got_i = text_codes(col)
        assert list(got_u) == list(ref_u), col
        assert list(got_i) == list(ref_i.reshape(-1)), col
