"""Hostile analysis bundles (issue 19's reproducers), made the way an attacker would make them.

Each maker takes a valid bundle folder (``base``) and a place to write, and returns the path of
one hostile bundle (a folder or a ``.rnnviz`` file). A forger can change any file and re-sign
its manifest entry (the manifest is not signed), so forged files come with matching hashes.
Shared by ``tests/test_hostile_bundles.py`` and ``bench/bench_hostile_bundles.py``; the child
script :data:`CHILD` opens each one the way the app opens it (its size and memory limits), then
reads it the way the bundle pages read it, and prints the outcome, peak memory and seconds.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LINK = "[Sign in](http://evil.example/login)"
IMG = '<img src="http://evil.example/x.png">'


def build_base(folder: Path) -> Path:
    """A valid 60-sequence race bundle folder (two parts, six sampled sequences)."""
    import rnnviz_core as rv
    from rnnviz_core import bundle

    model, ds = rv.demos.load_demo("race")[:2]
    return bundle.build(model, ds.subset(np.arange(60)), folder / "base", batch_size=30, sample=6)


# ------------------------------------------------------------------------- forging helpers
def _copy(base: Path, out: Path, name: str) -> Path:
    dst = out / name
    shutil.copytree(base, dst)
    return dst


def _manifest(path: Path, edit: Callable[[dict], None]) -> Path:
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def _forge(path: Path, name: str, data: bytes) -> Path:
    (path / name).parent.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(data)
    return _manifest(path, lambda m: m["files"].update(
        {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}))


def _part(path: Path, edit) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = "sequences/part-00000.parquet"
    tbl = edit(pq.read_table(path / name))
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    assert isinstance(tbl, pa.Table)
    return _forge(path, name, buf.getvalue())


def _set(tbl, col: str, arr):
    return tbl.set_column(tbl.column_names.index(col), col, arr)


def _st(path: Path, name: str, edit) -> Path:
    from safetensors.numpy import load, save

    arrays = load((path / name).read_bytes())
    edit(arrays)
    return _forge(path, name, save(arrays))


def _st_raw(header: dict, body: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def _zip(folder: Path, out: Path, extra: Callable[[zipfile.ZipFile], None] | None = None,
         edit_info: Callable[[zipfile.ZipInfo], None] | None = None) -> Path:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                if edit_info:
                    edit_info(info)
                zf.writestr(info, p.read_bytes())
        if extra:
            extra(zf)
    return out


def _raw_manifest(path: Path, marker: str, text: str) -> Path:
    """Put raw JSON text in place of the value ``"<marker>"`` (for what json.dumps cannot write)."""
    _manifest(path, lambda m: m["build"].update(x=marker))
    raw = (path / "manifest.json").read_text().replace(f'"{marker}"', text)
    (path / "manifest.json").write_text(raw)
    return path


# ------------------------------------------------------------------------- the cases
def longest_20m(base, out):
    """The manifest says the longest sequence has 20,000,000 steps (the table's longest: 30)."""
    return _manifest(_copy(base, out, "longest_20m"), lambda m: m["data"].update(max_length=20_000_000))


def longest_500k(base, out):
    """The manifest says 500,000 steps: within the schema's range, but not the table's longest."""
    return _manifest(_copy(base, out, "longest_500k"), lambda m: m["data"].update(max_length=500_000))


def text_bomb(base, out):
    """A zstd part whose text column holds 30 values of 100 MB (one dictionary entry repeated)."""
    import pyarrow as pa

    big = pa.DictionaryArray.from_arrays(pa.array(np.zeros(30, np.int32)), pa.array(["x" * 100_000_000]))
    return _part(_copy(base, out, "text_bomb"), lambda t: _set(t, "data:track", big))


def safetensors_1p2m_empty(base, out):
    """samples.safetensors with 1,200,000 empty arrays (a 70 MB header)."""
    head = {f"trace:t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(1_200_000)}
    return _forge(_copy(base, out, "st_1p2m_empty"), "samples.safetensors", _st_raw(head))


def safetensors_5000_arrays(base, out):
    """samples.safetensors with 5,000 empty arrays in a header under 1 MB."""
    head = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(5_000)}
    return _forge(_copy(base, out, "st_5000"), "samples.safetensors", _st_raw(head))


def safetensors_90mb_header(base, out):
    """pca.safetensors whose header is 90 MB (metadata padding)."""
    head = {"__metadata__": {"pad": " " * 90_000_000}}
    return _forge(_copy(base, out, "st_90mb_header"), "pca.safetensors", _st_raw(head))


def parquet_huge_footer(base, out):
    """A part whose Parquet footer claims 60 MB of metadata (what 1,000,000 row groups take)."""
    n = 60_000_000
    data = b"PAR1" + b"\0" * n + struct.pack("<I", n) + b"PAR1"
    return _forge(_copy(base, out, "parquet_60mb_footer"), "sequences/part-00000.parquet", data)


def units_nan(base, out):
    return _manifest(_copy(base, out, "units_nan"), lambda m: m["analysis"].update(units=float("nan")))


def units_negative(base, out):
    return _manifest(_copy(base, out, "units_-1"), lambda m: m["analysis"].update(units=-1))


def hidden_1e9(base, out):
    return _manifest(_copy(base, out, "hidden_1e9"),
                     lambda m: m["model"]["recurrent_modules"][0].update(hidden_size=10**9))


def model_string(base, out):
    return _manifest(_copy(base, out, "model_string"), lambda m: m.update(model="evil"))


def class_names_5(base, out):
    return _manifest(_copy(base, out, "class_names_5"), lambda m: m["data"].update(class_names=5))


def class_names_duplicate(base, out):
    return _manifest(_copy(base, out, "class_names_dup"),
                     lambda m: m["data"].update(class_names=["win", "win", "unplaced"]))


def threshold_text(base, out):
    return _manifest(_copy(base, out, "threshold_text"), lambda m: m["analysis"].update(threshold="0.9"))


def grouping_missing(base, out):
    """A grouping on a data column the manifest lists but the table lacks."""
    def edit(m):
        m["data"]["group_columns"].append("owner")
        m["analysis"]["saturation_groupings"]["data:owner"] = ["a", "b"]
    return _manifest(_copy(base, out, "grouping_missing"), edit)


def nested_100k(base, out):
    return _raw_manifest(_copy(base, out, "nested_100k"), "__x__", "[" * 100_000 + "]" * 100_000)


def number_5000_digits(base, out):
    return _raw_manifest(_copy(base, out, "number_5000_digits"), "__x__", "9" * 5_000)


def length_text(base, out):
    import pyarrow as pa
    return _part(_copy(base, out, "length_text"), lambda t: _set(t, "length", t["length"].cast(pa.string())))


def pc1_text(base, out):
    import pyarrow as pa
    return _part(_copy(base, out, "pc1_text"),
                 lambda t: _set(t, "step:pc1", pa.array([str(v) for v in t["step:pc1"].to_pylist()])))


def missing_logits(base, out):
    return _part(_copy(base, out, "missing_logits"), lambda t: t.drop_columns(["logits"]))


def label_out_of_range(base, out):
    import pyarrow as pa

    def edit(t):
        y = t["true"].to_numpy().copy()
        y[0] = 7
        return _set(t, "true", pa.array(y))
    return _part(_copy(base, out, "label_out_of_range"), edit)


def sample_row_1e9(base, out):
    def edit(a):
        a["rows"] = a["rows"].copy()
        a["rows"][0] = 10**9
    return _st(_copy(base, out, "sample_row_1e9"), "samples.safetensors", edit)


def sample_2m_rows(base, out):
    """16 MB of sample rows: 2,000,000 entries (the manifest says so too)."""
    def edit(a):
        a["rows"] = np.resize(a["rows"], 2_000_000).astype(np.int64)
        a["lengths"] = np.resize(a["lengths"], 2_000_000).astype(np.int64)
    path = _st(_copy(base, out, "sample_2m_rows"), "samples.safetensors", edit)
    return _manifest(path, lambda m: m["analysis"]["sample"].update(size=2_000_000))


def padding_file(base, out):
    """An unknown file listed (and signed) in the manifest: 50 MB of padding."""
    return _forge(_copy(base, out, "padding_file"), "padding.bin", b"\0" * 50_000_000)


def zip_duplicate(base, out):
    """A zip holding pca.safetensors twice (zip readers take the last)."""
    return _zip(base, out / "zip_duplicate.rnnviz",
                extra=lambda zf: zf.writestr(zipfile.ZipInfo("pca.safetensors", (1980, 1, 1, 0, 0, 0)), b"{}"))


def zip_encrypted(base, out):
    """A zip whose pca.safetensors entry is flagged encrypted (bit 0 of its flags, both headers)."""
    path = _zip(base, out / "zip_encrypted.rnnviz")
    data = bytearray(path.read_bytes())
    name = b"pca.safetensors"
    for sig, at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = data.find(sig)
        while i >= 0:
            if data[i + name_at:i + name_at + len(name)] == name:
                data[i + at] |= 0x1
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))
    return path


def zip_symlink(base, out):
    def link(info):
        if info.filename == "pca.safetensors":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip(base, out / "zip_symlink.rnnviz", edit_info=link)


def fifo_manifest(base, out):
    """A bundle folder whose manifest.json is a FIFO (would block every reader)."""
    path = _copy(base, out, "fifo_manifest")
    (path / "manifest.json").unlink()
    os.mkfifo(path / "manifest.json")
    return path


def symlink_file(base, out):
    path = _copy(base, out, "symlink_file")
    (path / "pca.safetensors").unlink()
    os.symlink("/etc/passwd", path / "pca.safetensors")
    return path


def sample_state_missing(base, out):
    """samples.safetensors without the hidden state the pages draw (the last layer, forward)."""
    return _st(_copy(base, out, "sample_state_missing"), "samples.safetensors", lambda a: a.pop("trace:rnn.l0.fwd.h"))


def correct_missing(base, out):
    """A labelled classifier's table without its 'correct' column (the Start page's accuracy)."""
    return _part(_copy(base, out, "correct_missing"), lambda t: t.drop_columns(["correct"]))


def long_honest(base, out):
    """Consistent throughout: one sequence of 200,000 steps (every per-step list that long, the
    manifest's longest and the table's statistics agree; no groupings or sample), so the pages'
    per-step arrays would be 60 sequences × 200,000 steps × 7 columns, padded."""
    import pyarrow as pa
    from safetensors.numpy import save

    t_long = 200_000
    path = _copy(base, out, "long_honest")

    def edit(t):
        lens = t["length"].to_numpy().copy()
        lens[0] = t_long
        offsets = pa.array(np.concatenate([[0], np.cumsum(lens)]).astype(np.int32))
        t = _set(t, "length", pa.array(lens))
        for c in [c for c in t.column_names if c.startswith(("step:", "score:"))]:
            t = _set(t, c, pa.ListArray.from_arrays(offsets, pa.array(np.zeros(int(lens.sum()), np.float32))))
        return t
    _part(path, edit)
    _forge(path, "saturation.safetensors", save({"none": np.zeros(1)}))
    (path / "samples.safetensors").unlink()

    def man(m):
        m["data"]["max_length"] = t_long
        m["analysis"]["saturation_groupings"] = {}
        m["analysis"]["sample"]["size"] = 0
        del m["files"]["samples.safetensors"]
    return _manifest(path, man)


def honest(base, out):
    """The valid bundle itself (a control: read by every page)."""
    return _copy(base, out, "honest")


CASES = {f.__name__: f for f in (
    longest_20m, longest_500k, text_bomb, safetensors_1p2m_empty, safetensors_5000_arrays, safetensors_90mb_header,
    parquet_huge_footer, units_nan, units_negative, hidden_1e9, model_string, class_names_5, class_names_duplicate,
    threshold_text, grouping_missing, nested_100k, number_5000_digits, length_text, pc1_text, missing_logits,
    label_out_of_range, sample_row_1e9, sample_2m_rows, padding_file, zip_duplicate, zip_encrypted, zip_symlink,
    fifo_manifest, symlink_file, sample_state_missing, correct_missing,
    long_honest, honest)}


# ------------------------------------------------------------------------- opening in a fresh process
CHILD = textwrap.dedent("""
    import gc, json, sys, time
    import numpy as np
    from rnnviz_core import bundle
    from rnnviz_app.sources import bundle_source as bs
    from rnnviz_app.sources import bundle_view as bv

    def peak_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    def reset():
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def read_as_pages(b):
        # Start, Trajectories, Saturation, Contributions: what their scripts read
        bv.summary(b); bs.bundle_data(b); bs.threshold_message(b); float(b.manifest["analysis"]["threshold"])
        labels = bv.sample_labels(b); bv.sample_states(b); b.paths(); b.norms()
        for key in list(bv.groupings(b)) + [None]:
            b.saturation_over_time(key if key is None else bv.stored_grouping(b, key))
            if key:
                bv.group_labels(b, key)
        rows = list(labels)
        for m in b.methods:
            bv.contribution_frames(b, m, rows[0], rows[-1])

    cases = json.loads(sys.argv[1])
    reset()
    for name, path in cases:
        reset()
        t0 = time.perf_counter()
        try:
            b = bundle.open(path, max_bytes=bs.MAX_BUNDLE_BYTES, max_memory=bs.MAX_BUNDLE_MEMORY)
            read_as_pages(b)
            out = "READ"
            del b
        except bundle.BundleError as e:
            out = "REFUSED " + str(e)
        except Exception as e:
            out = "CRASHED " + type(e).__name__ + ": " + str(e)[:300]
        print(json.dumps([name, out, peak_kb(), time.perf_counter() - t0]), flush=True)
""")


def run_cases(cases: dict[str, Path]) -> dict[str, tuple[str, int, float]]:
    """``{name: (outcome, peak kB, seconds)}``, all in one fresh process (peak reset per case)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps([[k, str(v)] for k, v in cases.items()])],
                       capture_output=True, text=True, timeout=900, env=env, cwd=str(ROOT))
    got = {}
    for line in r.stdout.splitlines():
        if line.startswith("["):
            name, out, peak, secs = json.loads(line)
            got[name] = (out, int(peak), float(secs))
    assert got, (r.stdout[-2000:], r.stderr[-2000:])
    return got
