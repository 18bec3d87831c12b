"""The model's predictions on the loaded data and the start page's model card."""
from __future__ import annotations

import numpy as np

from rnnviz_app.compute import compute
from rnnviz_app.context import Loaded
from rnnviz_app.loading import demo_infos
from rnnviz_app.text import format_accuracy
from rnnviz_core.errors import RnnvizError


def _architecture(model) -> str:
    from rnnviz_core.engine import find_recurrent
    try:
        return "; ".join(info.describe() for info in find_recurrent(model))
    except RnnvizError:
        return "no recurrent module found"


def _predict(model, X, lengths, device):
    from rnnviz_core.trace import predict
    return predict(model, X, lengths, device=device)


def predictions(ctx: Loaded):
    """The model's outputs on every loaded sequence, [N, outputs] (cached by content hash)."""
    ds = ctx.data
    return compute(_predict, ctx.model, ds.X, ds.lengths, key=("predict",), device=ctx.device)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def is_demo(ctx: Loaded) -> bool:
    """True when a shipped demo (not the user's own files) is loaded."""
    return ctx.demo in demo_infos() and not (ctx.extra.get("own") or ctx.extra.get("model_upload")
                                              or ctx.extra.get("data_upload"))


def data_size(ds) -> str:
    """``"412 sequences, up to 20 steps, 4 features"``; token data counts words (``X`` is [N, T] ids)."""
    n, t = int(ds.X.shape[0]), int(ds.X.shape[1])
    if getattr(ds, "is_tokens", False):
        return f"{_count(n, 'sequence', 'sequences')}, up to {_count(t, 'word', 'words')} each (token ids)"
    return (f"{_count(n, 'sequence', 'sequences')}, up to {_count(t, 'step', 'steps')}, "
            f"{_count(int(ds.n_features), 'feature', 'features')}")


def model_card(ctx: Loaded) -> dict:
    """Plain facts for the start page: what is loaded, architecture, outputs, data size, accuracy
    (or error). ``title`` is (name, None) for a shipped demo, else (model name, data name)."""
    model, ds = ctx.model, ctx.data
    names = list(getattr(ds, "class_names", None) or getattr(model, "class_names", None) or [])
    demo = is_demo(ctx)
    card = {
        "title": ((demo_infos()[ctx.demo].title, None) if demo else (ctx.model_name, ctx.data_name)),
        "architecture": _architecture(model),
        "outputs": (f"{len(names)} classes ({', '.join(map(str, names[:8]))}"
                    f"{', …' if len(names) > 8 else ''})" if len(names) > 1 else "one number (regression)"),
        "data": data_size(ds),
        "score_name": "Accuracy on the loaded data", "score_value": None,
        "score_help": "The data has no labels, so accuracy cannot be computed.",
        "about": demo_infos()[ctx.demo].description if demo else "",
    }
    y = getattr(ds, "y", None)
    if y is None:
        if ctx.extra.get("own"):
            card["score_help"] = ("The data has no labels, so accuracy cannot be computed. If the file has a label "
                                  "column, choose it under 'Label column' ('Reading the data file' in the sidebar).")
        return card
    out = np.asarray(predictions(ctx))
    y = np.asarray(y)
    if len(names) > 1 and out.ndim == 2:
        acc = float((out.argmax(1) == y).mean())
        card.update(score_value=format_accuracy(acc),
                    score_help=f"Share of the {len(y)} loaded sequences whose predicted class is the true one.")
    else:
        err = float(np.sqrt(np.mean((out.reshape(len(y), -1)[:, 0] - y.astype(float)) ** 2)))
        card.update(score_name="Root mean squared error on the loaded data", score_value=f"{err:.3g}",
                    score_help="Typical distance between the model's output and the true value.")
    return card
