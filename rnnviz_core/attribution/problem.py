"""One attribution problem: the model, x, lengths and target checked once (:func:`setup`), the
baseline resolved, batches sized to a memory budget; shared by every method and the deletion check."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F_

from ..arrays import valid_mask
from ..errors import InputError

TARGET_KINDS = ("logit", "probability", "loss")

# Elements (rows x steps x width) per forward pass when the caller gives no batch_size. About
# 8M floats per saved activation keeps the peak memory of one backward pass to a few hundred MB
# for a one-layer GRU, while batches stay big enough that the per-step Python overhead of the
# unrolled recurrence is shared by many rows.
ELEMENT_BUDGET = 1 << 23


# --------------------------------------------------------------------------------------------
# problem setup: inputs, targets, forward passes
# --------------------------------------------------------------------------------------------

@dataclass
class Problem:
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
            self._width = output_width(self)
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
        return max(1, ELEMENT_BUDGET // max(1, steps * max(width, self.n_features)))

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
        z = as_2d(logits)                                    # (n, C)
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
                clean: bool = False, capture: dict | None = None):
        """Differentiable unrolled forward -> (target per row, h_last); ``capture``: as in
        :func:`rnnviz_core.engine.unrolled_forward` (the pass records states and gates too)."""
        from ..engine import unrolled_forward
        lt = self.lengths_of(rows) if lengths is None else lengths
        logits, h_last = unrolled_forward(self.model, x, lt, probe=probe, capture=capture, **(self.call or {}))
        return self.out(logits, rows, clean=clean), h_last

    def forward_embedded(self, x: torch.Tensor, rows: torch.Tensor, mode: str,
                         base_ids: torch.Tensor | None = None, alphas: torch.Tensor | None = None,
                         clean: bool = False):
        """Token models: unrolled forward with the embedding output as a leaf.

        Returns (target per row, E_leaf [n, T, D], delta [n, T, D]); see engine.EmbedSpec.
        """
        from ..engine import EmbedSpec, run_unrolled
        lt = self.lengths_of(rows)
        valid = valid_mask(self.L[rows.cpu().numpy()], self.T, device=x.device)
        spec = EmbedSpec(mode, valid, base_ids, alphas)
        logits, _, leaf, delta = run_unrolled(self.model, x, lt, embed=spec, **(self.call or {}))
        return self.out(logits, rows, clean=clean), leaf, delta

    def predict_out(self, x: torch.Tensor, rows: torch.Tensor, lengths=None,
                    clean: bool = False) -> torch.Tensor:
        """Fast no-grad target per row (fused modules)."""
        lt = self.lengths_of(rows) if lengths is None else lengths
        logits = predict_batched(self.model, x, lt, self.dev, self.batch_size, self.call)
        with torch.no_grad():
            return self.out(logits, rows, clean=clean)


def as_2d(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(z.shape[0], -1) if z.dim() != 2 else z


def predict_batched(model, x: torch.Tensor, lt, dev, batch_size, call=None) -> torch.Tensor:
    """The model's own output (fused modules, no grad), batched over rows."""
    from ..engine import fused_forward
    feat = x.shape[2] if x.dim() == 3 else 1
    size = batch_size or max(1, ELEMENT_BUDGET // max(1, x.shape[1] * feat * 8))
    return as_2d(fused_forward(model, x, lt, batch_size=size, device=dev, **(call or {}))).float()


#: steps of the first row run to learn the output width (a whole 1,000-step row is a forward of its own)
WIDTH_PROBE_STEPS = 16


def probe_output_width(model, xt: torch.Tensor, lt, dev, call=None) -> int:
    """Columns of the model's output, from the first row's first :data:`WIDTH_PROBE_STEPS` steps;
    from the whole first row when the model refuses the short one (a fixed-length head, a
    convolution wider than the probe), so a short probe never changes what a model accepts."""
    k = min(int(xt.shape[1]), WIDTH_PROBE_STEPS)
    if k < xt.shape[1]:
        try:
            short_lt = None if lt is None else lt[:1].clamp(max=k)
            return int(predict_batched(model, xt[:1, :k], short_lt, dev, 1, call).shape[1])
        except Exception:  # noqa: BLE001 - the whole row below gives the model's own error, if any
            pass
    return int(predict_batched(model, xt[:1], None if lt is None else lt[:1], dev, 1, call).shape[1])


def input_grads(out: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """torch.autograd.grad, with a plain message when the output does not depend on x."""
    try:
        return torch.autograd.grad(out, inputs=inputs)
    except RuntimeError as exc:
        if "does not require grad" not in str(exc) and "not have a grad_fn" not in str(exc):
            raise
        from ..errors import ModelError
        raise ModelError(
            "The model's output does not depend differentiably on x: its forward turns x into "
            "whole numbers (token ids for an embedding, say) or detaches it. Pass token ids as an "
            "integer array [sequences, steps], so that rnnviz attributes to the embedding output; "
            "grad_norm and grad_x_state, which attribute to the recurrent states, work as they are."
        ) from exc


def setup(model, x, lengths, target, *, device, batch_size, target_kind, y, loss,
           lengths_arg=None, output=None, baseline_token=None) -> Problem:
    from ..device import resolve_device
    from ..engine import default_baseline_token, embeddings, lengths_slot, prepare, unwrap_model

    model = unwrap_model(model)
    call = {"lengths_arg": lengths_arg, "output": output}
    lengths_slot(model, lengths_arg)                     # a wrong lengths_arg is refused now

    if target_kind not in TARGET_KINDS:
        raise InputError(f"Unknown target_kind {target_kind!r}. Choose one of: "
                         f"{', '.join(TARGET_KINDS)}.")
    from ..engine import check_batch_size
    batch_size = check_batch_size(batch_size)
    dev = resolve_device(device)
    xt, lt = prepare(model, x, lengths, dev)
    N, T = xt.shape[0], xt.shape[1]
    if N == 0:
        raise InputError("There are no sequences to score (x has 0 rows).")
    L = np.full(N, T, dtype=np.int64) if lt is None else lt.cpu().numpy().astype(np.int64)

    # the predicted classes come from the first forward pass over the clean x that each method
    # makes anyway; only the output width is needed here
    C = probe_output_width(model, xt, lt, dev, call)
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

    return Problem(model=model, dev=dev, xt=xt, lt=lt, L=L, single=single, C=C, cls=cls,
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
        return token_baseline(baseline, xt, L, baseline_token, zeros_ok)
    N, T, Fdim = xt.shape
    valid = valid_mask(L, T, device=xt.device)                     # (N, T)
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


def token_baseline(baseline, xt: torch.Tensor, L: np.ndarray, token: int,
                    zeros_ok: bool) -> torch.Tensor:
    N, T = xt.shape
    valid = valid_mask(L, T, device=xt.device)
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


def chunks(n: int, size: int):
    for s in range(0, n, size):
        yield s, min(n, s + size)


def output_width(prob: Problem) -> int:
    """Width H_out of the last recurrent module's per-step output (directions concatenated)."""
    from ..engine import find_recurrent
    return int(find_recurrent(prob.model)[-1].output_size)
