"""Glue of the Start page for any source: the model card (what is loaded and its score) and the
sentence on what the pages show. A live source's card is :func:`rnnviz_app.views.summary.model_card`;
an analysis bundle's comes from its manifest and two columns of its sequence table
(:func:`rnnviz_app.sources.bundle_view.summary`), in the same words."""
from __future__ import annotations

from rnnviz_app.views.text import md_escape

__all__ = ["card", "intro", "not_here"]

PAGES = ("**Trajectories** follows the hidden state over time and shows where two sequences part ways, "
         "**Saturation** finds the units and gates pinned at their limits and whether that goes with "
         "worse answers, and **Contributions** ranks the steps that drove the output and tests how far "
         "each ranking can be trusted. ")


def intro(src) -> str:
    """The Start page's first paragraph (Markdown written here; no text from files)."""
    head = ("rnnviz shows what happens inside a recurrent network (GRU, LSTM or plain RNN) while it reads "
            "a sequence step by step and gives one answer at the end. " + PAGES)
    if src.bundle:
        return head + ("An **analysis bundle** is open: the numbers rnnviz computed where the model lives (with "
                       "`rnnviz precompute`), without the model itself; views that re-run the model say so. "
                       "Close the bundle in the sidebar to use a model and data instead.")
    from rnnviz_app.views import summary as sm
    ctx = src.ctx
    return head + ("A trained demo is loaded below; pick another demo or your own files in the sidebar."
                   if sm.is_demo(ctx) else "Your own model class is loaded below, started with 'rnnviz app' or rv.show."
                   if ctx.extra.get("launched") else
                   "Your own files are loaded below; the sidebar changes them or goes back to a trained demo.")


def card(src) -> dict:
    """The model card: ``title`` (name, data name or None), ``about``, ``architecture``, ``outputs``,
    ``data``, ``computing`` (where it runs; a bundle: its content hashes), the score (``score_name``,
    ``score_value``, ``score_help``; ``metrics`` and ``baseline`` for regression) and ``hashes``
    (a bundle's model, data and bundle SHA-256, else None)."""
    if not src.bundle:
        from rnnviz_app.views import summary as sm
        out = dict(sm.model_card(src.ctx))
        out["computing"], out["hashes"] = src.ctx.device_label, None
        return out
    from rnnviz_app.sources import bundle_view as bv
    s = bv.summary(src.b)
    methods = ", ".join(m.replace("_", " ") for m in s["methods"]) or "none"
    arch = _architecture(src.b)
    out = {"title": (s["model_class"] or "The analysed model", "its analysis bundle"), "about": "",
           "architecture": (f"{arch} " if arch else "") + f"(class {s['model_class']}; contribution methods "
                           f"in the bundle: {methods})",
           "outputs": s["classes"], "data": s["data"], "computing": "nothing here: the numbers were computed "
           "where the model lives", "metrics": s.get("metrics") or [], "baseline": s.get("baseline", ""),
           "hashes": f"model  {s['model_hash']}\ndata   {s['data_hash']}\nbundle {src.dig}"}
    out.update({k: s[k] for k in ("score_name", "score_value", "score_help")})
    return out


def _architecture(b) -> str:
    """The recurrent modules the manifest describes, in the live card's words ("" when it cannot say)."""
    from rnnviz_core.engine import RecurrentInfo
    try:
        return "; ".join(RecurrentInfo(**m).describe() for m in b.manifest["model"]["recurrent_modules"])
    except Exception:  # noqa: BLE001 - a manifest this rnnviz cannot read: the class name alone
        return ""


def not_here(src) -> list[str]:
    """The source's sentences for the views it cannot compute (Markdown-escaped; empty when live)."""
    if not src.bundle:
        return []
    return [md_escape(src.cannot(k), max_len=1000) for k in ("resilience", "deletion", "second_model")]
