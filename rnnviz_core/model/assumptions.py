"""What rnnviz assumed about a model rebuilt from a plain state dict, as values (the app words them)."""
from __future__ import annotations

from torch import nn

from .config import READOUTS
from .family import RecurrentModel


def assumptions(model: nn.Module) -> list[dict]:
    """What rnnviz assumed about a model built from a plain state dict, as values.

    Returns one dict per assumption with keys ``key`` ("readout", "class_order",
    "activations", "vocabulary", "normalisation", "task"), ``what`` (a plain sentence on what was
    assumed; the setting itself is in ``value``, never repeated here), ``value`` (the current setting,
    as text), ``changeable`` (True when another choice can be made without another model file: the
    readout, the class order, a vocabulary), ``how_to_change`` (what to do, in words that name no
    control of any app: the app words where its controls are) and ``python`` (the same in code). A model
    whose file records its settings (saved with :func:`save_model`), or a model that is not in
    the built-in family, gives an empty list: nothing was assumed.
    """
    if not isinstance(model, RecurrentModel) or not getattr(model, "inferred", False):
        return []
    c = model.config
    fixed = "It cannot be changed in the app; ask for the model saved with rnnviz's save_model, which records it."
    out = [dict(
        key="readout",
        what="The file does not say how the model reads the sequence; it is read as "
             f"{READOUTS[c.readout]}.",
        value=c.readout, changeable=True,
        how_to_change="Choose another way of reading the sequence; the accuracy of each on the data shows "
                      "which one the model was trained with.",
        python="rnnviz_core.models.with_readout(model, 'mean')")]
    if c.task == "classification":
        numbered = model.class_names == [f"class {i}" for i in range(c.num_outputs)]
        out.append(dict(
            key="class_order",
            what="The file holds no class names, so which class each output stands for is assumed"
                 + (" (the outputs are numbered)." if numbered else "."),
            value=", ".join(model.class_names), changeable=True,
            how_to_change="Choose the class order the training script used: declared in the data file, sorted, "
                          "first appearance, or typed by hand.",
            python="rnnviz_core.models.with_class_names(model, ['neg', 'pos'])"))
    acts = []
    if c.cell == "RNN_TANH":
        acts.append("a plain RNN uses tanh (a ReLU RNN has the same weights)")
    if c.encoder == "linear":
        acts.append(f"the layer before the recurrent layer uses {c.encoder_activation}")
    if c.head == "mlp":
        acts.append(f"the head's hidden layer uses {c.head_activation}")
    if acts:
        out.append(dict(key="activations", what="Activations cannot be read from weights: " + "; ".join(acts) + ".",
                        value=", ".join(acts), changeable=False, how_to_change=fixed,
                        python="rv.build_model(ModelConfig(..., head_activation='tanh')), load the weights, rv.save_model"))
    if c.encoder == "embedding" and model.vocabulary is None:
        out.append(dict(
            key="vocabulary",
            what=f"The file holds no vocabulary, so which word each of the {c.vocab_size:,} token ids stands for "
                 f"is unknown; text data needs the vocabulary the model was trained with.",
            value="none", changeable=True,
            how_to_change="Give the vocabulary beside the data file (a .json list, or a .txt file with one "
                          "token per line, in id order), or use data holding token ids.",
            python="rv.load_data('data.csv', vocabulary=rnnviz_core.data.load_vocabulary('vocab.json'))"))
    norm = model.normalization
    if c.encoder != "embedding":
        out.append(dict(
            key="normalisation",
            what=("No input normalisation is applied: the data must be scaled as it was in training."
                  if norm is None else "The input normalisation stored with the weights is applied."),
            value="none" if norm is None else "stored mean and std", changeable=False,
            how_to_change="Scale the data file as the training script did, or " + fixed[0].lower() + fixed[1:],
            python="model.set_normalization(mean, std); rv.save_model(model, 'model.safetensors')"))
    if c.task == "regression":
        out.append(dict(key="task", what="A single output is read as a number (regression), not a yes/no probability.",
                        value="regression", changeable=False, how_to_change=fixed, python="rv.save_model with task='classification'"))
    return out
