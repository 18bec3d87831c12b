"""Files built to run code or to break the reader are refused, and nothing in them runs."""
from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch

from rnnviz_core.data import load_data
from rnnviz_core.errors import DataError, ModelFileError
from rnnviz_core.models import ModelConfig, build_model, load_model, save_model


class _Evil:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "code_ran.txt"
    yield m
    assert not m.exists(), "a hostile file ran code"


def _valid_model_bytes(tmp_path) -> bytes:
    torch.manual_seed(0)
    m = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3))
    return save_model(m, tmp_path / "ok.safetensors").read_bytes()


def _torch_save(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def test_the_marker_mechanism_works(tmp_path):
    """Guard against a test that cannot fail: plain pickle.loads DOES run the payload."""
    m = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(_Evil(m)))
    assert m.read_text() == "pwned"


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.safetensors", None])
def test_raw_pickle_with_reduce_is_refused(marker, protocol, name):
    data = pickle.dumps(_Evil(marker), protocol=protocol)
    with pytest.raises(ModelFileError) as e:
        load_model(data, name=name)
    assert "pickle" in str(e.value) and "rv.save_model" in str(e.value)


@pytest.mark.parametrize("protocol", [2, 4])
def test_torch_zip_with_code_in_data_pkl_is_refused(marker, protocol):
    data = _torch_save({"w": torch.zeros(2), "x": _Evil(marker)}, pickle_protocol=protocol)
    with pytest.raises(ModelFileError) as e:
        load_model(data, name="model.pt")
    assert "asks to run code" in str(e.value) and "exec" in str(e.value)


def test_torch_zip_with_hand_crafted_data_pkl_is_refused(marker, tmp_path):
    """A real state-dict archive whose data.pkl was swapped for a payload (protocol 4, STACK_GLOBAL)."""
    good = _torch_save(build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3)).state_dict())
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                payload = pickle.dumps(_Evil(marker), protocol=4)
            dst.writestr(info.filename, payload)
    with pytest.raises(ModelFileError, match="asks to run code"):
        load_model(out.getvalue(), name="model.pt")


def test_torch_zip_with_unparseable_pickle_is_refused(marker):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02garbage that is not a pickle")
        z.writestr("archive/version", b"3\n")
    with pytest.raises(ModelFileError, match="cannot check is safe"):
        load_model(out.getvalue(), name="model.pt")


def test_old_style_torch_save_is_refused(marker):
    data = _torch_save({"w": torch.zeros(2)}, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelFileError, match="raw Python pickle"):
        load_model(data, name="old.pt")


def test_zip_that_is_not_a_torch_file(tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="not a PyTorch weights file"):
        load_model(out.getvalue(), name="model.pt")


def test_truncated_safetensors_is_refused(tmp_path):
    data = _valid_model_bytes(tmp_path)
    (n,) = struct.unpack("<Q", data[:8])
    for cut in (8 + n + 10, len(data) - 1):          # header intact but tensors cut short
        with pytest.raises(ModelFileError, match="damaged or cut short"):
            load_model(data[:cut], name="m.safetensors")
    with pytest.raises(ModelFileError, match="not a model file rnnviz can read"):
        load_model(data[: 8 + n // 2], name="m.safetensors")   # header itself cut short


def test_garbage_header_json_is_refused(tmp_path):
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, ' + b"x" * 20
    data = struct.pack("<Q", len(header)) + header + b"\0" * 8
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(data, name="m.safetensors")


@pytest.mark.parametrize("hidden,needle", [(4096, "do not match its own settings"),
                                           (1_000_000_000, "cannot build")])
def test_metadata_config_that_does_not_match_its_weights(tmp_path, hidden, needle):
    """A crafted config (e.g. a billion units) is checked against the weights before anything is allocated."""
    from safetensors.torch import load, save

    data = _valid_model_bytes(tmp_path)
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n])["__metadata__"]
    cfg = json.loads(meta["config"])
    cfg["hidden_size"] = hidden
    meta["config"] = json.dumps(cfg)
    crafted = save(load(data), metadata=meta)
    with pytest.raises(ModelFileError, match=needle):
        load_model(crafted, name="m.safetensors")


@pytest.mark.parametrize("blob", [b"\x00" * 64, bytes(range(256)) * 4, b"hello world, not a model",
                                  b"\x89PNG\r\n\x1a\n" + b"\0" * 100])
def test_garbage_is_refused(blob):
    with pytest.raises(ModelFileError, match="not a model file rnnviz can read"):
        load_model(blob, name="m.safetensors")


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        load_model(tmp_path / "empty.safetensors")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_data(tmp_path / "empty.csv")


@pytest.mark.parametrize("name", ["model.onnx", "model.pkl", "model.h5", "model", "model.safetensors.exe"])
def test_unknown_model_extension_is_refused(tmp_path, name):
    with pytest.raises(ModelFileError, match="does not read as a model"):
        load_model(_valid_model_bytes(tmp_path), name=name)


@pytest.mark.parametrize("name", ["data.xlsx", "data.pkl", "data.json", "data"])
def test_unknown_data_extension_is_refused(name):
    with pytest.raises(DataError, match="does not read"):
        load_data(b"id,step,x\n1,1,0.5\n", name=name)


def test_model_size_limit(tmp_path, monkeypatch):
    import rnnviz_core.models as models

    data = _valid_model_bytes(tmp_path)
    monkeypatch.setattr(models, "MAX_MODEL_BYTES", len(data) - 1)
    (tmp_path / "big.safetensors").write_bytes(data)
    with pytest.raises(ModelFileError, match="larger than"):
        models.load_model(tmp_path / "big.safetensors")


def test_npz_with_pickled_object_array_is_refused(marker):
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((2, 3, 1), np.float32), ids=np.array([_Evil(marker), "b"], dtype=object))
    with pytest.raises(DataError, match="holds Python objects"):
        load_data(buf.getvalue(), name="data.npz")


def test_npy_pickle_posing_as_npz_is_refused(marker):
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError):
        load_data(buf.getvalue(), name="data.npz")


def test_binary_garbage_posing_as_csv_is_refused():
    with pytest.raises(DataError, match="not a CSV"):
        load_data(bytes(range(256)) * 8, name="data.csv")


def test_zip_bombs_are_refused_before_unpacking(monkeypatch):
    import rnnviz_core.data as data_mod
    import rnnviz_core.models as models

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 5_000_000)          # 5 MB of zeros packs to a few kB
    assert len(out.getvalue()) < 50_000
    monkeypatch.setattr(models, "MAX_MODEL_BYTES", 1_000_000)
    with pytest.raises(ModelFileError, match="unpacks to more than"):
        models.load_model(out.getvalue(), name="bomb.pt")
    buf = io.BytesIO()
    np.savez_compressed(buf, X=np.zeros((500, 100, 10), np.float32))   # 2 MB unpacked
    monkeypatch.setattr(data_mod, "MAX_DATA_BYTES", 500_000)
    with pytest.raises(DataError, match="unpacks to"):
        data_mod.load_data(buf.getvalue(), name="bomb.npz")


def test_parquet_row_limit_is_checked_from_metadata(monkeypatch, tmp_path):
    import pandas as pd
    import rnnviz_core.data as data_mod

    pd.DataFrame({"id": np.arange(100) // 10, "x": np.zeros(100)}).to_parquet(tmp_path / "d.parquet")
    monkeypatch.setattr(data_mod, "MAX_ROWS", 50)
    with pytest.raises(DataError, match="has 100 rows"):
        data_mod.load_data(tmp_path / "d.parquet")


def test_state_dict_torch_cannot_read_safely_is_refused_plainly():
    """torch 2.13's weights-only reader does not take pickle protocol 4: say how to re-save, no torch jargon."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3)).eval()
    data = _torch_save(model.state_dict(), pickle_protocol=4)
    try:
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            loaded = load_model(data, name="m.pt")
    except ModelFileError as e:
        assert "could not be read as plain PyTorch weights" in str(e) and "weights_only" not in str(e)
    else:   # a later torch may read it: then it must be the same model
        x = torch.randn(2, 4, 2)
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("make,code", [
    (lambda tmp: pickle.dumps({"a": 1}), "unsafe_file"),
    (lambda tmp: _torch_save(torch.nn.Linear(2, 2)), "unsafe_file"),
    (lambda tmp: _valid_model_bytes(tmp)[:-4], "damaged"),
    (lambda tmp: b"hello world, not a model", "wrong_format"),
    (lambda tmp: _torch_save({"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)}), "unsupported_layout"),
    (lambda tmp: _torch_save({"rnn.weight_ih_l0": torch.zeros(3, 2, dtype=torch.int8)}), "bad_weights"),
])
def test_model_file_refusals_carry_a_code_and_the_model_field(make, code, tmp_path):
    """The app points at the model uploader and can tell kinds of refusal apart without parsing text."""
    with pytest.raises(ModelFileError) as e:
        load_model(make(tmp_path), name="m.pt")
    assert e.value.field == "model" and e.value.code == code, (e.value.code, str(e.value))


def test_zip_whose_index_overstates_a_member_is_refused():
    """A stored member whose index claims more bytes than it holds: torch would size its buffer by the claim."""
    good = _torch_save(build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3)).state_dict())
    raw = bytearray(good)
    zf = zipfile.ZipFile(io.BytesIO(good))
    info = next(i for i in zf.infolist() if i.filename.endswith("/version"))
    pos = 0
    while (pos := raw.find(b"PK\x01\x02", pos)) != -1:
        n = struct.unpack("<H", raw[pos + 28:pos + 30])[0]
        if raw[pos + 46:pos + 46 + n] == info.filename.encode():
            raw[pos + 24:pos + 28] = struct.pack("<I", 150_000_000)   # claims 150 MB
        pos += 4
    with pytest.raises(ModelFileError, match="damaged archive"):
        load_model(bytes(raw), name="m.pt")
