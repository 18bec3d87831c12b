"""The source a page renders: a live model (a demo, the user's own files, the user's own class
started by ``rnnviz app`` / ``rv.show``: all a :class:`~rnnviz_app.sources.context.Loaded`) or an
opened analysis bundle. One implementation of each page asks the source:

- what it holds: :attr:`ids`, :attr:`lengths` and :meth:`labels` of the sequences A and B can be
  (every loaded sequence; a bundle's sampled ones), :attr:`class_names`, :attr:`task`,
  :meth:`words_of` (a text model's words);
- what it computes: :meth:`states`, :meth:`pick_pair`, :meth:`paths`, :meth:`norms`, scores
  (:meth:`methods`, :meth:`contribution_frames`), groupings and the group comparison
  (:meth:`group_table`, :meth:`saturation_over_time`, :meth:`compare`);
- where it cannot: :meth:`cannot` gives the plain sentence the page shows instead (a bundle holds
  numbers only, not the model), and the rest of the page still draws.

The content cache is keyed by the source (:attr:`key`: the live digest of model, data and device,
or ``bundle:<sha256>``; see :func:`rnnviz_app.state.compute.source_key`). A bundle is read lazily
through :mod:`~rnnviz_app.sources.bundle_view` and :mod:`~rnnviz_app.sources.bundle_reads`: its
sequence table is never read whole.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

__all__ = ["WHAT", "BundleSource", "LiveSource", "bundle_sentence", "current", "needs_model"]

#: what a section computes, in the words of the sentence that says a bundle cannot
WHAT = {
    "resilience": ("resilience to noise and missing steps", "re-runs the model on damaged inputs"),
    "deletion": ("the deletion check of each method", "re-runs the model with its top steps removed"),
    "second_model": ("the comparison with a second trained model", "needs this model itself"),
    "target": ("the scores for another target output", "re-scores every step with the model"),
    "thresholds": ("saturation at other thresholds", "needs every sequence's states"),
    "unit_saturation": ("which units saturate, and when, per group", "needs every sequence's states"),
    "gates": ("the gates' shares nearly shut or open per group", "needs every sequence's gates"),
    "features": ("the scores of each input feature", "re-scores A and B with the model"),
    "whatif": ("an edited sequence (What if)", "re-runs the model on the edit"),
    "every_sequence": ("the paths and state sizes of every sequence for this choice",
                       "needs every sequence's states; the bundle stores them for the hidden state h, last layer, "
                       "forward, and the full states of its sampled sequences only"),
    "units": ("the dictionary of units", "re-runs the model on every sequence"),
}


def bundle_sentence(what: str) -> str:
    """The plain sentence a page shows where a bundle cannot compute ``what`` (a key of :data:`WHAT`)."""
    thing, why = WHAT[what]
    return (f"This analysis bundle holds numbers only, not the model, so {thing} cannot be computed here "
            f"(it {why}). Close the bundle in the sidebar and load the model and data to see it.")


class LiveSource:
    """A loaded model and its data (``ctx``): every view can be computed."""

    bundle = False

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.data = ctx.data
        self.key = ctx.key

    # ---- what it holds
    @property
    def ids(self) -> list[str]:
        return [str(i) for i in self.data.ids]

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray(self.data.lengths)

    @property
    def class_names(self) -> list:
        return list(getattr(self.data, "class_names", None) or [])

    @property
    def task(self) -> str:
        from rnnviz_app.views.summary import is_regression
        return "regression" if is_regression(self.ctx) else "classification"

    @property
    def is_tokens(self) -> bool:
        return bool(getattr(self.data, "is_tokens", False))

    @property
    def target(self) -> int | None:
        """The output the scores explain (None: each sequence's prediction)."""
        return self.ctx.target

    def labels(self) -> dict:
        from rnnviz_app.sources import sequences as sq
        return sq.sequence_labels(self.ctx)

    def words_of(self, pos: int) -> list[str] | None:
        from rnnviz_app.sources import sequences as sq
        return sq.words_of(self.ctx, pos)

    def input_view(self) -> Any:
        """What the input strips and known-step marks read (``.data``: X, lengths, feature_names,
        is_tokens) for the rows of :meth:`states`: the loaded context."""
        return self.ctx

    def cannot(self, what: str) -> str | None:
        """None: this source computes ``what``; else the sentence the page shows instead."""
        if what == "resilience" and self.is_tokens:
            return "Resilience to noisy or missing inputs is not measured here: adding noise to words has no meaning."
        return None

    def cannot_view(self, kind: str, layer: int, direction: str) -> str | None:
        """None: the paths and sizes of every sequence can be drawn for this choice (always live)."""
        return None

    # ---- what it computes
    def layer_options(self) -> tuple[list[int], list[str], dict]:
        from rnnviz_app.sources import sequences as sq
        return sq.layer_options(self.ctx)

    def states(self, kind: str = "h", layer: int = -1, direction: str = "fwd") -> np.ndarray:
        from rnnviz_app.sources import sequences as sq
        return sq.states(self.ctx, kind, layer, direction)

    def pick_pair(self, labels: dict, **where: Any) -> tuple[int, int]:
        from rnnviz_app.inputs import page_pair as pp
        return pp.pick_pair(self.ctx, labels, **where)

    def paths(self, H: np.ndarray, view_key: tuple, pair: list[str]) -> tuple[pd.DataFrame, str | None]:
        """PCA paths of every sequence (``seq`` = id), and None (the cloud is every sequence)."""
        from rnnviz_app.state import compute as cp
        from rnnviz_core import trajectories as tj
        return cp.compute(tj.pca_paths, H, self.lengths, ids=self.ids, key=("pca",) + view_key)[0], None

    def norms(self, H: np.ndarray, view_key: tuple, rows: list[int]) -> pd.DataFrame:
        from rnnviz_app.state import compute as cp
        from rnnviz_core import trajectories as tj
        return cp.compute(tj.state_norms, H, self.lengths, ids=self.ids, key=("norms",) + view_key)


class BundleSource:
    """An opened analysis bundle (``dig``: its hash; ``b``: the :class:`rnnviz_core.bundle.Bundle`).
    Sequence A and B are among its sampled sequences (the only ones with full traces): positions
    in :attr:`ids` / :meth:`states` are positions in the sample, :meth:`row` gives the bundle row."""

    bundle = True

    def __init__(self, dig: str, b: Any) -> None:
        self.dig, self.b = dig, b
        self.key = f"bundle:{dig}"

    # ---- what it holds
    @property
    def rows(self) -> list[int]:
        return [int(r) for r in self.b.sample_rows]

    def row(self, pos: int) -> int:
        """The bundle row of sampled sequence ``pos``."""
        return self.rows[pos]

    @property
    def ids(self) -> list[str]:
        from rnnviz_app.sources import bundle_view as bv
        got = bv.sample_ids(self.b)
        return [got[r] for r in self.rows]

    @property
    def lengths(self) -> np.ndarray:
        from rnnviz_app.sources import bundle_view as bv
        got = bv.sample_lengths(self.b)
        return np.asarray([got[r] for r in self.rows], dtype=np.int64)

    @property
    def class_names(self) -> list:
        return list(self.b.class_names or [])

    @property
    def task(self) -> str:
        shape = self.b.manifest.get("model", {}).get("output_shape") or [1]
        return "regression" if int(np.prod(shape)) == 1 else "classification"

    is_tokens = False
    target = None   # a bundle's scores explain the predicted class

    def labels(self) -> dict:
        from rnnviz_app.sources import bundle_view as bv
        got = bv.sample_labels(self.b)
        ids = bv.sample_ids(self.b)
        return {ids[r]: got[r] for r in self.rows if r in got}

    def words_of(self, pos: int) -> None:
        return None

    def input_view(self) -> Any:
        """The sampled sequences' inputs as the input strips read them (``.data``: X [S, T, F],
        lengths, feature_names), or None when the bundle holds no numeric inputs for them."""
        from types import SimpleNamespace
        try:
            x = np.asarray(self.b.sample_inputs()[0])
        except Exception:  # noqa: BLE001 - no inputs: the charts draw without their strips
            return None
        if x.ndim != 3 or x.shape[0] != len(self.rows) or not np.issubdtype(x.dtype, np.floating):
            return None
        names = [str(n) for n in (self.b.manifest.get("data", {}).get("feature_names") or [])]
        if len(names) != x.shape[2]:
            names = [f"feature {i}" for i in range(x.shape[2])]
        return SimpleNamespace(data=SimpleNamespace(X=x, lengths=self.lengths, feature_names=names, is_tokens=False))

    def cannot(self, what: str) -> str | None:
        from rnnviz_app.sources.bundle_source import NOT_INCLUDED
        if what in ("resilience", "second_model", "target"):
            return NOT_INCLUDED[what]
        if what == "deletion":
            return NOT_INCLUDED["faithfulness"]
        if what == "thresholds":
            from rnnviz_app.sources.bundle_source import threshold_message
            return threshold_message(self.b)
        return bundle_sentence(what) if what in WHAT else None

    def cannot_view(self, kind: str, layer: int, direction: str) -> str | None:
        """The paths and |h| of every sequence are stored for the hidden state h, last layer, forward
        only: the sentence for any other choice (its A and B still draw from the sampled states)."""
        info = self.b.sample_trace().modules[-1]
        if (kind, int(layer), direction) == ("h", int(info.num_layers) - 1, "fwd"):
            return None
        return bundle_sentence("every_sequence")

    # ---- what it computes
    def layer_options(self) -> tuple[list[int], list[str], dict]:
        """Every layer, direction and kind of the last recurrent module: the sampled sequences'
        full traces hold them all."""
        from rnnviz_app.sources.sequences import KIND_LABELS
        info = self.b.sample_trace().modules[-1]
        dirs = ["fwd", "bwd"][: int(info.num_directions)]
        return list(range(int(info.num_layers))), dirs, {k: KIND_LABELS.get(k, k) for k in info.kinds}

    def states(self, kind: str = "h", layer: int = -1, direction: str = "fwd") -> np.ndarray:
        """float [S, T, H] of the sampled sequences."""
        return np.ascontiguousarray(self.b.sample_trace().get(kind, layer=layer, direction=direction))

    def pick_pair(self, labels: dict, **where: Any) -> tuple[int, int]:
        from rnnviz_app.sources import bundle_view as bv
        ra, rb = bv.pick_pair(self.b)
        return self.rows.index(ra), self.rows.index(rb)

    def paths(self, H: np.ndarray, view_key: tuple, pair: list[str]) -> tuple[pd.DataFrame, str | None]:
        """PCA paths of the cloud's rows (every sequence of a small bundle, else the sampled ones)
        and the caption's words for a sampled cloud."""
        from rnnviz_app.sources import bundle_reads as br
        cloud, words = br.cloud_rows(self.b)
        return br.paths(self.b, cloud, br.rows(self.b, cloud, ["id"])["id"].astype(str).tolist()), words

    def norms(self, H: np.ndarray, view_key: tuple, rows: list[int]) -> pd.DataFrame:
        from rnnviz_app.sources import bundle_reads as br
        ids = self.ids
        return br.norms(self.b, [self.row(p) for p in rows], [ids[p] for p in rows])


def current() -> LiveSource | BundleSource:
    """The source this run shows: the open analysis bundle, else the loaded model and data (the
    page stops with a hint when neither is there)."""
    ref = st.session_state.get("_bundle_open")   # set by bundle_sidebar.opened on every run
    b = None if ref is None else ref[1]()
    if b is not None:
        return BundleSource(ref[0], b)
    from rnnviz_app.sources import context as cx
    return LiveSource(cx.loaded())


def needs_model(what: str) -> None:
    """For a page that re-runs the model (What if, Units): on a bundle, say in one sentence why it
    needs the model, and stop the page."""
    ref = st.session_state.get("_bundle_open")
    if ref is not None and ref[1]() is not None:
        st.info(bundle_sentence(what))
        st.stop()
