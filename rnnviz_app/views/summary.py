"""The model's predictions on the loaded data and the start page's model card."""
from __future__ import annotations

import numpy as np

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.loading import demo_infos
from rnnviz_app.state.compute import compute
from rnnviz_app.views.text import format_accuracy
from rnnviz_core.errors import RnnvizError


def _architecture(model) -> str:
    from rnnviz_core.engine import find_recurrent
    try:
        return "; ".join(info.describe() for info in find_recurrent(model))
    except RnnvizError:
        return "no recurrent module found"


def _logits(tr):
    return np.asarray(tr.logits)


def predictions(ctx: Loaded):
    """The model's outputs on every loaded sequence, [N, outputs] (cached by content hash): the
    outputs of the trace every page shares (``trace(...).logits`` is what ``predict`` returns), so
    the model runs once for the start page and the pages after it."""
    from rnnviz_app.sources.sequences import full_trace
    return compute(_logits, full_trace(ctx), key=("predict",))


def n_one(out) -> bool:
    """Whether the outputs are one number per sequence ([N] or [N, 1])."""
    out = np.asarray(out)
    return out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


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


def is_regression(ctx: Loaded) -> bool:
    """Whether the loaded model gives one number per sequence (regression), not classes: the data's
    targets are numbers, or the model has one output and no class names."""
    ds, model = ctx.data, ctx.model
    if getattr(ds, "task", None) == "regression":
        return True
    if getattr(ds, "task", None) == "classification":
        return False
    cfg_task = getattr(getattr(model, "config", None), "task", None)
    if cfg_task in ("regression", "classification"):
        return cfg_task == "regression"
    names = getattr(model, "class_names", None) or []
    return len(names) < 2 and np.asarray(predictions(ctx)).reshape(len(ds.X), -1).shape[1] == 1


def regression_metrics(pred, y) -> list[dict]:
    """The start page's regression figures: RMSE, MAE and R² of the model, then the RMSE and MAE
    of the baseline that always predicts the mean of the true values (each a dict: name, value,
    help; :func:`baseline_note` is the sentence saying what the baseline is)."""
    from rnnviz_core.regression import format_number, regression_scores
    s = regression_scores(pred, y)
    mean = format_number(s.mean)
    return [
        {"name": "RMSE", "value": format_number(s.rmse),
         "help": f"Root mean squared error on the {s.n} loaded sequences: the typical distance between the "
                 "model's output and the true value (large misses count more)."},
        {"name": "MAE", "value": format_number(s.mae),
         "help": "Mean absolute error: the average distance between the model's output and the true value."},
        {"name": "R²", "value": format_number(s.r2, 2) or "—",
         "help": ("Share of the true values' spread the model explains: 1 is exact, 0 is no better than "
                  "always predicting the mean, below 0 is worse than that." if format_number(s.r2) else
                  "Cannot be computed: every true value is the same.")},
        {"name": "Baseline RMSE", "value": format_number(s.baseline_rmse),
         "help": f"The RMSE of a model that answers every sequence with the mean of the true values ({mean}). "
                 "A useful model's RMSE is clearly below it."},
        {"name": "Baseline MAE", "value": format_number(s.baseline_mae),
         "help": f"The MAE of always answering the mean of the true values ({mean})."},
    ]


def baseline_note(pred, y) -> str:
    """The sentence above the baseline's figures."""
    from rnnviz_core.regression import format_number, regression_scores
    return (f"Baseline: always predicting the mean of the true values ({format_number(regression_scores(pred, y).mean)}) "
            "for every sequence.")


def model_card(ctx: Loaded) -> dict:
    """Plain facts for the start page: what is loaded, architecture, outputs, data size, accuracy
    (or error). ``title`` is (name, None) for a shipped demo, else (model name, data name)."""
    model, ds = ctx.model, ctx.data
    regression = is_regression(ctx)
    names = [] if regression else list(getattr(ds, "class_names", None) or getattr(model, "class_names", None) or [])
    demo = is_demo(ctx)
    card = {
        "title": ((demo_infos()[ctx.demo].title, None) if demo else (ctx.model_name, ctx.data_name)),
        "architecture": _architecture(model),
        "outputs": outputs_text(names),
        "data": data_size(ds),
        "score_name": "Accuracy on the loaded data", "score_value": None,
        "score_help": "The data has no labels, so accuracy cannot be computed.",
        "about": demo_infos()[ctx.demo].description if demo else "",
        "metrics": [],
    }
    y = getattr(ds, "y", None)
    if y is None:
        if regression:
            card["score_help"] = "The data has no true values, so the model's error cannot be computed."
        if ctx.extra.get("own"):
            card["score_help"] += (" If the file has a column with them, choose it under 'Label column' "
                                   "('Reading the data file' in the sidebar).")
        return card
    card.update(score_figures(np.asarray(predictions(ctx)), np.asarray(y),
                              classes=not regression and len(names) > 1, names=names))
    return card


def outputs_text(names) -> str:
    """``"3 classes (a, b, c)"``, or ``"one number (regression)"`` for fewer than two names."""
    names = list(names or [])
    return (f"{len(names)} classes ({', '.join(map(str, names[:8]))}{', …' if len(names) > 8 else ''})"
            if len(names) > 1 else "one number (regression)")


def accuracy_figures(right: int, n: int, how: str = "") -> dict:
    """The start page's accuracy: ``right`` of ``n`` sequences predicted as their true class."""
    return dict(score_value=format_accuracy(float(right / n)),
                score_help=f"Share of the {n} loaded sequences whose predicted class{how} is the true one.")


def score_figures(out, y, *, classes: bool, names=None) -> dict:
    """The start page's score of outputs ``out`` [N, outputs] against the true values ``y`` [N]:
    the accuracy of the predicted classes (a single logit with two class names: class 1 when it
    is above 0), else the regression figures (``score_name``, ``score_value``, ``score_help`` and,
    for regression, ``metrics`` and ``baseline``)."""
    if classes:
        from rnnviz_core.outputs import predicted_classes
        n_names = len(names) if names is not None else (out.shape[1] if out.ndim == 2 else 2)
        pred = predicted_classes(out, n_names)
        if pred is None:
            n_out = 1 if out.ndim == 1 else out.shape[1]
            return dict(score_help=f"The model gives {n_out} output{'s' if n_out != 1 else ''} per sequence for "
                                   f"{n_names} classes, so no predicted class can be read from it.")
        how = (" (one output: class '{}' when it is above 0)".format(names[1])
               if n_one(out) and names is not None and len(names) > 1 else "")
        return accuracy_figures(int((pred == y).sum()), len(y), how)
    metrics = regression_metrics(out, y)
    return dict(score_name="Root mean squared error on the loaded data", score_value=metrics[0]["value"],
                score_help=metrics[0]["help"], metrics=metrics, baseline=baseline_note(out, y))
