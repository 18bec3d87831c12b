"""Models written the way users write them: the right numbers, or a clear refusal (issue 12).

Every model here is a tutorial-style class (``self.gru`` / ``self.fc`` reading the last real
step, ``pack_padded_sequence`` with PyTorch's default ``enforce_sorted=True``, lengths under
the names people give them, wrappers, hooks, parametrizations, tuple outputs, token ids).
References are the user's own model run by PyTorch (each sequence alone and unpadded, so no
packing or sorting question arises), autograd on that model, and hand-written loops; never
rnnviz's own output. Each test for a defect is named for the case that failed before the fix.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnviz_core as rv
from rnnviz_core.contributions import gauss_legendre

F_IN, H, C = 3, 5, 3
TOL = 1e-5


def last_real(out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """out[i, lengths[i] - 1] for a batch-first padded output."""
    idx = (torch.as_tensor(lengths).long() - 1).to(out.device)
    return out[torch.arange(out.shape[0]), idx]


class TutorialGRU(nn.Module):
    """The classic: pack (enforce_sorted=True, PyTorch's default), GRU, fc on the last real step."""

    def __init__(self, f=F_IN, h=H, c=C):
        super().__init__()
        self.gru = nn.GRU(f, h, batch_first=True)
        self.fc = nn.Linear(h, c)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(last_real(out, lengths))


class LensNone(nn.Module):
    """forward(self, x, lens=None): packs when given lengths (enforce_sorted=False)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F_IN, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, x, lens=None):
        if lens is None:
            out, _ = self.gru(x)
            return self.fc(out[:, -1])
        out, _ = self.gru(pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False))
        out, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(last_real(out, lens))


class SeqLens(LensNone):
    """forward(self, x, seq_lens): lengths required, under another name."""

    def forward(self, x, seq_lens):
        return super().forward(x, seq_lens)


class StarArgs(LensNone):
    """forward(self, x, *args): lengths as the first extra positional argument, if any."""

    def forward(self, x, *args):
        return super().forward(x, args[0] if args else None)


class OnlyExtra(LensNone):
    """forward(self, x, valid): the only extra positional parameter, with a name rnnviz cannot know."""

    def forward(self, x, valid):
        return super().forward(x, valid)


class NamedByCaller(LensNone):
    """forward(self, x, n_valid=None, hidden=None): needs lengths_arg="n_valid"."""

    def forward(self, x, n_valid=None, hidden=None):
        return super().forward(x, n_valid)


class HeadFirst(nn.Module):
    """The head registered before the recurrent module; reads out[:, -1] (no lengths)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(H, C)
        self.gru = nn.GRU(F_IN, H, batch_first=True)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class ConvFront(nn.Module):
    """A Conv1d front end (F_IN channels -> 8, same length), then an LSTM and a head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(F_IN, 8, kernel_size=3, padding=1)
        self.lstm = nn.LSTM(8, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, x):
        z = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, _ = self.lstm(z)
        return self.fc(out[:, -1])


def data(n=6, t=7, f=F_IN, seed=0, sort=False, full=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, f, generator=g)
    lengths = torch.randint(2, t, (n,), generator=g)  # never the padded length T
    if full:
        lengths[0] = t
    if sort:
        lengths = lengths.sort(descending=True).values
    for i, L in enumerate(lengths):
        x[i, L:] = 0.0
    return x, lengths


def seeded(cls, *args, seed=1):
    torch.manual_seed(seed)
    return cls(*args).eval()


def per_sequence(model, x, lengths, call=None):
    """The user's model on each sequence alone, unpadded (PyTorch's fused modules): [N, C]."""
    call = call or (lambda m, xi, li: m(xi, li))
    with torch.no_grad():
        return torch.cat([call(model, x[i : i + 1, : int(L)], torch.tensor([int(L)]))
                          for i, L in enumerate(lengths)]).numpy()


def ref_input_x_grad(model, x, lengths, cls, per_feature=False):
    """x * d logit[cls] / dx by autograd on the user's model, one unpadded sequence at a time."""
    n, t, f = x.shape
    res = np.full((n, t, f), np.nan)
    for i, L in enumerate(lengths):
        xi = x[i : i + 1, : int(L)].clone().requires_grad_(True)
        out = model(xi, torch.tensor([int(L)]))[0, cls[i]]
        (g,) = torch.autograd.grad(out, xi)
        res[i, : int(L)] = (xi * g)[0].detach().numpy()
    return res if per_feature else res.sum(-1)


def ref_ig(model, x, lengths, cls, steps, per_feature=False):
    """Gauss-Legendre integrated gradients from zeros, by autograd on the user's model."""
    a, w = gauss_legendre(steps)
    n, t, f = x.shape
    res = np.full((n, t, f), np.nan)
    for i, L in enumerate(lengths):
        xi = x[i : i + 1, : int(L)]
        acc = torch.zeros_like(xi)
        for ak, wk in zip(a, w):
            p = (ak * xi).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(model(p, torch.tensor([int(L)]))[0, cls[i]], p)
            acc += wk * g * xi
        res[i, : int(L)] = acc[0].detach().numpy()
    return res if per_feature else res.sum(-1)


def ref_grad_x_state(model, x, lengths, cls, norm=False):
    """sum_h h_t * d logit / d h_t (norm: |d logit / d h_t|), the GRU run one step at a time."""
    n, t, _ = x.shape
    res = np.full((n, t), np.nan)
    for i, L in enumerate(lengths):
        h = torch.zeros(1, 1, H)
        hs = []
        for s in range(int(L)):
            _, h = model.gru(x[i : i + 1, s : s + 1], h)
            h.retain_grad()
            hs.append(h)
        model.fc(hs[-1][0])[0, cls[i]].backward()
        res[i, : int(L)] = [float(hh.grad.norm() if norm else (hh.detach() * hh.grad).sum()) for hh in hs]
    return res


# --------------------------------------------------------------- 1. packed model, grad_x_state


def test_grad_x_state_on_packed_model_when_no_sequence_fills_T():
    model = seeded(TutorialGRU)
    x, lengths = data(sort=True)                       # every length < T = 7
    assert int(lengths.max()) < x.shape[1]
    scores, info = rv.contributions(model, x, "grad_x_state", lengths, return_info=True)
    ref = ref_grad_x_state(model, x, lengths, info["target"])
    np.testing.assert_allclose(scores, ref, atol=TOL, equal_nan=True)


def test_grad_x_state_on_packed_model_in_batches_shorter_than_T():
    model = seeded(TutorialGRU)
    x, lengths = data(n=7, sort=False, full=True)      # only sequence 0 fills T
    for method, norm in (("grad_x_state", False), ("grad_norm", True)):
        s, info = rv.contributions(model, x, method, lengths, batch_size=2, return_info=True)
        ref = ref_grad_x_state(model, x, lengths, info["target"], norm=norm)
        np.testing.assert_allclose(s, ref, atol=TOL, equal_nan=True)


# --------------------------------------------------------------- 2. lengths under any name


@pytest.mark.parametrize("cls, kw", [(LensNone, {}), (SeqLens, {}), (StarArgs, {}), (OnlyExtra, {}),
                                     (NamedByCaller, {"lengths_arg": "n_valid"})],
                         ids=["lens=None", "seq_lens", "*args", "only-extra-positional", "lengths_arg"])
def test_lengths_reach_forward_parameter_named(cls, kw):
    model = seeded(cls)
    x, lengths = data()
    ref = per_sequence(model, x, lengths)
    np.testing.assert_allclose(rv.predict(model, x, lengths, **kw), ref, atol=TOL)
    tr = rv.trace(model, x, lengths, gates=True, **kw)
    np.testing.assert_allclose(tr.logits, ref, atol=TOL)
    # the traced states are the model's own: h at the last real step feeds the head
    h_last = tr.hidden[np.arange(len(lengths)), lengths.numpy() - 1]
    with torch.no_grad():
        np.testing.assert_allclose(model.fc(torch.as_tensor(h_last)).numpy(), ref, atol=TOL)


def test_lengths_reach_model_wrapped_in_data_parallel():
    inner = seeded(LensNone)
    model = nn.DataParallel(inner)
    x, lengths = data()
    ref = per_sequence(inner, x, lengths)
    np.testing.assert_allclose(rv.predict(model, x, lengths), ref, atol=TOL)
    tr = rv.trace(model, x, lengths, gates=True)
    assert tr.last.name == "gru" and "gru.l0.fwd.z" in tr.keys()
    np.testing.assert_allclose(tr.logits, ref, atol=TOL)
    s = rv.contributions(model, x, "input_x_grad", lengths, target=0)
    np.testing.assert_allclose(s, ref_input_x_grad(inner, x, lengths, [0] * len(x)), atol=TOL,
                               equal_nan=True)


def test_required_lengths_parameter_without_lengths_gets_all_steps():
    model = seeded(SeqLens)
    x, _ = data(full=True)
    full = torch.full((x.shape[0],), x.shape[1])
    with torch.no_grad():
        ref = model(x, full).numpy()
    np.testing.assert_allclose(rv.predict(model, x), ref, atol=TOL)


def test_lengths_arg_that_is_not_a_parameter_is_refused():
    with pytest.raises(rv.InputError, match="lengths_arg='nope' is not a parameter.*n_valid"):
        rv.predict(seeded(NamedByCaller), *data(), lengths_arg="nope")


# --------------------------------------------------------------- 3. no registration-order guess


@pytest.mark.parametrize("cls", [HeadFirst, ConvFront], ids=["head-registered-first", "conv1d-front-end"])
def test_feature_count_read_by_running_model_with(cls):
    model = seeded(cls)
    x, _ = data(full=True)
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(rv.predict(model, x), ref, atol=TOL)
    np.testing.assert_allclose(rv.trace(model, x, gates=True).logits, ref, atol=TOL)


@pytest.mark.parametrize("cls", [HeadFirst, ConvFront], ids=["head-registered-first", "conv1d-front-end"])
def test_wrong_feature_count_names_expected_and_given_sizes_for(cls):
    x = torch.randn(4, 6, 5)
    with pytest.raises(rv.InputError, match=r"expects 3 feature\(s\) per step, but the data has 5") as e:
        rv.trace(seeded(cls), x, gates=True)
    assert e.value.code == "feature_count"


# --------------------------------------------------------------- 4. enforce_sorted=True


@pytest.mark.parametrize("sort", [True, False], ids=["sorted-batch", "unsorted-batch"])
def test_integrated_gradients_on_enforce_sorted_model_with(sort):
    model = seeded(TutorialGRU)
    x, lengths = data(sort=sort)
    s, info = rv.contributions(model, x, "integrated_gradients", lengths, steps=16, return_info=True)
    np.testing.assert_allclose(s, ref_ig(model, x, lengths, info["target"], 16), atol=1e-4,
                               equal_nan=True)
    s, info = rv.contributions(model, x, "integrated_gradients", lengths, return_info=True)
    assert info["converged"].all()


def test_every_method_on_enforce_sorted_model_with_unsorted_lengths():
    model = seeded(TutorialGRU)
    x, lengths = data(sort=False)
    ref = per_sequence(model, x, lengths)
    np.testing.assert_allclose(rv.predict(model, x, lengths, batch_size=4), ref, atol=TOL)
    np.testing.assert_allclose(rv.trace(model, x, lengths, gates=True, batch_size=4).logits, ref, atol=TOL)
    s, info = rv.contributions(model, x, "input_x_grad", lengths, return_info=True)
    np.testing.assert_allclose(s, ref_input_x_grad(model, x, lengths, info["target"]), atol=TOL,
                               equal_nan=True)
    occ = rv.contributions(model, x, "occlusion", lengths, target=info["target"])
    manual = np.full(occ.shape, np.nan)
    for i, L in enumerate(lengths):
        base = per_sequence(model, x[i : i + 1], lengths[i : i + 1])[0, info["target"][i]]
        for t in range(int(L)):
            xo = x[i : i + 1].clone()
            xo[0, t] = 0
            manual[i, t] = base - per_sequence(model, xo, lengths[i : i + 1])[0, info["target"][i]]
    np.testing.assert_allclose(occ, manual, atol=TOL, equal_nan=True)


def test_compare_methods_on_enforce_sorted_model_with_sorted_batch():
    model = seeded(TutorialGRU)
    x, lengths = data(sort=True)
    rep = rv.faithfulness.compare_methods(model, x, lengths=lengths, n_random=1,
                                          method_options={"integrated_gradients": {"steps": 8}})
    assert set(rep.summary["method"]) == {"grad_norm", "input_x_grad", "integrated_gradients", "occlusion", "random"}
    assert np.isfinite(rep.summary["aopc"]).all()
    ref = ref_ig(model, x, lengths, rep.info["targets"], 8)
    np.testing.assert_allclose(rep.scores["integrated_gradients"], ref, atol=1e-4, equal_nan=True)


# --------------------------------------------------------------- 5. token models


class TextLSTM(nn.Module):
    """Embedding + LSTM reading token ids [N, T], the tutorial way; no padding_idx."""

    def __init__(self, vocab=12, d=4, padding_idx=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d, padding_idx=padding_idx)
        self.lstm = nn.LSTM(d, H, batch_first=True)
        self.fc = nn.Linear(H, 2)

    def from_embedded(self, e, lengths):
        out, _ = self.lstm(pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False))
        out, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(last_real(out, lengths))

    def forward(self, x, lengths):
        return self.from_embedded(self.embedding(x), lengths)


def tokens(n=5, t=6, vocab=12, seed=3):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (n, t), generator=g)
    lengths = torch.randint(2, t + 1, (n,), generator=g)
    for i, L in enumerate(lengths):
        ids[i, L:] = 0
    return ids, lengths


def emb_reference(model, ids, lengths, cls, base=None, steps=None):
    """input_x_grad (steps=None) or Gauss-Legendre IG on the embedding output, by autograd."""
    n, t = ids.shape
    res = np.full((n, t), np.nan)
    for i, L in enumerate(lengths):
        L = int(L)
        e = model.embedding(ids[i : i + 1, :L]).detach()
        li = torch.tensor([L])
        if steps is None:
            ep = e.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(model.from_embedded(ep, li)[0, cls[i]], ep)
            res[i, :L] = (e * g).sum(-1)[0].numpy()
            continue
        eb = torch.zeros_like(e) if base is None else model.embedding(torch.full((1, L), base)).detach()
        acc = torch.zeros_like(e)
        for ak, wk in zip(*gauss_legendre(steps)):
            p = (eb + ak * (e - eb)).requires_grad_(True)
            (g,) = torch.autograd.grad(model.from_embedded(p, li)[0, cls[i]], p)
            acc += wk * g * (e - eb)
        res[i, :L] = acc.sum(-1)[0].detach().numpy()
    return res


def test_token_ids_are_traced_as_integers():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    ref = per_sequence(model, ids, lengths)
    tr = rv.trace(model, ids, lengths, gates=True)
    np.testing.assert_allclose(tr.logits, ref, atol=TOL)
    np.testing.assert_allclose(rv.predict(model, ids.numpy(), lengths), ref, atol=TOL)
    assert tr["c"].shape == (5, 6, H)


def test_input_x_grad_on_token_ids_attributes_to_embedding_output():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    ids_before = ids.clone()
    s, info = rv.contributions(model, ids, "input_x_grad", lengths, return_info=True)
    np.testing.assert_allclose(s, emb_reference(model, ids, lengths, info["target"]), atol=TOL,
                               equal_nan=True)
    assert torch.equal(ids, ids_before) and ids.dtype == torch.int64
    assert not model.embedding._forward_hooks and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("baseline, token", [(None, 0), (None, 5), ("zeros", None)],
                         ids=["token-0", "baseline_token-5", "zero-embedding"])
def test_integrated_gradients_on_token_ids_from(baseline, token):
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    kw = {} if token in (None, 0) else {"baseline_token": token}
    s, info = rv.contributions(model, ids, "integrated_gradients", lengths, baseline=baseline, steps=24,
                               return_info=True, **kw)
    ref = emb_reference(model, ids, lengths, info["target"], base=token, steps=24)
    np.testing.assert_allclose(s, ref, atol=1e-4, equal_nan=True)
    s, info = rv.contributions(model, ids, "integrated_gradients", lengths, baseline=baseline,
                               return_info=True, **kw)
    assert info["converged"].all() and info["completeness_error"].max() <= 0.01


def test_occlusion_on_token_ids_puts_baseline_token_in_place():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    s, info = rv.contributions(model, ids, "occlusion", lengths, baseline_token=7, return_info=True)
    manual = np.full(s.shape, np.nan)
    for i, L in enumerate(lengths):
        c = info["target"][i]
        base = per_sequence(model, ids[i : i + 1], lengths[i : i + 1])[0, c]
        for t in range(int(L)):
            xo = ids[i : i + 1].clone()
            xo[0, t] = 7
            manual[i, t] = base - per_sequence(model, xo, lengths[i : i + 1])[0, c]
    np.testing.assert_allclose(s, manual, atol=TOL, equal_nan=True)
    assert info["baseline_token"] == 7


def test_default_baseline_token_is_the_padding_idx():
    model = seeded(TextLSTM, 12, 4, 3)
    ids, lengths = tokens()
    a = rv.contributions(model, ids, "occlusion", lengths, target=0)
    b = rv.contributions(model, ids, "occlusion", lengths, target=0, baseline_token=3)
    np.testing.assert_array_equal(a, b)


def test_compare_methods_and_prediction_delta_on_token_ids():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    rep = rv.faithfulness.compare_methods(model, ids, lengths=lengths, n_random=1)
    assert np.isfinite(rep.summary["aopc"]).all()
    s, info = rv.contributions(model, ids, "prediction_delta", lengths, target=1, return_info=True)
    full = per_sequence(model, ids, lengths)[:, 1]
    np.testing.assert_allclose(np.nansum(s, 1), full - info["target_empty_prefix"], atol=1e-5)


def test_token_ids_given_as_floats_explain_themselves():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    with pytest.raises(rv.InputError, match="integer array"):
        rv.contributions(model, ids[..., None].float(), "input_x_grad", lengths)


def test_token_ids_out_of_vocabulary_are_named():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    ids[0, 0] = 40
    with pytest.raises(rv.InputError, match="ids from 0 to 40.*12 entries"):
        rv.trace(model, ids, lengths)


# --------------------------------------------------------------- per-feature scores


@pytest.mark.parametrize("method", ["input_x_grad", "integrated_gradients"])
def test_per_feature_scores_add_up_to_per_step_scores(method):
    model = seeded(TutorialGRU)
    x, lengths = data()
    pf, info = rv.contributions(model, x, method, lengths, per_feature=True, return_info=True)
    step = rv.contributions(model, x, method, lengths)
    assert pf.shape == x.shape
    np.testing.assert_allclose(np.nansum(pf, -1), np.nan_to_num(step), atol=1e-5)
    assert np.isnan(pf[~np.isnan(step)[..., None].repeat(F_IN, -1)]).sum() == 0
    assert np.isnan(pf[np.isnan(step)]).all()
    if method == "integrated_gradients":   # completeness is reported per sequence, as without per_feature
        np.testing.assert_allclose(info["sum_scores"], np.nansum(pf, (1, 2)), atol=1e-5)
        assert info["converged"].all()
    if method == "input_x_grad":
        ref = ref_input_x_grad(model, x, lengths, info["target"], per_feature=True)
    else:
        pf = rv.contributions(model, x, method, lengths, per_feature=True, steps=16)
        ref = ref_ig(model, x, lengths, info["target"], 16, per_feature=True)
    np.testing.assert_allclose(pf, ref, atol=1e-4, equal_nan=True)


def test_per_feature_occlusion_replaces_one_feature_at_one_step():
    model = seeded(TutorialGRU)
    x, lengths = data(n=3)
    s, info = rv.contributions(model, x, "occlusion", lengths, per_feature=True, baseline="mean",
                               return_info=True)
    valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    mean = x[valid].mean(0)
    manual = np.full(x.shape, np.nan)
    for i, L in enumerate(lengths):
        c = info["target"][i]
        base = per_sequence(model, x[i : i + 1], lengths[i : i + 1])[0, c]
        for t in range(int(L)):
            for k in range(F_IN):
                xo = x[i : i + 1].clone()
                xo[0, t, k] = mean[k]
                manual[i, t, k] = base - per_sequence(model, xo, lengths[i : i + 1])[0, c]
    np.testing.assert_allclose(s, manual, atol=1e-5, equal_nan=True)


def test_per_feature_is_refused_where_it_has_no_meaning():
    model = seeded(TextLSTM)
    ids, lengths = tokens()
    with pytest.raises(rv.InputError, match="token ids"):
        rv.contributions(model, ids, "input_x_grad", lengths, per_feature=True)
    with pytest.raises(rv.InputError, match="per_feature=True is offered for"):
        x, lengths = data()
        rv.contributions(seeded(TutorialGRU), x, "grad_norm", lengths, per_feature=True)


# --------------------------------------------------------------- 6. parametrized modules


class Parametrized(nn.Module):
    """weight_norm on the GRU's recurrent weight and the head, spectral_norm on an input layer."""

    def __init__(self):
        super().__init__()
        P = nn.utils.parametrizations
        self.inp = P.spectral_norm(nn.Linear(F_IN, 4))
        self.gru = P.weight_norm(nn.GRU(4, H, batch_first=True), name="weight_hh_l0")
        self.fc = P.weight_norm(nn.Linear(H, C))

    def forward(self, x):
        out, _ = self.gru(torch.tanh(self.inp(x)))
        return self.fc(out[:, -1])


def test_weight_norm_and_spectral_norm_parametrized_model():
    model = seeded(Parametrized)
    x, _ = data(full=True)
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(rv.predict(model, x), ref, atol=TOL)
    np.testing.assert_allclose(rv.trace(model, x, gates=True).logits, ref, atol=TOL)
    s = rv.contributions(model, x, "input_x_grad", target=1)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi)[:, 1].sum(), xi)
    np.testing.assert_allclose(s, (x * g).sum(-1).numpy(), atol=TOL)
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------- 7. the user's hooks


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F_IN, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


def test_user_forward_hooks_run_on_every_path():
    model = seeded(Plain)
    calls = {"gru": 0, "pre": 0}

    def halve(m, inp, out):      # changes what the head sees
        calls["gru"] += 1
        return out[0] * 0.5, out[1]

    def shift(m, args):          # changes what the GRU reads
        calls["pre"] += 1
        return (args[0] + 0.25,) + args[1:]

    model.gru.register_forward_hook(halve)
    model.gru.register_forward_pre_hook(shift)
    model.fc.register_forward_hook(lambda m, i, o: o + 1.0)
    x, _ = data(full=True)
    with torch.no_grad():
        ref = model(x).numpy()
    calls.update(gru=0, pre=0)
    fused = rv.trace(model, x).logits
    assert calls == {"gru": 1, "pre": 1}
    unrolled = rv.trace(model, x, gates=True).logits
    assert calls == {"gru": 2, "pre": 2}
    np.testing.assert_allclose(fused, ref, atol=TOL)
    np.testing.assert_allclose(unrolled, ref, atol=TOL)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi)[:, 2].sum(), xi)
    np.testing.assert_allclose(rv.contributions(model, x, "input_x_grad", target=2),
                               (x * g).sum(-1).numpy(), atol=TOL)
    assert (len(model.gru._forward_hooks), len(model.gru._forward_pre_hooks), len(model.fc._forward_hooks)) == (1, 1, 1)


def test_user_backward_hooks_do_not_change_gradients():
    model = seeded(Plain)
    x, _ = data(full=True)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi)[:, 0].sum(), xi)
    model.fc.register_full_backward_hook(lambda m, gi, go: (torch.zeros_like(gi[0]),))
    s = rv.contributions(model, x, "input_x_grad", target=0)
    np.testing.assert_allclose(s, (x * g).sum(-1).numpy(), atol=TOL)


# --------------------------------------------------------------- 8. tuple outputs


class FeaturesLogits(Plain):
    def forward(self, x):
        out, h = self.gru(x)
        return out[:, -1], self.fc(out[:, -1])          # (features [N, H], logits [N, C])


class LogitsHidden(Plain):
    def forward(self, x):
        out, h = self.gru(x)
        return self.fc(out[:, -1]), h                   # (logits [N, C], h [1, N, H])


def test_features_logits_tuple_is_refused_naming_output():
    model = seeded(FeaturesLogits)
    x, _ = data(full=True)
    with pytest.raises(rv.ModelError, match=r"2 of which could each be the output.*output="):
        rv.predict(model, x)
    with torch.no_grad():
        ref = model(x)[1].numpy()
    np.testing.assert_allclose(rv.predict(model, x, output=1), ref, atol=TOL)
    np.testing.assert_allclose(rv.trace(model, x, gates=True, output=lambda r: r[1]).logits, ref, atol=TOL)
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi)[1][:, 0].sum(), xi)
    np.testing.assert_allclose(rv.contributions(model, x, "input_x_grad", target=0, output=1),
                               (x * g).sum(-1).numpy(), atol=TOL)


def test_logits_hidden_tuple_picks_the_logits():
    model = seeded(LogitsHidden)
    x, _ = data(full=True)
    with torch.no_grad():
        ref = model(x)[0].numpy()
    np.testing.assert_allclose(rv.predict(model, x), ref, atol=TOL)
    np.testing.assert_allclose(rv.trace(model, x, gates=True).logits, ref, atol=TOL)


# --------------------------------------------------------------- 9. a module called twice


class Twice(Plain):
    def forward(self, x):
        a, _ = self.gru(x)
        b, _ = self.gru(x.flip(1))
        return self.fc(a[:, -1] + b[:, -1])


@pytest.mark.parametrize("gates", [False, True])
def test_recurrent_module_called_twice_is_refused(gates):
    with pytest.raises(rv.ModelError, match="runs its recurrent module 'gru' more than once"):
        rv.trace(seeded(Twice), data(full=True)[0], gates=gates)
    with pytest.raises(rv.ModelError, match="more than once"):
        rv.contributions(seeded(Twice), data(full=True)[0], "grad_norm")


# --------------------------------------------------------------- 10. failures say their cause


class PacksAlways(nn.Module):
    """forward(self, x, lengths=None) that packs unconditionally: needs lengths."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F_IN, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, x, lengths=None):
        out, _ = self.gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        out, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(last_real(out, lengths))


class SortsNothing(nn.Module):
    """Finds its own lengths from non-zero steps and packs with enforce_sorted=True."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(F_IN, H, batch_first=True)
        self.fc = nn.Linear(H, C)

    def forward(self, x):
        lengths = (x.abs().sum(-1) > 0).sum(1)
        out, _ = self.gru(pack_padded_sequence(x, lengths, batch_first=True))
        out, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(last_real(out, lengths))


def test_missing_lengths_failure_says_lengths():
    with pytest.raises(rv.ModelError, match="lengths=") as e:
        rv.predict(seeded(PacksAlways), data()[0])
    assert "features" not in str(e.value) and e.value.code == "lengths"


def test_unsorted_packing_failure_says_sorting():
    x, lengths = data(sort=False)
    with pytest.raises(rv.ModelError, match="enforce_sorted=True"):
        rv.predict(seeded(SortsNothing), x)


def test_token_ids_for_a_feature_model_say_so():
    with pytest.raises(rv.InputError, match="token ids.*no nn.Embedding"):
        rv.predict(seeded(Plain), torch.randint(0, 3, (4, 6)))


def test_forward_needing_an_unknown_argument_names_it():
    class NeedsMask(Plain):
        def forward(self, x, mask, lengths):
            return super().forward(x)

    with pytest.raises(rv.ModelError, match="needs an argument 'mask'"):
        rv.predict(seeded(NeedsMask), *data())


# --------------------------------------------------------------- 11. batch_size=0


@pytest.mark.parametrize("fn", ["trace", "predict", "contributions"])
def test_batch_size_zero_is_refused_by(fn):
    x, _ = data(full=True)
    with pytest.raises(rv.InputError, match="batch_size must be a positive whole number"):
        getattr(rv, fn)(seeded(Plain), x, batch_size=0)


def test_distributed_data_parallel_is_looked_through():
    inner = seeded(LensNone)
    ddp = nn.parallel.DistributedDataParallel.__new__(nn.parallel.DistributedDataParallel)
    nn.Module.__init__(ddp)          # a stand-in: no process group needed to hold a module
    ddp.module = inner
    x, lengths = data()
    np.testing.assert_allclose(rv.predict(ddp, x, lengths), per_sequence(inner, x, lengths), atol=TOL)
    assert rv.trace(ddp, x, lengths).last.name == "gru"


def test_dict_output_reads_its_logits():
    class DictOut(Plain):
        def forward(self, x):
            out, h = self.gru(x)
            return {"hidden": out[:, -1], "logits": self.fc(out[:, -1])}

    model = seeded(DictOut)
    x, _ = data(full=True)
    with torch.no_grad():
        ref = model(x)["logits"].numpy()
    np.testing.assert_allclose(rv.trace(model, x, gates=True).logits, ref, atol=TOL)
    np.testing.assert_allclose(rv.predict(model, x, output="logits"), ref, atol=TOL)
