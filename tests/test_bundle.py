"""Analysis bundles: every number against the live core functions, and a reader that refuses.

References are the core's public analyses run on the whole dataset at once (``rv.trace``,
``rv.contributions``, ``groups.sequence_table``, ``trajectories.state_norms``,
``saturation.saturation_over_time``) and scikit-learn's ``PCA`` fitted on every valid step; the
bundle computes them block by block, so a mismatch in the block handling shows here.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rnnviz_core as rv
from rnnviz_core import bundle, bundle_format
from rnnviz_core import saturation as sa
from rnnviz_core import trajectories as tj
from rnnviz_core.data import from_arrays
from rnnviz_core.groups import sequence_table

TOL = 1e-5


@pytest.fixture(scope="module")
def race():
    model, ds = rv.demos.load_demo("race")[:2]
    return model, ds.subset(np.arange(150))


@pytest.fixture(scope="module")
def race_bundle(race, tmp_path_factory):
    model, ds = race
    path = tmp_path_factory.mktemp("b") / "race"
    bundle.build(model, ds, path, batch_size=40, sample=12)   # 4 blocks, the last one short
    return bundle.open(path)


@pytest.fixture(scope="module")
def live(race):
    """The live analyses, on all 150 sequences in one go (what the pages compute)."""
    model, ds = race
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    h = tr.get("h", layer=-1, direction="fwd")
    table = sequence_table(tr.logits, ds.y, states=h, lengths=tr.lengths, columns=ds.groups,
                           class_names=ds.class_names)
    sat = sa.saturation_by_sequence(h, tr.lengths, gates=sa.trace_gates(tr))
    for col in sat.columns.drop("seq"):
        table[col] = sat[col].to_numpy()
    return tr, h, table


def _close(a, b, tol=TOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b), initial=0.0) <= tol


def test_sequence_table_matches_the_live_table(race_bundle, live, race):
    _, ds = race
    _, _, ref = live
    got = race_bundle.sequences
    assert list(got["id"]) == list(ds.ids)
    for col in ("pred", "confidence", "true", "loss", "frac_saturated", "frac_saturated_final",
                "r_left", "r_right", "z_left", "z_right"):
        _close(got[col], ref[col])
    for col in ("correct", "predicted_class", "true_class", "outcome", "saturation", "track", "grade", "sex"):
        assert list(got[col].astype(str)) == list(ref[col].astype(str)), col
    assert list(got["saturation"].cat.categories) == list(ref["saturation"].cat.categories)
    assert list(got["length"]) == list(ds.lengths)
    _close(race_bundle.logits, rv.predict(race[0], ds.X, ds.lengths, device="cpu"))


def test_scores_match_rv_contributions(race_bundle, race):
    model, ds = race
    assert race_bundle.methods == list(bundle.DEFAULT_METHODS)
    for method in bundle.DEFAULT_METHODS:
        ref = rv.contributions(model, ds.X, method, ds.lengths, device="cpu")
        _close(race_bundle.scores(method), ref)


def test_pca_is_scikit_learns_pca_on_every_valid_step(race_bundle, live):
    from sklearn.decomposition import PCA

    _, h, _ = live
    lens = race_bundle.lengths
    pts = h[tj.valid_mask(lens, h.shape[1])].astype(np.float64)
    ref = PCA(n_components=2, svd_solver="full").fit(pts)
    pca = race_bundle.pca
    _close(pca.components_, ref.components_)
    _close(pca.mean_, ref.mean_)
    _close(pca.explained_variance_ratio_, ref.explained_variance_ratio_)
    paths = race_bundle.paths()
    ref_paths, _ = tj.pca_paths(h, lens, pca=tj.StatePCA(max_points=None).fit(h, lens), ids=race_bundle.ids)
    assert list(paths["seq"]) == list(ref_paths["seq"]) and list(paths["step"]) == list(ref_paths["step"])
    _close(paths[["pc1", "pc2"]], ref_paths[["pc1", "pc2"]], 1e-4)   # float32 storage of values ~1
    _close(paths.attrs["explained_variance_ratio"], ref_paths.attrs["explained_variance_ratio"])


def test_norms_and_plateaus_match_state_norms(race_bundle, live):
    _, h, _ = live
    ref = tj.state_norms(h, race_bundle.lengths, ids=race_bundle.ids)
    got = race_bundle.norms()
    assert list(got["seq"]) == list(ref["seq"])
    _close(got[["sum_abs", "mean_abs", "step_change"]], ref[["sum_abs", "mean_abs", "step_change"]])
    assert np.array_equal(got["plateau_step"], ref["plateau_step"])


@pytest.mark.parametrize("by", ["outcome", "saturation", "true_class", "track", None])
def test_saturation_over_time_matches_the_live_curves(race_bundle, live, by):
    _, h, table = live
    groups = None if by is None else table[by].astype(str).to_numpy()
    ref = sa.saturation_over_time(h, race_bundle.lengths, groups=groups)
    got = race_bundle.saturation_over_time(by)
    key = ["group", "step"]
    got, ref = got.sort_values(key).reset_index(drop=True), ref.sort_values(key).reset_index(drop=True)
    assert list(got["group"].astype(str)) == list(ref["group"].astype(str))
    assert np.array_equal(got["n_sequences"], ref["n_sequences"])
    _close(got[["frac_saturated", "sem"]], ref[["frac_saturated", "sem"]])


def test_sample_traces_are_the_full_traces_and_cover_every_cell(race_bundle, live, race):
    model, ds = race
    tr, _, table = live
    rows = race_bundle.sample_rows
    assert len(rows) == 12 and len(set(rows)) == 12
    cells = set(zip(table["true_class"].astype(str), table["outcome"].astype(str)))
    got_cells = set(zip(table["true_class"].astype(str)[rows], table["outcome"].astype(str)[rows]))
    assert got_cells == cells   # 3 classes x {correct, wrong}: every cell present in the data is sampled
    st = race_bundle.sample_trace()
    assert set(st.keys()) == set(tr.keys())
    for name in tr.keys():
        ref = tr[name][rows][:, : st[name].shape[1]]
        _close(st[name], ref)
    _close(st.logits, tr.logits[rows])
    x, lens = race_bundle.sample_inputs()
    assert np.array_equal(lens, ds.lengths[rows])
    _close(x, ds.X[rows][:, : x.shape[1]])


def test_block_size_and_file_form_do_not_change_a_number(race, race_bundle, tmp_path):
    model, ds = race
    one = bundle.build(model, ds, tmp_path / "one.rnnviz", batch_size=1000, sample=12)
    assert zipfile.is_zipfile(one)
    with zipfile.ZipFile(one) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert zf.namelist()[0] == "manifest.json"
    for b in (bundle.open(one), bundle.open(one.read_bytes())):
        for method in b.methods:
            _close(b.scores(method), race_bundle.scores(method))
        for name in ("sum_abs", "step_change", "frac_saturated", "pc1", "pc2"):
            _close(b.steps(name), race_bundle.steps(name))
        num = race_bundle.sequences.select_dtypes("number").columns
        _close(b.sequences[num], race_bundle.sequences[num])
        assert b.manifest["data"]["content_hash"] == race_bundle.manifest["data"]["content_hash"]
        assert b.manifest["model"]["sha256"] == race_bundle.manifest["model"]["sha256"]
        assert np.array_equal(b.sample_rows, race_bundle.sample_rows)


def test_streamed_sequence_file_gives_the_same_bundle(race, race_bundle, tmp_path):
    model, ds = race
    seq = bundle.write_sequences(ds, tmp_path / "seq.parquet", block_size=64)
    b = bundle.open(bundle.build(model, seq, tmp_path / "from_file", batch_size=50, sample=12))
    assert b.manifest["data"]["content_hash"] == race_bundle.manifest["data"]["content_hash"]
    for method in b.methods:
        _close(b.scores(method), race_bundle.scores(method))
    assert list(b.sequences["track"]) == list(race_bundle.sequences["track"])
    _close(b.steps("pc1"), race_bundle.steps("pc1"))


def test_lstm_two_layers_unlabelled_bidirectional(tmp_path):
    """Gates, cell states and both directions of every layer reach the sample; no labels needed."""
    torch.manual_seed(3)
    model = rv.build_model(rv.ModelConfig(cell="LSTM", input_size=3, hidden_size=5, num_layers=2,
                                          bidirectional=True, num_outputs=3))
    rng = np.random.default_rng(0)
    # data columns named like table columns ("seq" is the row number the reader adds)
    clash = pd.DataFrame({"pred": [f"p{i % 4}" for i in range(30)], "seq": [f"s{i % 3}" for i in range(30)]})
    ds = from_arrays(rng.normal(size=(30, 9, 3)).astype(np.float32), lengths=rng.integers(2, 10, 30), groups=clash)
    b = bundle.open(bundle.build(model, ds, tmp_path / "lstm", batch_size=7, sample=5,
                                 methods=["grad_x_state", "occlusion"]))
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    st = b.sample_trace()
    assert "rnn.l1.bwd.c" in st.keys() and "rnn.l0.fwd.f" in st.keys()
    for name in tr.keys():
        _close(st[name], tr[name][b.sample_rows][:, : st[name].shape[1]])
    _close(b.scores("occlusion"), rv.contributions(model, ds.X, "occlusion", ds.lengths, device="cpu"))
    assert "true" not in b.sequences and "outcome" not in b.sequences
    h = tr.get("h", layer=-1, direction="fwd")   # the analysed state: last layer, forward
    _close(b.steps("sum_abs"), np.where(tj.valid_mask(ds.lengths, 9), np.abs(h).sum(axis=2), np.nan))
    assert b.manifest["analysis"]["state"] == "rnn.l1.fwd.h"
    ref = sequence_table(tr.logits, None, states=h, lengths=tr.lengths, columns=ds.groups)
    assert list(b.sequences["pred_data"]) == list(ref["pred_data"]) == list(clash["pred"])
    assert np.array_equal(b.sequences["pred"], ref["pred"])
    assert list(b.data_columns["pred"]) == list(clash["pred"])
    assert list(b.sequences["seq_data"]) == list(ref["seq_data"]) == list(clash["seq"])
    assert list(b.sequences["seq"]) == list(range(30))


def test_manifest_says_what_was_computed_from_what(race_bundle, race):
    model, ds = race
    m = race_bundle.manifest
    assert m["format"] == "rnnviz-bundle" and m["format_version"] == bundle.FORMAT_VERSION
    assert m["model"]["sha256"] == bundle.model_hash(model)
    assert m["data"]["n_sequences"] == 150 and m["data"]["feature_names"] == ds.feature_names
    assert m["model"]["class_names"] == ds.class_names
    assert set(m["analysis"]["methods"]) == set(bundle.DEFAULT_METHODS)
    assert m["data"]["group_columns"] == list(ds.groups.columns)
    # one changed value in one sequence changes the data hash
    X = ds.X.copy()
    X[3, 0, 0] += 1.0
    before = bundle_format.row_hash_sum(np.arange(150), ds.ids, ds.lengths, ds.X, ds.y)
    after = bundle_format.row_hash_sum(np.arange(150), ds.ids, ds.lengths, X, ds.y)
    assert format(before, "064x") == m["data"]["content_hash"].split(":")[1] and after != before


def test_hashes_follow_their_written_rules(race_bundle, race, tmp_path):
    """The data hash is the documented rule computed here with hashlib (the sum modulo 2**256 of
    the SHA-256 of each sequence's "row|id|length|", its valid values' bytes and "|" + its label's
    bytes), and every file the manifest lists has the SHA-256 of its bytes as read from disk, in a
    folder and in a single-file bundle."""
    import hashlib

    model, ds = race
    total = 0
    for i in range(len(ds)):
        h = hashlib.sha256(f"{i}|{ds.ids[i]}|{int(ds.lengths[i])}|".encode())
        h.update(np.ascontiguousarray(ds.X[i, : int(ds.lengths[i])]).tobytes())
        h.update(b"|" + np.asarray(ds.y[i]).tobytes())
        total += int.from_bytes(h.digest(), "big")
    assert race_bundle.manifest["data"]["content_hash"] == "sha256-sum:" + format(total % (1 << 256), "064x")
    small = ds.subset(np.arange(30))
    folder = bundle.build(model, small, tmp_path / "folder", batch_size=16, sample=4)
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert sorted(listed) == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                    if p.is_file() and p.name != "manifest.json")
    for name, entry in listed.items():
        data = (folder / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    one = bundle.build(model, small, tmp_path / "one.rnnviz", batch_size=16, sample=4)
    with zipfile.ZipFile(one) as zf:
        listed = json.loads(zf.read("manifest.json"))["files"]
        assert sorted(listed) == sorted(n for n in zf.namelist() if n != "manifest.json")
        for name, entry in listed.items():
            data = zf.read(name)
            assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name


def test_views_that_need_the_model_say_so(race_bundle):
    with pytest.raises(bundle.BundleError, match="integrated_gradients.*needs the model.*methods="):
        race_bundle.scores("integrated_gradients")
    assert any("resilience" in s for s in race_bundle.not_included())


# ----------------------------------------------------------------------------- the reader refuses
@pytest.fixture()
def copy(race_bundle, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(race_bundle._files.dir, dst)
    return dst


def _rewrite_manifest(path: Path, change) -> None:
    m = json.loads((path / "manifest.json").read_text())
    change(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_refuses_another_format_version(copy):
    _rewrite_manifest(copy, lambda m: m.update(format_version=2))
    with pytest.raises(bundle.BundleError, match="format version 2.*reads version 1"):
        bundle.open(copy)


@pytest.mark.parametrize("change, match", [
    (lambda m: m["analysis"]["methods"].update({"<b>evil</b>": "x"}), "method this rnnviz does not know"),
    (lambda m: m["analysis"].update(methods=["grad_norm"]), "'analysis.methods' must be a mapping"),
    (lambda m: m["data"].update(n_sequences="many"), "'data.n_sequences' must be a whole number.*the text 'many'"),
    (lambda m: m["data"].update(max_length=-3), "'data.max_length' must be a whole number from 1 .*it is -3"),
], ids=["unknown-method", "methods-not-a-mapping", "count-not-a-number", "negative-length"])
def test_refuses_a_manifest_that_describes_its_contents_wrongly(copy, change, match):
    """The manifest is not covered by the file hashes, so what it says of the contents is checked."""
    _rewrite_manifest(copy, change)
    with pytest.raises(bundle.BundleError, match=match):
        bundle.open(copy)


def test_refuses_a_missing_file(copy):
    (copy / "pca.safetensors").unlink()
    with pytest.raises(bundle.BundleError, match="incomplete: pca.safetensors is missing"):
        bundle.open(copy)


def test_refuses_an_extra_file(copy):
    (copy / "sequences" / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(bundle.BundleError, match="does not list.*evil.pkl"):
        bundle.open(copy)


def test_refuses_a_changed_file(copy):
    part = sorted((copy / "sequences").iterdir())[0]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match="does not match the hash"):
        bundle.open(copy)


def test_refuses_a_path_outside_the_bundle(copy):
    _rewrite_manifest(copy, lambda m: m["files"].update({"../x": {"bytes": 1, "sha256": "0" * 64}}))
    with pytest.raises(bundle.BundleError, match="names a file '../x'"):
        bundle.open(copy)


def test_refuses_no_manifest_and_not_a_bundle(copy, tmp_path):
    (copy / "manifest.json").unlink()
    with pytest.raises(bundle.BundleError, match="no manifest.json"):
        bundle.open(copy)
    junk = tmp_path / "junk.rnnviz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(bundle.BundleError, match="not an rnnviz bundle"):
        bundle.open(junk)
    with pytest.raises(bundle.BundleError, match="no bundle at"):
        bundle.open(tmp_path / "nothing-here")


def test_refuses_a_bundle_over_the_size_limit(race_bundle, copy):
    total = sum(e["bytes"] for e in race_bundle.manifest["files"].values())
    with pytest.raises(bundle.BundleError, match="more than the"):
        bundle.open(copy, max_bytes=total // 2)


def test_refuses_compressed_zip_entries(copy, tmp_path):
    z = tmp_path / "deflated.rnnviz"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(copy.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(copy).as_posix())
    with pytest.raises(bundle.BundleError, match="compressed"):
        bundle.open(z)


def test_refuses_a_table_with_rows_missing(copy):
    """Hashes recomputed by hand (a forged manifest) still cannot smuggle a short table past the reader."""
    import hashlib

    parts = sorted((copy / "sequences").iterdir())
    parts[-1].unlink()

    def drop(m):
        name = f"sequences/{parts[-1].name}"
        del m["files"][name]
    _rewrite_manifest(copy, drop)
    with pytest.raises(bundle.BundleError, match="table holds 120 sequences, and its manifest says 150"):
        bundle.open(copy)
    assert hashlib  # (hashes of the remaining files are still the genuine ones)


def test_build_refusals(race, tmp_path):
    model, ds = race
    with pytest.raises(rv.InputError, match="Unknown contribution method.*'gradnorm'"):
        bundle.build(model, ds, tmp_path / "x", methods=["gradnorm"])
    (tmp_path / "exists").mkdir()
    with pytest.raises(rv.InputError, match="already exists.*overwrite=True"):
        bundle.build(model, ds, tmp_path / "exists")
    with pytest.raises(rv.InputError, match="engine must be 'local' or 'ray'"):
        bundle.build(model, ds, tmp_path / "y", engine="spark")
    with pytest.raises(rv.InputError, match="not a sequence file written by bundle.write_sequences"):
        pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "plain.parquet")
        bundle.build(model, tmp_path / "plain.parquet", tmp_path / "z")


def _forge(path: Path, name: str, data: bytes) -> None:
    """Replace a file and re-sign the manifest's entry, as a forger would."""
    import hashlib

    (path / name).write_bytes(data)
    _rewrite_manifest(path, lambda m: m["files"].update(
        {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}))


def test_refuses_a_parquet_part_that_unpacks_into_far_more_values(copy):
    """A forged part whose lists repeat one value millions of times: small on disk, huge decoded."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    name = sorted(f"sequences/{p.name}" for p in (copy / "sequences").iterdir())[0]
    tbl = pq.read_table(copy / name)
    n = tbl.num_rows
    bomb = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * 2_000_000),
                                    pa.array(np.zeros(n * 2_000_000, dtype=np.float32)))
    tbl = tbl.set_column(tbl.column_names.index("step:sum_abs"), "step:sum_abs", bomb)
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    assert len(buf.getvalue()) < 2_000_000        # tens of MB of zeros squeezed into a small file
    _forge(copy, name, buf.getvalue())
    # sizes and hashes agree with the forged manifest; the footer's counts are checked before a read
    with pytest.raises(bundle.BundleError, match="more values per sequence than its manifest allows"):
        bundle.open(copy)


def test_refuses_a_damaged_single_file(race, tmp_path):
    """One flipped byte inside a stored member: zip's own check fails, and the refusal is a sentence."""
    model, ds = race
    path = bundle.build(model, ds.subset(np.arange(20)), tmp_path / "small.rnnviz", sample=2)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("pca.safetensors")
    data[info.header_offset + 30 + len(info.filename) + 20] ^= 0xFF   # inside the member's bytes
    with pytest.raises(bundle.BundleError, match="damaged|does not match the hash"):
        bundle.open(bytes(data))


def test_blocks_whose_sequences_all_have_the_same_length(tmp_path):
    """A block whose sequences are all as long as its longest one takes its valid steps without a
    mask (a reshape): the steps, scores, saturated shares and PCA coordinates of such blocks (one
    at the data's full length, one shorter) and of a mixed block equal the live analyses."""
    torch.manual_seed(4)
    model = rv.build_model(rv.ModelConfig(cell="GRU", input_size=3, hidden_size=6, num_outputs=2))
    rng = np.random.default_rng(2)
    lens = np.r_[np.full(8, 12), np.full(8, 7), rng.integers(2, 13, 8)]   # blocks of 8: full, short, mixed
    ds = from_arrays(rng.normal(size=(24, 12, 3)).astype(np.float32), lengths=lens, y=rng.integers(0, 2, 24))
    b = bundle.open(bundle.build(model, ds, tmp_path / "same", batch_size=8, sample=4))
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    h = tr.get("h", layer=-1, direction="fwd")
    ref = tj.state_norms(h, ds.lengths, ids=b.ids)
    got = b.norms()
    assert list(got["seq"]) == list(ref["seq"]) and list(got["step"]) == list(ref["step"])
    _close(got[["sum_abs", "step_change"]], ref[["sum_abs", "step_change"]])
    for method in b.methods:
        _close(b.scores(method), rv.contributions(model, ds.X, method, ds.lengths, device="cpu"))
    valid = tj.valid_mask(ds.lengths, 12)
    _close(b.steps("frac_saturated"), np.where(valid, (np.abs(h) >= 0.9).mean(axis=2), np.nan))
    paths = b.paths()
    ref_paths, _ = tj.pca_paths(h, ds.lengths, pca=b.pca, ids=b.ids)
    assert list(paths["seq"]) == list(ref_paths["seq"]) and list(paths["step"]) == list(ref_paths["step"])
    _close(paths[["pc1", "pc2"]], ref_paths[["pc1", "pc2"]], 1e-4)


def _choose_sample_reference(tbl, size, seed=0):
    """The sample's rule written with pandas (the build's rule before it was written with numpy):
    rows sorted, cells "true class|outcome" (or predicted class) in sorted order, each cell's rows
    shuffled once in that order, then taken round robin."""
    keys = [c for c in ("true_class", "outcome") if c in tbl.column_names] or \
           [c for c in ("predicted_class",) if c in tbl.column_names]
    df = tbl.select(["row"] + keys).to_pandas().sort_values("row", kind="stable")
    if size >= len(df):
        return df["row"].to_numpy(np.int64)
    rng = np.random.default_rng(seed)
    cell = pd.Series("all", index=df.index)
    if keys:
        cell = df[keys[0]].astype(str)
        for k in keys[1:]:
            cell = cell + "|" + df[k].astype(str)
    pools = [rng.permutation(g["row"].to_numpy()) for _, g in df.groupby(cell.to_numpy(), sort=True)]
    picked, i = [], 0
    while len(picked) < size:
        for pool in pools:
            if i < len(pool) and len(picked) < size:
                picked.append(int(pool[i]))
        i += 1
    return np.sort(np.asarray(picked, dtype=np.int64))


def test_the_sample_is_the_round_robin_over_cells_written_with_pandas():
    import pyarrow as pa

    from rnnviz_core.bundle_build import _choose_sample

    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(1, 300))
        cols = {"row": pa.array(rng.permutation(n) + 1000)}
        if trial % 3 == 0:
            cols["true_class"] = pa.array(rng.choice(["cat", "dog", "Ému", "ant"], n))
            cols["outcome"] = pa.array(rng.choice(["correct", "wrong"], n))
        elif trial % 3 == 1:
            cols["predicted_class"] = pa.array(rng.choice(["0", "1", "10", "2"], n))
        tbl = pa.table(cols)
        if n > 2:   # parts of a build arrive as chunks
            tbl = pa.concat_tables([tbl.slice(0, n // 2), tbl.slice(n // 2)])
        for size in (1, 5, 64, n, n + 3):
            assert list(_choose_sample(tbl, size)) == list(_choose_sample_reference(tbl, size)), (trial, size)


def test_columns_kept_for_every_sequence_share_no_memory_with_the_block(race, tmp_path):
    """A local build feeds each block's table to the after-pass sums as it is made
    (bundle_build._AfterPass.add(table, path)); the few columns it keeps of every sequence for the
    comparisons are read back from the part's file after the pass, not held from the block's
    table: no kept buffer lies inside a buffer of the block's table (numpy's arrays, freed with the
    block). Holding the block's own buffers grew the process by about a block's states per block
    (6.7 GB at 1M sequences), and holding copies of them through the pass still raised its peak.
    The kept values are the block's, and the saturation curves are those of the file's part."""
    from rnnviz_core import bundle_build as bd
    from rnnviz_core import bundle_engines as be
    from rnnviz_core import bundle_fit as bf
    from rnnviz_core import bundle_progress as bp
    from rnnviz_core.bundle_blocks import Source
    from rnnviz_core.bundle_format import fitted_pca

    model, ds = race
    src = Source(ds, 40)
    opts = {"methods": ["grad_norm", "input_x_grad"], "method_options": {}, "threshold": 0.9, "low": 0.1,
            "high": 0.9, "levels": [0.1, 0.5], "device": "cpu", "batch_size": 40}
    worker = be.Worker(model, opts, src.meta)
    worker.pca = fitted_pca(bf.fit(src, worker, be.block_arrays, be.pca_from_moments)["pca"])
    made = worker(next(iter(src.tables())))
    path = tmp_path / "part-00000.parquet"
    bp.write_part(made, path)
    after = bd._AfterPass(int(src.meta["max_length"]), opts["methods"])
    after.add(made, path)
    groupings, _, kept = after.finish()
    from_file = bd._AfterPass(int(src.meta["max_length"]), opts["methods"])
    from_file.add(path)
    ref_groupings, _, ref_kept = from_file.finish()
    assert kept.equals(ref_kept)
    got, ref = groupings.finish()[0], ref_groupings.finish()[0]
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in got)
    assert {"row", "loss", "confidence", "decision_step", "outcome"} <= set(kept.column_names)
    ranges = [(b.address, b.address + b.size) for col in made.columns for ch in col.chunks
              for b in ch.buffers() if b is not None and b.size]
    for name in kept.column_names:
        assert kept[name].to_pylist() == made[name].to_pylist(), name
        for ch in kept[name].chunks:
            for b in ch.buffers():
                if b is not None and b.size:
                    assert not any(lo <= b.address < hi for lo, hi in ranges), name
