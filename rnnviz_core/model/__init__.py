"""Models by concern (issue 20).

:mod:`.config` (ModelConfig, limits), :mod:`.family` (the built-in RecurrentModel and its
siblings), :mod:`.infer` (a config from a state dict), :mod:`.files` (save_model, load_model,
load_model_from_factory), :mod:`.assumptions` (what was assumed, as values), :mod:`.check` (data
checked against a model), :mod:`.pairing` (readout and class-order choices with their accuracy).
Nothing is imported here; ``rnnviz_core.models`` and ``rnnviz_core.pairing`` keep working (one release).

The model docs, as they were in ``rnnviz_core/models.py``:
A built-in family of many-to-one recurrent models, and model files that cannot run code.

The family covers what people usually train to turn a sequence into one output::

    x [N, T, F] --normalise--> encoder (none | linear | embedding) --> rnn (RNN/GRU/LSTM)
        --> readout [N, H*D] --> head (linear | mlp) --> logits [N, C] or [N]

The *readout* is how the head reads the sequence (``ModelConfig.readout``, see
:data:`READOUTS`): the last real step's output (``"last"``, what ``out[:, -1]`` does), the
final hidden state (``"h_n"``, what ``h[-1]`` does), or the mean or max over the real steps.
A file's weights cannot tell which one a model was trained with, so for a plain state dict it
is an assumption (see :func:`assumptions`) that :func:`with_readout` changes.

Model files
-----------
``save_model(model, "m.safetensors")`` writes one safetensors file: the weights, and in its
metadata the config, class names, feature names and normalisation as JSON strings.
``load_model`` reads it back into an identical model in eval mode. It also accepts a plain
PyTorch *state dict* saved with ``torch.save(model.state_dict(), "m.pt")``; that file is read
with ``torch.load(..., weights_only=True)`` only after its zip has been measured and torch's
own checkpoint inspection (``torch.serialization.get_unsafe_globals_in_checkpoint``) has found
nothing but tensors and plain containers, and the architecture is inferred from parameter
names and shapes (how the head reads the sequence and the class order are then assumptions:
:func:`assumptions`). Whole pickled models, TorchScript archives, old-style (non-zip) pickles
and anything unknown are refused with a :class:`~rnnviz_core.errors.ModelFileError` saying what
to do.

Before anything is built, every size a file states is bounded (``MAX_*`` below: header, layers,
units, inputs, outputs, vocabulary, total numbers) and checked against the weights' own
shapes; weights that are empty, not floating-point, NaN or infinite, or a zero std, are refused.
Nothing in an uploaded file is ever executed.

Your own model class (local use only)
-------------------------------------
A programmer whose model is not in the family can build it with their own code::

    model = load_model_from_factory("mypackage.nets:make_model", "weights.safetensors")

``"module:function"`` names a function that takes no arguments and returns the
``nn.Module``; the weights file (safetensors, or a state-dict ``.pt``) is then loaded into it.
This imports and runs *your* code, so it is reachable only from Python or from the app's
command line (never from an upload).
"""
