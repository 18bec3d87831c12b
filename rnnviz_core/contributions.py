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

from typing import Any, Literal, overload

import numpy as np
import torch

from .arrays import valid_mask
from .attribution.gradients import grad_norm_scores, grad_x_state_scores, input_x_grad_scores
from .attribution.integrated_gradients import integrated_gradients_scores
from .attribution.perturbation import occlusion_scores, prediction_delta_scores
# the machinery lives in rnnviz_core.attribution; these names stay importable from here
from .attribution.integrated_gradients import gauss_legendre
from .attribution.problem import TARGET_KINDS, Problem, as_2d, resolve_baseline, setup
from .errors import InputError

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
    prob = setup(model, x, lengths, target, device=device, batch_size=batch_size,
                  target_kind=options.pop("target_kind", "logit"), y=options.pop("y", None),
                  loss=options.pop("loss", "auto"), lengths_arg=lengths_arg, output=output,
                  baseline_token=baseline_token)
    if per_feature and prob.tokens:
        raise InputError("per_feature=True needs features [N, T, F]; x holds token ids, one token per "
                         "step, so the per-step scores already score each token.")
    if baseline_token is not None and method not in USES_BASELINE:
        raise InputError(f"Method {method!r} does not use a baseline; leave baseline_token=None.")
    prob.per_feature = bool(per_feature)
    allowed = _OPTIONS[method]
    unknown = sorted(set(options) - allowed)
    if unknown:
        hint = f" It accepts: {', '.join(sorted(allowed))}." if allowed else ""
        raise InputError(f"Method {method!r} does not take option(s) {', '.join(unknown)}.{hint}")
    info: dict[str, Any] = {"method": method, "target_kind": prob.kind,
                            "device": str(prob.dev), "lengths": prob.L.copy()}
    if method in USES_BASELINE:
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
    scores[~valid_mask(prob.L, prob.T)] = np.nan          # [N, T] or, per feature, [N, T, F]
    if "scored" in info:                                 # at_steps=: steps not scored are NaN
        scores[~info["scored"]] = np.nan
    return (scores, info) if return_info else scores


def contributions_many(model, x, methods, lengths=None, target=None, *, device="auto", batch_size=None,
                       return_info=False, lengths_arg=None, output=None, method_options=None, trace=False,
                       **options):
    """:func:`contributions` for several methods at once: ``{method: scores}`` (``{method:
    (scores, info)}`` with ``return_info=True``), each as :func:`contributions` returns it.
    With ``trace=True``: ``(that, tr)``, ``tr`` the :class:`rnnviz_core.trace.Trace` of x with
    every gate (``rv.trace(..., gates=True)``'s arrays), recorded by the shared pass's forward
    when one runs (no second forward), else traced on its own. ``trace="last"``: the same, but
    the recorded trace keeps only the last recurrent layer's forward states and sigmoid gates
    (what saturation reads; a bundle's per-block work), not a copy of every array.

    grad_norm, grad_x_state and input_x_grad on features (without per-method options) come from
    one shared forward and backward pass (:func:`.attribution.gradients.shared_scores`) instead
    of one each: the default pair of an analysis bundle costs about half (token ids share the
    state methods' pass; their input_x_grad goes through the embedding output). Every other
    method and a model whose shared pass fails run through :func:`contributions` one by one (so
    each method still raises its own error). ``method_options`` maps a method to its own
    options; ``options`` (``target_kind``, ``y``, ``loss``) apply to every method.
    """
    from .attribution.gradients import SHARED, shared_scores
    from .errors import ModelError

    method_options = dict(method_options or {})
    methods = list(dict.fromkeys(methods))
    for m in methods:
        if not isinstance(m, str) or m not in _DISPATCH:
            raise InputError(f"Unknown contribution method {m!r}. Choose one of: {', '.join(METHODS)}.")
    common = dict(lengths=lengths, target=target, device=device, batch_size=batch_size, lengths_arg=lengths_arg,
                  output=output)
    shared = [m for m in methods if m in SHARED and not method_options.get(m)]
    got: dict[str, tuple] = {}
    tr = None
    if (len(shared) >= 2 or (trace and shared)) and set(options) <= {"target_kind", "y", "loss"}:
        opts = dict(options)
        prob = setup(model, x, lengths, target, device=device, batch_size=batch_size,
                     target_kind=opts.pop("target_kind", "logit"), y=opts.pop("y", None),
                     loss=opts.pop("loss", "auto"), lengths_arg=lengths_arg, output=output)
        # token ids: input_x_grad goes through the embedding output, on its own
        usable = [m for m in shared if not (prob.tokens and m == "input_x_grad")]
        if usable:
            filler = on_chunk = None
            if trace:   # the pass records the trace as it goes (the bundle's per-block work, issue 21)
                from .engine import find_recurrent
                from .trace import Filler

                infos = find_recurrent(prob.model)
                last_only = None
                if trace == "last":
                    top, kinds = infos[-1].num_layers - 1, [k for k in infos[-1].gates if k not in ("n", "g")]
                    last_only = {f"l{top}.fwd.{k}" for k in ["h", *kinds]}
                filler = Filler(infos, prob.N, prob.T, prob.L.astype(np.int64), True, last_only)

                def on_chunk(s, cap):
                    filler.add(s, cap["logits"], cap["records"], None)
            try:
                scores = shared_scores(prob, usable, on_chunk)
            except (RuntimeError, ModelError):   # each method's own pass says what is wrong
                scores = None
            if scores is not None and filler is not None:
                from .trace import Trace

                hidden, logits, arrays = filler.finish()
                tr = Trace(hidden, logits, prob.L.astype(np.int64), filler.infos, arrays=arrays)
            if scores is not None:
                valid = valid_mask(prob.L, prob.T)
                for m in usable:
                    sc = scores[m].detach().to("cpu", torch.float32).numpy()
                    sc[~valid] = np.nan
                    got[m] = (sc, {"method": m, "target_kind": prob.kind, "device": str(prob.dev),
                                   "lengths": prob.L.copy(), "target": prob.cls.cpu().numpy().copy()})
    out = {}
    for m in methods:
        if m not in got:
            got[m] = contributions(model, x, m, return_info=True, **common, **options, **method_options.get(m, {}))
        out[m] = got[m] if return_info else got[m][0]
    if not trace:
        return out
    if tr is None:
        from .trace import trace as trace_fn

        tr = trace_fn(model, x, lengths, gates=True, device=device, batch_size=batch_size, lengths_arg=lengths_arg,
                      output=output)
    return out, tr


def _mask(prob: Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """The smallest mask that keeps the answer (see :mod:`.masks`)."""
    from .masks import mask
    return mask(prob, b, info, **options)


def _mask_x_grad(prob: Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """The mask times the relative size of the gradient (see :mod:`.masks`)."""
    from .masks import mask
    return mask(prob, b, info, gate=True, **options)


def _shapley(prob: Problem, b: torch.Tensor, info, **options) -> torch.Tensor:
    """Shapley values over steps or blocks of steps (see :mod:`.shapley`)."""
    from .shapley import shapley
    return shapley(prob, b, info, **options)


_DISPATCH = {
    "grad_norm": grad_norm_scores,
    "grad_x_state": grad_x_state_scores,
    "input_x_grad": input_x_grad_scores,
    "integrated_gradients": integrated_gradients_scores,
    "occlusion": occlusion_scores,
    "prediction_delta": prediction_delta_scores,
    "mask": _mask,
    "mask_x_grad": _mask_x_grad,
    "shapley": _shapley,
}
USES_BASELINE = {"integrated_gradients", "occlusion", "prediction_delta", "mask", "mask_x_grad", "shapley"}
_OPTIONS: dict[str, set[str]] = {m: set() for m in _DISPATCH}
_OPTIONS["integrated_gradients"] = {"steps", "tol", "max_steps", "floor"}
_OPTIONS["occlusion"] = {"at_steps"}
_OPTIONS["shapley"] = {"groups", "samples", "seed"}
_OPTIONS["mask"] = {"at_steps", "iterations", "area", "lr", "perturbation", "sigma", "seed",
                   "temperature"}
_OPTIONS["mask_x_grad"] = _OPTIONS["mask"]
_PER_FEATURE = {"input_x_grad", "integrated_gradients", "occlusion", "mask", "mask_x_grad"}
assert set(_DISPATCH) == set(METHODS)
