"""Issue 13: hostile data files are refused (or traced within a budget) inside 1 GB of peak memory.

Each file is read by `load_data` in a fresh Python process that reports its own peak resident
memory (the larger of the imports' peak and the read's peak, both from `VmHWM`, which includes
importing torch and pandas: about 400 MB; it must stay under 1 GB; not `ru_maxrss`, which Linux
carries over from the parent across fork and exec, so it would report pytest's own size) and the memory the read itself added (the peak after the imports, restarted through
`/proc/self/clear_refs`, minus the memory resident before the read), so one test's memory
cannot hide another's. The files are the ones the issue measured (before: 8.5 GB for the
Parquet, 4.9 GB for a 150 MB `.ts`, 2.9 GB for the CR-only CSV, 128-252 s for the 100,000-column
CSV), made at the issue's sizes where that is quick and scaled down (the `.ts`) where it is not.
"""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnviz_core.data as data
from rnnviz_core.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
PEAK_LIMIT_MB = 1024

_CHILD = r"""
import json, sys, time
import rnnviz_core.data as d
from rnnviz_core import budget
def vm(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith(key))
out = {"base_mb": vm("VmRSS:"), "imports_peak_mb": vm("VmHWM:")}
with open("/proc/self/clear_refs", "w") as f:      # restart the peak (VmHWM) after the imports
    f.write("5")
t0 = time.perf_counter()
try:
    ds = d.load_data(sys.argv[1])
    out["loaded"] = [len(ds), ds.max_len, ds.n_features]
    p = budget.plan(len(ds), ds.max_len, 64, 6, max_bytes=budget.DEFAULT_MAX_BYTES)
    out["plan"] = [p.keep_n, p.sampled, p.message]
    out["sample"] = len(ds.subset(budget.sample(len(ds), p.keep_n, labels=ds.y)))
except d.DataError as e:
    out["refused"], out["code"] = str(e), e.code
out["seconds"] = time.perf_counter() - t0
out["load_peak_mb"] = vm("VmHWM:")
out["peak_mb"] = max(out["imports_peak_mb"], out["load_peak_mb"])
out["added_mb"] = out["load_peak_mb"] - out["base_mb"]
print(json.dumps(out))
"""


def _read_in_child(path: Path) -> dict:
    run = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["peak_mb"] < PEAK_LIMIT_MB, out
    return out


# ------------------------------------------------------------------------------ the files
def _parquet_5m_rows_60_zero_columns(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    zeros = pa.array(np.zeros(1_000_000, dtype=np.int64))
    table = pa.table({f"c{i}": zeros for i in range(60)})
    with pq.ParquetWriter(path, table.schema, use_dictionary=False, compression="zstd", compression_level=1,
                          write_statistics=False) as w:
        for _ in range(5):
            w.write_table(table, row_group_size=1_000_000)


def _npz_member(arrays: dict, compresslevel: int = 1) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for k, v in arrays.items():
            with zf.open(f"{k}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, v)
    return buf.getvalue()


def _understate_sizes(blob: bytes, fake: int = 1000) -> bytes:
    """Rewrite every zip header's uncompressed size (local, central, zip64 extras) to `fake` bytes."""
    b = bytearray(blob)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    for info in zf.infolist():
        off = info.header_offset                                     # local header
        name_len, extra_len = struct.unpack("<HH", b[off + 26: off + 30])
        struct.pack_into("<I", b, off + 22, fake)
        extra = off + 30 + name_len
        _fake_zip64(b, extra, extra_len, fake)
    cd = blob.rfind(b"PK\x01\x02")
    while cd >= 0:                                                   # central directory entries
        struct.pack_into("<I", b, cd + 24, fake)
        name_len, extra_len = struct.unpack("<HH", b[cd + 28: cd + 32])
        _fake_zip64(b, cd + 46 + name_len, extra_len, fake)
        cd = blob.rfind(b"PK\x01\x02", 0, cd)
    return bytes(b)


def _fake_zip64(b: bytearray, start: int, length: int, fake: int) -> None:
    pos = start
    while pos + 4 <= start + length:
        tag, size = struct.unpack("<HH", b[pos: pos + 4])
        if tag == 1 and size >= 8:                                   # zip64: uncompressed size first
            struct.pack_into("<Q", b, pos + 4, fake)
        pos += 4 + size


# ------------------------------------------------------------------------------ the tests
@pytest.mark.slow
def test_parquet_of_5m_rows_of_60_zero_columns_is_refused_from_its_metadata(tmp_path):
    path = tmp_path / "zeros.parquet"
    _parquet_5m_rows_60_zero_columns(path)
    assert path.stat().st_size < 3_000_000
    out = _read_in_child(path)
    assert out["code"] == "too_big" and "5,000,000 rows of 60 columns" in out["refused"], out
    assert out["added_mb"] < 100, out


def test_ts_with_one_long_case_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "long.ts"
    with open(path, "wb") as f:                                       # 60 MB, one case of 20M steps
        f.write(b"@problemName Long\n@timeStamps false\n@univariate true\n@classLabel true a b\n@data\n")
        f.write(b"0.5," * 15_000_000 + b"0.5:a\n")
    out = _read_in_child(path)
    assert out["code"] == "too_big" and "has about 15,000,001 steps" in out["refused"], out
    assert out["added_mb"] < 150, out                 # the file's 60 MB and little more


def test_csv_with_cr_only_line_endings_is_counted_and_refused(tmp_path):
    path = tmp_path / "cr.csv"
    path.write_bytes(b"id,step,x\r" + b"a,1,0\r" * 6_000_000)          # 36 MB, no \n at all
    out = _read_in_child(path)
    assert out["code"] == "too_big" and "more than 5,000,000 rows" in out["refused"], out
    assert out["added_mb"] < 100, out


def test_csv_of_100000_columns_is_refused_in_well_under_a_second(tmp_path):
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(100_000))
    path.write_text(header + "\n" + ",".join("0" for _ in range(100_000)) + "\n")
    assert 0.5e6 < path.stat().st_size < 1.5e6
    out = _read_in_child(path)
    assert out["code"] == "too_big" and "100,000 columns" in out["refused"], out
    assert out["seconds"] < 0.5, out


def test_npz_whose_zip_headers_understate_its_content_is_refused_unread(tmp_path):
    X = np.zeros((20_000, 500, 10), np.float32)                      # 400 MB of zeros, about 0.4 MB packed
    path = tmp_path / "understated.npz"
    path.write_bytes(_understate_sizes(_npz_member({"X": X})))
    assert [i.file_size for i in zipfile.ZipFile(path).infolist()] == [1000]
    out = _read_in_child(path)
    assert out["code"] == "unreadable" and "not a readable NPZ" in out["refused"], out
    assert out["added_mb"] < 100, out


@pytest.mark.slow
def test_npz_within_every_limit_but_too_big_to_trace_gets_a_sampling_plan(tmp_path):
    """200,000 x 166 x 3 float32 (2.3 MB packed in the issue): loads in 400 MB, then the budget samples."""
    path = tmp_path / "big.npz"
    y = np.arange(200_000) % 3
    path.write_bytes(_npz_member({"X": np.zeros((200_000, 166, 3), np.float32), "y": y}))
    assert path.stat().st_size < 3_000_000
    out = _read_in_child(path)
    assert out["loaded"] == [200_000, 166, 3], out
    keep, sampled, message = out["plan"]
    assert sampled and keep == 2**30 // (166 * 64 * 6 * 4) == out["sample"], out
    assert message.startswith(f"Showing a sample of {keep:,} of the 200,000 sequences"), out


# ------------------------------------------------------------- the same rules, in process and small
def test_line_breaks_of_every_kind_are_counted(monkeypatch):
    monkeypatch.setattr(data, "MAX_ROWS", 4)
    for sep in (b"\n", b"\r\n", b"\r"):
        ok = sep.join([b"id,x", b"a,1", b"a,2", b"b,3", b"b,4"]) + sep
        assert len(data.load_data(ok, name="d.csv")) == 2
        with pytest.raises(DataError, match="more than 4 rows"):
            data.load_data(ok + b"c,5" + sep, name="d.csv")


def test_ts_line_endings_of_every_kind(monkeypatch):
    text = b"@problemName X\n@classLabel true a b\n@data\n1,2,3:a\n4,5:b\n"
    for sep in (b"\r\n", b"\r"):
        ds = data.load_data(text.replace(b"\n", sep), name="x.ts")
        assert ds.lengths.tolist() == [3, 2] and list(ds.labels) == ["a", "b"]
    monkeypatch.setattr(data, "MAX_SEQUENCES", 1)
    with pytest.raises(DataError, match="2 sequences; rnnviz handles at most 1"):
        data.load_data(text.replace(b"\n", b"\r"), name="x.ts")


def test_column_limit_comes_before_parsing(monkeypatch):
    monkeypatch.setattr(data, "MAX_COLUMNS", 3)
    monkeypatch.setattr(data.pd, "read_csv", lambda *a, **k: pytest.fail("parsed before the column check"))
    with pytest.raises(DataError, match="has 4 columns; rnnviz reads at most 3"):
        data.load_data(b"id,a,b,c\n1,2,3,4\n", name="d.csv")


def test_table_cell_limit(monkeypatch):
    monkeypatch.setattr(data, "MAX_TABLE_CELLS", 10)
    with pytest.raises(DataError, match=r"4 rows of 3 columns \(12 values\)"):
        data.load_data(b"id,t,x\n" + b"a,1,2\n" * 4, name="d.csv")


def test_npz_read_checks_the_npy_header_before_allocating(monkeypatch):
    monkeypatch.setattr(data, "MAX_SEQUENCES", 10)
    with pytest.raises(DataError, match="11 sequences; rnnviz handles at most 10"):
        data.load_data(_npz_member({"X": np.zeros((11, 2, 1), np.float32)}), name="d.npz")
    X = np.arange(6, dtype=np.float32).reshape(3, 2, 1)
    blob = _npz_member({"X": X})
    with pytest.raises(DataError, match="not a readable NPZ"):                  # understated: cut short
        data.load_data(_understate_sizes(blob, fake=100), name="d.npz")
    overstated = data.load_data(_understate_sizes(blob, fake=10_000), name="d.npz")
    np.testing.assert_array_equal(overstated.X, X)                              # what was there, measured


def test_parquet_decoded_size_counts_encoded_zeros(monkeypatch, tmp_path):
    import pandas as pd

    pd.DataFrame({"id": np.arange(1000) // 10, "x": np.zeros(1000)}).to_parquet(tmp_path / "z.parquet")
    monkeypatch.setattr(data, "MAX_DECODED_BYTES", 10_000)                  # 1000 rows x 16 bytes > 10 kB
    with pytest.raises(DataError, match="unpacks to"):
        data.load_data(tmp_path / "z.parquet")


def test_time_of_wide_csv_refusal_in_process():
    blob = (",".join(f"c{i}" for i in range(100_000)) + "\n").encode() * 2
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="100,000 columns"):
        data.load_data(blob, name="wide.csv")
    assert time.perf_counter() - t0 < 0.5


def test_text_sizes_are_checked_before_words_are_split(monkeypatch):
    vocab = ["<pad>", "<unk>", "a"]
    monkeypatch.setattr(data, "MAX_TEXT_CHARS", 20)
    with pytest.raises(DataError, match="row 3 has 23 characters of text"):
        data.load_data(b"text\na a\n" + b"a " * 11 + b"a\n", name="t.csv", vocabulary=vocab)
    monkeypatch.setattr(data, "MAX_STEPS", 3)
    with pytest.raises(DataError, match="4 steps; rnnviz handles at most 3"):
        data.load_data(b"text\na a a a\n", name="t.csv", vocabulary=vocab)
