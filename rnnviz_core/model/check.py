"""Data and model as a pair: the dataset checked against the model and aligned to it."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..arrays import valid_mask
from ..errors import DataError
from ..io.classes import placeholder_classes
from ..io.columns import order_like_feature, suggest_column
from ..io.dataset import PAD_TOKENS, SequenceDataset, UNK_TOKENS, special_id


# ====================================================================== data vs model
def check_against_model(ds: SequenceDataset, model: Any, *,
                        class_names: Sequence[str] | None = None) -> SequenceDataset:
    """Check (and where safe, align) a dataset to a model; return the aligned dataset.

    - feature count must match ``model.config.input_size`` (or, for other models, whatever their
      first recurrent layer reads is not checked here);
    - when both carry real feature names (not ``feature 0`` ...), they must be the same names;
      the same names in another order are re-ordered to the model's order;
    - token data goes with a model with an embedding encoder (ids below its vocabulary size;
      when both carry a vocabulary, ids are re-mapped by token);
    - labels are aligned by name onto the model's classes (``class_names`` when given: the
      names of the model's outputs, output 0 first, for example one of
      :func:`class_order_candidates`; else ``model.class_names``). A model whose file does not
      name its classes (an inferred state dict: ``class 0``, ``class 1``, ...) and data with
      real class names raise an error that asks for the class order; labels the model does not
      know raise. Regression targets need no mapping.
    """
    cfg = getattr(model, "config", None)
    mnames = list(getattr(model, "feature_names", None) or [])
    n_model = getattr(cfg, "input_size", None) or (len(mnames) or None)
    default = lambda names: all(re.fullmatch(r"feature \d+|dim \d+|value|token", n) for n in names)  # noqa: E731
    embedding = getattr(cfg, "encoder", None) == "embedding"
    if ds.is_tokens or embedding:
        ds = _check_tokens(ds, model, cfg, embedding)
    elif mnames and not default(mnames) and not default(ds.feature_names) and ds.feature_names != mnames:
        missing_ = [m for m in mnames if m not in ds.feature_names]
        if not missing_ and len(ds.feature_names) >= len(mnames):
            idx = [ds.feature_names.index(m) for m in mnames]
            ds = replace(ds, X=ds.X[:, :, idx], feature_names=list(mnames))
        else:
            hint = "; ".join(f"'{m}'{suggest_column(m, ds.feature_names)}" for m in missing_[:3])
            raise DataError(f"The model reads the features {', '.join(mnames)}, but the data lacks {hint}. "
                            f"Rename the data's columns to the model's feature names, or choose the feature "
                            f"columns in the model's order (feature_cols=[...]).",
                            code="feature_names", field="features")
    if n_model is not None and ds.n_features != n_model:
        head = (f"The model reads {n_model} features per step but the data has {ds.n_features} "
                f"({', '.join(ds.feature_names[:8])}).")
        order = order_like_feature(ds) if ds.n_features > n_model else None
        if order is not None:
            raise DataError(f"{head} The column '{order}' counts up within every sequence, like a step order, "
                            f"so it is probably not a feature; make it the order column with order_col='{order}'.",
                            code="feature_count", field="order")
        raise DataError(f"{head} Choose the matching data file or feature columns.",
                        code="feature_count", field="features")
    task = getattr(cfg, "task", None)
    mclasses = getattr(model, "class_names", None)
    if class_names is not None:
        mclasses = [str(c) for c in class_names]
        n_out = getattr(cfg, "num_outputs", None)
        if n_out is not None and task != "regression" and len(mclasses) != n_out:
            raise DataError(f"The class order names {len(mclasses)} classes but the model has {n_out} outputs; "
                            f"name one class per output.", code="bad_class_order", field="class_order")
    if ds.y is not None and task == "regression" and ds.class_names is not None:
        names = pd.to_numeric(pd.Series(ds.class_names), errors="coerce")
        if names.isna().any():
            raise DataError("The model predicts numbers (regression) but the data's labels are classes; "
                            "choose the matching label column or model.", code="task", field="label")
        ds = replace(ds, y=names.to_numpy(np.float32)[ds.y], class_names=None, declared_classes=None)
    if ds.y is not None and mclasses and task != "regression":
        if ds.class_names is None:
            if not np.issubdtype(ds.y.dtype, np.integer):
                raise DataError("The model predicts classes but the data's labels are not whole class numbers "
                                "or class names; check the label column.", code="task", field="label")
            ds_names = [str(i) for i in range(int(ds.y.max()) + 1)]
        else:
            ds_names = ds.class_names
        present = [ds_names[i] for i in np.unique(ds.y)]
        if all(p in mclasses for p in present):
            remap = np.array([mclasses.index(c) if c in mclasses else -1 for c in ds_names])
            y = remap[ds.y]
        elif class_names is None and all(p.isdigit() and int(p) < len(mclasses) for p in present):
            y = np.array([int(ds_names[i]) for i in ds.y], dtype=np.int64)   # class numbers
        elif class_names is None and placeholder_classes(mclasses):
            shown = ", ".join(map(repr, present[:5])) + (" ..." if len(present) > 5 else "")
            raise DataError(f"The model's file does not name its classes (its {len(mclasses)} outputs are numbered "
                            f"'class 0' to 'class {len(mclasses) - 1}'), so rnnviz cannot tell which output stands "
                            f"for which of the data's labels ({shown}). Choose the class order the model was "
                            f"trained with (for example class_names=[...] in the order of class_order_candidates"
                            f"(ds), or models.with_class_names(model, names)).",
                            code="class_order_needed", field="class_order")
        else:
            unknown = [p for p in present if p not in mclasses]
            raise DataError(f"The data has labels the model does not know ({', '.join(map(repr, unknown[:5]))}); "
                            f"the model's classes are {', '.join(map(repr, mclasses))}.",
                            code="unknown_labels", field="class_order" if class_names is not None else "label")
        ds = replace(ds, y=y, class_names=list(mclasses))
    return ds


def _check_tokens(ds: SequenceDataset, model: Any, cfg: Any, embedding: bool) -> SequenceDataset:
    """Token data against a model: both must be about token ids; ids below the vocabulary size."""
    if cfg is None:
        return ds
    if not embedding:
        raise DataError("The data holds words (token ids) but the model reads numbers per step; choose a "
                        "model with an embedding layer, or a data file of numeric features.",
                        code="tokens_vs_numbers", field="file")
    if not ds.is_tokens:
        raise DataError("The model reads words (token ids, through an embedding layer) but the data holds "
                        "numeric features; choose a data file with a text column or token ids.",
                        code="tokens_vs_numbers", field="file")
    mvocab = getattr(model, "vocabulary", None)
    if mvocab and ds.vocabulary and list(mvocab) != list(ds.vocabulary):
        index = {t: i for i, t in enumerate(mvocab)}
        lost = [t for t in ds.vocabulary if t not in index]
        unk = special_id(list(mvocab), UNK_TOKENS, default=None)
        if lost and unk is None:
            raise DataError(f"The data's vocabulary has words the model's does not ({', '.join(map(repr, lost[:5]))}); "
                            f"use the model's own vocabulary for the data.", code="vocabulary", field="vocabulary")
        table = np.array([index.get(t, unk if unk is not None else 0) for t in ds.vocabulary], dtype=np.int64)
        X = table[ds.X]
        X[~valid_mask(ds.lengths, ds.max_len)] = special_id(list(mvocab), PAD_TOKENS)
        ds = replace(ds, X=X, vocabulary=list(mvocab))
    vocab_size = int(getattr(cfg, "vocab_size", 0) or 0)
    if vocab_size:
        valid = valid_mask(ds.lengths, ds.max_len)
        top = int(ds.X[valid].max()) if valid.any() else 0
        if top >= vocab_size or int(ds.X[valid].min()) < 0:
            raise DataError(f"The data has token id {top}, but the model knows {vocab_size} tokens (ids 0 to "
                            f"{vocab_size - 1}); use the vocabulary the model was trained with.",
                            code="vocabulary", field="vocabulary")
    return ds
