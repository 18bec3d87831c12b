"""Restart a recurrence from cached states: perturbation methods that pay only for what changed.

Replacing step t of a sequence changes nothing a unidirectional recurrent module computes
before t. :class:`Resumer` runs the model once on the clean sequences (the model's own fused
modules, in a private view) and keeps, for every recurrent module, its input and output at
every step; it then advances each module's clean state (all layers; h and, for an LSTM, c) one
stretch at a time with the fused module. A perturbed batch that differs from the clean one only
from step ``start`` on is then run by restarting each module at ``start`` from the clean state
at ``start - 1`` (the output before ``start`` is the cached one), so a pass costs
``T - start`` recurrent steps instead of ``T``; the rest of the model (the layers before and
after the recurrent modules, hooks, packing, the head) runs as the model itself runs it.

It is exact, not an approximation, and it checks instead of assuming: a module restarts only
when its input before ``start`` is bit-for-bit the cached clean input of the same rows
(a front end that mixes steps, such as a convolution, fails that check), when it is
unidirectional and when the model passes it no initial state of its own; otherwise that
module runs in full, as before. A bidirectional module therefore never restarts (its backward
half reads the changed step from the end).

Autograd runs through the restarted fused modules (their weights are detached: no parameter
gradients); on CUDA, cuDNN is switched off for such passes because its recurrent backward
refuses eval mode.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["Resumer"]


class Resumer:
    """Clean pass once, then perturbed passes restarted from the clean states.

    Parameters
    ----------
    prob : the contributions problem (model, x, lengths, target; see contributions.Problem).

    Use: ``fx = r.clean()`` (target per row, fixes the predicted class), then for steps in
    increasing order ``r.advance(t)`` and ``r.out(x_perturbed, rows, start=t)``.
    """

    def __init__(self, prob):
        from .engine import ModelView

        self.prob = prob
        self.view = ModelView(prob.model, prob.dev, engine="fused", **(prob.call or {}))
        self.view.session.fused_hook = self._hook
        self.mode: str | None = None
        self.rows: torch.Tensor | None = None
        self.start = 0
        self.cache: dict[str, dict[str, Any]] = {}
        self.restarted = 0          # module calls that restarted (for info / tests)
        self.full = 0               # module calls that ran in full

    # ---------------------------------------------------------------- public
    def clean(self, batch: int | None = None) -> torch.Tensor:
        """Target per row for the clean x (fixes the predicted class); fills the cache."""
        prob = self.prob
        fx = torch.empty(prob.N, device=prob.dev)
        per = batch or prob.rows_per_batch(prob.n_features * 4)
        rows_all = torch.arange(prob.N, device=prob.dev)
        self.mode = "capture"
        try:
            with torch.no_grad():
                for s in range(0, prob.N, per):
                    r = rows_all[s:s + per]
                    fx[s:s + per] = self._run(prob.xt[r], r, clean=True)
        finally:
            self.mode = None
        return fx

    def advance(self, t: int) -> None:
        """Move every cached module's clean state to 'after step t - 1'."""
        with torch.no_grad():
            for c in self.cache.values():
                if not c["ok"] or c["pos"] >= t:
                    continue
                info = c["info"]
                if info.num_layers == 1 and info.mode != "LSTM":     # h_{t-1} is the output
                    c["h"] = c["out"][None, :, t - 1].contiguous()
                    c["pos"] = t
                    continue
                inp = c["inp"][:, c["pos"]:t]
                hx = (c["h"], c["c"]) if info.mode == "LSTM" else c["h"]
                res = c["fused"](inp if info.batch_first else inp.transpose(0, 1), hx)
                if info.mode == "LSTM":
                    c["h"], c["c"] = res[1]
                else:
                    c["h"] = res[1]
                c["pos"] = t

    def out(self, x: torch.Tensor, rows: torch.Tensor, start: int) -> torch.Tensor:
        """Target per row of a perturbed x equal to the clean rows before ``start``.

        Call :meth:`advance` (``start``) first. Differentiable with respect to x when grad is
        enabled.
        """
        self.mode, self.start = "resume", int(start)
        flags = (torch.backends.cudnn.flags(enabled=False)
                 if x.is_cuda and torch.is_grad_enabled() else contextlib.nullcontext())
        try:
            with flags:
                return self._run(x, rows)
        finally:
            self.mode = None

    # ---------------------------------------------------------------- private
    def _run(self, x: torch.Tensor, rows: torch.Tensor, clean: bool = False) -> torch.Tensor:
        from .contributions import as_2d as _as_2d
        lt = self.prob.lengths_of(rows)
        if not self.view.by_length(x, lt):
            self.rows = rows
            logits = _as_2d(self.view.run(x, lt))
            return self.prob.out(logits.float(), rows, clean=clean)
        # a forward without lengths runs each length on its own: do it here, so that the
        # restarted modules know which rows (of the dataset) each call holds
        out = torch.empty(rows.numel(), device=x.device)
        for steps in torch.unique(lt).tolist():
            g = (lt == steps).nonzero().flatten().to(x.device)
            self.rows = rows[g]
            logits = _as_2d(self.view.run(x[g, :steps], lt[g.cpu()]))
            out = out.index_put((g,), self.prob.out(logits.float(), rows[g], clean=clean))
        return out

    def _hook(self, proxy, input, hx):
        if self.mode is None:
            return None
        info, fused = proxy.rv_info, proxy._fused
        sess = self.view.session
        rows = self.rows if sess.perm is None else self.rows[sess.perm.to(self.rows.device)]
        packed = isinstance(input, PackedSequence)
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)
        elif input.dim() == 3:
            x, lengths = (input if info.batch_first else input.transpose(0, 1)), None
        else:
            x = lengths = None                                   # unbatched: never restarted
        if self.mode == "capture":
            res = fused(input, hx)
            self._capture(proxy.rv_name, info, fused, x, res, rows, hx, packed)
            return res
        c = self.cache.get(proxy.rv_name)
        t = self.start
        if (c is None or not c["ok"] or hx is not None or x is None or t <= 0
                or x.shape[1] <= t or c["pos"] != t
                or not torch.equal(x[:, :t], _take(c["inp"], rows)[:, :t].to(x.dtype))):
            self.full += 1
            return None
        h0 = _take(c["h"], rows, dim=1)
        hx0 = (h0, _take(c["c"], rows, dim=1)) if info.mode == "LSTM" else h0
        suffix = x[:, t:]
        if packed:
            rest = lengths - t
            if bool((rest < 1).any()):
                self.full += 1
                return None
            suffix_in = pack_padded_sequence(suffix, rest, batch_first=True, enforce_sorted=False)
        else:
            suffix_in = suffix if info.batch_first else suffix.transpose(0, 1)
        res = fused(suffix_in, hx0)
        o = res[0]
        if packed:
            o, _ = pad_packed_sequence(o, batch_first=True, total_length=suffix.shape[1])
        elif not info.batch_first:
            o = o.transpose(0, 1)
        full = self._with_prefix(c, rows, t, o)                          # (n, T', H_out)
        if packed:
            out_obj = pack_padded_sequence(full, lengths, batch_first=True,
                                           enforce_sorted=input.sorted_indices is None)
        else:
            out_obj = full if info.batch_first else full.transpose(0, 1)
        self.restarted += 1
        return (out_obj,) + tuple(res[1:])

    def _with_prefix(self, c, rows, t, o):
        """Cached clean output before t, then o. A call repeating the last (rows, t) of this
        module (a mask's iterations) writes o into a kept buffer instead of copying the prefix
        again (the buffer is detached first, so each pass has a graph of its own)."""
        key = (t, o.shape[1], o.dtype)
        buf = c.get("buf")
        if (buf is None or c.get("buf_key") != key or c["buf_rows"].shape != rows.shape
                or not torch.equal(c["buf_rows"], rows)):
            buf = torch.cat([_take(c["out"], rows)[:, :t].to(o.dtype), o.detach()], 1)
            c["buf"], c["buf_key"], c["buf_rows"] = buf, key, rows.clone()
        full = buf.detach()
        full[:, t:] = o
        return full

    def _capture(self, name, info, fused, x, res, rows, hx, packed):
        prob = self.prob
        c = self.cache.get(name)
        if c is None:
            ok = x is not None and not info.bidirectional and hx is None
            c = self.cache[name] = {"ok": ok, "info": info, "fused": fused, "pos": 0}
            if ok:
                n_all, dev = prob.N, x.device
                c["inp"] = torch.zeros(n_all, prob.T, x.shape[2], dtype=x.dtype, device=dev)
                c["out"] = torch.zeros(n_all, prob.T, info.output_size, dtype=x.dtype, device=dev)
                c["h"] = torch.zeros(info.num_layers, n_all, info.state_size, dtype=x.dtype,
                                     device=dev)
                if info.mode == "LSTM":
                    c["c"] = torch.zeros(info.num_layers, n_all, info.hidden_size, dtype=x.dtype,
                                         device=dev)
        if not c["ok"]:
            return
        if x is None or hx is not None or x.shape[1] > prob.T:
            c["ok"] = False
            return
        o = res[0]
        if packed:
            o, _ = pad_packed_sequence(o, batch_first=True)
        elif not info.batch_first:
            o = o.transpose(0, 1)
        steps = x.shape[1]
        c["inp"][rows, :steps] = x.detach()
        c["out"][rows, :o.shape[1]] = o.detach()


def _take(a: torch.Tensor, rows: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """a's rows (along dim); a view, not a copy, when rows is a run of consecutive indices."""
    n = rows.numel()
    if n and int(rows[-1] - rows[0]) == n - 1 and bool((rows[1:] - rows[:-1] == 1).all()):
        return a.narrow(dim, int(rows[0]), n)
    return a.index_select(dim, rows.to(a.device))
