"""Glue of the Contributions page: per-step scores, their views, and the deletion check."""
from __future__ import annotations

import numpy as np

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.sequences import labels_of, words_of
from rnnviz_app.state.compute import compute_status

DEFAULT_METHOD = "grad_norm"  # the Contributions page's first method (its scores are prefetched)
FAITH_SAMPLE = 100  # sequences in the faithfulness check (it runs the model ~11 x per method)


def scoring_message(n: int, method: str, per_feature: bool = False) -> str:
    """The line shown while ``method`` scores ``n`` sequences, naming the method as the page does."""
    from rnnviz_core.charts.contributions import method_label
    if per_feature:
        return f"Scoring each input feature of A and B with {method_label(method)}…"
    return f"Scoring every step of {n} sequence{'' if n == 1 else 's'} with {method_label(method)}…"


def _scores(model, X, lengths, method, target, device, prefetch_key=None):
    from rnnviz_app.state import prefetch
    done = None if prefetch_key is None else prefetch.result(prefetch_key)  # started after the trace
    if done is not None:
        return done
    from rnnviz_core.contributions import contributions
    return contributions(model, X, method, lengths, target, device=device, return_info=True)


def prefetch_scores(ctx: Loaded, tr) -> None:
    """Start the default method's scores in the background once the trace's gates are done (one
    background computation at a time on a small server)."""
    from rnnviz_app.state import prefetch

    key = prefetch.scores_key(ctx.key, DEFAULT_METHOD, ctx.target)

    def job():
        try:
            tr.arrays  # after the gates (computed once, by the trace's own thread), not beside them
        except Exception:  # noqa: BLE001 - the pages that need the gates say why they failed
            pass
        if not prefetch.claim(key).take():   # the page asked first and computes them itself
            return None
        return _scores(ctx.model, ctx.data.X, ctx.data.lengths, DEFAULT_METHOD, ctx.target, ctx.device)

    prefetch.start(key, job, claimable=True)


def scores(ctx: Loaded, method: str):
    """(scores [N, T], info) of ``method`` for every loaded sequence and the chosen target (cached)."""
    from rnnviz_core.contributions import METHODS
    from rnnviz_core.errors import InputError
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    from rnnviz_app.state import prefetch
    return compute_status(scoring_message(len(ctx.data.X), method),
                          _scores, ctx.model, ctx.data.X, ctx.data.lengths, method, ctx.target, ctx.device,
                          prefetch.scores_key(ctx.key, method, ctx.target), key=("scores", method, ctx.target))


def _faith(model, X, lengths, target, device):
    from rnnviz_core.contributions import METHODS
    from rnnviz_core.faithfulness import compare_methods
    rep = compare_methods(model, X, methods=tuple(METHODS), lengths=lengths, target=target, device=device)
    return rep.curves, rep.summary


def faithfulness(ctx: Loaded):
    """Deletion curves and AOPC of every method (and random orders) on the first FAITH_SAMPLE sequences."""
    n = min(FAITH_SAMPLE, len(ctx.data.X))
    X, L = ctx.data.X[:n], ctx.data.lengths[:n]
    return compute_status(f"Checking each method on {n} sequences: removing their top steps first…",
                          _faith, ctx.model, X, L, ctx.target, ctx.device, key=("faith", n, ctx.target))


def contribution_views(ctx: Loaded, sc, a: int, b: int, method: str):
    """Tidy frames for the page: per-step scores of A and B, their top steps, positions."""
    from rnnviz_core import rankings as rk
    ids = np.asarray([str(i) for i in ctx.data.ids], dtype=object)
    frame = rk.scores_frame(sc[[a, b]], method=method, ids=ids[[a, b]], lengths=ctx.data.lengths[[a, b]])
    texts = [words_of(ctx, a), words_of(ctx, b)] if getattr(ctx.data, "is_tokens", False) else None
    top = rk.top_steps(sc[[a, b]], k=5, ids=ids[[a, b]], lengths=ctx.data.lengths[[a, b]], words=texts)
    pos = rk.mean_abs_by_position(sc, relative=True, normalize=True, lengths=ctx.data.lengths)
    y, names = labels_of(ctx)
    by_group = None
    if y is not None:
        by_group = rk.mean_abs_by_group(sc, np.asarray(names, dtype=object)[y], lengths=ctx.data.lengths,
                                        name="true class")
    return frame, top, pos, by_group


def all_scores_frame(ctx: Loaded, sc, method: str):
    """Every step's score of every sequence, tidy (for the CSV download)."""
    from rnnviz_core import rankings as rk
    return rk.scores_frame(sc, method=method, ids=[str(i) for i in ctx.data.ids], lengths=ctx.data.lengths)


PER_FEATURE = ("input_x_grad", "integrated_gradients", "occlusion", "mask", "mask_x_grad")  # methods that score each input feature


def _feature_scores(model, X, lengths, method, target, device):
    from rnnviz_core.contributions import contributions
    return contributions(model, X, method, lengths, target, device=device, per_feature=True)


def feature_scores(ctx: Loaded, method: str, rows: tuple[int, int]):
    """Per-feature scores [2, T, F] of sequences A and B (cached), or None when ``method`` does not
    score features or the data is token ids."""
    ds = ctx.data
    if method not in PER_FEATURE or getattr(ds, "is_tokens", False):
        return None
    idx = list(rows)
    return compute_status(scoring_message(2, method, per_feature=True), _feature_scores, ctx.model,
                          ds.X[idx], ds.lengths[idx], method, ctx.target, ctx.device,
                          key=("feature_scores", method, ctx.target, tuple(idx)))


def _known_mask(X, lengths, names):
    from rnnviz_core.charts.inputs import marker_steps
    mask = np.zeros(X.shape[:2], dtype=bool)
    for i in range(len(X)):
        steps = marker_steps(X[i], int(lengths[i]), names)
        if steps is None:
            return None
        mask[i, steps] = True
    return mask


def known_steps(ctx: Loaded):
    """bool [N, T]: the steps known to decide each answer (the marker demo), or None."""
    from rnnviz_app.state.compute import compute
    ds = ctx.data
    if getattr(ds, "is_tokens", False) or "marker" not in list(ds.feature_names or []):
        return None
    return compute(_known_mask, ds.X, ds.lengths, ds.feature_names, key=("known_steps",))


def known_step_hits(ctx: Loaded, sc, method: str, known) -> dict | None:
    """{method: how many of each sequence's top-k steps are among its k known steps
    (``rnnviz_core.findings.known_step_overlap``)}, or None when the data knows no deciding steps
    (or the findings module is not there)."""
    if known is None:
        return None
    try:
        from rnnviz_core.findings import known_step_overlap
    except ImportError:
        return None
    got = known_step_overlap(sc, known, ctx.data.lengths)
    return None if got is None else {method: got}


def _stack_units(H, lengths, rows, n_units):
    from rnnviz_core.display import top_rows
    from rnnviz_core.trajectories import valid_mask
    pts = np.concatenate([H[r][valid_mask(lengths[[r]], H.shape[1])[0]] for r in rows])
    return top_rows(pts, n_units)


def stack_layout(ctx: Loaded, H, a: int, b: int, window, width: float = 440.0):
    """What the stacked charts of A and B share: the heatmap frame (the most active units of A and B
    when not all fit), the step columns and the pixels per step. Returns (heat, bins, step_width)."""
    from rnnviz_app.state.compute import compute
    from rnnviz_core import display as dp
    from rnnviz_core.trajectories import heatmap_data
    ds = ctx.data
    lens = ds.lengths
    n_steps = int(max(lens[a], lens[b]))
    span = n_steps if window is None else window[1] - window[0]
    n_units = dp.rows_shown(H.shape[2], span)
    feats = 0 if getattr(ds, "is_tokens", False) or ds.X.ndim != 3 else min(ds.X.shape[2], dp.MAX_FEATURES)
    rows = max(n_units, feats if feats > 6 else 1)
    bins = dp.step_bins(n_steps, max_columns=min(dp.MAX_COLUMNS, dp.ROW_BUDGET // rows), window=window)
    units = None
    if n_units < H.shape[2]:
        units = compute(_stack_units, H, lens, (a, b), n_units, key=("stack_units", a, b, n_units))
    ids = [str(i) for i in ds.ids]
    heat = compute(heatmap_data, H, lens, seqs=[a, b], ids=ids, units=units,
                   key=("hm", a, b, None if units is None else tuple(units)))
    span = bins.n_steps if (bins.binned or bins.windowed) else n_steps
    # px per step: the width spread over the steps drawn, at most 40 px (a 3-step window is not 440 px wide)
    step_w = min(40.0, width / span) if (bins.binned or bins.windowed) else max(2.0, width / n_steps)
    return heat, bins, step_w


WORDS_INLINE = 120  # more words than this go into an expander (2,000 words filled a screen above the charts)


def show_words(words: list[str], side: str, window) -> None:
    """A text sequence's words over the drawn steps, as plain text: in a line above the charts when
    short, in an expander when long."""
    import streamlit as st
    w0, w1 = (0, len(words)) if window is None else (window[0], min(window[1], len(words)))
    part = words[w0:w1]
    where = "" if window is None else f", steps {w0} to {w1 - 1}"
    if len(part) <= WORDS_INLINE:
        st.text(f"{side}'s words{where}: " + " ".join(part))
    else:
        with st.expander(f"{side}'s words{where} ({len(part):,} words)"):
            st.text(" ".join(part))


# ----------------------------------------------------------------------------- live-only sections
def features_section(ctx: Loaded, method: str, rows: tuple[int, int], ids, key: tuple, bins, step_w, known) -> None:
    """Which input features drove A and B (methods that score each feature; numeric data)."""
    import streamlit as st

    from rnnviz_app.views import widgets as wg
    from rnnviz_core.charts import contributions as cc
    ds = ctx.data
    with wg.section("Which input features drove it"):
        fs = feature_scores(ctx, method, rows)
        if fs is None:
            return
        st.subheader("Which input features drove it")
        for i, r, side in ((0, rows[0], "A"), (1, rows[1], "B")):
            st.caption(wg.chart(cc.feature_scores_chart, fs[i], length=int(ds.lengths[r]),
                                feature_names=ds.feature_names, signed=cc.is_signed(method), step_width=step_w,
                                title=f"{side}: {ids[r]}", bins=bins,
                                marks=None if known is None else [int(t) for t in known[r].nonzero()[0]],
                                key=key + (side, "features")))


def deletion_section(ctx: Loaded, methods: list[str]):
    """The deletion check's toggle and, when on, its curves, AOPC chart and table; returns the
    summary frame (None while off)."""
    import streamlit as st

    from rnnviz_app.state import state_url as su
    from rnnviz_app.views import messages as msg
    from rnnviz_app.views import widgets as wg
    from rnnviz_core.charts import contributions as cc
    st.toggle(f"Run the deletion check of all {len(methods)} methods on {min(FAITH_SAMPLE, len(ctx.data.X))} "
              "sequences (takes a while the first time)",
              key=su.widget_key("faith", False, [False, True], cast=lambda v: v == "True"))
    faith = su.value("faith")
    if not faith:
        return None
    curves, summary = msg.guarded(faithfulness, ctx)
    st.caption(wg.chart(cc.deletion_chart, curves, width=400, key=("faith", ctx.target, "curves")))
    st.caption(wg.chart(cc.aopc_chart, summary, width=330, key=("faith", ctx.target, "aopc")))
    ig = summary[summary["method"] == "integrated_gradients"]
    if len(ig) and "completeness_error" in ig and ig["completeness_error"].notna().any():
        st.metric("Integrated gradients: completeness error (how far its scores miss the total change; median)",
                  f"{float(ig['completeness_error'].iloc[0]):.2%}",
                  help="Each sequence's scores should add up to the change of the answer from the blank input to the "
                       "real one; near 0% means they account for the whole change.")
    st.dataframe(cc.faithfulness_table(summary), hide_index=True, width="stretch")
    wg.csv_button(summary, "Download the comparison (CSV)", "faithfulness.csv", "dl_faith")
    return summary
