"""Hostile model files (issue 13's reproducers) are refused within 1 GB peak memory.

Each file is made here the way an attacker would make it, then loaded by ``rv.load_model`` in
a separate Python process. Its peak resident memory is read from ``/proc/self/status``
(``VmHWM``), reset before each file by writing 5 to ``/proc/self/clear_refs`` so one process can
measure every file (where that reset is not allowed, each file gets a fresh process and
``ru_maxrss``). Before the fixes these files cost 2-25 GB or hung the server; a refusal must
now come with a plain sentence and the whole process (Python + torch, about 0.3 GB) must stay
under 1 GB while it reads the file.
"""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnviz_core.models import ModelConfig, build_model, save_model

LIMIT_KB = 1024 * 1024          # 1 GB, as ru_maxrss counts (kB on Linux)
ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent("""
    import gc, json, resource, sys
    import rnnviz_core.models as m

    def peak_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    def reset():
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    paths = sys.argv[1:]
    try:
        reset()
        per_file = True
    except OSError:
        per_file = False
        paths = paths[:1]
    for path in paths:
        if per_file:
            reset()
        try:
            m.load_model(path)
            out = "LOADED"
        except m.ModelFileError as e:
            out = "REFUSED " + str(e)
        except Exception as e:                      # anything else is a bug: say what
            out = "CRASHED " + type(e).__name__ + ": " + str(e)[:300]
        peak = peak_kb() if per_file else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps([path, out, peak]), flush=True)
""")


def _run_files(paths: list[Path]) -> dict[str, tuple[str, int]]:
    """{path: (outcome, peak kB)}; one process for all files where the peak can be reset."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    todo, done = [str(p) for p in paths], {}
    while todo:
        r = subprocess.run([sys.executable, "-c", _CHILD, *todo], capture_output=True, text=True,
                           timeout=600, env=env, cwd=str(ROOT))
        got = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("[")]
        assert got, (r.stdout[-2000:], r.stderr[-2000:])
        for path, out, peak in got:
            done[path] = (out, int(peak))
        todo = [p for p in todo if p not in done]
    return done


# ------------------------------------------------------------------------- the reproducers
def _rnnviz_file(tmp: Path, **cfg) -> bytes:
    torch.manual_seed(0)
    m = build_model(ModelConfig(cell="GRU", input_size=4, hidden_size=16, **cfg))
    return save_model(m, tmp / "ok.safetensors").read_bytes()


def _with_metadata(data: bytes, edit) -> bytes:
    from safetensors.torch import load, save

    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n])["__metadata__"]
    cfg = json.loads(meta["config"])
    edit(cfg, meta)
    meta["config"] = json.dumps(cfg)
    return save(load(data), metadata=meta)


def _with_tensors(data: bytes, edit) -> bytes:
    from safetensors.torch import load, save

    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n])["__metadata__"]
    tensors = load(data)
    edit(tensors)
    return save(tensors, metadata=meta)


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def make_num_outputs_1e9(tmp: Path) -> bytes:
    """16 kB: metadata says a billion classes, with no class names (was: 7 GB and a hung server)."""
    def edit(cfg, meta):
        cfg["num_outputs"] = 1_000_000_000
        meta["class_names"] = "null"
    return _with_metadata(_rnnviz_file(tmp), edit)


def make_input_size_1e9(tmp: Path) -> bytes:
    def edit(cfg, meta):
        cfg["input_size"] = 1_000_000_000
        meta["feature_names"] = "null"
    return _with_metadata(_rnnviz_file(tmp), edit)


def make_huge_layers_in_metadata(tmp: Path) -> bytes:
    return _with_metadata(_rnnviz_file(tmp), lambda cfg, meta: cfg.update(num_layers=100_000))


def make_98mb_header(tmp: Path) -> bytes:
    """A valid safetensors file whose JSON header is 98 MB of metadata (was: 3 GB)."""
    header = {"__metadata__": {"pad": "x" * 98_000_000},
              "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"\0" * 8


def make_stray_layer_999(tmp: Path) -> bytes:
    """A 190 kB state dict with one stray key rnn.weight_ih_l999 (was: 1000 layers, +1.5 GB)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(8, 64, batch_first=True)
            self.fc = nn.Linear(64, 3)
    sd = Net().state_dict()
    sd["rnn.weight_ih_l999"] = torch.zeros(192, 64)
    return _torch_bytes(sd)


def make_zero_size_tensor(tmp: Path) -> bytes:
    """A few hundred bytes: an empty tensor of shape [0, 3e7] (was: 3.2 GB)."""
    return _torch_bytes({"rnn.weight_ih_l0": torch.empty(0, 30_000_000), "rnn.weight_hh_l0": torch.empty(0, 0),
                         "fc.weight": torch.empty(2, 0), "fc.bias": torch.empty(2)})


def make_zero_rows_head(tmp: Path) -> bytes:
    sd = {"rnn.weight_ih_l0": torch.zeros(3, 2), "rnn.weight_hh_l0": torch.zeros(3, 1),
          "fc.weight": torch.empty(30_000_000, 0), "fc.bias": torch.empty(0)}
    return _torch_bytes(sd)


def make_understated_zip(tmp: Path) -> bytes:
    """A ~0.3 MB torch zip holding 300 MB of zeros while its headers say 1 kB (was: +2 GB)."""
    good = _torch_bytes(nn.GRU(2, 3).state_dict())
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        zi = zipfile.ZipInfo("archive/data/99")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(zi, "w", force_zip64=False) as w:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                w.write(chunk)
    raw = bytearray(out.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("archive/data/99")
    assert info.file_size == 300 << 20
    small = struct.pack("<I", 1024)
    raw[info.header_offset + 22:info.header_offset + 26] = small          # local header: uncompressed size
    pos = 0
    while (pos := raw.find(b"PK\x01\x02", pos)) != -1:                 # central directory entries
        n = struct.unpack("<H", raw[pos + 28:pos + 30])[0]
        if raw[pos + 46:pos + 46 + n] == b"archive/data/99":
            raw[pos + 24:pos + 28] = small
        pos += 4
    assert zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("archive/data/99").file_size == 1024
    return bytes(raw)


def make_int8_weights(tmp: Path) -> bytes:
    """Weights of int8 dtype: the normalisation divisor became 0 (all-NaN outputs, 27.1% shown)."""
    data = _rnnviz_file(tmp)
    def edit(t):
        for k in list(t):
            t[k] = t[k].to(torch.int8)
    return _with_tensors(data, edit)


def make_uint8_norm(tmp: Path) -> bytes:
    torch.manual_seed(0)
    m = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3),
                    normalization={"mean": [0.1, 0.2], "std": [0.5, 0.25]})
    data = save_model(m, tmp / "n.safetensors").read_bytes()
    def edit(t):
        t["norm_std"] = t["norm_std"].to(torch.uint8)
    return _with_tensors(data, edit)


def make_nan_weights(tmp: Path) -> bytes:
    def edit(t):
        t["rnn.weight_hh_l0"][0, 0] = float("nan")
    return _with_tensors(_rnnviz_file(tmp), edit)


def make_inf_normalisation(tmp: Path) -> bytes:
    def edit(t):
        t["norm_std"][1] = float("inf")
    return _with_tensors(_rnnviz_file(tmp), edit)


def make_zero_std(tmp: Path) -> bytes:
    def edit(t):
        t["norm_std"][0] = 0.0
    return _with_tensors(_rnnviz_file(tmp), edit)


def make_nan_state_dict(tmp: Path) -> bytes:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)
            self.linear = nn.Linear(4, 2)
    sd = Net().state_dict()
    sd["linear.bias"][1] = float("inf")
    return _torch_bytes(sd)


HOSTILE = {   # name -> (maker, file name, words the refusal must contain)
    "num_outputs=1e9 metadata": (make_num_outputs_1e9, "m.safetensors", "num_outputs"),
    "input_size=1e9 metadata": (make_input_size_1e9, "m.safetensors", "input_size"),
    "num_layers=1e5 metadata": (make_huge_layers_in_metadata, "m.safetensors", "num_layers"),
    "98 MB JSON header": (make_98mb_header, "m.safetensors", "header"),
    "stray weight_ih_l999": (make_stray_layer_999, "m.pt", "layers 0, 999"),
    "[0, 3e7] tensor": (make_zero_size_tensor, "m.pt", "empty weight"),
    "[3e7, 0] head": (make_zero_rows_head, "m.pt", "empty weight"),
    "understated zip headers": (make_understated_zip, "m.pt", "damaged archive"),
    "int8 weights": (make_int8_weights, "m.safetensors", "int8"),
    "uint8 normalisation": (make_uint8_norm, "m.safetensors", "uint8"),
    "NaN weights": (make_nan_weights, "m.safetensors", "NaN"),
    "inf normalisation": (make_inf_normalisation, "m.safetensors", "infinite"),
    "zero std normalisation": (make_zero_std, "m.safetensors", "divide by zero"),
    "inf in a state dict": (make_nan_state_dict, "m.pt", "infinite"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every hostile file in its own process (a few at a time) and collect (output, peak kB)."""
    tmp = tmp_path_factory.mktemp("hostile")
    paths = {}
    for key, (maker, fname, _) in HOSTILE.items():
        d = tmp / key.replace(" ", "_").replace("/", "_").replace("[", "").replace("]", "").replace(",", "")
        d.mkdir()
        p = d / fname
        p.write_bytes(maker(d))
        paths[key] = p
    done = _run_files(list(paths.values()))
    return {k: done[str(p)] for k, p in paths.items()}


@pytest.mark.parametrize("key", list(HOSTILE))
def test_hostile_model_file_is_refused_within_1_gb(key, results):
    out, peak_kb = results[key]
    needle = HOSTILE[key][2]
    assert out.startswith("REFUSED "), (key, out)
    assert needle in out, (key, out)
    assert "Traceback" not in out and "RuntimeError" not in out, (key, out)
    assert peak_kb < LIMIT_KB, f"{key}: peak {peak_kb / 1024:.0f} MB"


def test_the_peak_memory_measure_sees_an_allocation(tmp_path):
    """Guard against a measure that cannot fail: a child that allocates 400 MB shows it."""
    # a "load" that allocates 1.2 GB, twice: each file's measure must report it, the second too
    code = _CHILD.replace("m.load_model(path)", "import torch; x = torch.ones(300_000_000); del x")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code, "a", "b"], capture_output=True, text=True, timeout=300,
                       env=env, cwd=str(ROOT))
    peaks = [json.loads(line)[2] for line in r.stdout.splitlines() if line.startswith("[")]
    assert peaks and all(p > LIMIT_KB for p in peaks), (peaks, r.stderr[-1000:])


def test_reproducer_files_are_as_small_as_reported(tmp_path):
    """The attack needs no big upload: these files are tiny (the header one is 98 MB by design)."""
    assert len(make_num_outputs_1e9(tmp_path)) < 20_000
    assert len(make_stray_layer_999(tmp_path)) < 250_000
    assert len(make_zero_size_tensor(tmp_path)) < 4_000
    assert len(make_understated_zip(tmp_path)) < 2_000_000
