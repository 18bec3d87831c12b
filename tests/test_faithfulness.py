"""The deletion check: curves by hand, AOPC by hand, a good ranking beats random, a reversed one
loses to it, seeded random baseline, one call for several methods."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnviz_core.errors import InputError
from rnnviz_core.faithfulness import aopc, compare_methods, deletion_curve

from test_contributions import GRUNet, LinearRNN


def _linear_case():
    m = LinearRNN(a=0.8, w=1.0)                    # out = sum_t 0.8^(L-1-t) x_t
    g = torch.Generator().manual_seed(7)
    x = torch.rand(4, 5, 1, generator=g) + 0.05
    L = np.array([5, 5, 3, 4])
    return m, x, L


def _out(m, x, L):
    with torch.no_grad():
        return m(torch.as_tensor(x), torch.as_tensor(L)).numpy()


def test_deletion_curve_by_hand():
    m, x, L = _linear_case()
    scores = np.random.default_rng(0).normal(size=(4, 5))
    fr = [0.0, 0.5, 1.0]
    df = deletion_curve(m, x, scores, lengths=L, fractions=fr)
    assert list(df.columns) == ["method", "fraction", "mean_output", "is_random"]
    expect = []
    for f in fr:
        xd = x.clone()
        for i in range(4):
            k = int(np.rint(f * L[i]))
            order = np.argsort(-scores[i, :L[i]], kind="stable")[:k]
            xd[i, order] = 0.0                      # baseline zeros
        expect.append(_out(m, xd, L).mean())
    np.testing.assert_allclose(df.mean_output, expect, rtol=1e-5)
    outs = np.array(expect)
    assert aopc(np.array([[1.0, 2.0], [0.5, 1.0], [0.0, 0.0]])) == pytest.approx(
        np.mean([0, 0, 0.5, 1.0, 1.0, 2.0]))
    assert outs[0] == pytest.approx(_out(m, x, L).mean(), rel=1e-5)


def test_good_ranking_beats_random_and_reversed_loses():
    torch.manual_seed(0)
    m = GRUNet(F=3, H=8, C=2)
    x = torch.randn(24, 12, 3, generator=torch.Generator().manual_seed(1))
    rep = compare_methods(m, x, ["occlusion"], fractions=7, n_random=3, seed=0)
    occ = rep.scores["occlusion"]
    rev = compare_methods(m, x, [], scores={"reversed": -occ}, fractions=7, n_random=3, seed=0)
    s = rep.summary.set_index("method")
    r = rev.summary.set_index("method")
    # measured: +0.043 and -0.044 logits (outputs here span about 0.13-0.21)
    assert s.loc["occlusion", "aopc_minus_random"] > 0.02
    assert r.loc["reversed", "aopc_minus_random"] < -0.02
    # same seed, same random reference
    assert s.loc["random", "aopc"] == pytest.approx(r.loc["random", "aopc"], rel=1e-9)
    other = compare_methods(m, x, [], scores={"occ": occ}, fractions=7, n_random=3, seed=1)
    assert other.summary.set_index("method").loc["random", "aopc"] != s.loc["random", "aopc"]


def test_compare_methods_tidy_and_reports_completeness():
    torch.manual_seed(1)
    m = GRUNet(F=3, H=5, C=3)
    x = torch.randn(6, 8, 3, generator=torch.Generator().manual_seed(2))
    L = np.array([8, 5, 3, 8, 2, 7])
    rep = compare_methods(m, x, ["grad_norm", "integrated_gradients"], lengths=L, fractions=5,
                          method_options={"integrated_gradients": {"steps": 32}})
    curves, summary, scores, info = rep
    assert list(curves.columns) == ["method", "fraction", "mean_output", "is_random"]
    assert curves.method.unique().tolist() == ["grad_norm", "integrated_gradients", "random"]
    assert curves.groupby("method").size().tolist() == [5, 5, 5]
    assert curves[curves.is_random].method.unique().tolist() == ["random"]
    assert list(summary.columns[:3]) == ["method", "aopc", "aopc_minus_random"]
    ig = summary.set_index("method").loc["integrated_gradients"]
    assert ig.completeness_error == pytest.approx(np.median(info["integrated_gradients"]
                                                            ["completeness_error"]))
    assert np.isnan(summary.set_index("method").loc["grad_norm", "completeness_error"])
    # every curve starts at the full output and ends with all steps removed (the same for all)
    start = curves[curves.fraction == 0].mean_output
    end = curves[curves.fraction == 1].mean_output
    assert np.ptp(start) < 1e-6 and np.ptp(end) < 1e-6
    assert scores["grad_norm"].shape == (6, 8) and np.isnan(scores["grad_norm"][4, 2:]).all()
    # the target is fixed once: the predicted class on the clean input
    with torch.no_grad():
        pred = m(x, torch.as_tensor(L)).argmax(1).numpy()
    np.testing.assert_array_equal(info["targets"], pred)


def test_bad_input():
    m, x, L = _linear_case()
    with pytest.raises(InputError, match="shape"):
        deletion_curve(m, x, np.zeros((4, 4)), lengths=L)
    with pytest.raises(InputError, match="fractions"):
        deletion_curve(m, x, np.zeros((4, 5)), lengths=L, fractions=[0.5, 0.2])
    with pytest.raises(InputError, match="Unknown contribution method"):
        compare_methods(m, x, ["saliency"], lengths=L)


def test_new_methods_in_the_deletion_check_use_its_baseline():
    """compare_methods passes its own baseline to mask and shapley: on the linear model Shapley
    values are exact per-step terms, 0.8^(L-1-t) * (x_t - mean)."""
    m, x, L = _linear_case()
    rep = compare_methods(m, x, methods=("shapley", "mask", "occlusion"), lengths=L,
                          baseline="mean", method_options={"mask": {"iterations": 20}})
    valid = np.arange(5)[None, :] < L[:, None]
    mean = float(x[..., 0].numpy()[valid].mean())
    expect = np.full((4, 5), np.nan)
    for i in range(4):
        for t in range(L[i]):
            expect[i, t] = 0.8 ** (L[i] - 1 - t) * (float(x[i, t, 0]) - mean)
    np.testing.assert_allclose(rep.scores["shapley"], expect, atol=1e-5, equal_nan=True)
    # linear model: occlusion equals Shapley exactly
    np.testing.assert_allclose(rep.scores["occlusion"], expect, atol=1e-5, equal_nan=True)
    assert set(rep.summary["method"]) == {"shapley", "mask", "occlusion", "random"}
