"""Running a model whose forward takes no lengths on a batch of sequences of different lengths.

Called padded, such a model reads the padding: its output for a short sequence is not the one it
gives that sequence alone. :func:`run_by_length` runs it once per distinct length on the rows of
that length cut to it (``x[rows, :L]``), then puts outputs and records back in the caller's row
order, records padded with zeros past each length (as a packed run leaves them). Gradients flow
through: the probe and x are sliced, not copied, and a token model's embedding output is one leaf
for the whole batch that each length reads its slice of (see ``engine.embedding_hook``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F_

__all__ = ["run_by_length"]


def run_by_length(view, xt: torch.Tensor, lt: torch.Tensor, probe: torch.Tensor | None, embed) -> torch.Tensor:
    """The output of ``view`` (an ``engine.ModelView``) for ``xt`` [N, T, ...] with lengths ``lt``
    [N], each sequence run at its own length; ``view.records`` as after a padded run (caller's row
    order, [N, T, ...], zeros past each length)."""
    sess = view.session
    n, t = xt.shape[:2]
    lengths = lt.to(torch.int64).cpu()
    outs, recs, order = [], [], []
    try:
        for steps in torch.unique(lengths, sorted=True).flip(0).tolist():
            rows = (lengths == steps).nonzero().flatten()
            rows_dev = rows.to(xt.device)
            x_g = xt.index_select(0, rows_dev)[:, :steps]
            p_g = None if probe is None else probe.index_select(0, rows.to(probe.device))[:, :steps]
            sess.group = (xt, rows, steps) if embed is not None else None
            outs.append(view.run_batch(x_g, None, p_g, embed, True, keep_embed=True))
            recs.append({name: {k: (F_.pad(v, (0, 0, 0, t - steps)) if isinstance(v, torch.Tensor)
                                    and v.dim() == 3 and v.shape[1] == steps else v)
                                for k, v in rec.items()}
                         for name, rec in sess.records.items()})
            order.append(rows)
    finally:
        sess.group = None
    inv = torch.empty(n, dtype=torch.int64)
    inv[torch.cat(order)] = torch.arange(n)
    out = torch.cat(outs, 0).index_select(0, inv.to(outs[0].device))
    merged: dict[str, dict[str, Any]] = {}
    for name, rec in recs[0].items():
        merged[name] = {}
        for k, v in rec.items():
            if isinstance(v, torch.Tensor) and v.dim() >= 1 and all(
                    isinstance(r[name].get(k), torch.Tensor) for r in recs):
                cat = torch.cat([r[name][k] for r in recs], 0)
                merged[name][k] = cat.index_select(0, inv.to(cat.device))
            else:
                merged[name][k] = None
        merged[name]["lengths"] = lengths  # zeros past each length, as a packed run leaves them
    sess.records, sess.perm, sess.inv = merged, None, None
    return out

