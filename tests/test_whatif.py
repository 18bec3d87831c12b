"""rv.what_if against the model run from scratch on the edited input, on many configurations.

References: the model's own forward (plain PyTorch, fused recurrent modules) on the edited
sequence written out by hand, and rv.trace (itself held to the fused modules in test_trace) for
every per-step array; the count of steps the recurrence really ran, read from run_module.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnviz_core as rv
from rnnviz_core import restart as rs
from rnnviz_core.errors import InputError

TOL = 1e-5
F_IN, H = 3, 5


class Net(nn.Module):
    """Encoder (per-step linear, or a padded Conv1d that mixes neighbouring steps) -> recurrent -> head."""

    def __init__(self, cell="GRU", layers=1, bidir=False, conv=False, pack=True, proj=0, head="last"):
        super().__init__()
        self.conv = conv
        self.enc = nn.Conv1d(F_IN, 4, 3, padding=1) if conv else nn.Linear(F_IN, 4)
        kw = {"proj_size": proj} if proj else {}
        cls = {"GRU": nn.GRU, "LSTM": nn.LSTM, "RNN": nn.RNN}[cell]
        self.rnn = cls(4, H, num_layers=layers, bidirectional=bidir, batch_first=True, **kw)
        self.d = 2 if bidir else 1
        self.pack = pack
        self.headmode = head
        self.head = nn.Linear((proj or H) * self.d, 3)

    def forward(self, x, lengths=None):
        z = self.enc(x.transpose(1, 2)).transpose(1, 2) if self.conv else self.enc(x)
        z = torch.tanh(z)
        if self.pack and lengths is not None:
            out, hn = self.rnn(pack_padded_sequence(z, lengths.cpu(), batch_first=True, enforce_sorted=False))
            out = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]
        else:
            out, hn = self.rnn(z)
        if self.headmode == "mean":
            n_real = (lengths if lengths is not None else torch.full((x.shape[0],), x.shape[1])).to(out.dtype)
            return self.head(out.sum(1) / n_real[:, None])
        hn = hn[0] if isinstance(hn, tuple) else hn
        return self.head(torch.cat([hn[-self.d + i] for i in range(self.d)], -1))


def _data(seed=0, n=4, t=9):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, F_IN, generator=g)
    lengths = np.array([t, 5, 7, 3])[:n]
    x[torch.arange(t)[None, :] >= torch.as_tensor(lengths)[:, None]] = 0.0  # padding is zeros
    return x, lengths


def _edited_by_hand(x, lengths, i, t, kind, value=None, f=0):
    """Sequence i's real steps after one edit, written out directly."""
    row = x[i, : lengths[i]].clone()
    if kind == "set":
        row[t, f] = value
    elif kind == "delete":
        row = torch.cat([row[:t], row[t + 1 :]])
    else:
        row = torch.cat([row[:t], torch.as_tensor(value, dtype=row.dtype)[None], row[t:]])
    return row


CONFIGS = [
    *(dict(cell=c, layers=l) for c, l in itertools.product(["GRU", "LSTM", "RNN"], [1, 2])),
    dict(cell="LSTM", layers=2, proj=2),
    dict(cell="GRU", bidir=True),
    dict(cell="GRU", conv=True),
    dict(cell="LSTM", head="mean"),
    dict(cell="GRU", pack=False),
]


def _cid(c):
    return "-".join(f"{k}{v}" for k, v in c.items())


@pytest.mark.parametrize("cfg", CONFIGS, ids=_cid)
@pytest.mark.parametrize("kind", ["set", "delete", "insert"])
def test_what_if_equals_the_model_on_the_edited_input(cfg, kind):
    torch.manual_seed(1)
    net = Net(**cfg).eval()
    x, lengths = _data()
    if not cfg.get("pack", True):
        lengths = np.full(x.shape[0], x.shape[1])
    i, t = 2, 4
    value = {"set": 1.5, "delete": None, "insert": [0.3, -1.0, 2.0]}[kind]
    edit = (i, t, 1 if kind == "set" else kind, value)
    res = rv.what_if(net, x, [edit], lengths)
    row = _edited_by_hand(x, lengths, i, t, kind, value, f=1)
    with torch.no_grad():
        ref_out = net(row[None], torch.tensor([len(row)])).numpy()[0]
        ref_orig = net(x[:, :], torch.as_tensor(lengths)).numpy()
    assert np.abs(res.outputs[i] - ref_out).max() < TOL, cfg
    assert res.lengths[i] == len(row)
    # sequences without edits keep the original output
    others = [k for k in range(x.shape[0]) if k != i]
    assert np.abs(res.outputs[others] - ref_orig[others]).max() < TOL
    assert np.abs(res.original_outputs - ref_orig).max() < TOL
    # every per-step array equals a full trace of the edited row
    ref = rv.trace(net, row[None], [len(row)], gates=True)
    for key in ref.keys():
        a = res.trace[key][i, : len(row)]
        assert np.abs(a - ref[key][0]).max() < TOL, (cfg, key)
        assert np.isnan(res.trace[key][i, len(row):]).all()
    assert res.first_edit[i] == t and (res.first_edit[others] == -1).all()


@pytest.mark.parametrize("cfg", [dict(cell="GRU"), dict(cell="LSTM", layers=2), dict(cell="GRU", bidir=True),
                                 dict(cell="GRU", conv=True)], ids=_cid)
def test_only_the_steps_from_the_first_edit_are_recomputed(cfg, monkeypatch):
    """Causal, forward-only models run T' - t steps after an edit at t; a bidirectional layer or a
    front end that mixes steps (padded Conv1d) runs in full, and the result still matches."""
    torch.manual_seed(2)
    net = Net(**cfg).eval()
    x = torch.randn(1, 40, F_IN)
    first = rv.what_if(net, x, [(0, 30, 0, 2.0)])           # builds the base (the original run)
    ran: list[int] = []
    real = rs.run_module

    def counting(info, weights, xx, *a, **k):
        ran.append(xx.shape[1])
        return real(info, weights, xx, *a, **k)

    real_fused = rs.gru_fused

    def counting_fused(info, weights, xx, *a, **k):
        out = real_fused(info, weights, xx, *a, **k)
        if out is not None:
            ran.append(xx.shape[1])
        return out

    monkeypatch.setattr(rs, "run_module", counting)
    monkeypatch.setattr(rs, "gru_fused", counting_fused)
    res = rv.what_if(net, x, [(0, 35, 2, -1.0)], base=first.base)
    full = cfg.get("bidir") or cfg.get("conv")
    assert ran == ([] if full else [40 - 35]), ran  # a full run goes through the engine's own path
    assert res.recomputed_from[0] == (0 if full else 35)
    row = x[0].clone()
    row[35, 2] = -1.0
    with torch.no_grad():
        assert np.abs(res.outputs[0] - net(row[None]).numpy()[0]).max() < TOL


def test_parting_step_and_a_no_op_edit():
    torch.manual_seed(3)
    net = Net("GRU").eval()
    x, lengths = _data()
    same = rv.what_if(net, x, [(1, 2, 0, float(x[1, 2, 0]))], lengths)
    assert same.parting_step[1] == -1
    assert np.array_equal(same.outputs, same.original_outputs)
    moved = rv.what_if(net, x, [(1, 2, 0, float(x[1, 2, 0]) + 3.0)], lengths)
    assert moved.parting_step[1] == 2
    # deleting the last step: every common step agrees, the edited sequence is one step shorter
    cut = rv.what_if(net, x, [(1, int(lengths[1]) - 1, "delete", None)], lengths)
    assert cut.parting_step[1] == lengths[1] - 1
    assert (np.delete(cut.parting_step, 1) == -1).all()


def test_token_model_edit_a_word():
    model, ds = rv.demos.load_demo("text")
    vocab = model.vocabulary
    X, L = ds.X[:3], ds.lengths[:3]
    t = int(L[0]) - 1
    res = rv.what_if(model, X, [(0, t, 0, vocab.index("awful")), (0, 0, "insert", vocab.index("great"))], L)
    row = np.concatenate([[vocab.index("great")], X[0, :t], [vocab.index("awful")]])
    with torch.no_grad():
        ref = model(torch.as_tensor(row[None]), torch.tensor([len(row)])).numpy()[0]
    assert np.abs(res.outputs[0] - ref).max() < TOL
    assert res.first_edit[0] == 0 and res.lengths[0] == L[0] + 1
    with pytest.raises(InputError, match="token id from 0 to"):
        rv.what_if(model, X, [(0, 1, 0, len(vocab) + 5)], L)
    with pytest.raises(InputError, match="feature 1 does not exist"):
        rv.what_if(model, X, [(0, 1, 1, 3)], L)


@pytest.mark.parametrize("edit, match", [
    ((9, 0, 0, 1.0), "sequence 9 does not exist"),
    ((0, 20, 0, 1.0), "step 20 is not a step"),
    ((1, 5, 0, 1.0), "step 5 is not a step of sequence 1"),
    ((0, 0, 7, 1.0), "feature 7 does not exist"),
    ((0, 0, 0, float("nan")), "finite number"),
    ((0, 0, 0, "big"), "must be a number"),
    ((0, 0, "insert", [1.0]), "3 finite number"),
    ((0, 0, "remove", None), "'delete' or 'insert'"),
    ((0, 0), "tuple \\(sequence, step, feature, value\\)"),
])
def test_bad_edits_say_what_to_change(edit, match):
    net = Net("GRU").eval()
    x, lengths = _data()
    with pytest.raises(InputError, match=match):
        rv.what_if(net, x, [edit], lengths)


def test_deleting_every_step_is_refused_and_inputs_stay_untouched():
    net = Net("GRU").eval()
    x, lengths = _data()
    before = x.clone()
    with pytest.raises(InputError, match="delete every step"):
        rv.what_if(net, x, [(3, k, "delete", None) for k in range(3)], lengths)
    rv.what_if(net, x, [(0, 1, 0, 9.0), (0, 2, "delete", None)], lengths)
    assert torch.equal(x, before)


def test_prefix_outputs_equal_the_model_on_each_prefix():
    torch.manual_seed(4)
    for cfg in (dict(cell="LSTM", layers=2), dict(cell="GRU", conv=True), dict(cell="GRU", head="mean")):
        net = Net(**cfg).eval()
        x, lengths = _data()
        po = rs.prefix_outputs(net, x, lengths)
        assert po.shape == (4, 9, 3)
        with torch.no_grad():
            for i in range(4):
                for t in range(int(lengths[i])):
                    ref = net(x[i : i + 1, : t + 1], torch.tensor([t + 1])).numpy()[0]
                    assert np.abs(po[i, t] - ref).max() < TOL, (cfg, i, t)
                assert np.isnan(po[i, lengths[i]:]).all()


class NoLengths(Net):
    """A forward that takes x only (the head reads the last step)."""

    def forward(self, x):
        out, _ = self.rnn(torch.tanh(self.enc(x)))
        return self.head(out[:, -1])


def test_prefix_outputs_and_edits_of_a_model_without_lengths():
    torch.manual_seed(5)
    net = NoLengths("GRU").eval()
    x, lengths = _data()
    po = rs.prefix_outputs(net, x, lengths)
    with torch.no_grad():
        for i in range(4):
            for t in range(int(lengths[i])):
                ref = net(x[i : i + 1, : t + 1]).numpy()[0]        # the prefix alone
                assert np.abs(po[i, t] - ref).max() < TOL, (i, t)
        res = rv.what_if(net, x, [(1, 2, "delete", None)], lengths)
        ref = net(torch.cat([x[1, :2], x[1, 3:5]])[None]).numpy()[0]
    assert np.abs(res.outputs[1] - ref).max() < TOL
