"""The trace engine against PyTorch's fused modules, on every configuration the issue names.

References: the fused nn.GRU / nn.LSTM / nn.RNN themselves (whole model, truncated per-layer
copies, and each sequence run alone without padding), and the cell equations written out by
hand in numpy.
"""
from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnviz_core as rv
from rnnviz_core.engine import prepare, unrolled_forward

TOL = 1e-5
CELLS = {  # name -> (class, extra kwargs)
    "GRU": (nn.GRU, {}),
    "LSTM": (nn.LSTM, {}),
    "LSTMproj": (nn.LSTM, {"proj_size": 3}),
    "RNN_TANH": (nn.RNN, {"nonlinearity": "tanh"}),
    "RNN_RELU": (nn.RNN, {"nonlinearity": "relu"}),
}
F_IN, H, N, T = 4, 5, 5, 6


class Net(nn.Module):
    """Linear encoder -> recurrent module -> linear head on the final state (packs when lengths given)."""

    def __init__(self, cell, layers, bidir, batch_first, with_h0, dropout=0.0):
        super().__init__()
        cls, kw = CELLS[cell]
        self.enc = nn.Linear(F_IN, 6)
        self.rnn = cls(6, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, dropout=dropout, **kw)
        self.d = 2 if bidir else 1
        self.hs = kw.get("proj_size") or H
        self.head = nn.Linear(self.hs * self.d, 3)
        self.is_lstm = cls is nn.LSTM
        self.h0 = nn.Parameter(torch.randn(layers * self.d, 1, self.hs) * 0.5) if with_h0 else None
        self.c0 = nn.Parameter(torch.randn(layers * self.d, 1, H) * 0.5) if with_h0 and self.is_lstm else None

    def initial(self, x):
        """Learned initial state plus a data-dependent part (so gradients reach x through h0 too)."""
        if self.h0 is None:
            return None
        n = x.shape[0]
        h0 = self.h0.expand(-1, n, -1) + 0.3 * torch.tanh(x[None, :, 0, :1])
        return (h0, self.c0.expand(-1, n, -1).contiguous()) if self.is_lstm else h0

    def run_rnn(self, x, lengths):
        z = torch.tanh(self.enc(x))
        if not self.rnn.batch_first:
            z = z.transpose(0, 1)
        if lengths is not None:
            z = pack_padded_sequence(z, lengths, batch_first=self.rnn.batch_first, enforce_sorted=False)
        return self.rnn(z, self.initial(x))

    def final(self, hn):
        hn = hn[0] if isinstance(hn, tuple) else hn
        return torch.cat([hn[-self.d + i] for i in range(self.d)], -1)


class PackingNet(Net):
    def forward(self, x, lengths=None):
        _, hn = self.run_rnn(x, lengths)
        return self.head(self.final(hn))


class PaddedNet(Net):
    """No lengths parameter: the recurrence runs over the padding, the head reads the last step."""

    def forward(self, x):
        out, _ = self.run_rnn(x, None)
        if not self.rnn.batch_first:
            out = out.transpose(0, 1)
        return self.head(out[:, -1])


def make(cell, layers, bidir, batch_first, pack, with_h0, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    net = (PackingNet if pack else PaddedNet)(cell, layers, bidir, batch_first, with_h0, dropout)
    x = torch.randn(N, T, F_IN)
    lengths = torch.tensor([T, 2, 4, 1, T]) if pack else None
    return net, x, lengths


def reference_layers(net, x, lengths):
    """Per-layer outputs of fused modules truncated to layers 0..l (same weights), padded [N, T, H_out]."""
    outs = []
    z = torch.tanh(net.enc(x))
    for layer in range(net.rnn.num_layers):
        m = copy.deepcopy(net.rnn)
        m.num_layers = layer + 1
        keep = {k: v for k, v in net.rnn.state_dict().items() if int(k.split("_l")[1].split("_")[0]) <= layer}
        m2 = type(net.rnn)(
            m.input_size, m.hidden_size, num_layers=layer + 1, bidirectional=m.bidirectional, batch_first=True,
            **({"proj_size": m.proj_size} if getattr(m, "proj_size", 0) else {}),
            **({"nonlinearity": m.nonlinearity} if isinstance(m, nn.RNN) else {}),
        )
        m2.load_state_dict(keep)
        m2.eval()
        hx = net.initial(x)
        if hx is not None:
            d = 2 if m.bidirectional else 1
            hx = tuple(h[: (layer + 1) * d] for h in hx) if isinstance(hx, tuple) else hx[: (layer + 1) * d]
        inp = z if lengths is None else pack_padded_sequence(z, lengths, batch_first=True, enforce_sorted=False)
        out, hn = m2(inp, hx)
        if lengths is not None:
            out = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
        outs.append((out, hn))
    return outs


CONFIGS = list(itertools.product(CELLS, [1, 3], [False, True], [True, False], [True, False], [False, True]))


def cfg_id(c):
    cell, layers, bidir, bf, pack, h0 = c
    return f"{cell}-L{layers}-{'bi' if bidir else 'uni'}-{'bf' if bf else 'tf'}-{'packed' if pack else 'padded'}-{'h0' if h0 else 'noh0'}"


def _valid(lengths, n=N, t=T):
    return np.ones((n, t), bool) if lengths is None else (np.arange(t)[None] < np.asarray(lengths)[:, None])


@pytest.mark.parametrize("config", CONFIGS, ids=cfg_id)
def test_trace_matches_fused_modules(config):
    cell, layers, bidir, bf, pack, h0 = config
    net, x, lengths = make(cell, layers, bidir, bf, pack, h0, dropout=0.3 if layers > 1 else 0.0)
    net.train()  # dropout active in the user's model: the trace must still run eval semantics
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tr = rv.trace(net, x, lengths, gates=True)
    assert net.training, "trace changed the model's training flag"
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    ref_net = copy.deepcopy(net).eval()
    with torch.no_grad():
        ref_logits = ref_net(x, lengths) if pack else ref_net(x)
        refs = reference_layers(ref_net, x, lengths)
    np.testing.assert_allclose(tr.logits, ref_logits.numpy(), atol=TOL, err_msg=f"logits differ for {cfg_id(config)}")
    valid = _valid(lengths)
    hs = net.hs
    for layer, (ref_out, ref_hn) in enumerate(refs):
        ref_out = ref_out.numpy()
        for d, dname in enumerate(["fwd", "bwd"][: net.d]):
            got = tr[f"rnn.l{layer}.{dname}.h"]
            np.testing.assert_allclose(
                got[valid], ref_out[..., d * hs : (d + 1) * hs][valid], atol=TOL,
                err_msg=f"h of layer {layer} {dname} differs for {cfg_id(config)}",
            )
            assert np.isnan(got[~valid]).all(), f"padding not NaN for {cfg_id(config)}"
            if net.is_lstm:  # final cell state of the fused module == c at each sequence's end
                c = tr[f"rnn.l{layer}.{dname}.c"]
                lens = np.asarray(lengths) if lengths is not None else np.full(N, T)
                end = lens - 1 if dname == "fwd" else np.zeros(N, int)
                c_end = c[np.arange(N), end]
                np.testing.assert_allclose(
                    c_end, ref_hn[1][layer * net.d + d].numpy(), atol=TOL,
                    err_msg=f"c of layer {layer} {dname} differs for {cfg_id(config)}",
                )
    # hidden = last layer output, directions concatenated
    np.testing.assert_allclose(tr.hidden[valid], refs[-1][0].numpy()[valid], atol=TOL)


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "LSTMproj", "RNN_TANH"])
def test_padded_values_equal_each_sequence_run_alone(cell):
    """With lengths, every step before the length equals the fused module on the unpadded sequence."""
    net, x, lengths = make(cell, 2, True, True, True, False)
    net.eval()
    tr = rv.trace(net, x, lengths)
    for i, n_i in enumerate(lengths.tolist()):
        with torch.no_grad():
            out, _ = net.run_rnn(x[i : i + 1, :n_i], None)
            alone = net.head(net.final(net.run_rnn(x[i : i + 1, :n_i], None)[1]))
        np.testing.assert_allclose(tr.hidden[i, :n_i], out[0].numpy(), atol=TOL, err_msg=f"{cell} sequence {i}")
        assert np.isnan(tr.hidden[i, n_i:]).all()
        np.testing.assert_allclose(tr.logits[i], alone[0].numpy(), atol=TOL)


def _sig(v):
    return 1 / (1 + np.exp(-v))


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "LSTMproj"])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("pack,batch_size", [(True, None), (False, None), (False, 2)],
                         ids=["packed", "padded-one-batch", "padded-batches-of-2"])
def test_gates_reproduce_states(cell, bidir, pack, batch_size):
    """Recomputing h from the traced gates (and the layer's own weights, by hand in numpy) gives h back.

    Padded in one batch, forward LSTM layers hand their time-major records over as the arrays;
    packed (rows sorted for the model) or in batches of 2 they are copied: every way is checked.
    """
    net, x, lengths = make(cell, 2, bidir, True, pack, True)
    net.eval()
    tr = rv.trace(net, x, lengths, gates=True, batch_size=batch_size)
    valid = _valid(lengths)
    lens = lengths.numpy() if lengths is not None else np.full(N, T)
    z_in = torch.tanh(net.enc(x)).detach().numpy()
    for layer in range(2):
        inp = z_in if layer == 0 else np.concatenate([np.nan_to_num(tr[f"rnn.l0.{d}.h"]) for d in ["fwd", "bwd"][: net.d]], -1)
        for d, dname in enumerate(["fwd", "bwd"][: net.d]):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            W_ih = getattr(net.rnn, "weight_ih" + sfx).detach().numpy()
            W_hh = getattr(net.rnn, "weight_hh" + sfx).detach().numpy()
            b_ih = getattr(net.rnn, "bias_ih" + sfx).detach().numpy()
            b_hh = getattr(net.rnn, "bias_hh" + sfx).detach().numpy()
            h = tr[f"rnn.l{layer}.{dname}.h"]
            h0 = net.initial(x)[0 if net.is_lstm else slice(None)][layer * net.d + d].detach().numpy()
            for i in range(N):
                steps = range(lens[i]) if d == 0 else range(lens[i] - 1, -1, -1)
                prev = h0[i]
                c_prev = net.c0[layer * net.d + d, 0].detach().numpy() if net.is_lstm else None
                for t in steps:
                    gi = W_ih @ inp[i, t] + b_ih
                    gh = W_hh @ prev + b_hh
                    if cell == "GRU":
                        r, z, n = (tr[f"rnn.l{layer}.{dname}.{k}"][i, t] for k in "rzn")
                        np.testing.assert_allclose(r, _sig(gi[:H] + gh[:H]), atol=TOL)
                        np.testing.assert_allclose(z, _sig(gi[H : 2 * H] + gh[H : 2 * H]), atol=TOL)
                        np.testing.assert_allclose(n, np.tanh(gi[2 * H :] + r * gh[2 * H :]), atol=TOL)
                        h_re = (1 - z) * n + z * prev
                    else:
                        i_g, f_g, g_g, o_g = (tr[f"rnn.l{layer}.{dname}.{k}"][i, t] for k in "ifgo")
                        c = tr[f"rnn.l{layer}.{dname}.c"][i, t]
                        np.testing.assert_allclose(f_g, _sig(gi[H : 2 * H] + gh[H : 2 * H]), atol=TOL)
                        np.testing.assert_allclose(c, f_g * c_prev + i_g * g_g, atol=TOL)
                        h_re = o_g * np.tanh(c)
                        if net.rnn.proj_size:
                            h_re = getattr(net.rnn, "weight_hr" + sfx).detach().numpy() @ h_re
                        c_prev = c
                    np.testing.assert_allclose(h[i, t], h_re, atol=TOL, err_msg=f"{cell} l{layer} {dname} seq {i} step {t}")
                    prev = h[i, t]
    assert np.isnan(tr["rnn.l1.fwd.z" if cell == "GRU" else "rnn.l1.fwd.f"][~valid]).all()


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_trace_arrays_are_read_only(cell):
    """Arrays may share memory (the last layer's h is hidden), so none can be written through."""
    net, x, _ = make(cell, 2, False, True, False, False)
    tr = rv.trace(net, x, gates=True)
    np.testing.assert_array_equal(tr["h"], tr.hidden)
    for arr in [tr.hidden, *tr.arrays.values()]:
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0, 0] = 1.0
    before = float(tr.hidden[0, 0, 0])
    copy_ = tr["h"].copy()
    copy_[0, 0, 0] = before + 1.0  # a copy is the user's to change, and changes nothing else
    assert tr.hidden[0, 0, 0] == before and tr["h"][0, 0, 0] == before


def test_lazy_gates_equal_eager_and_shorthand():
    net, x, lengths = make("LSTM", 2, True, True, True, False)
    lazy = rv.trace(net, x, lengths)
    eager = rv.trace(net, x, lengths, gates=True)
    assert lazy._arrays is None
    for d in ("fwd", "bwd"):  # the last layer's h is served from hidden without recomputation
        np.testing.assert_allclose(lazy["h", -1, d], eager[f"rnn.l1.{d}.h"], atol=1e-6, equal_nan=True)
    assert lazy._arrays is None
    np.testing.assert_allclose(lazy["f", 0, "bwd"], eager["rnn.l0.bwd.f"], atol=1e-6, equal_nan=True)
    assert lazy._arrays is not None  # computed on request
    np.testing.assert_array_equal(eager.get("h", -1, "bwd"), eager["rnn.l1.bwd.h"])
    assert eager.gate_kinds() == ("i", "f", "g", "o")
    assert set(eager.keys()) == set(eager.arrays)
    with pytest.raises(KeyError, match="available"):
        eager["z"]
    with pytest.raises(KeyError, match="Layer 5"):
        eager["h", 5]


def test_probe_gradient_is_total_derivative_and_fused_output_is_not():
    """d logit / d h_t from the probe equals a hand-written GRUCell loop with retain_grad; the fused
    module's returned outputs give zero for every step the head does not read (the trap)."""
    torch.manual_seed(1)
    net, x, _ = make("GRU", 1, False, True, False, False)
    net.eval()
    xt, lt = prepare(net, x, None, "cpu")
    probe = torch.zeros(N, T, H, requires_grad=True)
    logits, _ = unrolled_forward(net, xt, lt, probe=probe)
    (g,) = torch.autograd.grad(logits[:, 1].sum(), probe)
    cell = nn.GRUCell(6, H)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in net.rnn.state_dict().items()})
    for i in range(N):  # the usual recipe, one sequence at a time
        h = torch.zeros(1, H)
        hs = []
        z = torch.tanh(net.enc(x[i : i + 1]))
        for t in range(T):
            h = cell(z[:, t], h)
            h.retain_grad()
            hs.append(h)
        net.head(h)[0, 1].backward()
        ref = torch.stack([hh.grad[0] for hh in hs])
        np.testing.assert_allclose(g[i].numpy(), ref.numpy(), atol=1e-5)
    assert (g.abs().sum(-1) > 0).all()  # every step influences the output
    out = net.rnn(torch.tanh(net.enc(x)))[0]
    out.retain_grad()
    net.head(out[:, -1])[:, 1].sum().backward()
    assert (out.grad[:, :-1] == 0).all()  # why the engine recomputes the recurrence


def test_model_shared_across_threads_gives_each_caller_correct_results():
    from concurrent.futures import ThreadPoolExecutor

    net, _, _ = make("LSTM", 2, True, True, True, False)
    net.eval()
    gen = torch.Generator().manual_seed(3)
    inputs = [(torch.randn(7, 9, F_IN, generator=gen), torch.randint(1, 10, (7,), generator=gen)) for _ in range(8)]
    expected = []
    with torch.no_grad():
        for xi, li in inputs:
            expected.append(net(xi, li).numpy())
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda a: rv.trace(net, a[0], a[1], gates=True).logits, inputs * 3))
    for k, g in enumerate(got):
        np.testing.assert_allclose(g, expected[k % 8], atol=TOL)
    assert not net._forward_hooks and not net.rnn._forward_hooks and not net.rnn._forward_pre_hooks
    assert all(p.grad is None for p in net.parameters())


def test_forward_that_raises_leaves_model_untouched():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 4, batch_first=True)

        def forward(self, x):
            self.rnn(x)
            raise RuntimeError("kaput")

    m = Boom()
    rnn_before = m.rnn
    with pytest.raises(rv.ModelError, match="kaput"):
        rv.trace(m, torch.zeros(2, 3, 3))
    assert m.rnn is rnn_before and isinstance(m.rnn, nn.GRU) and m.training


def test_predict_matches_model_and_batches():
    net, x, lengths = make("GRU", 2, True, True, True, False)
    net.eval()
    with torch.no_grad():
        ref = net(x, lengths).numpy()
    np.testing.assert_allclose(rv.predict(net, x, lengths, batch_size=2), ref, atol=TOL)
    tr = rv.trace(net, x.numpy(), lengths.numpy(), batch_size=2, gates=True)
    np.testing.assert_allclose(tr.logits, ref, atol=TOL)


def test_caller_inputs_untouched_even_with_nan_padding():
    net, x, lengths = make("GRU", 1, False, True, True, False)
    x = x.clone()
    x[1, 3:] = float("nan")  # padding past length 2 holds NaN: allowed, replaced in a copy
    x_before = x.clone()
    tr = rv.trace(net, x, lengths)
    assert torch.equal(torch.isnan(x), torch.isnan(x_before)) and torch.equal(x.nan_to_num(), x_before.nan_to_num())
    assert np.isfinite(tr.logits).all()


# ---------------------------------------------------------------- bad input: plain messages


@pytest.fixture
def gru_net():
    return make("GRU", 1, False, True, True, False)[0]


@pytest.mark.parametrize(
    "x, lengths, match",
    [
        (np.zeros((3, 4)), None, "three dimensions"),
        (np.array([[["a"]]]), None, "must hold numbers"),
        (torch.zeros(3, 4, 4, dtype=torch.bool), None, "real numbers"),
        (np.zeros((0, 4, 4)), None, "empty"),
        (np.zeros((3, 4, 4)), [1, 2], "one number per sequence"),
        (np.zeros((3, 4, 4)), [1, 2, 5], "sequence 2 has length 5"),
        (np.zeros((3, 4, 4)), [0, 2, 3], "between 1 and"),
        (np.zeros((3, 4, 4)), [1.5, 2, 3], "whole numbers"),
        (np.zeros((3, 4, 7)), None, "expects 4 feature"),
    ],
)
def test_bad_inputs_explain_themselves(gru_net, x, lengths, match):
    with pytest.raises(rv.InputError, match=match):
        rv.trace(gru_net, x, lengths)


def test_nan_on_real_steps_says_where(gru_net):
    x = np.zeros((3, 4, 4), np.float32)
    x[2, 1, 3] = np.inf
    with pytest.raises(rv.InputError, match="sequence 2, step 1, feature 3"):
        rv.trace(gru_net, x)


def test_model_without_recurrent_module():
    with pytest.raises(rv.ModelError, match="no recurrent module"):
        rv.trace(nn.Sequential(nn.Linear(3, 2)), np.zeros((2, 3, 3)))
    with pytest.raises(rv.ModelError, match="bare"):
        rv.trace(nn.GRU(3, 2), np.zeros((2, 3, 3)))


def test_forward_failure_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)  # skips the feature pre-check
            self.rnn = nn.GRU(3, 2, batch_first=True)

        def forward(self, x):
            return self.rnn(x @ torch.zeros(9, 3))[0][:, -1]

    with pytest.raises(rv.ModelError, match="Running the model on these sequences failed"):
        rv.trace(Bad(), np.zeros((2, 3, 4)))


def test_unavailable_device_is_a_clear_error():
    if not torch.cuda.is_available():
        with pytest.raises(rv.InputError, match="no CUDA GPU"):
            rv.resolve_device("cuda")
    with pytest.raises(rv.InputError, match="not a device name"):
        rv.resolve_device("banana")
    assert rv.resolve_device("auto").type in ("cuda", "mps", "cpu")


# ---------------------------------------------------------------- the two recomputing engines agree


@pytest.mark.parametrize("config", CONFIGS, ids=cfg_id)
def test_fast_and_stepwise_engines_agree_on_states_and_gradients(config):
    """Fast path (step-by-step forward, hand-written BPTT) vs the step-by-step autograd
    reference: every traced array, and the gradients w.r.t. the probe (d out / d h_t), the input
    x (which also reaches the layers through a data-dependent initial state)."""
    from rnnviz_core.trace import _run

    cell, layers, bidir, bf, pack, h0 = config
    net, x, lengths = make(cell, layers, bidir, bf, pack, h0)
    net.eval()
    xt, lt = prepare(net, x, lengths, "cpu")
    arrays = {}
    for engine in ("fast", "stepwise"):
        arrays[engine] = _run(net, xt, lt, torch.device("cpu"), None, full=True, recurrence=engine)[3]
    assert arrays["fast"].keys() == arrays["stepwise"].keys()
    for k in arrays["fast"]:
        np.testing.assert_allclose(arrays["fast"][k], arrays["stepwise"][k], atol=TOL, equal_nan=True,
                                   err_msg=f"{k} differs between engines for {cfg_id(config)}")
    weights = torch.randn(N, 3, generator=torch.Generator().manual_seed(5))
    grads = {}
    for engine in ("fast", "stepwise"):
        xg = xt.clone().requires_grad_(True)
        probe = torch.zeros(N, T, net.hs * net.d, requires_grad=True)
        logits, _ = unrolled_forward(net, xg, lt, probe=probe, recurrence=engine)
        grads[engine] = torch.autograd.grad((logits * weights).sum(), [probe, xg])
    valid = torch.from_numpy(_valid(lengths))
    for name, a, b in zip(["probe", "x"], grads["fast"], grads["stepwise"]):
        if name == "probe":
            a, b = a[valid], b[valid]
        scale = max(1.0, float(b.abs().max()))
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=TOL * scale,
                                   err_msg=f"d out / d {name} differs between engines for {cfg_id(config)}")
    assert float(grads["fast"][0].abs().sum()) > 0


def test_old_engine_keyword_still_picks_the_recurrence():
    """`engine=` was renamed `recurrence=` (issue 20); the old keyword keeps working for a release."""
    net, x, lengths = make("LSTM", 2, False, True, True, False)
    xt, lt = prepare(net, x, lengths, "cpu")
    with pytest.raises(rv.InputError, match="recurrence must be 'fast' or 'stepwise', not 'fused'"):
        unrolled_forward(net, xt, lt, engine="fused")
    probe = torch.zeros(N, T, H, requires_grad=True)
    old, _ = unrolled_forward(net, xt, lt, probe=probe, engine="stepwise")
    (g_old,) = torch.autograd.grad(old[:, 0].sum(), [probe])
    new, _ = unrolled_forward(net, xt, lt, probe=probe, recurrence="stepwise")
    (g_new,) = torch.autograd.grad(new[:, 0].sum(), [probe])
    np.testing.assert_array_equal(g_old.numpy(), g_new.numpy())
    fast, _ = unrolled_forward(net, xt, lt, probe=probe)
    assert any("LayerFn" in n.name() for n in _graph_nodes(fast))       # the default: one node per layer
    assert not any("LayerFn" in n.name() for n in _graph_nodes(old))


def _graph_nodes(out):
    seen, todo = [], [out.grad_fn]
    while todo:
        n = todo.pop()
        if n is None or n in seen:
            continue
        seen.append(n)
        todo.extend(f for f, _ in n.next_functions)
    return seen


def test_nonzero_probe_falls_back_to_stepwise():
    net, x, lengths = make("GRU", 1, False, True, True, False)
    xt, lt = prepare(net, x, lengths, "cpu")
    probe = torch.full((N, T, H), 0.1)
    shifted, _ = unrolled_forward(net, xt, lt, probe=probe)
    plain, _ = unrolled_forward(net, xt, lt, probe=torch.zeros(N, T, H))
    assert not torch.allclose(shifted, plain)  # the fast forward would have ignored the probe


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("pack", [False, True])
def test_engines_agree_when_the_head_reads_the_cell_state(bidir, pack):
    class CellHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(F_IN, H, num_layers=2, batch_first=True, bidirectional=bidir)
            self.head = nn.Linear(H, 2)

        def forward(self, x, lengths=None):
            z = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if pack else x
            _, (h_n, c_n) = self.rnn(z)
            return self.head(c_n[-1] + c_n[0] * h_n[-1].mean(-1, keepdim=True))

    torch.manual_seed(2)
    net = CellHead()
    x = torch.randn(N, T, F_IN)
    lengths = torch.tensor([T, 2, 4, 1, T]) if pack else None
    xt, lt = prepare(net, x, lengths, "cpu")
    grads = {}
    for engine in ("fast", "stepwise"):
        xg = xt.clone().requires_grad_(True)
        probe = torch.zeros(N, T, H * (2 if bidir else 1), requires_grad=True)
        logits, _ = unrolled_forward(net, xg, lt, probe=probe, engine=engine)
        grads[engine] = torch.autograd.grad(logits[:, 0].sum(), [probe, xg])
    valid = torch.from_numpy(_valid(lengths))
    np.testing.assert_allclose(grads["fast"][0][valid].numpy(), grads["stepwise"][0][valid].numpy(), atol=TOL)
    np.testing.assert_allclose(grads["fast"][1].numpy(), grads["stepwise"][1].numpy(), atol=TOL)


@pytest.mark.parametrize("fused_kernel", [True, False], ids=["onednn-linear-act", "plain-ops"])
def test_lstm_gates_match_the_cell_equations_with_and_without_the_fused_kernel(fused_kernel, monkeypatch):
    """Gates and cell states of a one-layer LSTM against the PyTorch equations in numpy, with the
    gate products computed by oneDNN's fused linear + activation kernel and by plain operations."""
    from rnnviz_core.engine import kernels as rec_mod  # where linear_act and its kernel live (issue 20)
    if not fused_kernel:
        monkeypatch.setattr(rec_mod, "_LINEAR_ACT", None)
    elif rec_mod._LINEAR_ACT is None:
        pytest.skip("this torch build has no oneDNN fused linear kernel")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(3)
    net = Net().eval()
    x = torch.randn(6, 7, 3)
    tr = rv.trace(net, x, gates=True)
    W_ih, W_hh, b_ih, b_hh = (p.detach().numpy().astype(np.float64) for p in net.rnn._flat_weights)
    xs = x.numpy().astype(np.float64)
    for i in range(6):
        h, c = np.zeros(4), np.zeros(4)
        for t in range(7):
            pre = W_ih @ xs[i, t] + b_ih + W_hh @ h + b_hh
            ig, fg, gg, og = _sig(pre[:4]), _sig(pre[4:8]), np.tanh(pre[8:12]), _sig(pre[12:])
            c = fg * c + ig * gg
            h = og * np.tanh(c)
            for name, ref in zip("ifgoc", (ig, fg, gg, og, c)):
                np.testing.assert_allclose(tr[name][i, t], ref, atol=1e-6, err_msg=f"{name} seq {i} step {t}")
            np.testing.assert_allclose(tr.hidden[i, t], h, atol=1e-6)
