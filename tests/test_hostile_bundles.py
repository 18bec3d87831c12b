"""Hostile analysis bundles (issue 19) are refused at open within 1 GB and 5 s, with a sentence.

Each bundle is made in :mod:`hostile_bundles` the way an attacker would (forged files re-signed in
the manifest), then opened in one fresh Python process with the app's limits and, when it opens,
read the way every bundle page reads it. Peak resident memory (``VmHWM``) is reset before each
bundle; memory the allocator keeps from an earlier bundle still counts, so each figure is an upper
bound. Before the fixes these cost 0.8-3 GB, minutes of CPU, or an exception box on a page.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_bundles as hb  # noqa: E402

LIMIT_KB = 1024 * 1024   # 1 GB
LIMIT_S = 5.0

#: case -> what the refusal must name (a regular expression)
EXPECT = {
    "longest_20m": r"'data\.max_length' must be a whole number from 1 to 1,000,000; it is 20000000",
    "longest_500k": r"manifest needs 7×500000",
    "text_bomb": r"unpacks its column 'data:track' into 100\.0 MB",
    "safetensors_1p2m_empty": r"'samples\.safetensors' has a header of [\d,]+ bytes",
    "safetensors_5000_arrays": r"holds 5,000 arrays",
    "safetensors_90mb_header": r"'pca\.safetensors' has a header of 90,000,029 bytes",
    "parquet_huge_footer": r"has 60\.0 MB of Parquet metadata",
    "units_nan": r"holds NaN",
    "units_negative": r"'analysis\.units' must be a whole number .*it is -1",
    "hidden_1e9": r"hidden_size' must be a whole number .*it is 1000000000",
    "model_string": r"'model' must be a mapping; it is the text 'evil'",
    "class_names_5": r"'data\.class_names' must be a list .*it is 5",
    "class_names_duplicate": r"names 'win' twice",
    "threshold_text": r"'analysis\.threshold' must be a number .*the text '0\.9'",
    "grouping_missing": r"data:owner",
    "nested_100k": r"nested 100002 levels deep",
    "number_5000_digits": r"number written with 5000 characters",
    "length_text": r"column 'length' as text",
    "pc1_text": r"column 'step:pc1' as text",
    "missing_logits": r"lacks the column 'logits'",
    "label_out_of_range": r"'true' class outside 0\.\.2",
    "sample_row_1e9": r"names sequences outside rows 0\.\.59",
    "sample_2m_rows": r"'analysis\.sample\.size' must be a whole number from 0 to 60; it is 2000000",
    "padding_file": r"lists 'padding\.bin', which is not a file an rnnviz bundle holds",
    "zip_duplicate": r"holds 'pca\.safetensors' twice",
    "zip_encrypted": r"'pca\.safetensors' is encrypted",
    "zip_symlink": r"'pca\.safetensors' is a link",
    "fifo_manifest": r"'manifest\.json' in the bundle folder is not a plain file",
    "symlink_file": r"'pca\.safetensors' in the bundle folder is not a plain file",
    "sample_state_missing": r"'samples\.safetensors' lacks the array 'trace:rnn\.l0\.fwd\.h'",
    "correct_missing": r"do not share one layout: 'correct' is a column of one of",
    "long_honest": r"would take about [\d,]+ MB of memory \(60 sequences × 200,000 steps × 7 per-step columns",
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    base = hb.build_base(d)
    return hb.run_cases({name: make(base, d) for name, make in hb.CASES.items()})


def test_every_case_is_listed():
    assert set(EXPECT) | {"honest"} == set(hb.CASES)


@pytest.mark.parametrize("case", sorted(EXPECT))
def test_hostile_bundle_is_refused_with_a_sentence_within_1_gb_and_5_s(outcomes, case):
    import re

    out, peak_kb, secs = outcomes[case]
    assert out.startswith("REFUSED "), (case, out)
    assert re.search(EXPECT[case], out), (case, out)
    assert "Traceback" not in out and out.rstrip().endswith((".", "`rnnviz precompute`.")), out
    assert peak_kb < LIMIT_KB, (case, peak_kb)
    assert secs < LIMIT_S, (case, secs)


def test_the_valid_bundle_is_read_by_every_page(outcomes):
    out, peak_kb, secs = outcomes["honest"]
    assert out == "READ", out
    assert peak_kb < LIMIT_KB and secs < LIMIT_S
