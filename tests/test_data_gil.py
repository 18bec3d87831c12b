"""Readers that let other sessions run (issue 13): the work on a large upload is split in steps
that each hold the GIL briefly (line counting in slices, Parquet converted batch by batch,
labels checked on codes rather than with a groupby). These tests check that the split work
gives the same answer as the one-piece reference; bench/bench_concurrency.py measures the
GIL stalls themselves (a 185 MB CSV and its Parquet)."""
from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from rnnviz_core import data
from rnnviz_core.io import tables
from rnnviz_core.errors import DataError


def _reference_lines(buf: bytes) -> int:
    """Lines as a text editor counts them: split on \\r\\n, \\r or \\n; a final break ends a line."""
    parts = re.split(rb"\r\n|\r|\n", buf)
    return len(parts) - (1 if parts[-1] == b"" else 0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_lines_counted_in_slices_with_crlf_split_between_slices(monkeypatch, chunk):
    monkeypatch.setattr(tables, "_COUNT_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    breaks = [b"\n", b"\r\n", b"\r"]
    for _ in range(30):
        rows = [b"a" * int(k) for k in rng.integers(0, 4, rng.integers(1, 12))]
        buf = b"".join(r + breaks[int(rng.integers(0, 3))] for r in rows)
        if rng.random() < 0.5:
            buf += b"tail"
        assert tables.count_lines(buf) == _reference_lines(buf), buf


def test_crlf_across_the_slice_edge_is_one_line_break(monkeypatch):
    monkeypatch.setattr(tables, "_COUNT_CHUNK", 4)
    buf = b"id,\r\nx,1\r\n"                                      # the first \r\n straddles bytes 3|4
    assert tables.count_lines(buf) == 2


def _mixed_frame(n: int = 5000) -> pd.DataFrame:
    k = np.arange(n)
    return pd.DataFrame({
        "seq": k // 7, "step": k % 7,
        "kind": np.where(k % 5 == 0, None, np.array(["up", "down"])[k % 2]),
        "x": np.where(k % 3 == 0, np.nan, k * 0.5), "flag": k % 2 == 0,
        "when": pd.date_range("2020-01-01", periods=n, freq="h"),
        "count": pd.array([None if i % 4 == 0 else int(i) for i in k], dtype="Int64")})


@pytest.mark.parametrize("index", [None, "seq"])
def test_parquet_read_batch_by_batch_equals_pandas_whole_read(monkeypatch, tmp_path, index):
    df = _mixed_frame()
    if index:
        df = df.set_index(index)
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=700)
    monkeypatch.setattr(tables, "_PARQUET_BATCH_VALUES", 10)         # 1,024-row batches: several of them
    got = tables.read_parquet(path.read_bytes(), "'d.parquet'")
    pd.testing.assert_frame_equal(got, pd.read_parquet(path))      # text read as pandas' text, as from CSV


def test_parquet_and_csv_of_one_table_give_the_same_dataset(monkeypatch, tmp_path):
    n, t = 300, 5
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"seq_id": np.repeat(np.arange(n), t), "step": np.tile(np.arange(t), n),
                       "label": np.repeat(rng.choice(["up", "down", "flat"], n), t),
                       "site": np.repeat(rng.choice(["north", "south"], n), t),
                       "x1": rng.standard_normal(n * t).round(4)})
    df.to_parquet(tmp_path / "d.parquet", row_group_size=250)
    df.to_csv(tmp_path / "d.csv", index=False)
    monkeypatch.setattr(tables, "_PARQUET_BATCH_VALUES", 5 * 1024)
    a, b = data.load_data(tmp_path / "d.csv"), data.load_data(tmp_path / "d.parquet")
    np.testing.assert_array_equal(a.X, b.X)
    assert a.class_names == b.class_names == ["down", "flat", "up"]
    assert a.y.tolist() == b.y.tolist() == [["down", "flat", "up"].index(v) for v in df.label[::t]]
    assert list(a.groups["site"]) == list(b.groups["site"]) == list(df.site[::t])


def test_label_given_on_one_row_of_each_sequence():
    df = pd.DataFrame({"id": ["a", "a", "a", "b", "b", "c"], "x": [1.0, 2, 3, 4, 5, 6],
                       "label": [None, "cat", None, "dog", None, "cat"]})
    ds = data.from_long_frame(df)
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 1, 0]


def test_numbers_written_as_text_labels_become_regression_targets():
    df = pd.DataFrame({"id": [1, 1, 2, 2, 3], "x": [0.0, 1, 2, 3, 4],
                       "label": ["2.5", "2.5", "-1", "-1", "0.25"]})
    ds = data.from_long_frame(df)
    assert ds.task == "regression" and ds.y.tolist() == [2.5, -1.0, 0.25]


def test_label_changing_within_a_sequence_is_refused_naming_it():
    df = pd.DataFrame({"id": ["a", "a", "b", "b"], "x": [1.0, 2, 3, 4], "label": ["cat", "cat", "cat", "dog"]})
    with pytest.raises(DataError, match="changes within sequence 'b'"):
        data.from_long_frame(df)


def test_sequence_without_any_label_is_refused_naming_it():
    df = pd.DataFrame({"id": ["a", "a", "b", "b"], "x": [1.0, 2, 3, 4], "label": [1.0, 1.0, np.nan, np.nan]})
    with pytest.raises(DataError, match="Sequence 'b' has no label"):
        data.from_long_frame(df)


def test_parquet_in_memory_upload_of_one_batch(tmp_path):
    buf = io.BytesIO()
    _mixed_frame(50).to_parquet(buf)
    ds = data.load_data(buf.getvalue(), name="d.parquet", id_col="seq", order_col="step", label_col="",
                        feature_cols=["x", "count"], missing="fill")
    assert len(ds) == 8 and ds.lengths.tolist() == [7] * 7 + [1]
