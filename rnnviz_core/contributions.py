"""Per-timestep contributions: which steps of a sequence drove the model's final output.

One public verb, :func:`contributions`, dispatches to one private function per method. Every
method returns an array ``[N, T]`` (one score per sequence and step, NaN at and past each
sequence's length) and is computed for the whole dataset at once: sequences are processed in
batches (chunks of rows), never one at a time in a Python loop.

Gradients are taken only with respect to what a method reports (``torch.autograd.grad(out,
inputs=[probe])`` or ``inputs=[x]``), never with respect to the model's parameters, and the
model itself is never touched: the trace engine runs a private structural copy in eval mode.

Targets
-------
``target=None`` scores the class the model predicts for each sequence (or the single output of
a one-output model); an ``int`` scores that class for every sequence; an array gives one class
per sequence. ``target_kind`` picks the quantity being explained:

* ``"logit"`` (default): the model's raw output for the target class;
* ``"probability"``: softmax probability of the target class (for a one-output model, the
  sigmoid of its output, i.e. it is read as a binary classifier with one logit);
* ``"loss"``: the per-sequence loss against labels ``y=`` (cross-entropy for multi-class
  models; squared error for one-output models, or binary cross-entropy with
  ``loss="bce"``). Positive scores then mean "this step raised the loss". This is the
  quantity the original gradient-norm recipe used.

Baselines
---------
Integrated gradients, occlusion, prediction_delta and the deletion check replace steps by a
*baseline*: ``None``/``"zeros"`` (default) or ``"mean"`` (the per-feature mean over all valid
steps of all sequences passed in), or an array of shape ``[F]``, ``[T, F]`` or ``[N, T, F]``.
Padding positions (at and past a sequence's length) are never replaced.

Token models
------------
``x`` may be integer token ids ``[N, T]`` for a model that embeds them with ``nn.Embedding``;
they are never cast to float. ``grad_norm`` and ``grad_x_state`` work on the recurrent states
as for any model. ``input_x_grad`` and ``integrated_gradients`` attribute to the *embedding
output* E [N, T, D] (the output of the ``nn.Embedding`` that reads x), summed over its D
dimensions. The baseline is a token, ``baseline_token=`` (default: the ``padding_idx`` of the
model's first embedding that declares one, else 0): occlusion, prediction_delta and the
deletion check put that token in place of a step, and integrated gradients runs the straight
path from that token's embedding to E at every real step (``baseline="zeros"``: from the zero
vector instead, for integrated gradients only). ``per_feature`` is not offered for token ids
(a step holds one token).

Per-feature scores
------------------
``per_feature=True`` (input_x_grad, integrated_gradients, occlusion) returns ``[N, T, F]``:
one score per feature at each step. For input_x_grad and integrated_gradients they add up over
F to the per-step score exactly (same quadrature nodes); occlusion's replace one feature at one
step at a time, so they add up to the per-step score only when the features do not interact
(and cost F times the forward passes of per-step occlusion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import torch
import torch.nn.functional as F_

from .errors import InputError

__all__ = ["contributions", "METHODS", "TARGET_KINDS"]

METHODS: dict[str, str] = {
    "grad_norm": (
        "How strongly the answer would react to a small nudge of the network's memory at this "
        "step (the size of the gradient; never negative, so it says how sensitive, not which way)."
    ),
    "grad_x_state": (
        "The network's memory at this step multiplied by how sensitive the answer is to it, "
        "summed over units: a quick signed estimate of how much this step's memory pushed the "
        "answer up (positive) or down (negative)."
    ),
    "input_x_grad": (
        "Each input value at this step multiplied by how sensitive the answer is to it, summed "
        "over features: a quick signed estimate of how much this step's inputs pushed the answer."
    ),
    "integrated_gradients": (
        "How much this step's inputs moved the answer away from what a neutral (baseline) "
        "sequence would give, added up along a straight path from the baseline to the real "
        "input; a sequence's scores add up to that total change, and we report how closely."
    ),
    "occlusion": (
        "How much the answer drops when only this step is replaced by the baseline "
        "(positive: the step supported the answer; negative: it worked against it)."
    ),
    "mask": (
        "How much of this step the model needs to keep its answer: a mask is learned that keeps "
        "as little of the sequence as possible while the answer stays the same, with everything "
        "else replaced by the baseline (0: not needed; 1 per feature: needed in full)."
    ),
    "mask_x_grad": (
        "How much of this value the model needs to keep its answer (the mask above) times how "
        "sensitive the answer is to it, relative to the most sensitive value scored in the "
        "sequence: high only where a value is both needed and one the answer reacts to most."
    ),
    "shapley": (
        "This step's fair share of the change from a neutral (baseline) sequence to the real "
        "one: how much it adds to the answer on average over every order in which the steps "
        "(or blocks of steps) could be put back; a sequence's shares add up to that change."
    ),
    "prediction_delta": (
        "How much the model's running answer changed when it read this step: its answer after "
        "this step minus its answer just before it."
    ),
}

TARGET_KINDS = ("logit", "probability", "loss")

# Elements (rows x steps x width) per forward pass when the caller gives no batch_size. About
# 8M floats per saved activation keeps the peak memory of one backward pass to a few hundred MB
# for a one-layer GRU, while batches stay big enough that the per-step Python overhead of the
# unrolled recurrence is shared by many rows.
_ELEMENT_BUDGET = 1 << 23

# Integrated-gradients refinement defaults (see _integrated_gradients).
_IG_MAX_STEPS = 2048      # gradient evaluations per sequence before refinement gives up
_IG_TOL = 0.01
_IG_FLOOR = 0.01
_IG_SPLIT = 0.25          # split every panel whose error estimate is >= this share of the worst

# Gauss-Kronrod 7-15 on [-1, 1] (QUADPACK's constants, as in scipy.integrate.quad_vec).
_GK_X = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                  0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                  0.586087235467691130294144838258730, 0.405845151377397166906606412076961,
                  0.207784955007898467600689403773245, 0.0])
_GK_X = np.concatenate([_GK_X, -_GK_X[-2::-1]])                               # 15 nodes
_GK_WK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                   0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                   0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                   0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_GK_WK = np.concatenate([_GK_WK, _GK_WK[-2::-1]])                             # Kronrod weights
_GK_WG = np.zeros(15)                                                         # Gauss-7 weights
_GK_WG[1::2] = [0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327,
                0.381830050505118944950369775488975, 0.279705391489276667901467771423780,
                0.129484966168869693270611432679082]


_IG_SCAN = 32             # forward-only scan of the path: cells of width 1/32 ...
_IG_PEAK = 3.0            # ... where the output changes this many times faster than on average
                          # start as panels of their own


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------

@overload
def contributions(model, x, method: str = ..., lengths=..., target=..., *, baseline=...,
                  device=..., batch_size=..., return_info: Literal[False] = ...,
                  **options) -> np.ndarray: ...


@overload
def contributions(model, x, method: str = ..., lengths=..., target=..., *, baseline=...,
                  device=..., batch_size=..., return_info: Literal[True],
                  **options) -> tuple[np.ndarray, dict[str, Any]]: ...


def contributions(model, x, method="grad_norm", lengths=None, target=None, *, baseline=None,
                  device="auto", batch_size=None, return_info=False, lengths_arg=None, output=None,
                  **options):
    """Score every timestep of every sequence by how much it drove the model's output.

    Parameters
    ----------
    model : torch.nn.Module
        A model containing ``nn.RNN``/``nn.GRU``/``nn.LSTM`` modules whose forward takes a padded
        batch ``x`` [N, T, F] (plus ``lengths`` when its signature has it) and returns logits
        [N, C] or [N] / [N, 1]. Never modified.
    x : array-like or torch.Tensor, shape [N, T, F], or integer token ids [N, T]
        Padded sequences. Copied on the way in; the caller's array is left untouched. For token
        ids see "Token models" in the module docstring.
    method : str
        One of :data:`METHODS` (its value is the method's meaning in one sentence).
    lengths : array-like of int [N], optional
        Valid length of each sequence (default: all ``T``).
    target : None, int or array-like of int [N]
        None: the predicted class (or the single output); int: that class for all sequences;
        array: one class per sequence.
    baseline : None, "zeros", "mean" or array [F] / [T, F] / [N, T, F]
        What a removed step is replaced with (integrated_gradients, occlusion,
        prediction_delta); see the module docstring.
    device : str or torch.device
        "auto" (CUDA, then MPS, then CPU) or an explicit device.
    batch_size : int, optional
        Rows per forward pass (default: chosen from the sequence size, about 8M elements).
    return_info : bool
        Also return a dict with what was computed (target classes, and for integrated
        gradients the per-sequence completeness error and step counts).
    lengths_arg, output : as in :func:`rnnviz_core.trace`: the forward parameter that takes the
        lengths (default: found by name), and what picks the logits from what it returns.
    **options
        ``target_kind`` ("logit", "probability", "loss"), ``y`` (labels for "loss"), ``loss``
        ("auto", "ce", "mse", "bce"); for integrated_gradients ``steps`` (fixed count of
        Gauss-Legendre nodes; default: refine), ``tol`` (0.01), ``max_steps`` (2048 gradient
        evaluations per sequence), ``floor`` (0.01); ``per_feature`` (input_x_grad,
        integrated_gradients, occlusion, mask: scores [N, T, F]); ``baseline_token`` (token
        models: the id that replaces a step; see the module docstring); ``at_steps`` (occlusion,
        mask: score only these steps, negative = from each sequence's end; the others are NaN);
        for mask ``iterations`` (60), ``area`` (0.1), ``lr`` (0.2), ``perturbation``
        ("baseline" or "blur"), ``sigma`` (1.0), ``seed`` (0), see :mod:`.masks`; for shapley
        ``groups`` (blocks of steps, default min(T, 10)), ``samples`` (random orders instead of
        the exact values), ``seed``, see :mod:`.shapley`.

    Returns
    -------
    scores : np.ndarray float32 [N, T] ([N, T, F] with ``per_feature=True``)
        NaN at and past each sequence's length.
    info : dict
        Only with ``return_info=True``. Always: ``method``, ``target`` (int [N], the class
        explained per sequence; 0 for one-output models), ``target_kind``, ``device``,
        ``lengths``. integrated_gradients adds ``completeness_error`` [N] (see Notes),
        ``converged`` bool [N], ``steps`` [N] (nodes used per sequence),
        ``gradient_evaluations``, ``target_x``/``target_baseline``/``sum_scores`` [N], ``tol``,
        ``floor``, ``rule``; occlusion adds ``target_x``; prediction_delta adds
        ``target_empty_prefix`` [N].

    Notes
    -----
    * The model runs as in :func:`rnnviz_core.trace`: lengths reach whichever forward parameter
      takes them (sorted batches for ``enforce_sorted=True`` packing, results in your order),
      ``nn.DataParallel`` is looked through, the user's forward hooks run on every pass and
      backward hooks never do, and a forward that runs a recurrent module twice is refused.
    * ``grad_norm`` and ``grad_x_state`` use the gradient with respect to the per-step state of
      the *last layer of the last recurrent module* (the total derivative through all later
      steps, computed by the trace engine's unrolled recurrence). For a bidirectional layer the
      forward and backward halves are concatenated, so ``grad_norm`` is
      ``sqrt(|g_fwd|^2 + |g_bwd|^2)`` and ``grad_x_state`` sums over both halves.
    * ``prediction_delta`` defines the output for the empty prefix as the model's output on a
      one-step sequence equal to the baseline (zeros by default): the model cannot read an
      empty sequence, and one neutral step is the closest it can get. Step 0's score is
      ``f(x[:1]) - f(baseline[:1])``; the scores of a sequence sum to
      ``f(x) - f(baseline[:1])``.
    * ``integrated_gradients`` with ``steps=n`` uses n-point Gauss-Legendre quadrature on the
      straight path (Captum's default rule). Without ``steps`` it refines adaptively, per
      sequence: a forward-only scan of the target at 33 points of the path cuts [0, 1] into
      panels around its sharp changes (one panel [0, 1] when it has none), each panel gets a
      15-point Gauss-Kronrod rule (whose embedded 7-point Gauss rule gives an error
      estimate), and each round splits in two the
      panels whose estimate is at least a quarter of that sequence's worst, until the
      sequence's scores add up to ``f(x) - f(baseline)``: completeness error
      ``|sum(scores) - (f(x) - f(baseline))| / max(|f(x) - f(baseline)|, floor)`` at most
      ``tol`` (1% of the change, with an absolute floor of ``tol * floor`` = 1e-4), or until it
      has used ``max_steps`` gradient evaluations. Nodes crowd where the output changes
      sharply along the path, which is where fixed rules miss on sharp classifiers. Sequences
      still above ``tol`` are reported in ``info["converged"]``.
    """
    fn = _DISPATCH.get(method) if isinstance(method, str) else None
    if fn is None:
        raise InputError(
            f"Unknown contribution method {method!r}. Choose one of: {', '.join(METHODS)}.")
    per_feature = options.pop("per_feature", False)
    if not isinstance(per_feature, (bool, np.bool_)):
        raise InputError(f"per_feature must be True or False, got {per_feature!r}.")
    if per_feature and method not in _PER_FEATURE:
        raise InputError(f"per_feature=True is offered for {', '.join(sorted(_PER_FEATURE))}; "
                         f"{method!r} scores whole steps.")
    baseline_token = options.pop("baseline_token", None)
    prob = _setup(model, x, lengths, target, device=device, batch_size=batch_size,
                  target_kind=options.pop("target_kind", "logit"), y=options.pop("y", None),
                  loss=options.pop("loss", "auto"), lengths_arg=lengths_arg, output=output,
                  baseline_token=baseline_token)
    if per_feature and prob.tokens:
        raise InputError("per_feature=True needs features [N, T, F]; x holds token ids, one token per "
                         "step, so the per-step scores already score each token.")
    if baseline_token is not None and method not in _USES_BASELINE:
        raise InputError(f"Method {method!r} does not use a baseline; leave baseline_token=None.")
    prob.per_feature = bool(per_feature)
    allowed = _OPTIONS[method]
    unknown = sorted(set(options) - allowed)
    if unknown:
        hint = f" It accepts: {', '.join(sorted(allowed))}." if allowed else ""
        raise InputError(f"Method {method!r} does not take option(s) {', '.join(unknown)}.{hint}")
    info: dict[str, Any] = {"method": method, "target_kind": prob.kind,
                            "device": str(prob.dev), "lengths": prob.L.copy()}
    if method in _USES_BASELINE:
        b = resolve_baseline(baseline, prob.xt, prob.L, baseline_token=prob.baseline_token,
                             zeros_ok=method == "integrated_gradients")
        if prob.tokens:
            prob.zero_embedding = isinstance(baseline, str) and baseline == "zeros"
            info["baseline_token"] = prob.baseline_token
        scores = fn(prob, b, info, **options)
    else:
        if baseline is not None:
            raise InputError(f"Method {method!r} does not use a baseline; leave baseline=None.")
        scores = fn(prob, info, **options)
    info["target"] = prob.cls.cpu().numpy().copy()
    scores = scores.detach().to("cpu", torch.float32).numpy()
    scores[_pad_mask(prob.L, prob.T)] = np.nan          # [N, T] or, per feature, [N, T, F]
    if "scored" in info:                                 # at_steps=: steps not scored are NaN
        scores[~info["scored"]] = np.nan
    return (scores, info) if return_info else scores


# --------------------------------------------------------------------------------------------
# problem setup: inputs, targets, forward passes
# --------------------------------------------------------------------------------------------

@dataclass
class _Problem:
    model: Any
    dev: torch.device
    xt: torch.Tensor          # (N, T, F) float32 on dev; never modified in place
    lt: torch.Tensor | None   # (N,) int64 on CPU, or None (= all T)
    L: np.ndarray             # (N,) int64 valid lengths
    single: bool              # one-output model
    C: int                    # number of outputs
    cls: torch.Tensor         # (N,) int64 on dev: class explained per row (0 for single;
                              # -1 until the predicted class is known when target=None)
    kind: str                 # "logit" | "probability" | "loss"
    y: torch.Tensor | None    # (N,) labels on dev for "loss"
    loss: str                 # "ce" | "mse" | "bce"
    batch_size: int | None
    predicted: bool = False   # target=None on a multi-class model: cls filled from clean passes
    _width: int | None = None  # H_out of the last recurrent module, measured once
    call: dict | None = None  # lengths_arg= and output= for the engine
    baseline_token: int = 0   # token models: the id that stands for "no token"
    per_feature: bool = False  # scores [N, T, F] instead of [N, T]
    zero_embedding: bool = False  # token models, integrated gradients from the zero embedding

    @property
    def tokens(self) -> bool:
        """x holds token ids [N, T] (gradients go to the embedding output)."""
        return self.xt.dim() == 2

    def width(self) -> int:
        if self._width is None:
            self._width = _output_width(self)
        return self._width

    @property
    def N(self) -> int:
        return self.xt.shape[0]

    @property
    def T(self) -> int:
        return self.xt.shape[1]

    def rows_per_batch(self, width: int, steps: int | None = None) -> int:
        if self.batch_size is not None:
            return self.batch_size
        steps = self.T if steps is None else steps
        return max(1, _ELEMENT_BUDGET // max(1, steps * max(width, self.n_features)))

    @property
    def n_features(self) -> int:
        return 1 if self.tokens else self.xt.shape[2]

    def lengths_of(self, rows: torch.Tensor) -> torch.Tensor | None:
        return None if self.lt is None else self.lt[rows.cpu()]

    def out(self, logits: torch.Tensor, rows: torch.Tensor, clean: bool = False) -> torch.Tensor:
        """Target quantity per row from raw model output; rows index the dataset (on dev).

        ``clean=True`` marks logits computed on the unperturbed x: with ``target=None`` they fix
        the predicted class of those rows. Perturbed inputs always use the class fixed on x.
        """
        z = _as_2d(logits)                                    # (n, C)
        if z.shape[1] != self.C:
            raise RuntimeError("model output width changed between passes")
        if clean and self.predicted:
            self.cls[rows] = z.detach().argmax(1)
        elif not self.single and bool((self.cls[rows] < 0).any()):
            raise RuntimeError("target class used before the clean forward fixed it")
        if self.single:
            z1 = z[:, 0]
            if self.kind == "logit":
                return z1
            if self.kind == "probability":
                return torch.sigmoid(z1)
            yy = self.y[rows]
            if self.loss == "bce":
                return F_.binary_cross_entropy_with_logits(z1, yy, reduction="none")
            return (z1 - yy) ** 2
        if self.kind == "logit":
            return z.gather(1, self.cls[rows, None]).squeeze(1)
        if self.kind == "probability":
            return torch.softmax(z, 1).gather(1, self.cls[rows, None]).squeeze(1)
        return F_.cross_entropy(z, self.y[rows], reduction="none")

    def forward(self, x: torch.Tensor, rows: torch.Tensor, lengths=None, probe=None,
                clean: bool = False):
        """Differentiable unrolled forward -> (target per row, h_last)."""
        from .engine import unrolled_forward
        lt = self.lengths_of(rows) if lengths is None else lengths
        logits, h_last = unrolled_forward(self.model, x, lt, probe=probe, **(self.call or {}))
        return self.out(logits, rows, clean=clean), h_last

    def forward_embedded(self, x: torch.Tensor, rows: torch.Tensor, mode: str,
                         base_ids: torch.Tensor | None = None, alphas: torch.Tensor | None = None,
                         clean: bool = False):
        """Token models: unrolled forward with the embedding output as a leaf.

        Returns (target per row, E_leaf [n, T, D], delta [n, T, D]); see engine.EmbedSpec.
        """
        from .engine import EmbedSpec, run_unrolled
        lt = self.lengths_of(rows)
        valid = _valid_mask_t(self.L[rows.cpu().numpy()], self.T, x.device)
        spec = EmbedSpec(mode, valid, base_ids, alphas)
        logits, _, leaf, delta = run_unrolled(self.model, x, lt, embed=spec, **(self.call or {}))
        return self.out(logits, rows, clean=clean), leaf, delta

    def predict_out(self, x: torch.Tensor, rows: torch.Tensor, lengths=None,
                    clean: bool = False) -> torch.Tensor:
        """Fast no-grad target per row (fused modules)."""
        lt = self.lengths_of(rows) if lengths is None else lengths
        logits = _predict(self.model, x, lt, self.dev, self.batch_size, self.call)
        with torch.no_grad():
            return self.out(logits, rows, clean=clean)


def _as_2d(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(z.shape[0], -1) if z.dim() != 2 else z


def _predict(model, x: torch.Tensor, lt, dev, batch_size, call=None) -> torch.Tensor:
    """The model's own output (fused modules, no grad), batched over rows."""
    from .engine import fused_forward
    feat = x.shape[2] if x.dim() == 3 else 1
    size = batch_size or max(1, _ELEMENT_BUDGET // max(1, x.shape[1] * feat * 8))
    return _as_2d(fused_forward(model, x, lt, batch_size=size, device=dev, **(call or {}))).float()


def _grad(out: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """torch.autograd.grad, with a plain message when the output does not depend on x."""
    try:
        return torch.autograd.grad(out, inputs=inputs)
    except RuntimeError as exc:
        if "does not require grad" not in str(exc) and "not have a grad_fn" not in str(exc):
            raise
        from .errors import ModelError
        raise ModelError(
            "The model's output does not depend differentiably on x: its forward turns x into "
            "whole numbers (token ids for an embedding, say) or detaches it. Pass token ids as an "
            "integer array [sequences, steps], so that rnnviz attributes to the embedding output; "
            "grad_norm and grad_x_state, which attribute to the recurrent states, work as they are."
        ) from exc


def _pad_mask(L: np.ndarray, T: int) -> np.ndarray:
    """Boolean [N, T], True at and past each length."""
    return np.arange(T)[None, :] >= np.asarray(L)[:, None]


def _valid_mask_t(L: np.ndarray, T: int, dev) -> torch.Tensor:
    return torch.as_tensor(~_pad_mask(L, T), device=dev)


def _setup(model, x, lengths, target, *, device, batch_size, target_kind, y, loss,
           lengths_arg=None, output=None, baseline_token=None) -> _Problem:
    from .device import resolve_device
    from .engine import default_baseline_token, embeddings, lengths_slot, prepare, unwrap_model

    model = unwrap_model(model)
    call = {"lengths_arg": lengths_arg, "output": output}
    lengths_slot(model, lengths_arg)                     # a wrong lengths_arg is refused now

    if target_kind not in TARGET_KINDS:
        raise InputError(f"Unknown target_kind {target_kind!r}. Choose one of: "
                         f"{', '.join(TARGET_KINDS)}.")
    from .engine import check_batch_size
    batch_size = check_batch_size(batch_size)
    dev = resolve_device(device)
    xt, lt = prepare(model, x, lengths, dev)
    N, T = xt.shape[0], xt.shape[1]
    if N == 0:
        raise InputError("There are no sequences to score (x has 0 rows).")
    L = np.full(N, T, dtype=np.int64) if lt is None else lt.cpu().numpy().astype(np.int64)

    # one row is enough to learn the output width; the predicted classes come from the first
    # forward pass over the clean x that each method makes anyway
    C = _predict(model, xt[:1], None if lt is None else lt[:1], dev, 1, call).shape[1]
    single = C == 1

    # --- target class per row
    if target is None:
        cls = torch.full((N,), 0 if single else -1, dtype=torch.long, device=dev)
    else:
        if single:
            raise InputError(
                "This model has a single output (regression or one-logit), so it has no classes "
                "to choose from; leave target=None to explain its output.")
        if isinstance(target, (bool, np.bool_)):
            raise InputError(f"target must be a class number or None, got {target!r}.")
        t_arr = np.asarray(target.detach().cpu() if torch.is_tensor(target) else target)
        if t_arr.ndim == 0:
            t_arr = np.full(N, t_arr.item())
        if t_arr.ndim != 1 or t_arr.shape[0] != N:
            raise InputError(f"target must be None, one class number, or one class per sequence "
                             f"({N} values); got shape {tuple(t_arr.shape)}.")
        if not np.issubdtype(t_arr.dtype, np.integer):
            if not (np.issubdtype(t_arr.dtype, np.floating)
                    and np.all(np.isfinite(t_arr)) and np.all(t_arr == np.round(t_arr))):
                raise InputError("target must hold whole class numbers.")
        t_arr = t_arr.astype(np.int64)
        bad = (t_arr < 0) | (t_arr >= C)
        if bad.any():
            raise InputError(f"Target class {int(t_arr[bad][0])} is out of range: this model has "
                             f"{C} classes, numbered 0 to {C - 1}.")
        cls = torch.as_tensor(t_arr, device=dev)

    # --- labels for loss-based scores
    yt = None
    if loss not in ("auto", "ce", "mse", "bce"):
        raise InputError(f"Unknown loss {loss!r}. Choose one of: auto, ce, mse, bce.")
    if target_kind == "loss":
        if y is None:
            raise InputError('target_kind="loss" needs the true labels: pass y= (one per sequence).')
        y_arr = np.asarray(y.detach().cpu() if torch.is_tensor(y) else y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = y_arr[:, 0]
        if y_arr.shape != (N,):
            raise InputError(f"y must hold one label per sequence ({N}); got shape "
                             f"{tuple(y_arr.shape)}.")
        if single:
            loss = "mse" if loss == "auto" else loss
            if loss == "ce":
                raise InputError('loss="ce" needs a model with two or more outputs.')
            yt = torch.as_tensor(y_arr.astype(np.float32), device=dev)
        else:
            if loss not in ("auto", "ce"):
                raise InputError(f'loss="{loss}" is for one-output models; this model has {C} '
                                 'outputs, so the loss is cross-entropy.')
            loss = "ce"
            if not np.all(np.isfinite(y_arr.astype(float))) \
                    or np.any(y_arr.astype(float) != np.round(y_arr.astype(float))):
                raise InputError("y must hold whole class numbers for a classifier.")
            y_int = y_arr.astype(np.int64)
            if ((y_int < 0) | (y_int >= C)).any():
                raise InputError(f"Label out of range in y: this model has {C} classes, "
                                 f"numbered 0 to {C - 1}.")
            yt = torch.as_tensor(y_int, device=dev)
    else:
        loss = "ce" if (loss == "auto" and not single) else ("mse" if loss == "auto" else loss)

    # --- the token that stands for "no token" (token ids only)
    if baseline_token is None:
        baseline_token = default_baseline_token(model)
    elif xt.dim() != 2:
        raise InputError("baseline_token= is for token ids (an integer x [sequences, steps]); for "
                         "features use baseline=.")
    else:
        if isinstance(baseline_token, (bool, np.bool_)) or not isinstance(
                baseline_token, (int, np.integer)) or baseline_token < 0:
            raise InputError(f"baseline_token must be a token id (a whole number >= 0), got "
                             f"{baseline_token!r}.")
        embs = embeddings(model)
        if embs and baseline_token >= embs[0][1].num_embeddings:
            raise InputError(f"baseline_token={baseline_token} is outside the model's vocabulary "
                             f"(ids 0 to {embs[0][1].num_embeddings - 1}).")

    return _Problem(model=model, dev=dev, xt=xt, lt=lt, L=L, single=single, C=C, cls=cls,
                    kind=target_kind, y=yt, loss=loss, batch_size=batch_size,
                    predicted=target is None and not single, call=call,
                    baseline_token=int(baseline_token))


def resolve_baseline(baseline, xt: torch.Tensor, L: np.ndarray, *, baseline_token: int = 0,
                     zeros_ok: bool = True) -> torch.Tensor:
    """Baseline tensor [N, T, F] on xt's device, equal to ``xt`` at padding positions.

    ``None``/"zeros": zeros; "mean": per-feature mean over all valid steps of all sequences;
    an array [F], [T, F] or [N, T, F]. Anything else raises InputError.

    Token ids ``xt`` [N, T]: ids [N, T], ``baseline_token`` on every real step for ``None`` (and
    for "zeros" when ``zeros_ok``: integrated gradients then starts from the zero embedding),
    or given ids [T] / [N, T].
    """
    if xt.dim() == 2:
        return _token_baseline(baseline, xt, L, baseline_token, zeros_ok)
    N, T, Fdim = xt.shape
    valid = _valid_mask_t(L, T, xt.device)                     # (N, T)
    if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
        b = torch.zeros_like(xt)
    elif isinstance(baseline, str) and baseline == "mean":
        m = valid[..., None].to(xt.dtype)
        mean = (xt * m).sum((0, 1)) / m.sum((0, 1)).clamp_min(1)  # (F,)
        b = mean.expand(N, T, Fdim).clone()
    elif isinstance(baseline, str):
        raise InputError(f'Unknown baseline {baseline!r}: use "zeros", "mean" or an array of '
                         f"shape [F], [T, F] or [N, T, F] (here [{Fdim}], [{T}, {Fdim}] or "
                         f"[{N}, {T}, {Fdim}]).")
    else:
        arr = baseline.detach() if torch.is_tensor(baseline) else baseline
        try:
            bt = torch.as_tensor(np.asarray(arr.cpu() if torch.is_tensor(arr) else arr,
                                            dtype=np.float32), device=xt.device)
        except (TypeError, ValueError) as e:
            raise InputError(f"The baseline must be numbers: {e}") from None
        shape = tuple(bt.shape)
        if shape == (Fdim,) or shape == (T, Fdim) or shape == (N, T, Fdim):
            b = bt.expand(N, T, Fdim).clone()
        else:
            raise InputError(f"The baseline has shape {list(shape)}, but it must be one step "
                             f"[{Fdim}], one sequence [{T}, {Fdim}] or one per sequence "
                             f"[{N}, {T}, {Fdim}].")
        if not torch.isfinite(b).all():
            raise InputError("The baseline contains NaN or infinite values.")
    return torch.where(valid[..., None], b, xt)


def _token_baseline(baseline, xt: torch.Tensor, L: np.ndarray, token: int,
                    zeros_ok: bool) -> torch.Tensor:
    N, T = xt.shape
    valid = _valid_mask_t(L, T, xt.device)
    if baseline is None or (isinstance(baseline, str) and baseline == "zeros" and zeros_ok):
        b = torch.full_like(xt, int(token))
    elif isinstance(baseline, str):
        raise InputError(f"x holds token ids, so a removed step is replaced by a token: leave "
                         f"baseline=None and choose it with baseline_token= (baseline={baseline!r} "
                         "is not available here; \"zeros\" is for integrated gradients only).")
    else:
        arr = np.asarray(baseline.detach().cpu() if torch.is_tensor(baseline) else baseline)
        if arr.dtype.kind not in "iu" or arr.shape not in ((T,), (N, T)):
            raise InputError(f"For token ids the baseline must be token ids of shape [{T}] or "
                             f"[{N}, {T}], or None with baseline_token=; got {arr.dtype} "
                             f"{list(arr.shape)}.")
        b = torch.as_tensor(arr.astype(np.int64), device=xt.device).expand(N, T).clone()
    return torch.where(valid, b, xt)


def _chunks(n: int, size: int):
    for s in range(0, n, size):
        yield s, min(n, s + size)


# --------------------------------------------------------------------------------------------
# gradient methods
# --------------------------------------------------------------------------------------------

def _state_grads(prob: _Problem, want_state: bool):
    """Yield (rows, g, h) chunk by chunk: g = d target / d h_t (total), h = h_t."""
    H = prob.width()
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in _chunks(prob.N, prob.rows_per_batch(H)):
        rows = rows_all[s:e]
        # a zero added to every h_t: its values are never stored, so one zero seen as [n, T, H]
        probe = torch.zeros(1, 1, 1, device=prob.dev, requires_grad=True).expand(e - s, prob.T, H)
        out, h = prob.forward(prob.xt[s:e], rows, probe=probe, clean=True)
        (g,) = _grad(out.sum(), inputs=[probe])   # (n, T, H)
        yield s, e, g, (h.detach() if want_state else None)


def _grad_norm(prob: _Problem, info) -> torch.Tensor:
    res = torch.empty(prob.N, prob.T, device=prob.dev)
    for s, e, g, _ in _state_grads(prob, False):
        res[s:e] = g.norm(dim=-1)
    return res


def _grad_x_state(prob: _Problem, info) -> torch.Tensor:
    res = torch.empty(prob.N, prob.T, device=prob.dev)
    for s, e, g, h in _state_grads(prob, True):
        res[s:e] = (g * h).sum(-1)
    return res


def _input_x_grad(prob: _Problem, info) -> torch.Tensor:
    """x * df/dx summed over features (token ids: E * df/dE summed over the embedding dims)."""
    shape = (prob.N, prob.T, prob.n_features) if prob.per_feature else (prob.N, prob.T)
    res = torch.empty(shape, device=prob.dev)
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in _chunks(prob.N, prob.rows_per_batch(prob.width())):
        if prob.tokens:
            out, leaf, delta = prob.forward_embedded(prob.xt[s:e], rows_all[s:e], "grad", clean=True)
            (g,) = _grad(out.sum(), inputs=[leaf])
            res[s:e] = (delta * g).sum(-1)
            continue
        xr = prob.xt[s:e].detach().clone().requires_grad_(True)
        out, _ = prob.forward(xr, rows_all[s:e], clean=True)
        (g,) = _grad(out.sum(), inputs=[xr])
        prod = xr.detach() * g
        res[s:e] = prod if prob.per_feature else prod.sum(-1)
    return res


def _output_width(prob: _Problem) -> int:
    """Width H_out of the last recurrent module's per-step output (directions concatenated)."""
    from .engine import find_recurrent
    return int(find_recurrent(prob.model)[-1].output_size)


# --------------------------------------------------------------------------------------------
# integrated gradients
# --------------------------------------------------------------------------------------------

def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (alphas in (0, 1)) and weights (sum 1) of n-point Gauss-Legendre quadrature."""
    z, w = np.polynomial.legendre.leggauss(n)
    return (z + 1.0) / 2.0, w / 2.0


def _ig_nodes(prob: _Problem, b: torch.Tensor, rows: torch.Tensor,
              alphas: torch.Tensor) -> torch.Tensor:
    """Per path point: sum over features of (x - b) * grad f(b + a (x - b)).

    ``rows`` [E] (dataset rows, may repeat) and ``alphas`` [E] list the points; they are
    evaluated in batches of rows, never one sequence at a time. Returns [E, T], or with
    ``prob.per_feature`` [E, T * F] (step-major: the features of step 0, then of step 1, ...).
    Token ids: the path runs in the embedding space (engine.EmbedSpec), summed over its dims.
    """
    E = rows.numel()
    width = prob.T * prob.n_features if prob.per_feature else prob.T
    res = torch.empty(E, width, device=prob.dev)
    per = prob.rows_per_batch(prob.width())
    for s, e in _chunks(E, per):
        r = rows[s:e]
        if prob.tokens:
            base = None if prob.zero_embedding else b[r]
            out, leaf, d = prob.forward_embedded(prob.xt[r], r, "path", base, alphas[s:e])
            (g,) = _grad(out.sum(), inputs=[leaf])
            res[s:e] = (d * g).sum(-1)
            continue
        a = alphas[s:e].to(prob.xt.dtype)
        x, bb = prob.xt[r], b[r]
        d = x - bb                                                   # (n, T, F)
        xa = (bb + a[:, None, None] * d).requires_grad_(True)
        out, _ = prob.forward(xa, r)
        (g,) = _grad(out.sum(), inputs=[xa])
        res[s:e] = (d * g).reshape(e - s, -1) if prob.per_feature else (d * g).sum(-1)
    return res


def _ig_fixed(prob: _Problem, b: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """n-point Gauss-Legendre integrated gradients for the given rows -> (len(rows), T)."""
    a, w = gauss_legendre(n)
    K, m = n, rows.numel()
    a_t = torch.as_tensor(a, dtype=torch.float64, device=prob.dev)
    w_t = torch.as_tensor(w, dtype=torch.float32, device=prob.dev)
    k = torch.arange(K, device=prob.dev).repeat_interleave(m)             # node-major order
    i = torch.arange(m, device=prob.dev).repeat(K)
    c = _ig_nodes(prob, b, rows[i], a_t[k])                                # (K*m, T)
    res = torch.zeros(m, c.shape[1], device=prob.dev)
    res.index_add_(0, i, c * w_t[k, None])
    return res


def _ig_first_panels(prob: _Problem, b: torch.Tensor, max_panels: int):
    """Starting panels of every sequence's path, from a cheap forward-only scan of it.

    The target is computed (fused forward, no gradient) at ``_IG_SCAN + 1`` evenly spaced points
    of the path. Runs of cells where it changes more than ``_IG_PEAK`` times faster than its
    average over the path become panels of their own, and the stretches between them the
    others: a sharp transition (a gate flipping) then starts inside a narrow panel instead of
    being found by repeated halving of [0, 1]. A path without one keeps the single panel
    [0, 1], and so does one that would need more than ``max_panels`` (the evaluation budget).
    Token models (whose path runs in the embedding space) always start from [0, 1].
    Returns flat (row, start, end) tensors, grouped by row, panels in order.
    """
    N, dev, M = prob.N, prob.dev, _IG_SCAN
    rows_all = torch.arange(N, device=dev)
    if prob.tokens or M < 2:
        return (rows_all, torch.zeros(N, dtype=torch.float64, device=dev),
                torch.ones(N, dtype=torch.float64, device=dev))
    grid = torch.linspace(0, 1, M + 1, dtype=prob.xt.dtype, device=dev)
    f = torch.empty(N, M + 1, device=dev)
    per = max(1, prob.rows_per_batch(prob.width()) // (M + 1))
    with torch.no_grad():
        for s, e in _chunks(N, per):
            r = rows_all[s:e].repeat_interleave(M + 1)
            xb, bb = prob.xt[r], b[r]
            a = grid.repeat(e - s)[:, None, None]
            f[s:e] = prob.predict_out(bb + a * (xb - bb), r).reshape(e - s, M + 1)
    v = (f[:, 1:] - f[:, :-1]).abs().cpu().numpy()                     # (N, M) change per cell
    total = v.sum(1, keepdims=True)
    peak = (v * M > _IG_PEAK * total) & np.isfinite(v) & (total > 0)
    cuts = peak[:, 1:] != peak[:, :-1]                                  # edges of peak runs
    cuts[cuts.sum(1) + 1 > max_panels] = False
    cut_r, cut_j = np.nonzero(cuts)
    rows = np.concatenate([np.arange(N), np.arange(N), cut_r])
    pts = np.concatenate([np.zeros(N), np.ones(N), (cut_j + 1) / M])
    order = np.lexsort((pts, rows))
    rows, pts = rows[order], pts[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    start = ~np.roll(first, -1)                                       # not a row's last point
    return (torch.as_tensor(rows[start], device=dev),
            torch.as_tensor(pts[start], dtype=torch.float64, device=dev),
            torch.as_tensor(pts[np.roll(start, 1)], dtype=torch.float64, device=dev))


def _ig_adaptive(prob: _Problem, b: torch.Tensor, delta: torch.Tensor, denom: torch.Tensor,
                 valid: torch.Tensor, tol: float, max_evals: int):
    """Adaptive Gauss-Kronrod integrated gradients, per sequence (see contributions Notes).

    The first panels come from :func:`_ig_first_panels`; then every round splits in two the
    panels whose error estimate is near their sequence's worst.

    Panels are kept in flat tensors (row, start, end, Kronrod estimate [T], error estimate) so
    every round is one batched pass over all the points of all the sequences still refining.
    Returns (scores [N, T], evaluations per row [N]).
    """
    N, dev = prob.N, prob.dev
    W = valid.shape[1]               # T, or T * F for per-feature scores
    gx = torch.as_tensor(_GK_X, dtype=torch.float64, device=dev)
    wk = torch.as_tensor(_GK_WK, dtype=torch.float32, device=dev)
    wg = torch.as_tensor(_GK_WG, dtype=torch.float32, device=dev)

    def evaluate(p_row, p_a, p_b):
        """Kronrod estimate [P, T] and |Kronrod - Gauss| of the scalar sum, per panel."""
        P = p_row.numel()
        half = (p_b - p_a) / 2                                               # (P,)
        alphas = ((p_a + p_b) / 2)[:, None] + half[:, None] * gx[None, :]    # (P, 15)
        c = _ig_nodes(prob, b, p_row.repeat_interleave(15), alphas.reshape(-1))
        c = c.reshape(P, 15, W) * valid[p_row][:, None, :]
        h = half.to(torch.float32)[:, None]
        k_est = torch.einsum("k,pkt->pt", wk, c) * h                         # (P, T)
        g_sum = torch.einsum("k,pkt->p", wg, c) * h[:, 0]
        return k_est, (k_est.sum(1) - g_sum).abs()

    p_row, p_a, p_b = _ig_first_panels(prob, b, max_evals // 15)
    p_est, p_err = evaluate(p_row, p_a, p_b)
    evals = 15 * torch.bincount(p_row, minlength=N)
    while True:
        scores = torch.zeros(N, W, device=dev).index_add_(0, p_row, p_est)
        err = (scores.sum(1) - delta).abs() / denom
        active = (err > tol) & (evals + 30 <= max_evals)
        if not bool(active.any()):
            return scores, evals
        # split, in each active row, the panels whose estimate is near that row's worst
        worst = torch.zeros(N, device=dev).scatter_reduce(0, p_row, p_err, "amax")
        split = active[p_row] & (p_err >= _IG_SPLIT * worst[p_row])
        # never split more panels than the evaluation budget of the row allows: rank each
        # panel within its row by decreasing error (candidates come first) and keep the top
        by_err = torch.argsort(-p_err, stable=True)
        idx = by_err[torch.argsort(p_row[by_err], stable=True)]    # grouped by row, worst first
        rs = p_row[idx]
        rank = torch.empty_like(p_row)
        rank[idx] = torch.arange(rs.numel(), device=dev) - torch.searchsorted(rs, rs)
        allowed = (max_evals - evals) // 30
        split = split & (rank < allowed[p_row])
        cnt = torch.zeros(N, dtype=torch.long, device=dev).index_add_(0, p_row, split.long())
        mid = (p_a[split] + p_b[split]) / 2
        n_row = torch.cat([p_row[split], p_row[split]])
        n_a = torch.cat([p_a[split], mid])
        n_b = torch.cat([mid, p_b[split]])
        n_est, n_err = evaluate(n_row, n_a, n_b)
        keep = ~split
        p_row = torch.cat([p_row[keep], n_row])
        p_a = torch.cat([p_a[keep], n_a])
        p_b = torch.cat([p_b[keep], n_b])
        p_est = torch.cat([p_est[keep], n_est])
        p_err = torch.cat([p_err[keep], n_err])
        evals += 30 * cnt


def _unrolled_out(prob: _Problem, x: torch.Tensor, clean: bool = False,
                  zero_embedding: bool = False) -> torch.Tensor:
    """Target for every row with the same unrolled forward the gradients use (no grad).

    ``zero_embedding`` (token ids): the embedding output is zero on every real step.
    """
    res = torch.empty(prob.N, device=prob.dev)
    rows_all = torch.arange(prob.N, device=prob.dev)
    with torch.no_grad():
        for s, e in _chunks(prob.N, prob.rows_per_batch(prob.width())):
            r = rows_all[s:e]
            if zero_embedding:
                zero = torch.zeros(e - s, dtype=torch.float64, device=prob.dev)
                res[s:e] = prob.forward_embedded(x[s:e], r, "path", None, zero)[0]
            else:
                res[s:e] = prob.forward(x[s:e], r, clean=clean)[0]
    return res


def _integrated_gradients(prob: _Problem, b: torch.Tensor, info, *, steps=None, tol=_IG_TOL,
                          max_steps=_IG_MAX_STEPS, floor=_IG_FLOOR) -> torch.Tensor:
    """Integrated gradients along the straight path b -> x (see contributions Notes)."""
    for name, v in (("tol", tol), ("floor", floor)):
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number, got {v!r}.")
    for name, v in (("steps", steps), ("max_steps", max_steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < 1):
            raise InputError(f"{name} must be a positive whole number, got {v!r}.")
    if steps is None and max_steps < 15:
        raise InputError("max_steps must be at least 15 (one Gauss-Kronrod panel) when the "
                         "step count is refined; pass steps= for a fixed, smaller count.")
    fx = _unrolled_out(prob, prob.xt, clean=True)
    fb = (_unrolled_out(prob, prob.xt, zero_embedding=True) if prob.tokens and prob.zero_embedding
          else _unrolled_out(prob, b))
    delta = fx - fb                                            # (N,)
    denom = delta.abs().clamp_min(floor)
    valid = _valid_mask_t(prob.L, prob.T, prob.dev)
    if prob.per_feature:                                       # (N, T * F), step-major
        valid = valid[:, :, None].expand(-1, -1, prob.n_features).reshape(prob.N, -1)
    rows_all = torch.arange(prob.N, device=prob.dev)
    if steps is not None:
        res = _ig_fixed(prob, b, rows_all, int(steps))
        evals = np.full(prob.N, int(steps), dtype=np.int64)
        rule = f"gauss-legendre, {int(steps)} points"
    else:
        res, ev = _ig_adaptive(prob, b, delta, denom, valid, float(tol), int(max_steps))
        evals = ev.cpu().numpy().astype(np.int64)
        rule = (f"adaptive gauss-kronrod 7-15 to {tol:g} completeness, at most {max_steps} "
                "evaluations per sequence")
    res = res * valid
    sums = res.sum(1)                                          # (N,)
    err = ((sums - delta).abs() / denom)
    if prob.per_feature:
        res = res.reshape(prob.N, prob.T, prob.n_features)
    info.update({
        "completeness_error": err.cpu().numpy().astype(np.float64),
        "converged": (err <= tol).cpu().numpy(),
        "steps": evals,
        "gradient_evaluations": int(evals.sum()),
        "target_x": fx.cpu().numpy(), "target_baseline": fb.cpu().numpy(),
        "sum_scores": sums.cpu().numpy(),
        "tol": float(tol), "floor": float(floor), "rule": rule,
    })
    return res


# --------------------------------------------------------------------------------------------
# perturbation methods (no gradients; fused forward)
# --------------------------------------------------------------------------------------------

def _occlusion(prob: _Problem, b: torch.Tensor, info, at_steps=None) -> torch.Tensor:
    """Occlusion restarted from cached states (see :mod:`.occlusion`)."""
    from .occlusion import occlusion
    return occlusion(prob, b, info, at_steps=at_steps)


def _occlusion_reference(prob: _Problem, b: torch.Tensor, info) -> torch.Tensor:
    """f(x) - f(x with step t replaced by the baseline), every valid (sequence, step) pair.

    The whole model reruns for every replacement: the reference the restarted occlusion is
    tested against.

    Per feature: f(x) - f(x with feature k of step t replaced), every valid (sequence, step,
    feature) triple. Token ids: the step's token is replaced by the baseline token.
    """
    rows_all = torch.arange(prob.N, device=prob.dev)
    fx = prob.predict_out(prob.xt, rows_all, clean=True)
    valid = ~_pad_mask(prob.L, prob.T)
    per = prob.rows_per_batch(prob.n_features * 4)
    if prob.per_feature:
        Fdim = prob.n_features
        res = torch.zeros(prob.N, prob.T, Fdim, device=prob.dev)
        cells = torch.as_tensor(np.argwhere(np.repeat(valid[:, :, None], Fdim, 2)),
                                device=prob.dev)                             # (P, 3)
        for s, e in _chunks(cells.shape[0], per):
            r, t, k = cells[s:e, 0], cells[s:e, 1], cells[s:e, 2]
            xo = prob.xt[r].clone()                            # (p, T, F) private copy
            xo[torch.arange(e - s, device=prob.dev), t, k] = b[r, t, k]
            res[r, t, k] = fx[r] - prob.predict_out(xo, r)
        info["target_x"] = fx.cpu().numpy()
        return res
    res = torch.zeros(prob.N, prob.T, device=prob.dev)
    pairs = torch.as_tensor(np.argwhere(valid), device=prob.dev)             # (P, 2)
    for s, e in _chunks(pairs.shape[0], per):
        r, t = pairs[s:e, 0], pairs[s:e, 1]
        xo = prob.xt[r].clone()                                # (p, T, F) private copy
        xo[torch.arange(e - s, device=prob.dev), t] = b[r, t]
        res[r, t] = fx[r] - prob.predict_out(xo, r)
    info["target_x"] = fx.cpu().numpy()
    return res


def _prediction_delta(prob: _Problem, b: torch.Tensor, info) -> torch.Tensor:
    """Running output on prefixes: score_t = f(x[:t+1]) - f(x[:t]); f(empty) = f(b[:1])."""
    N, T = prob.N, prob.T
    rows_all = torch.arange(N, device=prob.dev)
    if prob.predicted:  # the class explained is the one predicted for the whole sequence
        prob.predict_out(prob.xt, rows_all, clean=True)
    prev = prob.predict_out(b[:, :1], rows_all, lengths=_ones_like(prob.lt, N))
    info["target_empty_prefix"] = prev.cpu().numpy().copy()
    res = torch.zeros(N, T, device=prob.dev)
    L_t = torch.as_tensor(prob.L, device=prob.dev)
    per = prob.rows_per_batch(prob.n_features * 4)
    for t in range(1, T + 1):                                  # a loop over time, batched rows
        rows = rows_all[L_t >= t]
        if rows.numel() == 0:
            break
        cur = torch.empty(rows.numel(), device=prob.dev)
        for s, e in _chunks(rows.numel(), per):
            r = rows[s:e]
            lt = None if prob.lt is None else torch.full((e - s,), t, dtype=torch.int64)
            cur[s:e] = prob.predict_out(prob.xt[r, :t], r, lengths=lt)
        res[rows, t - 1] = cur - prev[rows]
        prev = prev.clone()
        prev[rows] = cur
    return res


def _mask(prob: _Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """The smallest mask that keeps the answer (see :mod:`.masks`)."""
    from .masks import mask
    return mask(prob, b, info, **options)


def _mask_x_grad(prob: _Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """The mask times the relative size of the gradient (see :mod:`.masks`)."""
    from .masks import mask
    return mask(prob, b, info, gate=True, **options)


def _shapley(prob: _Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """Shapley values over steps or blocks of steps (see :mod:`.shapley`)."""
    from .shapley import shapley
    return shapley(prob, b, info, **options)


def _ones_like(lt, N):
    return None if lt is None else torch.ones(N, dtype=torch.int64)


_DISPATCH = {
    "grad_norm": _grad_norm,
    "grad_x_state": _grad_x_state,
    "input_x_grad": _input_x_grad,
    "integrated_gradients": _integrated_gradients,
    "occlusion": _occlusion,
    "prediction_delta": _prediction_delta,
    "mask": _mask,
    "mask_x_grad": _mask_x_grad,
    "shapley": _shapley,
}
_USES_BASELINE = {"integrated_gradients", "occlusion", "prediction_delta", "mask", "mask_x_grad",
                  "shapley"}
_OPTIONS: dict[str, set[str]] = {m: set() for m in _DISPATCH}
_OPTIONS["integrated_gradients"] = {"steps", "tol", "max_steps", "floor"}
_OPTIONS["occlusion"] = {"at_steps"}
_OPTIONS["shapley"] = {"groups", "samples", "seed"}
_OPTIONS["mask"] = {"at_steps", "iterations", "area", "lr", "perturbation", "sigma", "seed",
                   "temperature"}
_OPTIONS["mask_x_grad"] = _OPTIONS["mask"]
_PER_FEATURE = {"input_x_grad", "integrated_gradients", "occlusion", "mask", "mask_x_grad"}
assert set(_DISPATCH) == set(METHODS)
