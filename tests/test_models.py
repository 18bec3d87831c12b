"""rnnviz_core.models: the built-in family, save/load round trips, state-dict inference."""
from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.errors import InputError, ModelError, ModelFileError
from rnnviz_core.models import ModelConfig, RecurrentModel, build_model, infer_config, load_model, save_model

CONFIGS = {
    "gru": ModelConfig(cell="GRU", input_size=3, hidden_size=5),
    "lstm-2layer-bi-mlp": ModelConfig(cell="LSTM", input_size=3, hidden_size=5, num_layers=2,
                                      bidirectional=True, head="mlp", head_hidden=4, num_outputs=3),
    "lstm-proj-bi": ModelConfig(cell="LSTM", input_size=3, hidden_size=6, proj_size=2, bidirectional=True),
    "rnn-tanh-3layer": ModelConfig(cell="RNN_TANH", input_size=3, hidden_size=4, num_layers=3, num_outputs=4),
    "rnn-relu-linear-enc-regression": ModelConfig(cell="RNN_RELU", input_size=3, hidden_size=5, encoder="linear",
                                                  encoder_size=6, task="regression", num_outputs=1),
    "gru-bi-regression-2targets": ModelConfig(cell="GRU", input_size=3, hidden_size=5, bidirectional=True,
                                              task="regression", num_outputs=2),
    "gru-embedding": ModelConfig(cell="GRU", input_size=1, hidden_size=5, encoder="embedding",
                                 encoder_size=4, vocab_size=10),
    "gru-nobias": ModelConfig(cell="GRU", input_size=3, hidden_size=5, rnn_bias=False),
}


def _inputs(cfg: ModelConfig, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if cfg.encoder == "embedding":
        x = torch.randint(0, cfg.vocab_size, (4, 7, 1), generator=g).float()
    else:
        x = torch.randn(4, 7, cfg.input_size, generator=g)
    return x, torch.tensor([7, 3, 1, 5])


def _built(key: str) -> RecurrentModel:
    cfg = CONFIGS[key]
    torch.manual_seed(0)
    norm = None if cfg.encoder == "embedding" else {"mean": [0.5] * cfg.input_size, "std": [2.0] * cfg.input_size}
    names = [f"c{i}" for i in range(cfg.num_outputs)] if cfg.task == "classification" else None
    return build_model(cfg, class_names=names, feature_names=[f"f{i}" for i in range(cfg.input_size)],
                       normalization=norm).eval()


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_save_load_round_trip_gives_identical_logits(key, tmp_path):
    model = _built(key)
    x, lengths = _inputs(model.config)
    before = model(x, lengths)
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert not loaded.training, key
    assert loaded.config == model.config, key
    assert loaded.class_names == model.class_names and loaded.feature_names == model.feature_names, key
    assert loaded.notes == [], key
    assert torch.equal(loaded(x, lengths), before), key
    assert torch.equal(loaded(x), model(x)), key
    # bytes and file-like objects (what an upload gives) load the same
    data = path.read_bytes()
    assert torch.equal(load_model(data, name="m.safetensors")(x, lengths), before), key
    assert torch.equal(load_model(io.BytesIO(data))(x, lengths), before), key


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_output_shape_and_padding_never_reaches_the_recurrence(key):
    model = _built(key)
    cfg = model.config
    x, lengths = _inputs(cfg)
    out = model(x, lengths)
    expected = (4,) if cfg.task == "regression" and cfg.num_outputs == 1 else (4, cfg.num_outputs)
    assert out.shape == expected, key
    junk = x.clone()
    for i, L in enumerate(lengths.tolist()):
        junk[i, L:] = 7.0 if cfg.encoder != "embedding" else 9.0
    assert torch.allclose(model(junk, lengths), out, atol=0, rtol=0), key
    # each sequence alone, unpadded, gives the same output as inside the padded batch
    for i, L in enumerate(lengths.tolist()):
        alone = model(x[i:i + 1, :L])
        assert torch.allclose(alone, out[i:i + 1], atol=1e-6), (key, i)


def test_head_reads_final_states_by_hand():
    """readout "h_n", bidirectional: head input = fwd state at last valid step ++ bwd state at step 0."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3, bidirectional=True,
                                    readout="h_n")).eval()
    x = torch.randn(1, 5, 2)
    L = 3
    out_seq, _ = model.rnn(x[:, :L])                                   # (1, 3, 6) unpadded run
    final = torch.cat([out_seq[0, L - 1, :3], out_seq[0, 0, 3:]])
    assert torch.allclose(model(x, torch.tensor([L]))[0], model.head(final), atol=1e-6)


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
@pytest.mark.parametrize("readout", ["last", "h_n", "mean", "max"])
def test_every_readout_by_hand_on_an_unpadded_run(cell, readout):
    """Each readout computed by hand from nn.GRU/nn.LSTM run on each sequence alone (no padding)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(cell=cell, input_size=2, hidden_size=3, num_layers=2, bidirectional=True,
                                    readout=readout)).eval()
    x = torch.randn(3, 6, 2)
    lengths = torch.tensor([6, 2, 4])
    got = model(x, lengths)
    for i, L in enumerate(lengths.tolist()):
        out_seq, h = model.rnn(x[i:i + 1, :L])                           # (1, L, 6)
        h_n = h[0] if isinstance(h, tuple) else h                          # (4, 1, 3)
        ref = {"last": out_seq[0, L - 1],
               "h_n": torch.cat([h_n[-2, 0], h_n[-1, 0]]),
               "mean": out_seq[0].mean(0),
               "max": out_seq[0].max(0).values}[readout]
        assert torch.allclose(got[i], model.head(ref), atol=1e-6), (cell, readout, i)
    # without lengths every step is real
    out_seq, h = model.rnn(x)
    if readout == "mean":
        assert torch.allclose(model(x), model.head(out_seq.mean(1)), atol=1e-6)


def test_readout_last_and_h_n_differ_only_when_bidirectional():
    torch.manual_seed(0)
    x, lengths = torch.randn(3, 5, 2), torch.tensor([5, 3, 1])
    for bi in (False, True):
        m = build_model(ModelConfig(cell="LSTM", input_size=2, hidden_size=3, bidirectional=bi)).eval()
        same = torch.allclose(m(x, lengths), rv.models.with_readout(m, "h_n")(x, lengths), atol=1e-6)
        assert same is (not bi), bi


def test_with_readout_and_class_names_share_parameters_and_leave_the_model_alone():
    from rnnviz_core.models import with_class_names, with_readout

    torch.manual_seed(0)
    m = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3, bidirectional=True, num_outputs=3)).eval()
    x = torch.randn(2, 4, 2)
    before = m(x).detach().clone()
    r = with_readout(m, "mean")
    n = with_class_names(m, ["b", "c", "a"])
    assert m.config.readout == "last" and r.config.readout == "mean" and n.config.readout == "last"
    assert m.class_names == ["class 0", "class 1", "class 2"] and n.class_names == ["b", "c", "a"]
    assert torch.equal(m(x), before) and torch.equal(n(x), before) and not torch.equal(r(x), before)
    assert r.rnn is m.rnn and r.head.weight is m.head.weight and n.norm_mean is m.norm_mean
    assert not r.training
    with torch.no_grad():                            # shared: a change to one is seen by the other
        m.head.bias.add_(1.0)
    assert torch.equal(n(x), m(x))
    with pytest.raises(ModelError, match="readout 'pool'"):
        with_readout(m, "pool")
    with pytest.raises(ModelError, match="3 class names|Got 2 class names"):
        with_class_names(m, ["a", "b"])
    with pytest.raises(ModelError, match="different"):
        with_class_names(m, ["a", "a", "b"])


def test_v1_files_without_readout_load_as_h_n(tmp_path):
    """A file written before the readout setting existed keeps reading h_n (what rnnviz v1 did)."""
    from safetensors.torch import load, save

    torch.manual_seed(0)
    m = build_model(ModelConfig(cell="GRU", input_size=2, hidden_size=3, bidirectional=True, readout="h_n")).eval()
    data = save_model(m, tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n])["__metadata__"]
    cfg = json.loads(meta["config"])
    del cfg["readout"]
    meta["config"] = json.dumps(cfg)
    loaded = load_model(save(load(data), metadata=meta), name="v1.safetensors")
    assert loaded.config.readout == "h_n"
    x, lengths = torch.randn(3, 5, 2), torch.tensor([5, 2, 4])
    assert torch.equal(loaded(x, lengths), m(x, lengths))
    # and a file that records its readout keeps it
    assert load_model(save_model(rv.models.with_readout(m, "max"), tmp_path / "x.safetensors")).config.readout == "max"


def test_normalisation_is_applied_inside_forward():
    torch.manual_seed(0)
    cfg = ModelConfig(cell="GRU", input_size=2, hidden_size=3)
    plain = build_model(cfg).eval()
    normed = build_model(cfg, normalization={"mean": [1.0, -2.0], "std": [2.0, 0.5]}).eval()
    normed.load_state_dict({**plain.state_dict(), "norm_mean": torch.tensor([1.0, -2.0]),
                            "norm_std": torch.tensor([2.0, 0.5])})
    x = torch.randn(3, 4, 2)
    expected = plain((x - torch.tensor([1.0, -2.0])) / torch.tensor([2.0, 0.5]))
    assert torch.allclose(normed(x), expected, atol=1e-6)
    assert normed.normalization == {"mean": [1.0, -2.0], "std": [2.0, 0.5]}
    assert plain.normalization is None


def test_metadata_is_json_with_format_version(tmp_path):
    model = _built("gru")
    path = save_model(model, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + n])["__metadata__"]
    assert meta["rnnviz_format"] == "1"
    assert json.loads(meta["config"])["cell"] == "GRU"
    assert json.loads(meta["class_names"]) == ["c0", "c1"]
    assert json.loads(meta["feature_names"]) == ["f0", "f1", "f2"]
    assert json.loads(meta["normalization"]) == {"mean": [0.5] * 3, "std": [2.0] * 3}


def test_public_names_are_exported():
    assert rv.load_model is load_model and rv.save_model is save_model
    assert rv.ModelConfig is ModelConfig and rv.build_model is build_model


# ------------------------------------------------------------------ state-dict inference
def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_own_state_dict_loads_with_inferred_architecture(key):
    model = _built(key)
    x, lengths = _inputs(model.config)
    loaded = load_model(_torch_bytes(model.state_dict()), name="m.pt")
    cfg = model.config
    # what shapes cannot tell: RNN_RELU is read as RNN_TANH unless the module is named so
    expected_cell = "RNN_TANH" if cfg.cell == "RNN_RELU" else cfg.cell
    assert loaded.config.cell == expected_cell, key
    # and the task: one output reads as regression, several as classification
    assert loaded.config.task == ("regression" if cfg.num_outputs == 1 else "classification"), key
    for f in ("hidden_size", "num_layers", "bidirectional", "proj_size", "encoder", "head", "num_outputs",
              "rnn_bias", "input_size"):
        assert getattr(loaded.config, f) == getattr(cfg, f), (key, f)
    if cfg.cell != "RNN_RELU":
        assert torch.equal(loaded(x, lengths), model(x, lengths)), key
    else:
        assert not torch.equal(loaded(x, lengths), model(x, lengths)), key


class HandGRU(nn.Module):
    """What people write by hand: other module names, a two-layer MLP head."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, num_layers=2, batch_first=True)
        self.fc1 = nn.Linear(8, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.fc2(torch.relu(self.fc1(h[-1])))


class HandLSTMWithEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_proj = nn.Linear(5, 7)
        self.lstm = nn.LSTM(7, 6, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(12, 4)

    def forward(self, x):
        _, (h, _) = self.lstm(torch.relu(self.input_proj(x)))
        return self.classifier(torch.cat([h[0], h[1]], dim=-1))


@pytest.mark.parametrize("cls,shape", [(HandGRU, (2, 9, 4)), (HandLSTMWithEncoder, (2, 9, 5))])
def test_hand_built_state_dicts_are_inferred(cls, shape):
    torch.manual_seed(0)
    hand = cls().eval()
    x = torch.randn(*shape)
    loaded = load_model(_torch_bytes(hand.state_dict()), name="hand.pt")
    assert loaded.inferred and loaded.config.readout == "last", cls.__name__
    # both read h_n; the default "last" is the same thing for a one-direction layer only
    if loaded.config.bidirectional:
        assert not torch.allclose(loaded(x), hand(x), atol=1e-6), cls.__name__
        loaded = rv.models.with_readout(loaded, "h_n")
    assert torch.allclose(loaded(x), hand(x), atol=1e-6), cls.__name__
    assert any("assumed to use ReLU" in n for n in loaded.notes), cls.__name__
    assert any("No input normalisation" in n for n in loaded.notes), cls.__name__


def test_wrapped_checkpoint_and_prefixes_are_unwrapped():
    torch.manual_seed(0)
    hand = HandGRU().eval()
    sd = {"module." + k: v for k, v in hand.state_dict().items()}
    ckpt = {"epoch": 7, "model_state_dict": sd, "optimizer": {"lr": 0.1}}
    loaded = load_model(_torch_bytes(ckpt), name="ckpt.pth")
    x = torch.randn(2, 5, 4)
    assert torch.allclose(loaded(x), hand(x), atol=1e-6)


def test_plain_safetensors_state_dict_is_inferred(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hand = HandLSTMWithEncoder().eval()
    save_file({k: v.contiguous() for k, v in hand.state_dict().items()}, str(tmp_path / "w.safetensors"))
    loaded = rv.models.with_readout(load_model(tmp_path / "w.safetensors"), "h_n")   # it reads h_n
    x = torch.randn(3, 4, 5)
    assert torch.allclose(loaded(x), hand(x), atol=1e-6)


def test_embedding_state_dict_is_inferred():
    class Tok(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 5)
            self.rnn = nn.GRU(5, 4, batch_first=True)
            self.out = nn.Linear(4, 2)

    cfg, _ = infer_config(Tok().state_dict())
    assert (cfg.encoder, cfg.vocab_size, cfg.encoder_size, cfg.input_size) == ("embedding", 20, 5, 1)


class TwoRNNs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.GRU(3, 4, batch_first=True)
        self.b = nn.GRU(4, 4, batch_first=True)
        self.head = nn.Linear(4, 2)


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.norm = nn.LayerNorm(4)
        self.norm.weight.data = torch.randn(4)   # not a 2-D weight: not a Linear layer
        self.head = nn.Linear(4, 2)


class NoRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)


class BareGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, 4))     # a top-level parameter, no module name
        self.gru = nn.GRU(3, 4, batch_first=True)


class HeadTooDeep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.h1, self.h2, self.h3 = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)


@pytest.mark.parametrize("cls,needle", [
    (TwoRNNs, "several recurrent modules"),
    (WithLayerNorm, "weights the built-in model family does not have ('norm'"),
    (NoRNN, "no recurrent layer"),
    (HeadTooDeep, "do not match the built-in family"),
    (BareGRU, "do not match the built-in family"),
])
def test_state_dicts_outside_the_family_are_explained(cls, needle):
    with pytest.raises(ModelFileError) as e:
        load_model(_torch_bytes(cls().state_dict()), name="m.pt")
    assert needle in str(e.value), str(e.value)
    assert "load_model_from_factory" in str(e.value) or "rnnviz needs" in str(e.value)


def test_whole_pickled_model_is_refused_with_how_to_resave():
    with pytest.raises(ModelFileError) as e:
        load_model(_torch_bytes(HandGRU()), name="whole.pt")
    msg = str(e.value)
    assert "whole pickled model" in msg and "rv.save_model(model, 'model.safetensors')" in msg


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_is_refused(tmp_path):
    scripted = torch.jit.script(nn.Linear(2, 2))
    p = tmp_path / "scripted.pt"
    torch.jit.save(scripted, str(p))
    with pytest.raises(ModelFileError, match="TorchScript"):
        load_model(p)


# ----------------------------------------------------------------------------- factory
def make_hand_gru():           # used via "tests.test_models:make_hand_gru"
    torch.manual_seed(1)
    return HandGRU()


def test_load_model_from_factory(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    from rnnviz_core.models import load_model_from_factory

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    torch.manual_seed(0)
    trained = HandGRU().eval()
    save_file(dict(trained.state_dict()), str(tmp_path / "w.safetensors"))
    model = load_model_from_factory("test_models:make_hand_gru", tmp_path / "w.safetensors")
    x = torch.randn(2, 3, 4)
    assert not model.training and torch.equal(model(x), trained(x))
    with pytest.raises(ModelError, match="module:function"):
        load_model_from_factory("no_colon_here")
    with pytest.raises(ModelError, match="Could not find"):
        load_model_from_factory("test_models:nope")


# ---------------------------------------------------------------------- config errors
@pytest.mark.parametrize("kwargs,needle", [
    (dict(cell="LSTMX"), "cell type 'LSTMX' is not supported"),
    (dict(hidden_size=0), "hidden_size must be a whole number of at least 1"),
    (dict(encoder="conv"), "encoder 'conv' is not supported"),
    (dict(encoder="embedding", encoder_size=3, vocab_size=0), "vocab_size >= 1"),
    (dict(head="mlp"), "head_hidden"),
    (dict(task="classification", num_outputs=1), "at least 2 classes"),
    (dict(cell="GRU", proj_size=2), "proj_size works only with an LSTM"),
])
def test_config_errors_are_plain(kwargs, needle):
    with pytest.raises(ModelError) as e:
        ModelConfig(**kwargs)
    assert needle in str(e.value)


def test_forward_input_errors():
    model = _built("gru")
    with pytest.raises(InputError, match=r"expects sequences shaped \[N, T, 3\]"):
        model(torch.zeros(2, 4, 5))
    with pytest.raises(InputError, match="between 1 and the padded length 4"):
        model(torch.zeros(2, 4, 3), torch.tensor([0, 4]))
    emb = _built("gru-embedding")
    with pytest.raises(InputError, match="from 0 to 9"):
        emb(torch.full((1, 3, 1), 12.0))


def test_save_refuses_foreign_models_and_wrong_endings(tmp_path):
    with pytest.raises(ModelError, match="load_model_from_factory"):
        save_model(HandGRU(), tmp_path / "m.safetensors")
    with pytest.raises(ModelError, match=".safetensors"):
        save_model(_built("gru"), tmp_path / "m.pt")


# ------------------------------------------------- tutorial-shaped models, saved as users save them
class TutorialGRU(nn.Module):
    """The PyTorch-tutorial shape: attributes gru/fc, reads out[:, -1]."""

    def __init__(self, f=3, h=8, c=3, rnn_name="gru", head_name="fc"):
        super().__init__()
        self.rnn_name, self.head_name = rnn_name, head_name
        setattr(self, rnn_name, nn.GRU(f, h, batch_first=True))
        setattr(self, head_name, nn.Linear(h, c))

    def forward(self, x):
        out, _ = getattr(self, self.rnn_name)(x)
        return getattr(self, self.head_name)(out[:, -1])


class TutorialLSTM(nn.Module):
    """attributes lstm/linear, two layers, reads h[-1]."""

    def __init__(self, f=3, h=8, c=3, rnn_name="lstm", head_name="linear"):
        super().__init__()
        self.rnn_name, self.head_name = rnn_name, head_name
        setattr(self, rnn_name, nn.LSTM(f, h, num_layers=2, batch_first=True))
        setattr(self, head_name, nn.Linear(h, c))

    def forward(self, x):
        _, (h, _) = getattr(self, self.rnn_name)(x)
        return getattr(self, self.head_name)(h[-1])


class TutorialBiGRUMean(nn.Module):
    """bidirectional GRU, mean pooling over time, then a classifier."""

    def __init__(self, f=3, h=8, c=3, rnn_name="gru", head_name="classifier"):
        super().__init__()
        self.rnn_name, self.head_name = rnn_name, head_name
        setattr(self, rnn_name, nn.GRU(f, h, batch_first=True, bidirectional=True))
        setattr(self, head_name, nn.Linear(2 * h, c))

    def forward(self, x):
        out, _ = getattr(self, self.rnn_name)(x)
        return getattr(self, self.head_name)(out.mean(dim=1))


class TutorialBiLSTMMax(nn.Module):
    """bidirectional LSTM, max pooling over time."""

    def __init__(self, f=3, h=8, c=3, rnn_name="lstm", head_name="out"):
        super().__init__()
        self.rnn_name, self.head_name = rnn_name, head_name
        setattr(self, rnn_name, nn.LSTM(f, h, batch_first=True, bidirectional=True))
        setattr(self, head_name, nn.Linear(2 * h, c))

    def forward(self, x):
        out, _ = getattr(self, self.rnn_name)(x)
        return getattr(self, self.head_name)(out.max(dim=1).values)


class TutorialTextLSTM(nn.Module):
    """The text-classification tutorial shape: embedding -> LSTM -> fc on h[-1]; x is int64 ids [N, T]."""

    def __init__(self, vocab=30, e=6, h=8, c=2, emb_name="embedding", rnn_name="lstm", head_name="fc"):
        super().__init__()
        self.names = (emb_name, rnn_name, head_name)
        setattr(self, emb_name, nn.Embedding(vocab, e, padding_idx=0))
        setattr(self, rnn_name, nn.LSTM(e, h, batch_first=True))
        setattr(self, head_name, nn.Linear(h, c))

    def forward(self, x):
        emb, rnn, head = (getattr(self, n) for n in self.names)
        _, (h, _) = rnn(emb(x))
        return head(h[-1])


def _train_tiny(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 25) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _toy_data(text: bool = False, n: int = 64, t: int = 9):
    g = torch.Generator().manual_seed(3)
    if text:
        x = torch.randint(1, 30, (n, t), generator=g)
        y = (x[:, :3].sum(1) > 45).long()
    else:
        x = torch.randn(n, t, 3, generator=g)
        y = (x[:, :, 0].sum(1) > 0).long() + (x[:, -1, 1] > 0.5).long()
    return x, y


TUTORIALS = {   # id -> (class, kwargs, readout the user's head uses)
    "gru-fc-last": (TutorialGRU, {}, "last"),
    "rnn-out-last": (TutorialGRU, dict(rnn_name="rnn", head_name="out"), "last"),
    "gru-head-last": (TutorialGRU, dict(head_name="head"), "last"),
    "lstm-linear-h_n": (TutorialLSTM, {}, "h_n"),
    "lstm-classifier-h_n": (TutorialLSTM, dict(head_name="classifier"), "h_n"),
    "bigru-classifier-mean": (TutorialBiGRUMean, {}, "mean"),
    "bigru-fc-mean": (TutorialBiGRUMean, dict(head_name="fc"), "mean"),
    "bilstm-out-max": (TutorialBiLSTMMax, {}, "max"),
    "text-embedding-lstm-fc": (TutorialTextLSTM, {}, "h_n"),
    "text-emb-lstm-head": (TutorialTextLSTM, dict(emb_name="emb", head_name="head"), "h_n"),
    "text-embedding-rnn-linear": (TutorialTextLSTM, dict(rnn_name="rnn", head_name="linear"), "h_n"),
}


@pytest.mark.parametrize("key,parallel", [(k, False) for k in sorted(TUTORIALS)] + [
    (k, True) for k in ("gru-fc-last", "bigru-classifier-mean", "text-embedding-lstm-fc")])
def test_tutorial_model_saved_as_a_state_dict_gives_the_users_own_outputs(key, parallel, tmp_path):
    """The reference is the user's own model: trained here, saved with torch.save(model.state_dict())."""
    cls, kw, readout = TUTORIALS[key]
    torch.manual_seed(0)
    text = cls is TutorialTextLSTM
    x, y = _toy_data(text)
    user = _train_tiny(cls(**kw), x, y)
    saved = nn.DataParallel(user) if parallel else user            # keys start with "module."
    path = tmp_path / "model.pt"
    torch.save(saved.state_dict(), path)
    if parallel:
        assert all(k.startswith("module.") for k in torch.load(path, weights_only=True))
    loaded = load_model(path)
    assert loaded.inferred and loaded.config.readout == "last", key
    model = rv.models.with_readout(loaded, readout)
    with torch.no_grad():
        want = user(x)
        got = model(x)
        got_lengths = model(x, torch.full((len(x),), x.shape[1]))      # all steps real: the same
    assert torch.allclose(got, want, atol=1e-5, rtol=0), (key, float((got - want).abs().max()))
    assert torch.allclose(got_lengths, want, atol=1e-5, rtol=0), key
    # the model as a whole is what rnnviz traces: rv.predict agrees too
    # token ids go in as integers [N, T], as the user's model takes them
    assert np.allclose(rv.predict(model, x.numpy()), want.numpy(), atol=1e-5), key
    if text:
        assert loaded.config.encoder == "embedding" and loaded.config.vocab_size == 30
    # a wrong readout is not silently the same (else the choice would not matter)
    other = "mean" if readout in ("last", "h_n") else "last"
    with torch.no_grad():
        assert not torch.allclose(rv.models.with_readout(loaded, other)(x), want, atol=1e-4), key


def test_assumptions_of_a_state_dict_name_where_to_change_them(tmp_path):
    from rnnviz_core.models import assumptions

    torch.manual_seed(0)
    user = TutorialBiGRUMean()
    torch.save(user.state_dict(), tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    items = {a["key"]: a for a in assumptions(loaded)}
    assert {"readout", "class_order", "normalisation"} <= set(items)
    for a in items.values():
        assert set(a) >= {"key", "what", "value", "how_to_change"} and a["what"].endswith(".")
        assert "rv." not in a["how_to_change"] and "(" not in a["how_to_change"].split("'")[0]
    # values, not an app's wording (issue 20): no control named, the setting never repeated in `what`
    assert all("sidebar" not in a["how_to_change"] and "under '" not in a["how_to_change"] for a in items.values())
    assert {k: a["changeable"] for k, a in items.items()} == {"readout": True, "class_order": True,
                                                            "normalisation": False}
    assert "class 0" not in items["class_order"]["what"]
    assert items["readout"]["value"] == "last"
    assert items["class_order"]["value"] == "class 0, class 1, class 2"
    # the note follows the model it describes
    mean = rv.models.with_class_names(rv.models.with_readout(loaded, "mean"), ["b", "a", "c"])
    items = {a["key"]: a for a in assumptions(mean)}
    assert items["readout"]["value"] == "mean" and items["class_order"]["value"] == "b, a, c"
    # a file that records its settings assumes nothing
    assert assumptions(load_model(save_model(_built("gru"), tmp_path / "m.safetensors"))) == []
    assert assumptions(TutorialGRU()) == []
    # a text model's state dict has no vocabulary: said, with where to give one; no normalisation note
    torch.save(TutorialTextLSTM().state_dict(), tmp_path / "t.pt")
    items = {a["key"]: a for a in assumptions(load_model(tmp_path / "t.pt"))}
    assert "vocabulary" in items and "normalisation" not in items
    assert ".json" in items["vocabulary"]["how_to_change"] and "30" in items["vocabulary"]["what"]


class ConvFront(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.gru = nn.GRU(4, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)


def test_unknown_layout_is_refused_with_a_plain_sentence(tmp_path):
    torch.save(ConvFront().state_dict(), tmp_path / "conv.pt")
    with pytest.raises(ModelFileError) as e:
        load_model(tmp_path / "conv.pt")
    msg = str(e.value)
    assert "'conv'" in msg and "does not have" in msg and "Traceback" not in msg


# ------------------------------------------------------------------- bounds before building
@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_num_parameters_counts_what_the_built_model_holds(key):
    cfg = CONFIGS[key]
    assert cfg.num_parameters == sum(t.numel() for t in build_model(cfg).state_dict().values()), key


@pytest.mark.parametrize("kwargs,needle", [
    (dict(num_outputs=1_000_000_000), "num_outputs is 1,000,000,000"),
    (dict(input_size=10_001), "input_size is 10,001"),
    (dict(num_layers=33), "num_layers is 33"),
    (dict(hidden_size=16_385), "hidden_size is 16,385"),
    (dict(encoder="embedding", encoder_size=4, vocab_size=2_000_000, input_size=1), "vocab_size is 2,000,000"),
    (dict(hidden_size=4096, num_layers=8), "more than the 52,428,800"),
    (dict(encoder_size="8"), "encoder_size must be a whole number"),
    (dict(bidirectional="yes"), "bidirectional must be true or false"),
    (dict(dropout=1.5), "dropout must be a number"),
])
def test_config_sizes_are_bounded_before_anything_is_built(kwargs, needle):
    with pytest.raises(ModelError) as e:
        ModelConfig(**kwargs)
    assert needle in str(e.value)


class TwoLayerGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
        self.fc = nn.Linear(4, 2)


@pytest.mark.parametrize("edit,needle", [
    (lambda sd: sd.pop("gru.weight_hh_l1"), "weight_hh_l1"),
    (lambda sd: sd.pop("gru.bias_ih_l1"), "bias_ih_l1"),
    (lambda sd: sd.update({"gru.weight_ih_l1": torch.zeros(12, 5)}), "weight_ih_l1"),
    (lambda sd: sd.update({"gru.weight_ih_l0_reverse": torch.zeros(12, 3)}), "reverse"),
    (lambda sd: sd.update({"gru.weight_ih_l3": torch.zeros(12, 4), "gru.weight_hh_l3": torch.zeros(12, 4)}),
     "layers 0, 1, 3"),
])
def test_inconsistent_recurrent_weights_are_refused_before_building(edit, needle):
    sd = TwoLayerGRU().state_dict()
    edit(sd)
    with pytest.raises(ModelFileError) as e:
        load_model(_torch_bytes(sd), name="m.pt")
    assert needle in str(e.value) and "damaged or was edited" in str(e.value), str(e.value)


def test_half_and_double_weights_load_as_float32():
    torch.manual_seed(0)
    user = TwoLayerGRU()
    x = torch.randn(2, 5, 3)
    for dtype in (torch.float64, torch.float16):
        sd = {k: v.to(dtype) for k, v in user.state_dict().items()}
        loaded = load_model(_torch_bytes(sd), name="m.pt")
        assert loaded.rnn.weight_ih_l0.dtype == torch.float32
        ref = TwoLayerGRU()
        ref.load_state_dict({k: v.float() for k, v in sd.items()})
        out, h = ref.gru(x)
        assert torch.allclose(loaded(x), ref.fc(out[:, -1]), atol=1e-6), dtype


def test_vocabulary_is_saved_in_the_metadata(tmp_path):
    m = _built("gru-embedding")
    m.vocabulary = ["<pad>", "good", "bad", "not", "movie", "the", "a", "very", "plot", "<unk>"]
    loaded = load_model(save_model(m, tmp_path / "t.safetensors"))
    assert loaded.vocabulary == m.vocabulary
    m.vocabulary = ["too", "short"]
    with pytest.raises(ModelError, match="one token per id"):
        save_model(m, tmp_path / "bad.safetensors")
    from safetensors.torch import load, save
    data = (tmp_path / "t.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8:8 + n])["__metadata__"]
    meta["vocabulary"] = json.dumps(["too", "short"])
    with pytest.raises(ModelFileError, match="vocabulary that does not fit"):
        load_model(save(load(data), metadata=meta), name="bad.safetensors")


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_every_readout_traces_to_the_models_own_output(cell):
    """The engine's step-by-step view of a model gives the model's own logits whatever its readout."""
    from rnnviz_core.models import READOUTS, with_readout

    torch.manual_seed(0)
    m = build_model(ModelConfig(cell=cell, input_size=3, hidden_size=5, num_layers=2, bidirectional=True,
                                num_outputs=3)).eval()
    x, lengths = torch.randn(6, 7, 3), torch.tensor([7, 3, 5, 1, 7, 2])
    for readout in READOUTS:
        mr = with_readout(m, readout)
        with torch.no_grad():
            want = mr(x, lengths).numpy()
        tr = rv.trace(mr, x.numpy(), lengths.numpy(), gates=True)
        assert np.allclose(tr.logits, want, atol=1e-5), (cell, readout)
        scores = np.asarray(rv.contributions(mr, x.numpy(), method="grad_x_state", lengths=lengths.numpy()))
        valid = np.arange(7)[None, :] < lengths.numpy()[:, None]
        assert np.isfinite(scores[valid]).all(), (cell, readout)
