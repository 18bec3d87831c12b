"""The quadrature rules behind integrated gradients' default refinement, against exact integrals.

The nested Kronrod-Patterson rules (15 -> 31 nodes) are computed at import; these tests hold
them to what makes them usable: every earlier node reused, positive weights, and exact integrals
of every Legendre polynomial up to their degree (integral over [-1, 1] is 2 for P_0, else 0).
"""
import numpy as np
import pytest
from numpy.polynomial import legendre as leg

from rnnviz_core.contributions import _GK_WK, _GK_X, _IG_W, _IG_X


def _legendre_errors(x, w, max_deg):
    exact = np.zeros(max_deg + 1)
    exact[0] = 2.0
    got = np.array([np.sum(w * leg.legval(x, np.eye(max_deg + 1)[k])) for k in range(max_deg + 1)])
    return np.abs(got - exact)


def test_levels_are_nested_and_start_from_gauss_kronrod_15():
    assert [len(x) for x in _IG_X] == [15, 31]
    np.testing.assert_array_equal(_IG_X[0], _GK_X)
    np.testing.assert_array_equal(_IG_W[0], _GK_WK)
    for lo, hi in zip(_IG_X, _IG_X[1:]):
        np.testing.assert_array_equal(hi[: len(lo)], lo)          # every earlier node reused
    for x in _IG_X:
        assert np.all(np.abs(x) < 1) and len(np.unique(x)) == len(x)


@pytest.mark.parametrize("level, degree", [(0, 23), (1, 47)])
def test_rules_are_exact_to_their_degree_and_positive(level, degree):
    x, w = _IG_X[level], _IG_W[level]
    assert np.all(w > 0)
    np.testing.assert_allclose(w.sum(), 2.0, rtol=1e-13)
    assert _legendre_errors(x, w, degree).max() < 1e-12
    # ... and not beyond (the next even degree is where a rule of this size must fail)
    assert _legendre_errors(x, w, degree + 1)[degree + 1] > 1e-9


def test_patterson_31_on_a_smooth_integrand():
    """A non-polynomial check: exp on [-1, 1] to near machine precision with 31 nodes."""
    x, w = _IG_X[1], _IG_W[1]
    assert abs(np.sum(w * np.exp(x)) - (np.e - 1 / np.e)) < 1e-13
