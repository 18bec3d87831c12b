"""Glue of the What-if page: the edits kept in the link, the edited run and what it shows.

The edits of the chosen sequence live in the link as ``wi_edits``: items separated by ``;``,
``s,STEP,FEATURE,VALUE`` (set a value), ``d,STEP`` (delete the step) or ``i,STEP,V1|V2|...``
(insert a step before STEP). Steps count the original sequence, as in ``rv.what_if``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.sequences import ids_to_words, vocabulary
from rnnviz_app.state import state_url as su
from rnnviz_app.state.compute import compute
from rnnviz_app.views.text import md_escape
from rnnviz_core.errors import InputError

EDITS = "wi_edits"
MAX_EDITS = 50


# ----------------------------------------------------------------------------- edits in the link
def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def encode_edits(edits: list[tuple]) -> str:
    """The link text of a list of edits (see the module docstring)."""
    parts = []
    for _, t, f, v in edits:
        if f == "delete":
            parts.append(f"d,{int(t)}")
        elif f == "insert":
            vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
            parts.append(f"i,{int(t)}," + "|".join(_num(x) for x in vals))
        else:
            parts.append(f"s,{int(t)},{int(f)},{_num(v)}")
    return ";".join(parts)


def decode_edits(text: str, tokens: bool = False) -> list[tuple]:
    """Edits ``(0, step, feature, value)`` from link text; ValueError when it is not of that form."""
    out: list[tuple] = []
    if not text:
        return out
    items = text.split(";")
    if len(items) > MAX_EDITS:
        raise ValueError("too many edits")
    for item in items:
        p = item.split(",")
        if p[0] == "d" and len(p) == 2:
            out.append((0, int(p[1]), "delete", None))
        elif p[0] == "i" and len(p) == 3:
            vals = [float(x) for x in p[2].split("|")]
            if not all(math.isfinite(x) for x in vals):
                raise ValueError("not finite")
            out.append((0, int(p[1]), "insert", int(vals[0]) if tokens else vals))
        elif p[0] == "s" and len(p) == 4:
            v = float(p[3])
            if not math.isfinite(v):
                raise ValueError("not finite")
            out.append((0, int(p[1]), int(p[2]), int(v) if tokens else v))
        else:
            raise ValueError(item)
    return out


def current_edits(tokens: bool) -> list[tuple]:
    """The edits in the view (a malformed link value is dropped and noted); kept in the link."""
    edits = su.checked_link_value(EDITS, [], cast=lambda s: decode_edits(s, tokens))
    su.remember(EDITS, encode_edits(edits) or None)
    return edits


def add_edit(edit: tuple, tokens: bool) -> None:
    """Button callback: append one edit to the link's list."""
    edits = current_edits(tokens)
    if len(edits) >= MAX_EDITS:
        st.session_state["wi_note"] = f"At most {MAX_EDITS} edits are kept; press 'Reset' to start again."
        return
    su.remember(EDITS, encode_edits(edits + [edit]))


def undo(tokens: bool) -> None:
    edits = current_edits(tokens)[:-1]
    su.remember(EDITS, encode_edits(edits) or None)


def reset() -> None:
    su.remember(EDITS, None)


def keep_for(seq: str) -> None:
    """Edits belong to one sequence: choosing another clears them (a link opened fresh keeps its own)."""
    last = st.session_state.get("wi_for")
    if last is not None and last != seq:
        reset()
    st.session_state["wi_for"] = seq


def describe(edit: tuple, ctx: Loaded) -> str:
    """One edit in words."""
    _, t, f, v = edit
    if f == "delete":
        return f"delete step {t}"
    if f == "insert":
        return f"insert before step {t}: {value_text(ctx, v)}"
    return f"step {t}: {feature_name(ctx, f)} = {value_text(ctx, v)}"


# ----------------------------------------------------------------------------- names
def feature_name(ctx: Loaded, f: int) -> str:
    names = getattr(ctx.data, "feature_names", None)
    if ctx.data.is_tokens:
        return "word"
    return str(names[f]) if names is not None and 0 <= f < len(names) else f"feature {f}"


def words(ctx: Loaded, ids: np.ndarray, length: int) -> list[str]:
    """A token sequence's words ("#id" for ids outside the vocabulary)."""
    return ids_to_words(vocabulary(ctx), np.asarray(ids[:length]).tolist())


def unit_names(ctx: Loaded, units: list[int], n_out: int) -> dict[int, str]:
    """Rows of the edited run's hidden state (the last recurrent layer, [forward | backward]) -> their
    names in the unit dictionary ("h 3", "h 3 (bwd)")."""
    from rnnviz_core.engine import find_recurrent
    info = find_recurrent(ctx.model)[-1]
    size = n_out // info.num_directions
    return {int(u): f"h {u}" if u < size else f"h {u - size} (bwd)" for u in units}


def moved_units(ctx: Loaded, h_orig: np.ndarray, h_new: np.ndarray, shown: list[int], k: int = 5) -> str:
    """A sentence naming the (at most ``k``) units the edit moved most over the common steps and by
    how much, saying which are not among the ``shown`` rows; "" when the edit moved none."""
    m = min(len(h_orig), len(h_new))
    if m == 0:
        return ""
    with np.errstate(invalid="ignore"):
        moved = np.nan_to_num(np.nanmax(np.abs(h_new[:m] - h_orig[:m]), axis=0))
    top = [int(u) for u in np.argsort(-moved, kind="stable")[:k] if moved[u] > 0]
    if not top:
        return ""
    names = unit_names(ctx, top, h_orig.shape[1])
    parts = [f"{names[u]} (by {moved[u]:.3g}{'' if u in shown else ', not drawn above'})" for u in top]
    return ("The units the edit moved most (largest change of the state over the steps both versions have): "
            + ", ".join(parts) + ".")


def value_text(ctx: Loaded, v: Any) -> str:
    if ctx.data.is_tokens:
        vocab = vocabulary(ctx)
        i = int(np.atleast_1d(v)[0])
        return f"'{vocab[i]}'" if vocab is not None and 0 <= i < len(vocab) else f"#{i}"
    vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
    return ", ".join(f"{x:.4g}" for x in vals)


def answer(ctx: Loaded, logits: np.ndarray) -> tuple[str, str]:
    """(answer, confidence) of one output row, in words."""
    out = np.asarray(logits, dtype=np.float64).reshape(-1)
    names = list(getattr(ctx.data, "class_names", None) or [])
    if out.size >= 2:
        p = np.exp(out - out.max())
        p /= p.sum()
        k = int(p.argmax())
        return (names[k] if k < len(names) else f"class {k}"), f"{p[k]:.1%}"
    return f"{out[0]:.4g}", ""


# ----------------------------------------------------------------------------- computation
def _bases() -> dict:
    return st.session_state.setdefault("_wi_bases", {})


def run(ctx: Loaded, row: int, edits: list[tuple]):
    """``rv.what_if`` on one sequence; the original run is kept per session (model, data, row)."""
    import rnnviz_core as rv

    ds = ctx.data
    key = (ctx.key, row)
    bases = _bases()
    if len(bases) > 8 and key not in bases:
        bases.clear()
    res = rv.what_if(ctx.model, ds.X[row : row + 1], edits, ds.lengths[row : row + 1], base=bases.get(key),
                     device=ctx.device)
    bases[key] = res.base
    return res


def _scores(model, x, lengths, method, device, target):
    import rnnviz_core as rv

    return rv.contributions(model, x, method, lengths, target=target, device=device)[0]


def scores(ctx: Loaded, x: np.ndarray, length: int, method: str, tag: str) -> np.ndarray:
    """Contributions [L] of one (possibly edited) sequence for the sidebar's target output, cached by
    its content."""
    return compute(_scores, ctx.model, x[None, :length], np.array([length]), method, ctx.device, ctx.target,
                   key=("wi_scores", tag, method, ctx.target))


def _basis(h: np.ndarray):
    from rnnviz_core.trajectories import StatePCA
    return StatePCA(n_components=min(2, *h.shape), max_points=None).fit(h[None])


def path_basis(ctx: Loaded, h_orig: np.ndarray, row: int):
    """The PCA basis of the original sequence's states [L, H] (kept while the sequence is edited)."""
    return compute(_basis, h_orig, key=("wi_basis", row))


def edit_error(exc: InputError) -> str:
    """A core edit error as a sentence naming this page's controls."""
    return f"{exc} Change the edit with the controls above, or press 'Reset' to start again."


#: sequences up to this many steps get their decision steps at once; longer ones on request
DECISION_AUTO_STEPS = 300


def _decision(model, x, lengths, device):
    from rnnviz_core.horizons import decision_steps
    from rnnviz_core.restart import prefix_outputs

    return int(decision_steps(prefix_outputs(model, x, lengths, device=device), lengths)[0])


def decision(ctx: Loaded, x: np.ndarray, length: int, tag: tuple) -> int:
    """The decision step of one (possibly edited) sequence: the first step from which the model's
    answer on the prefix is its final answer (see rv.horizon), cached by content."""
    return compute(_decision, ctx.model, x[None, :length], np.array([length]), ctx.device,
                   key=("wi_decision",) + tuple(tag))


# ----------------------------------------------------------------------------- the edit controls
def edit_controls(ctx: Loaded, row: int, L: int, edits: list[tuple]) -> None:
    """The box where an edit is made: the step, the change (set a value, delete, insert), the value
    or word, the buttons that add, undo or reset edits, and the list of the edits made so far."""
    ds = ctx.data
    tok = bool(ds.is_tokens)
    with st.container(border=True):
        c1, c2, c3 = st.columns([1, 2, 3])
        step = c1.number_input("Step", 0, L, min(L - 1, L // 2), key="wi_step",
                               help=f"Steps of the original sequence, 0 to {L - 1} ({L} may only take an insert).")
        action = c2.radio("Change", ["Set a value", "Delete the step", "Insert a step before it"], key="wi_action")
        cur = min(int(step), L - 1)
        vocab = vocabulary(ctx)
        with c3:
            if tok and action.startswith("Delete"):
                value, feature, row_new = 0, 0, 0
            elif tok:
                words = vocab or [f"#{i}" for i in range(int(ds.X.max()) + 1)]
                new = st.selectbox("Word", range(len(words)), index=int(ds.X[row, cur]), format_func=lambda i: words[i],
                                   key=f"wi_word_{row}_{cur}")
                value, feature, row_new = int(new), 0, int(new)
            else:
                names = [feature_name(ctx, f) for f in range(ds.X.shape[2])]
                feature, value = 0, 0.0
                row_new = ds.X[row, cur].astype(float).copy()
                if not action.startswith("Delete"):
                    feature = st.selectbox("Feature", range(len(names)), format_func=lambda f: names[f],
                                           key="wi_feature")
                    value = st.number_input("Value", value=float(ds.X[row, cur, feature]), format="%.4g",
                                            key=f"wi_value_{row}_{cur}_{feature}")
                    row_new[feature] = value
                if action.startswith("Insert"):
                    st.caption("The inserted step copies step "
                               f"{cur} with '{md_escape(names[feature])}' set to the value above.")
        edit = ((0, int(step), int(feature), value) if action.startswith("Set") else
                (0, int(step), "delete", None) if action.startswith("Delete") else (0, int(step), "insert", row_new))
        b1, b2, b3 = st.columns(3)
        b1.button("Add this edit", on_click=add_edit, args=(edit, tok), type="primary", key="wi_add")
        b2.button("Undo the last edit", on_click=undo, args=(tok,), disabled=not edits, key="wi_undo")
        b3.button("Reset", on_click=reset, disabled=not edits, key="wi_reset",
                  help="Back to the original sequence (removes every edit).")
        if st.session_state.pop("wi_note", None):
            st.caption(f"At most {MAX_EDITS} edits are kept; press 'Reset' to start again.")
        # feature names and words come from the user's files: escaped, never read as Markdown
        st.markdown("**Edits:** " + ("; ".join(md_escape(describe(e, ctx)) for e in edits) if edits else "none yet"))
