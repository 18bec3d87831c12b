"""The core's layout: an import graph without cycles or private names taken across modules, and
every public name of ``rnnviz_core/__init__.py`` and ``docs/API.md`` importable (old paths too)."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import import_graph as ig  # noqa: E402

# Names docs/API.md promises, module by module (module path as the doc writes it).
API_NAMES = {
    "errors": "RnnvizError InputError ModelError ModelFileError DataError MismatchError",
    "device": "resolve_device device_label",
    "trace": "trace predict Trace RecurrentInfo",
    "engine": "prepare unrolled_forward ModelView find_recurrent valid_mask",
    "contributions": "contributions METHODS TARGET_KINDS resolve_baseline",
    "rankings": "scores_frame top_steps WORD_CHARS shorten mean_abs_by_position mean_abs_by_group "
                "concentration most_concentrated least_concentrated",
    "faithfulness": "deletion_curve aopc compare_methods FaithfulnessReport",
    "models": "ModelConfig READOUTS with_readout with_class_names assumptions MODEL_ERROR_CODES build_model "
              "RecurrentModel save_model load_model load_model_from_factory infer_config",
    "pairing": "readout_choices class_order_choices",
    "data": "class_order_candidates check_against_model inspect_columns ColumnGuess load_data load_vocabulary "
            "SequenceDataset from_long_frame from_arrays",
    "budget": "plan Plan sample traced_size fit",
    "demos": "list_demos load_demo",
    "demos.tasks": "make_marker_task",
    "trajectories": "StatePCA pca_paths state_norms plateau_steps pair_distance parting_step similar_pairs "
                    "heatmap_data parting_summary unit_order valid_mask",
    "saturation": "saturated_units saturation_by_step saturation_by_unit saturation_by_sequence "
                  "saturation_over_time unit_saturation_over_time gate_saturation trace_gates "
                  "value_distribution suggest_threshold",
    "regression": "regression_scores RegressionScores format_number range_groups is_regression_table",
    "groups": "assign_groups group_summary sequence_outcomes sequence_table compare_groups perturb_inputs "
              "resilience resilience_sweep resilience_summary reproducibility compare_models comparison_table "
              "summary_table reproducibility_table resilience_table format_p effect_words",
    "findings": "trajectory_findings saturation_findings contribution_findings known_step_hits known_step_overlap",
    "charts.inputs": "input_strip_chart marker_steps marker_mask",
    "charts.contributions": "feature_scores_chart faithfulness_table method_label is_signed",
    "charts.trajectories": "on_one_step_axis pair_heatmaps_chart",
    "charts.saturation": "distribution_chart",
    "bundle": "build open Bundle",
    "whatif": "what_if WhatIfResult apply_edits",
    "restart": "prefix_outputs",
    "horizons": "horizon horizon_summary compare_horizons damage_by_distance damage_summary",
    "units": "unit_dictionary unit_entry",
    "recurrence": "run_direction run_module layer_weights",
    "lengthwise": "run_by_length",
}


def test_import_graph_has_no_cycles():
    edges, _ = ig.analyse(ROOT)
    assert len(edges) > 40, "the package was not found"
    assert ig.cycles(edges) == []


def test_no_module_takes_another_modules_private_names():
    _, private = ig.analyse(ROOT)
    assert private == [], "\n".join(f"{m}:{line}: {text}" for m, line, text in private)


def test_the_app_has_no_import_cycles_and_takes_no_private_names_across_modules():
    edges, private = ig.analyse(ROOT, "rnnviz_app")
    assert len(edges) > 30, "the app package was not found"
    assert ig.cycles(edges) == []
    assert private == [], "\n".join(f"{m}:{line}: {text}" for m, line, text in private)


def test_the_graph_reader_sees_cycles_and_private_imports(tmp_path):
    pkg = tmp_path / "rnnviz_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("from . import a\n\ndef f():\n    from .c import helper\n")
    (pkg / "c.py").write_text("from .a import _hidden\nfrom . import a as mod\nmod._x()\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_p.py").write_text("")
    (pkg / "sub" / "d.py").write_text("from . import _p\nfrom ..c import helper\n")
    (pkg / "e.py").write_text("from .sub import _p\n")
    edges, private = ig.analyse(tmp_path)
    assert ig.cycles(edges) == [["rnnviz_core.a", "rnnviz_core.b"]]   # the lazy import in b.f is no edge
    assert sorted((m, t) for m, _, t in private) == [
        ("rnnviz_core.c", "from rnnviz_core.a import _hidden"),
        ("rnnviz_core.c", "rnnviz_core.a._x"),
        ("rnnviz_core.e", "from rnnviz_core.sub import _p"),      # a private module outside its package
    ]


def test_every_name_of_the_package_imports():
    import rnnviz_core as rv
    for name in sorted(set(rv.__all__) | set(rv._EXPORTS) | set(rv._SUBMODULES)):
        assert getattr(rv, name) is not None, name
    assert callable(rv.trace) and callable(rv.contributions)


@pytest.mark.parametrize("module", sorted(API_NAMES))
def test_every_name_of_the_api_map_imports(module):
    mod = importlib.import_module(f"rnnviz_core.{module}")
    missing = [n for n in API_NAMES[module].split() if not hasattr(mod, n)]
    assert missing == [], f"rnnviz_core.{module} lacks {missing}"


def test_dotted_names_in_the_api_map_resolve():
    """Every `module.name` written in docs/API.md for a module of the core resolves."""
    text = (ROOT / "docs" / "API.md").read_text()
    # `model.vocabulary`, `model.inferred` in the doc are a model object's attributes, not the package
    mods = {m.split(".", 1)[1] for m in ig.modules(ROOT) if "." in m} - {"model"}
    seen = []
    for ref in set(re.findall(r"(?<![\w.])((?:rv|[a-z_]+)(?:\.[A-Za-z_]\w*)+)", text)):
        parts = ref.split(".")
        if parts[-1] == "py" or (parts[0] != "rv" and parts[0] not in mods):
            continue
        obj = importlib.import_module("rnnviz_core")
        for p in parts[1:] if parts[0] == "rv" else parts:
            obj = getattr(obj, p, None) if not isinstance(obj, type(sys)) or hasattr(obj, p) else (
                importlib.import_module(f"{obj.__name__}.{p}"))
            assert obj is not None, f"docs/API.md names {ref}, which does not resolve"
        seen.append(ref)
    assert len(seen) > 20


@pytest.mark.parametrize("old,new", [("recurrence", "engine.recurrence"), ("lengthwise", "engine.lengthwise"),
                                     ("rankings", "attribution.rankings"), ("findings", "analyses.findings"),
                                     ("regression", "analyses.regression"), ("pairing", "model.pairing")])
def test_a_moved_module_is_the_same_object_at_its_old_path(old, new):
    assert importlib.import_module(f"rnnviz_core.{old}") is importlib.import_module(f"rnnviz_core.{new}")


def test_a_limit_set_on_the_old_data_path_reaches_the_readers(monkeypatch):
    from rnnviz_core import data, load_data
    from rnnviz_core.errors import DataError
    csv = b"id,t,a\n1,0,1\n1,1,2\n2,0,3\n2,1,4\n"
    assert len(load_data(csv, name="d.csv")) == 2
    monkeypatch.setattr(data, "MAX_ROWS", 3)
    with pytest.raises(DataError, match="more than 3 rows"):
        load_data(csv, name="d.csv")
    monkeypatch.undo()
    assert len(load_data(csv, name="d.csv")) == 2


def test_one_length_mask_for_numpy_and_torch():
    import numpy as np
    import torch
    from rnnviz_core.arrays import valid_mask
    want = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)   # lengths 2, 1, 4 by hand
    np.testing.assert_array_equal(valid_mask([2, 1, 4], 4), want)
    got = valid_mask(torch.tensor([2, 1, 4]), 4)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(valid_mask(np.array([2, 1, 4]), 4, device="cpu").numpy(), want)


def test_the_bundle_facade_keeps_every_name_it_had():
    """Issue 20 split ``bundle.py`` by concern; ``bundle.<name>`` keeps working for the old names."""
    from rnnviz_core import bundle, bundle_build, bundle_engines, bundle_format, bundle_read

    assert bundle.build is bundle_build.build and bundle.open is bundle_read.open
    assert bundle.Bundle is bundle_read.Bundle and bundle._Worker is bundle_engines.Worker
    assert bundle._row_hash_sum is bundle_format.row_hash_sum and bundle._file_sha256 is bundle_format.file_sha256
    for name in bundle.__all__ + ["DEFAULT_BATCH", "DEFAULT_SAMPLE", "DEFAULT_MAX_BYTES", "MAX_MANIFEST_BYTES",
                                  "MAX_FILES", "BundleFiles", "InputError", "_Source", "_block_arrays",
                                  "_fitted_pca", "_run_local", "_run_ray", "_refuse"]:
        assert hasattr(bundle, name), name
