"""Analysis bundles: the numbers the app shows, computed where the model lives, shipped as data.

A bundle holds **only data** (JSON, Parquet tables, safetensors arrays; nothing is ever
unpickled), so a colleague's app can browse the analyses of a model it could never load (your own
model class, custom layers) or of more sequences than one process can trace::

    import rnnviz_core as rv
    from rnnviz_core import bundle
    bundle.build(model, dataset, "run.rnnviz", methods=["grad_norm", "integrated_gradients"])
    b = bundle.open("run.rnnviz")          # checks the manifest, refuses anything else
    b.sequences                             # one row per sequence (outcome, confidence, loss, ...)
    b.scores("grad_norm")                   # float32 [N, T], NaN past each length
    b.paths()                               # PCA paths of every sequence in one shared basis

Layout (format version 1), as a directory or as one uncompressed zip of that directory::

    manifest.json                     what was computed, from what (hashes), and every file's size + SHA-256
    sequences/part-00000.parquet ...  one row per sequence: ids, outcomes, saturation shares, plateau,
                                      data columns, and per-step list columns ("step:*", "score:*")
    pca.safetensors                   the shared PCA basis: mean [H], components [k, H], variances [k]
    saturation.safetensors            per grouping: count / sum / sum of squares [K, T] of the share of
                                      saturated units per step (saturation over time by group)
    samples.safetensors               full traces (h, c, every gate, every layer) of a sample of
                                      sequences chosen to cover every class x outcome cell
    aggregates.safetensors            mean |score| by step and class, histograms of confidence and
                                      saturation shares (:mod:`rnnviz_core.bundle_aggregates`)

What is analysed: the last recurrent module's last layer, forward direction (the pages' default
view), with the pages' default thresholds unless given.

**PCA (decided for both engines):** every sequence is traced once. The basis is fitted before any
part is written, on the driver, on the valid steps of whole sequences drawn at random (seed 0)
until they hold 20,000 steps -- every step when the data holds fewer, and then it is the exact PCA
of every point, equal to scikit-learn's ``PCA`` (``StatePCA(max_points=None)``; signs as
scikit-learn fixes them) -- from their mean (float64), the centred product (float32) and one
eigen-decomposition (:mod:`rnnviz_core.bundle_fit`). Those rows' states come from a trace of their
own, or, in a small local build, from the pass itself (the blocks holding them are analysed first
and wait for the basis). It does not depend on how the data is cut into blocks, so a bundle built
locally and one built on Ray agree; every step of every sequence is then placed on it exactly. The
manifest records the points fitted and the points in all (``analysis.pca``).

**Engines:** ``engine="local"`` runs blocks one after another in this process; ``engine="ray"``
runs the same per-block code in Ray Data actors that load the model once (``map_batches`` with a
callable class, a fixed batch size, one GPU per actor when the cluster has GPUs) and write
partitioned Parquet. Both read the input in blocks, so memory follows the block size, not the
number of sequences (see :func:`write_sequences` for the on-disk input form).

**Reading** (:func:`open`) checks the bundle once, before anything large is read (every file's
hash; the manifest, safetensors headers and Parquet footers against each other; the memory the
reads take against ``max_memory``: :mod:`rnnviz_core.bundle_check`), then reads the sequence table
whole and checks its values: a reader's memory follows the bundle (about 3.6 kB per sequence at 100
steps and two methods), so very large bundles are for building and archiving (``read=False`` checks
one without reading its table); the app opens bundles up to its size and memory limits.
:meth:`Bundle.lazy` reads only the rows and columns asked for (:mod:`rnnviz_core.bundle_lazy`), and
:meth:`Bundle.mean_abs_score` / :meth:`Bundle.histogram` read the build-time aggregates, so a
bundle opened with ``read=False`` serves those views at any size.

**Progress and resuming** (local engine): :mod:`rnnviz_core.bundle_progress`.
"""
from __future__ import annotations

# The module by concern (issue 20); this facade keeps every name it had: bundle.build, bundle.open,
# bundle.Bundle, bundle.FORMAT ... Patch a function where it lives (bundle_build, bundle_engines ..),
# not here.
from . import bundle_check as _check
from .bundle_blocks import Source, block_arrays, write_sequences
from .bundle_build import build
from .bundle_engines import Worker, run_local, run_ray
from .bundle_files import MAX_FILES, BundleFiles  # noqa: F401 - MAX_FILES: the old name here
from .bundle_format import (DEFAULT_BATCH, DEFAULT_MAX_BYTES, DEFAULT_METHODS, DEFAULT_SAMPLE,  # noqa: F401
                            FORMAT, FORMAT_VERSION, MAX_MANIFEST_BYTES, SAFE_NAME, SCORE_PREFIX, STEP_PREFIX,
                            file_sha256, fitted_pca, model_hash, row_hash_sum)
from .bundle_read import Bundle, open
from .errors import BundleError, InputError  # noqa: F401 - InputError: the old name here

__all__ = [
    "FORMAT", "FORMAT_VERSION", "DEFAULT_METHODS", "BundleError", "Bundle",
    "build", "open", "write_sequences", "model_hash",
]

# the old private names, now public where they live
_row_hash_sum = row_hash_sum
_file_sha256 = file_sha256
_fitted_pca = fitted_pca
_Source = Source
_block_arrays = block_arrays
_Worker = Worker
_run_local = run_local
_run_ray = run_ray
_SAFE_NAME = SAFE_NAME
_STEP_PREFIX = STEP_PREFIX
_SCORE_PREFIX = SCORE_PREFIX
_refuse = _check.refuse
