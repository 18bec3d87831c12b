"""ModelView: run a user's model through its private view (see :mod:`rnnviz_core.engine`); the
fused and unrolled forwards built on it."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F_
from torch import nn

from ..errors import InputError, ModelError, RnnvizError
from .recurrence import pick_recurrence
from .discovery import find_recurrent, unwrap_model
from .failures import describe_tensor, explain_failure
from .inputs import lengths_slot, model_dtype
from .proxy import EmbedSpec, Session, copy_tree


class ModelView:
    """A private, eval-mode view of ``model`` on ``device`` with recording proxies.

    Build it once per call and reuse it across batches; ``run`` returns the model's output and
    leaves what the proxies recorded in ``self.records``.

    How the model is called: ``forward(x)``, plus the lengths in the parameter
    :func:`lengths_slot` finds (or ``lengths_arg``); when the model takes lengths, each batch
    reaches it sorted by length, longest first (``pack_padded_sequence``'s default
    ``enforce_sorted=True`` needs it), and everything comes back in the caller's order. When
    the forward returns a tuple or list, the output is the one element shaped [N, C] or [N]
    (``output=`` an index, a key or a function picks it otherwise). The user's forward hooks and
    pre-hooks run as in the user's own call (whichever way the recurrences run); backward hooks do not run.
    ``runner`` (unrolled recurrences only) may stand in for the recurrence of any module:
    ``runner(name, info, weights, x, hx, mask, record)`` returns what ``run_module`` returns,
    or None to run it as usual (:mod:`rnnviz_core.whatif` restarts it from kept states).
    """

    def __init__(self, model: nn.Module, device: torch.device, recurrence: str = "fused", record: bool = False,
                 probe_name: str | None = None, *, lengths_arg: str | None = None,
                 output: int | str | Callable | None = None, runner: Callable | None = None,
                 engine: str | None = None):
        recurrence = pick_recurrence(recurrence, engine)   # engine=: the keyword's old name
        model = unwrap_model(model)
        self.model = model
        self.infos = find_recurrent(model)
        self.last = self.infos[-1]
        self.dtype = model_dtype(model)
        self.device = device
        self.session = Session(recurrence, record=record, probe_name=probe_name)
        if runner is not None and recurrence == "fused":
            raise InputError("internal: a recurrence runner needs an unrolled recurrence ('fast' or 'stepwise').")
        self.session.runner = runner
        self.module = copy_tree(model, "", self.session, device, self.dtype, {})
        self.slot = lengths_slot(model, lengths_arg)
        self.takes_lengths = self.slot is not None
        if output is not None and not (callable(output) or isinstance(output, (int, str))) or isinstance(output, bool):
            raise InputError(f"output= must be an index, a key or a function picking the logits, got {output!r}.")
        self.output = output

    @property
    def records(self) -> dict[str, dict[str, torch.Tensor]]:
        return self.session.records

    def _select_output(self, out: Any, n: int) -> torch.Tensor:
        sel = self.output
        if sel is not None:
            try:
                out = sel(out) if callable(sel) else out[sel]
            except Exception as exc:
                raise InputError(
                    f"output={sel!r} could not pick the logits from what the model returned "
                    f"({describe_tensor(out)}): {type(exc).__name__}: {exc}.") from exc
        elif isinstance(out, dict):
            out = out["logits"] if "logits" in out else tuple(out.values())
        if isinstance(out, (tuple, list)):
            cands = [i for i, o in enumerate(out)
                     if isinstance(o, torch.Tensor) and o.dim() in (1, 2) and o.shape[0] == n]
            shapes = ", ".join(describe_tensor(o) for o in out)
            if len(cands) != 1:
                what = ("none of which is one output per sequence ([N, classes] or [N])" if not cands else
                        f"{len(cands)} of which could each be the output (elements {cands})")
                raise ModelError(
                    f"The model's forward returned a {type(out).__name__} ({shapes}), {what}; rnnviz will "
                    f"not guess. Pass output=<index> (e.g. output={cands[-1] if cands else 0}) or "
                    "output=<function returning the logits>.", code="output", field="output")
            out = out[cands[0]]
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"The model's forward returned {type(out).__name__}, not a tensor of outputs. "
                "rnnviz needs one output per sequence: logits [N, classes] or a value [N]; pass output= to pick it."
            )
        if out.dim() == 0 or out.shape[0] != n or out.dim() > 2:
            raise ModelError(
                f"The model returned an output of shape {tuple(out.shape)} for {n} sequences; "
                "rnnviz needs one output per sequence: [N, classes], [N] or [N, 1]."
            )
        return out

    def by_length(self, xt: torch.Tensor, lt: torch.Tensor | None) -> bool:
        """Whether :meth:`run` runs ``xt`` one length at a time: the forward takes no lengths, and
        some sequence is shorter than the padded batch (run padded, the model would read the padding)."""
        return self.slot is None and lt is not None and bool((lt < xt.shape[1]).any())

    def run(self, xt: torch.Tensor, lt: torch.Tensor | None, probe: torch.Tensor | None = None,
            embed: EmbedSpec | None = None, unsort_records: bool = True) -> torch.Tensor:
        """The model's output for ``xt`` (caller's row order); records in ``self.records``.

        The records come back in the caller's row order too, unless ``unsort_records=False``:
        then row i of every record is caller row ``self.session.perm[i]`` when the batch was
        sorted for the model (``perm`` None: not sorted).

        A model whose forward takes no lengths runs each sequence at its own length (one forward
        per distinct length, see :meth:`by_length`), so every output and state is the sequence's
        own, as if it ran alone; records are zero past each length.
        """
        sess = self.session
        sess.embed_mod, sess.group = None, None
        if not self.by_length(xt, lt):
            sess.embed_leaf, sess.embed_delta = None, None
            return self.run_batch(xt, lt, probe, embed, unsort_records)
        from .lengthwise import run_by_length
        sess.embed_leaf, sess.embed_delta = None, None
        return run_by_length(self, xt, lt, probe, embed)

    def run_batch(self, xt: torch.Tensor, lt: torch.Tensor | None, probe: torch.Tensor | None,
                  embed: EmbedSpec | None, unsort_records: bool, keep_embed: bool = False) -> torch.Tensor:
        """One call of the model's forward on the whole batch ``xt`` (see :meth:`run`, which also
        runs a model without lengths one length at a time). ``keep_embed``: keep the embedding
        leaf of an earlier call (one leaf shared by every length of a batch)."""
        sess = self.session
        n, t = xt.shape[:2]
        sess.records, sess.perm, sess.inv = {}, None, None
        sess.embed, sess.embed_shape = embed, (n, t)
        if not keep_embed:
            sess.embed_leaf, sess.embed_delta = None, None
        passed = None
        if self.slot is not None:
            passed = lt if lt is not None else (
                torch.full((n,), t, dtype=torch.int64) if self.slot.required else None)
        x_run, p_run = xt, probe
        if passed is not None and n > 1 and bool((passed[1:] > passed[:-1]).any()):
            perm = torch.argsort(passed, descending=True, stable=True)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(n)
            sess.perm, sess.inv = perm, inv
            x_run = xt.index_select(0, perm.to(xt.device))
            passed = passed.index_select(0, perm)
            if probe is not None:
                p_run = probe.index_select(0, perm.to(probe.device))
        args, kwargs = (x_run,), {}
        if passed is not None:
            if self.slot.name is not None:
                kwargs[self.slot.name] = passed
            else:
                args = (x_run, passed)
        sess.probe = p_run
        try:
            out = self.module(*args, **kwargs)
        except RnnvizError:
            raise
        except Exception as exc:
            raise explain_failure(exc, self.model, xt, lt, passed, self.slot) from exc
        finally:
            sess.probe = None
        out = self._select_output(out, n)
        if sess.inv is not None:
            inv = sess.inv
            out = out.index_select(0, inv.to(out.device))
            for rec in (sess.records.values() if unsort_records else ()):
                for k, v in rec.items():
                    if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n:
                        rec[k] = v.index_select(0, inv.to(v.device))
        if self.last.name not in sess.records:
            raise ModelError(
                f"The model's forward never ran its recurrent module '{self.last.name}', so it has no states to show."
            )
        for name, rec in sess.records.items():
            steps = rec["out"].shape[1]
            if steps < t and rec.get("lengths") is not None:  # packed: padded only to this batch's longest
                for k, v in rec.items():
                    if isinstance(v, torch.Tensor) and v.dim() == 3:
                        rec[k] = F_.pad(v, (0, 0, 0, t - steps))
            elif steps != t:
                raise ModelError(
                    f"The recurrent module '{name}' reads {steps} steps while x has {t}, so its states cannot "
                    "be lined up with the input steps (a front end such as a strided or unpadded Conv1d "
                    "changes the number of steps). rnnviz needs one recurrent step per input step."
                )
        return out


def fused_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> torch.Tensor:
    """The model's own output for a prepared batch, without gradients (eval mode, model untouched).

    Rows stream through one private view in chunks of ``batch_size`` (default: all at once), each
    chunk moved to ``device`` (default: where ``xt`` is); the outputs stay on that device.
    ``lengths_arg`` and ``output`` are as in :class:`ModelView`.
    """
    view = ModelView(model, device or xt.device, recurrence="fused", lengths_arg=lengths_arg, output=output)
    n = xt.shape[0]
    bs = int(batch_size) if batch_size else n
    with torch.no_grad():
        parts = [
            view.run(xt[s : s + bs].to(view.device), None if lt is None else lt[s : s + bs])
            for s in range(0, n, bs)
        ]
    return parts[0] if len(parts) == 1 else torch.cat(parts, 0)


def unrolled_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    probe: torch.Tensor | None = None,
    *,
    recurrence: str = "fast",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    engine: str | None = None,
    capture: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model with every recurrent module recomputed by rnnviz (differentiable).

    ``recurrence="fast"`` (default) back-propagates with the hand-written BPTT of
    :mod:`.recurrence`; ``"stepwise"`` lets autograd record every step (the reference). A probe with non-zero values always uses ``"stepwise"``
    (the fast forward treats the probe as zero). ``engine=`` is the old name of ``recurrence=``.

    Parameters
    ----------
    xt, lt : the output of :func:`prepare` (xt may require grad).
    probe : optional tensor (N, T, H_out), normally zeros with ``requires_grad=True``, added to the
        last recurrent module's last-layer state at every real step inside the recurrence, so that
        ``torch.autograd.grad(out, probe)`` is d out / d h_t (forward half then backward half of
        H_out for a bidirectional layer).
    lengths_arg, output : as in :class:`ModelView`.
    capture : a dict, or None: with a dict, every recurrent module also records its per-step
        states and gates (detached, as a trace records them) and ``capture`` receives
        ``"records"`` (per module, caller's row order) and ``"logits"``.

    Returns
    -------
    logits : the model's output, as it returns it.
    h_last : (N, T, H_out) the last recurrent module's per-step output (zeros on padding when the
        model packs its input), still attached to the graph.
    """
    logits, h_last, _, _ = run_unrolled(model, xt, lt, probe, recurrence=pick_recurrence(recurrence, engine),
                                          lengths_arg=lengths_arg, output=output, capture=capture)
    return logits, h_last


def run_unrolled(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    probe: torch.Tensor | None = None,
    *,
    recurrence: str = "fast",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    embed: EmbedSpec | None = None,
    engine: str | None = None,
    capture: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """:func:`unrolled_forward`, plus the embedding leaf and its delta for token models.

    With ``embed`` (token ids only), the output of the ``nn.Embedding`` that reads x becomes a
    leaf tensor ``E_leaf`` [N, T, D] (see :class:`EmbedSpec`), so ``autograd.grad(out,
    E_leaf)`` is the gradient with respect to the embedding output; ``delta`` is E itself
    (``mode="grad"``) or ``E - Eb`` (``mode="path"``). Both in the caller's row order.
    ``capture``: as in :func:`unrolled_forward`.
    """
    recurrence = pick_recurrence(recurrence, engine)
    if recurrence not in ("fast", "stepwise"):
        raise InputError(f"recurrence must be 'fast' or 'stepwise', not {recurrence!r}.")
    if probe is not None and recurrence == "fast" and bool((probe.detach() != 0).any()):
        recurrence = "stepwise"
    view = ModelView(model, xt.device, recurrence=recurrence, probe_name=find_recurrent(model)[-1].name,
                     lengths_arg=lengths_arg, output=output, record=capture is not None)
    if probe is not None:
        expected = (xt.shape[0], xt.shape[1], view.last.output_size)
        if tuple(probe.shape) != expected:
            raise InputError(f"probe must have shape {expected}, got {tuple(probe.shape)}.")
    logits = view.run(xt, lt, probe=probe, embed=embed)
    leaf, delta = view.session.embed_leaf, view.session.embed_delta
    if embed is not None and leaf is None:
        raise ModelError(
            "x holds token ids, but no nn.Embedding of the model read them as given ([sequences, steps]), "
            "so there is no embedding output to attribute to. grad_norm and grad_x_state, which attribute "
            "to the recurrent states, work on any model."
        )
    if capture is not None:
        capture["records"], capture["logits"] = view.records, logits.detach()
    return logits, view.records[view.last.name]["out"], leaf, delta
