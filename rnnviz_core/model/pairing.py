"""Choices a plain state dict leaves open, each with its accuracy on the user's own data.

A file saved with ``torch.save(model.state_dict(), ...)`` holds weights only: it cannot say how
the model's head read the sequence (:data:`~rnnviz_core.models.READOUTS`) nor which class
each output stands for. Rather than guess silently, rnnviz lists the candidates with the
accuracy each gives on the loaded data, so the person recognises the figure their training
script printed::

    model, ds = rv.load_model("m.pt"), rv.load_data("test.ts")
    rv.pairing.class_order_choices(model, ds, rv.data.class_order_candidates(ds))
    #        key                label                names  accuracy
    # 0  declared  order in the file  [walk, run, sit]     0.727
    # 1    sorted      sorted labels  [run, sit, walk]     0.312
    model = rv.models.with_class_names(model, ["walk", "run", "sit"])
    rv.pairing.readout_choices(model, ds)        # readout, description, accuracy

Nothing here picks the best figure: the caller (the app, a notebook) shows the table and the
person chooses. Accuracy is NaN where the data has no labels or the task is regression; a
regression model's head readings carry their RMSE instead.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
from torch import nn

from ..io.dataset import SequenceDataset
from .check import check_against_model
from ..errors import DataError
from .config import READOUTS
from .family import RecurrentModel

__all__ = ["readout_choices", "class_order_choices"]


def _without_labels(ds: SequenceDataset) -> SequenceDataset:
    return dataclasses.replace(ds, y=None, class_names=None)


def _predicted_classes(model: nn.Module, ds: SequenceDataset) -> np.ndarray | None:
    """Predicted output index per sequence [N] (None for a regression / one-output model)."""
    from ..trace import predict

    out = predict(model, ds.X, ds.lengths)                       # (N, C) or (N,)
    if out.ndim != 2 or out.shape[1] < 2 or getattr(getattr(model, "config", None), "task", None) == "regression":
        return None
    return out.argmax(-1)


def _n_outputs(model: nn.Module, ds: SequenceDataset) -> int:
    cfg = getattr(model, "config", None)
    if getattr(cfg, "num_outputs", None):
        return int(cfg.num_outputs)
    from ..trace import predict

    return int(predict(model, ds.X[:1], ds.lengths[:1]).shape[-1])


def _accuracy(pred: np.ndarray | None, aligned: SequenceDataset | None) -> float:
    if pred is None or aligned is None or aligned.y is None or aligned.class_names is None:
        return float("nan")
    return float((pred == aligned.y).mean())


def readout_choices(model: nn.Module, ds: SequenceDataset, outputs: dict | None = None) -> pd.DataFrame:
    """Each way the head could read the sequence, with its accuracy on ``ds``.

    Parameters
    ----------
    model : a built-in family model (:func:`~rnnviz_core.models.load_model`); it is not changed.
        Set its class order first (:func:`~rnnviz_core.models.with_class_names`), since the
        accuracy compares predicted class names with the data's labels.
    ds : the data, with sequences X [N, T, F] (or token ids) and lengths [N].
    outputs : the model's outputs on ``ds`` under every reading, as
        :func:`~rnnviz_core.outputs.outputs_by_readout` gives them (computed here when None: one
        run of the recurrence for all readings).

    Returns
    -------
    DataFrame with one row per key of :data:`~rnnviz_core.models.READOUTS`, in that order, and
    columns ``readout`` (key), ``description`` (a plain sentence), ``accuracy`` (share of
    sequences predicted right; NaN with no labels, for regression, or when the data's labels
    are not among the model's class names) and ``rmse`` (a regression model's root mean squared
    error on the data's targets; NaN for classification or without targets). A model outside
    the built-in family reads the sequence as its own forward says: the frame is then empty.

    Raises
    ------
    DataError when the data's features do not fit the model.
    """
    cols = ["readout", "description", "accuracy", "rmse"]
    if not isinstance(model, RecurrentModel):
        return pd.DataFrame(columns=cols)
    features = check_against_model(_without_labels(ds), model)     # feature errors are raised
    regression = getattr(getattr(model, "config", None), "task", None) == "regression"
    from ..outputs import outputs_by_readout, predicted_classes
    outs = outputs if outputs is not None else outputs_by_readout(model, features.X, features.lengths)
    if regression:
        return pd.DataFrame([(key, description, float("nan"), _rmse_of(outs[key], ds))
                             for key, description in READOUTS.items()], columns=cols)
    try:
        aligned = check_against_model(ds, model) if ds.y is not None else None
    except DataError:                                               # labels the model cannot name
        aligned = None
    rows = []
    for key, description in READOUTS.items():
        pred = predicted_classes(outs[key]) if aligned is not None else None
        rows.append((key, description, _accuracy(pred, aligned), float("nan")))
    return pd.DataFrame(rows, columns=cols)


def _rmse_of(out: np.ndarray, ds: SequenceDataset) -> float:
    """Root mean squared error of a regression model's outputs on ``ds``'s targets (NaN without targets)."""
    if ds.y is None or ds.task != "regression":
        return float("nan")
    from ..analyses.regression import regression_scores

    return regression_scores(out, ds.y).rmse


def class_order_choices(model: nn.Module, ds: SequenceDataset,
                        candidates: Sequence[tuple[str, str, Sequence[str]]],
                        outputs: dict | None = None) -> pd.DataFrame:
    """Each candidate class order, with the accuracy it gives on ``ds``.

    Parameters
    ----------
    model : any model rnnviz can run; its own class names are ignored here.
    ds : the data; its labels (``ds.class_names``) are matched to each candidate by name, as
        :func:`~rnnviz_core.data.check_against_model` does.
    candidates : ``(key, label, names)`` triples, e.g. from
        :func:`rnnviz_core.data.class_order_candidates` ("declared", "sorted", "first"), or a
        hand-typed order; ``names[i]`` names the model's i-th output.
    outputs : for a built-in-family model, its outputs under every reading
        (:func:`~rnnviz_core.outputs.outputs_by_readout`): the one of its own reading is used
        instead of running the model again.

    Returns
    -------
    DataFrame with columns ``key``, ``label``, ``names`` (list) and ``accuracy``, one row per
    candidate in the order given. The model runs once; each candidate only renames its
    outputs. Accuracy is NaN when the data has no labels, for regression, when the candidate
    has a different number of names than the model has outputs, or when some data label is not
    among its names.

    Raises
    ------
    DataError when the data's features do not fit the model.
    """
    cols = ["key", "label", "names", "accuracy"]
    features = check_against_model(_without_labels(ds), model)
    cands = [(str(k), str(lab), [str(n) for n in names]) for k, lab, names in candidates]
    if not cands:
        return pd.DataFrame(columns=cols)
    if ds.y is None or ds.task != "classification":
        pred = None
    elif outputs is not None and isinstance(model, RecurrentModel):
        from ..outputs import predicted_classes
        pred = None if model.config.task == "regression" else predicted_classes(outputs[model.config.readout])
    else:
        pred = _predicted_classes(model, features)
    n_out = None if pred is None else _n_outputs(model, features)
    rows = []
    for key, label, names in cands:
        acc = float("nan")
        if pred is not None and len(set(names)) == len(names) and len(names) == n_out:
            try:   # only the names change: labels are matched to them by check_against_model's rules
                acc = _accuracy(pred, check_against_model(ds, model, class_names=names))
            except DataError:
                pass
        rows.append((key, label, names, acc))
    return pd.DataFrame(rows, columns=cols)
