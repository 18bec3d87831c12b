"""``rv.what_if``: what the model would say if some steps of a sequence were different.

An edit changes one value of one step, deletes a step or inserts one. Only what follows the
first edited step is recomputed: the recurrence restarts there from the original run's own
states (every layer's h, and c for an LSTM, at the step before), so an edit at step 990 of a
1,000-step sequence runs 10 steps, not 1,000. The model's other layers (an embedding, an
encoder, the head) run as in the model's own forward on the edited input; the restart is used
only where it is exact:

* the recurrent module's input before the first edited step must equal the original's (it does
  for step-wise front ends such as an embedding or a per-step linear layer; a padded Conv1d
  front end that lets the edit leak backwards fails the check), and
* the module must read forwards only (a bidirectional layer's backward half depends on every
  later step, so it is recomputed in full).

Otherwise that module runs from step 0, and ``recomputed_from`` says so. The same machinery
gives every prefix's output at the cost of the head alone (:func:`rnnviz_core.restart.prefix_outputs`), which
:func:`rnnviz_core.horizons.horizon` uses for the decision step.

Edits, each a tuple ``(sequence, step, feature, value)``; ``step`` always counts steps of the
*original* sequence (from 0), whatever other edits delete or insert:

* ``(i, t, f, v)``: feature ``f`` of step ``t`` becomes the number ``v``. For a token model
  (x holds ids [N, T]) ``f`` is 0 and ``v`` a token id.
* ``(i, t, "delete", None)``: step ``t`` is removed; later steps move up one, the length falls by one.
* ``(i, t, "insert", row)``: a new step is inserted before step ``t`` (``t`` = the length
  appends one); ``row`` holds its F numbers (a token id for a token model). Several inserts at
  one ``t`` go in in the order given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .device import resolve_device
from .engine import embeddings, find_recurrent, is_tokens, prepare, unwrap_model
from .errors import InputError
from .restart import Capture, capturing, resuming, run_one
from .trace import Trace

__all__ = ["what_if", "WhatIfResult", "WhatIfBase", "apply_edits", "edited_paths", "DEFAULT_TOL"]

#: largest |edited - original| hidden-state difference still counted as "the same" (parting step)
DEFAULT_TOL = 1e-4


# ----------------------------------------------------------------------------- edits
@dataclass
class _RowPlan:
    """One edited sequence: its new steps and where the edits begin."""

    row: int
    x_new: torch.Tensor      # (L', F) or (L',) token ids
    length_new: int
    first: int               # first step (original numbering = new numbering, before it nothing moved)


def _vocab_size(model: nn.Module) -> int | None:
    embs = embeddings(model)
    return int(embs[0][1].num_embeddings) if embs else None


def _check_value(v: Any, tokens: bool, vocab: int | None, where: str) -> float | int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise InputError(f"The value of {where} must be a number, got {v!r}.", code="edit_value", field="edits")
    if tokens:
        if float(v) != int(v):
            raise InputError(f"The value of {where} must be a whole token id, got {v!r}.", code="edit_value",
                             field="edits")
        if int(v) < 0 or (vocab is not None and int(v) >= vocab):
            top = f" from 0 to {vocab - 1}" if vocab is not None else " of 0 or more"
            raise InputError(f"The value of {where} must be a token id{top}, got {int(v)}.", code="edit_value",
                             field="edits")
        return int(v)
    if not np.isfinite(float(v)):
        raise InputError(f"The value of {where} must be a finite number, got {v!r}.", code="edit_value", field="edits")
    return float(v)


def _parse(edits: Any, xt: torch.Tensor, L: np.ndarray, vocab: int | None) -> dict[int, list[tuple]]:
    """Check every edit; returns sequence -> list of (step, kind, feature, value) in the order given."""
    if edits is None:
        edits = []
    if isinstance(edits, tuple) and len(edits) == 4 and not isinstance(edits[0], (tuple, list)):
        edits = [edits]
    tokens = is_tokens(xt)
    n = xt.shape[0]
    n_feat = 1 if tokens else xt.shape[2]
    out: dict[int, list[tuple]] = {}
    for k, e in enumerate(edits):
        if not isinstance(e, (tuple, list)) or len(e) != 4:
            raise InputError(f"Edit {k} must be a tuple (sequence, step, feature, value), got {e!r}.",
                             code="edit_form", field="edits")
        i, t, f, v = e
        for name, val in (("sequence", i), ("step", t)):
            if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)):
                raise InputError(f"Edit {k}: the {name} must be a whole number, got {val!r}.", code="edit_form",
                                 field="edits")
        i, t = int(i), int(t)
        if not 0 <= i < n:
            raise InputError(f"Edit {k}: sequence {i} does not exist (there are {n}, numbered from 0).",
                             code="edit_sequence", field="edits")
        Li = int(L[i])
        if f == "insert":
            if not 0 <= t <= Li:
                raise InputError(f"Edit {k}: a step can be inserted before steps 0 to {Li - 1} or at {Li} (the "
                                 f"end) of sequence {i}, not at {t}.", code="edit_step", field="edits")
            if tokens:
                row = _check_value(v, True, vocab, f"the inserted step (edit {k})")
            else:
                try:
                    arr = np.asarray(v, dtype=np.float64).reshape(-1)
                except (TypeError, ValueError):
                    raise InputError(f"Edit {k}: the inserted step must hold {n_feat} number(s), got {v!r}.",
                                     code="edit_value", field="edits") from None
                if arr.shape != (n_feat,) or not np.isfinite(arr).all():
                    raise InputError(f"Edit {k}: the inserted step must hold {n_feat} finite number(s), one per "
                                     f"feature, got {v!r}.", code="edit_value", field="edits")
                row = arr
            out.setdefault(i, []).append((t, "insert", None, row))
            continue
        if not 0 <= t < Li:
            raise InputError(f"Edit {k}: step {t} is not a step of sequence {i} (it has {Li}: 0 to {Li - 1}).",
                             code="edit_step", field="edits")
        if f == "delete":
            out.setdefault(i, []).append((t, "delete", None, None))
            continue
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, (int, np.integer)):
            raise InputError(f"Edit {k}: the feature must be a feature number, 'delete' or 'insert', got {f!r}.",
                             code="edit_form", field="edits")
        if not 0 <= int(f) < n_feat:
            what = "token models have one feature, 0 (the token id)" if tokens else \
                f"there are {n_feat}, numbered from 0"
            raise InputError(f"Edit {k}: feature {int(f)} does not exist ({what}).", code="edit_feature",
                             field="edits")
        out.setdefault(i, []).append((t, "set", int(f), _check_value(v, tokens, vocab, f"edit {k}")))
    return out


def _plan_row(i: int, row_edits: list[tuple], x_row: torch.Tensor, Li: int) -> _RowPlan:
    """Apply one sequence's edits to its real steps (x_row (T, F) or (T,))."""
    steps = x_row[:Li].clone()                                   # (Li, F) or (Li,)
    deleted = {t for t, kind, _, _ in row_edits if kind == "delete"}
    inserts: dict[int, list[torch.Tensor]] = {}
    for t, kind, f, v in row_edits:
        if kind == "insert":
            inserts.setdefault(t, []).append(torch.as_tensor(v, dtype=x_row.dtype).reshape(x_row.shape[1:]))
        elif kind == "set":
            if t in deleted:
                raise InputError(f"Sequence {i}: step {t} is deleted and also edited; keep one of the two edits.",
                                 code="edit_step", field="edits")
            if x_row.dim() == 1:
                steps[t] = v
            else:
                steps[t, f] = v
    if len(deleted) >= Li and not inserts:
        raise InputError(f"Sequence {i}: the edits delete every step; a sequence needs at least one.",
                         code="edit_step", field="edits")
    pieces, prev = [], 0
    for t in sorted(set(inserts) | deleted):                    # cut at every insert and delete
        pieces.append(steps[prev:t])
        pieces.extend(v[None] for v in inserts.get(t, []))
        prev = t + 1 if t in deleted else t
    pieces.append(steps[prev:Li])
    x_new = torch.cat(pieces, 0)
    n_new = x_new.shape[0]
    # first step where the new sequence differs from the original (positions before it line up)
    m = min(n_new, Li)
    same = (x_new[:m] == x_row[:m]) if x_row.dim() == 1 else (x_new[:m] == x_row[:m]).all(1)
    diff = (~same).nonzero()
    first = int(diff[0, 0]) if diff.numel() else m
    return _RowPlan(i, x_new, n_new, first)


def apply_edits(x: Any, edits: Any, lengths: Any = None, *, model: nn.Module | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The edited input as arrays, without running anything.

    Returns ``(x_new, lengths_new)``: x_new [N, T', F] (or token ids [N, T']) with
    ``T' = max(T, longest edited length)``, zero past each length; lengths_new int64 [N].
    ``model`` (optional) checks token ids against its embedding.
    """
    if model is not None:
        xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    else:
        t = torch.as_tensor(np.asarray(x))
        xt = t if t.dim() == 2 and not t.is_floating_point() else t.float()
        lt = None if lengths is None else torch.as_tensor(np.asarray(lengths, dtype=np.int64))
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    parsed = _parse(edits, xt, L, None if model is None else _vocab_size(model))
    plans = {i: _plan_row(i, e, xt[i], int(L[i])) for i, e in parsed.items()}
    return _assemble(xt, L, plans)


def _assemble(xt: torch.Tensor, L: np.ndarray, plans: dict[int, _RowPlan]) -> tuple[np.ndarray, np.ndarray]:
    n, T = xt.shape[:2]
    T2 = max([T] + [p.length_new for p in plans.values()])
    shape = (n, T2) + tuple(xt.shape[2:])
    out = torch.zeros(shape, dtype=xt.dtype)
    out[:, :T] = xt
    L2 = L.copy()
    for i, p in plans.items():
        out[i] = 0
        out[i, : p.length_new] = p.x_new
        L2[i] = p.length_new
    return out.numpy(), L2


# ----------------------------------------------------------------------------- the original runs
class WhatIfBase:
    """The original runs of the sequences edited so far, kept so that later edits of the same
    sequences restart the recurrence without running the original again.

    Pass ``result.base`` back as ``what_if(..., base=result.base)`` with the same model, x and
    lengths. A sequence whose steps differ from what the base holds is run again.
    """

    def __init__(self, model: nn.Module, device):
        self.model = model
        self.device = device
        self.rows: dict[int, tuple[torch.Tensor, int, torch.Tensor, Capture]] = {}
        self.original: tuple[str, Trace] | None = None   # (digest of x and lengths, its trace)

    def original_trace(self, xt: torch.Tensor, lt: torch.Tensor | None, compute: Callable[[], Trace]) -> Trace:
        """The trace of the whole original input, kept while x and lengths stay the same."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        h.update(str((tuple(xt.shape), str(xt.dtype))).encode())
        h.update(xt.contiguous().numpy().tobytes())
        h.update(b"-" if lt is None else lt.numpy().tobytes())
        key = h.hexdigest()
        if self.original is None or self.original[0] != key:
            self.original = (key, compute())
        return self.original[1]

    def get(self, i: int, x_row: torch.Tensor, length: int, lengths_arg, output) -> tuple[torch.Tensor, Capture]:
        got = self.rows.get(i)
        if got is not None and got[1] == length and torch.equal(got[0], x_row[:length]):
            return got[2], got[3]
        cap = Capture()
        logits, recs = run_one(self.model, self.device, x_row, length, lengths_arg, output,
                                    lambda view: capturing(view, cap))
        cap.records = recs
        self.rows[i] = (x_row[:length].clone(), length, logits, cap)
        return logits, cap


# ----------------------------------------------------------------------------- the result
@dataclass
class WhatIfResult:
    """What :func:`what_if` returns.

    Attributes
    ----------
    outputs : float32 [N, C] (or [N] / [N, 1]) the model's output for the edited input.
    original_outputs : float32, the same for the original input.
    trace : :class:`~rnnviz_core.Trace` of the edited input: ``hidden`` [N, T', H_out] (NaN past
        each new length) and, by name, every layer's h, c and gates.
    original : Trace of the original input ([N, T, H_out]).
    parting_step : int64 [N]: the first step where the edited hidden state differs from the
        original's by more than ``tol`` in some unit (steps line up by position); when every
        common step agrees but the lengths differ, the shorter length; -1 when they never part
        (and for sequences without edits).
    first_edit : int64 [N]: the first step whose input changed (-1: no edit).
    recomputed_from : int64 [N]: the step the last recurrent module's recurrence restarted at
        (0: it ran in full, see the module docstring; -1: not run again).
    x, lengths : the edited input as arrays ([N, T', F] or ids [N, T'], and int64 [N]).
    base : :class:`WhatIfBase` to pass to the next call on the same data.
    """

    outputs: np.ndarray
    original_outputs: np.ndarray
    trace: Trace
    original: Trace
    parting_step: np.ndarray
    first_edit: np.ndarray
    recomputed_from: np.ndarray
    x: np.ndarray
    lengths: np.ndarray
    base: WhatIfBase


def _parting(h_new: np.ndarray, h_old: np.ndarray, L_new: int, L_old: int, tol: float) -> int:
    m = min(L_new, L_old)
    if m:
        diff = np.abs(h_new[:m].astype(np.float64) - h_old[:m].astype(np.float64)).max(axis=1)  # (m,)
        over = np.flatnonzero(~(diff <= tol))
        if over.size:
            return int(over[0])
    return m if L_new != L_old else -1


def _rows_to_numpy(rec: dict[str, torch.Tensor], length: int) -> dict[str, np.ndarray]:
    return {k: v[0, :length].detach().to("cpu", torch.float32).numpy() for k, v in rec.items()
            if isinstance(v, torch.Tensor) and v.dim() == 3}


def what_if(
    model: nn.Module,
    x: Any,
    edits: Sequence[tuple] | None,
    lengths: Any = None,
    *,
    tol: float = DEFAULT_TOL,
    base: WhatIfBase | None = None,
    original: Trace | None = None,
    device: str | torch.device | None = "auto",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> WhatIfResult:
    """Run the model on an edited copy of ``x``, recomputing only from each sequence's first edit.

    Parameters
    ----------
    model : a model as for :func:`rnnviz_core.trace`; never modified.
    x : float [N, T, F] or token ids [N, T]; never modified.
    edits : list of ``(sequence, step, feature, value)``; ``feature`` may also be ``"delete"``
        (value None) or ``"insert"`` (value: the new step's F numbers, or a token id), see the
        module docstring. Steps count the original sequence's steps from 0.
    lengths : ints [N] or None (all T).
    tol : hidden-state difference above which the edited sequence has "parted" from the original.
    base : a :class:`WhatIfBase` from an earlier result on the same model and data (skips the
        original runs it holds).
    original : the trace of (model, x, lengths) if already computed (skips running it for the
        sequences without edits).
    device, lengths_arg, output : as in :func:`rnnviz_core.trace`.

    Returns
    -------
    WhatIfResult
        ``outputs`` [N, ...], ``trace`` (hidden [N, T', H_out] plus gates by name),
        ``parting_step`` int64 [N], and the rest described in :class:`WhatIfResult`.

    Notes
    -----
    Each edited sequence runs on its own, its real steps only (the model reads exactly that
    sequence: with a model that takes the lengths this is what it gives in any batch). Its
    original run is kept in ``base``. The result equals running the model on ``apply_edits(x,
    edits, lengths)`` from scratch (the tests check it to 1e-5).
    """
    model = unwrap_model(model)
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise InputError(f"tol must be a number, got {tol!r}.", field="tol") from None
    if not tol >= 0:
        raise InputError(f"tol must be 0 or more, got {tol}.", field="tol")
    dev = resolve_device(device)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    parsed = _parse(edits, xt, L, _vocab_size(model))
    plans = {i: _plan_row(i, e, xt[i], int(L[i])) for i, e in parsed.items()}
    if base is None or base.model is not model:
        base = WhatIfBase(model, dev)
    if original is None:
        from .trace import trace as _trace
        original = base.original_trace(xt, lt, lambda: _trace(model, xt, lt, device=dev, lengths_arg=lengths_arg,
                                                               output=output))
    x_new, L_new = _assemble(xt, L, plans)
    T2 = x_new.shape[1]
    last = find_recurrent(model)[-1]
    orig_logits = np.array(original.logits, dtype=np.float32, copy=True)
    new_logits = orig_logits.copy()
    hidden = np.full((n, T2, original.hidden.shape[2]), np.nan, dtype=np.float32)
    hidden[:, :T] = original.hidden
    parting = np.full(n, -1, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    restarted = np.full(n, -1, dtype=np.int64)
    edited_arrays: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    for i, p in plans.items():
        logits_o, cap = base.get(i, xt[i], int(L[i]), lengths_arg, output)
        orig_logits[i] = logits_o[0].numpy().reshape(orig_logits[i].shape)
        used: dict[str, int] = {}
        start = p.first
        logits_e, recs = run_one(model, dev, p.x_new, p.length_new, lengths_arg, output,
                                      lambda view, cap=cap, start=start: resuming(view, cap, start, used))
        new_logits[i] = logits_e[0].numpy().reshape(new_logits[i].shape)
        h_old = cap.records[last.name]["out"][0, : L[i]].to("cpu", torch.float32).numpy()
        h_new = recs[last.name]["out"][0, : p.length_new].to("cpu", torch.float32).numpy()
        hidden[i] = np.nan
        hidden[i, : p.length_new] = h_new
        parting[i] = _parting(h_new, h_old, p.length_new, int(L[i]), tol)
        first[i] = p.first
        restarted[i] = used.get(last.name, 0)
        edited_arrays[i] = recs          # turned into arrays when the trace's gates are first read
    infos = original.modules

    def loader():
        arrays = {}
        rows_np = {i: {f"{mod}.{k}": v for mod, rec in recs.items()
                       for k, v in _rows_to_numpy(rec, plans[i].length_new).items() if k != "out"}
                   for i, recs in edited_arrays.items()}
        for name, arr in original.arrays.items():
            full = np.full((n, T2, arr.shape[2]), np.nan, dtype=np.float32)
            full[:, :T] = arr
            for i, ed in rows_np.items():
                full[i] = np.nan
                full[i, : plans[i].length_new] = ed[name]
            arrays[name] = full
        return arrays

    hidden.flags.writeable = False
    edited = Trace(hidden, new_logits, L_new.copy(), infos, loader=loader)
    return WhatIfResult(outputs=new_logits, original_outputs=orig_logits, trace=edited, original=original,
                        parting_step=parting, first_edit=first, recomputed_from=restarted, x=x_new,
                        lengths=L_new, base=base)


# ----------------------------------------------------------------------------- paths
def edited_paths(original: Any, edited: Any, n_components: int = 2, *, pca: Any = None) -> pd.DataFrame:
    """The paths of an original sequence's hidden states and of its edited version in one PCA basis.

    The basis is fitted on the original's states alone (:class:`~rnnviz_core.trajectories.StatePCA`),
    so the original's path does not move whatever the edit, and the edited path is drawn in the
    same coordinates: up to the parting step the two paths coincide.

    Parameters
    ----------
    original : [L, H] hidden states of the original sequence (real steps only)
    edited : [L', H] hidden states of the edited sequence (real steps only)
    pca : the :class:`~rnnviz_core.trajectories.StatePCA` already fitted on ``original`` (a page
        keeps it while the sequence is edited); None fits it here.

    Returns
    -------
    DataFrame with columns ``version`` ("original" / "edited"), ``step``, ``pc1`` .. ``pck``: one
    row per real step of each version; ``attrs["explained_variance_ratio"]`` holds the share of
    the original's state variance each component explains.
    """
    from .trajectories import StatePCA

    h_o = np.asarray(original, dtype=np.float64)
    h_e = np.asarray(edited, dtype=np.float64)
    if h_o.ndim != 2 or h_e.ndim != 2 or h_o.shape[1] != h_e.shape[1]:
        raise InputError(f"original and edited must be [steps, units] with the same units; got shapes "
                         f"{h_o.shape} and {h_e.shape}.")
    k = int(min(n_components, h_o.shape[0], h_o.shape[1]))
    if k < 1:
        raise InputError("The original sequence has no real step to fit a PCA basis on.")
    if pca is None:
        pca = StatePCA(n_components=k, max_points=None).fit(h_o[None])
    # both versions projected in one call, one frame built once (no concat of two frames)
    proj = pca.transform(np.concatenate([h_o, h_e])[None])[0]              # (L + L', k)
    cols = {"version": np.repeat(np.array(["original", "edited"], dtype=object), [h_o.shape[0], h_e.shape[0]]),
            "step": np.concatenate([np.arange(h_o.shape[0]), np.arange(h_e.shape[0])])}
    cols.update({f"pc{j + 1}": proj[:, j] for j in range(k)})
    frame = pd.DataFrame(cols)
    frame.attrs["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    return frame
