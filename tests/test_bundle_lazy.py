"""Lazy reading of a bundle (ids, rows, columns through range reads) and the aggregates computed
at build time, against the live model's analyses (``rv.contributions``, ``sequence_table``) and
numpy's own histogram."""
from __future__ import annotations

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_core import bundle
from rnnviz_core import saturation as sa
from rnnviz_core.groups import sequence_table

TOL = 1e-5


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(130))
    d = tmp_path_factory.mktemp("lazy")
    folder = bundle.build(model, ds, d / "b", batch_size=30, sample=6)          # 5 parts, the last one short
    single = bundle.build(model, ds, d / "b.rnnviz", batch_size=30, sample=6)
    tr = rv.trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    h = tr.get("h", layer=-1, direction="fwd")
    table = sequence_table(tr.logits, ds.y, states=h, lengths=tr.lengths, class_names=ds.class_names)
    scores = {m: rv.contributions(model, ds.X, m, ds.lengths, device="cpu") for m in bundle.DEFAULT_METHODS}
    sat = sa.saturation_by_sequence(h, tr.lengths)
    return folder, single, ds, table, scores, sat


@pytest.mark.parametrize("which", [0, 1], ids=["folder", "single file"])
def test_lazy_reads_match_the_live_model_and_read_little(built, which, monkeypatch):
    path, ds, table, scores = built[which], built[2], built[3], built[4]
    b = bundle.open(path, read=False)
    t = b.lazy()
    ids = [str(i) for i in ds.ids]
    needle = ids[17][-3:]
    want = [(i, s) for i, s in enumerate(ids) if needle.lower() in s.lower()]
    got = t.find_ids(needle, limit=1000)
    assert list(zip(got["seq"], got["id"])) == want
    assert len(t.find_ids(needle, limit=1)) == 1

    rows = [129, 3, 64]
    frame = t.rows(rows, ["id", "confidence", "predicted_class", "length"])
    assert list(frame["seq"]) == rows and list(frame["id"]) == [ids[r] for r in rows]
    np.testing.assert_allclose(frame["confidence"], table["confidence"].to_numpy()[rows], atol=TOL)
    assert list(frame["predicted_class"]) == [str(v) for v in table["predicted_class"].to_numpy()[rows]]
    for m, ref in scores.items():
        got = t.steps(rows, f"score:{m}")
        assert np.array_equal(np.isnan(got), np.isnan(ref[rows]))
        assert np.nanmax(np.abs(got - ref[rows])) <= TOL
    np.testing.assert_allclose(t.column("confidence"), table["confidence"].to_numpy(), atol=TOL)

    # two rows of one part: only that part's footer and row group are read, not the whole table
    read = []
    real = type(b._files).read_range

    def counting(self, name, start, n):
        read.append(n)
        return real(self, name, start, n)

    monkeypatch.setattr(type(b._files), "read_range", counting)
    t2 = b.lazy()
    t2.rows([31, 32], ["confidence"])
    parts = sum(e["bytes"] for k, e in b.manifest["files"].items() if k.startswith("sequences/"))
    assert 0 < sum(read) < parts / 3, (sum(read), parts)


def test_aggregates_equal_the_live_analyses(built):
    folder, _, ds, table, scores, sat = built
    b = bundle.open(folder)
    lens = ds.lengths
    for m, ref in scores.items():
        for by in ("all", "predicted_class", "true_class"):
            got = b.mean_abs_score(m, by)
            labels = np.full(len(lens), "all", dtype=object) if by == "all" else table[by].astype(str).to_numpy()
            for g in sorted(set(labels)):
                sel = labels == g
                with np.errstate(invalid="ignore"):
                    want = np.nanmean(np.abs(ref[sel]), axis=0)
                cnt = (~np.isnan(ref[sel])).sum(axis=0)
                part = got[got["group"] == g].set_index("step")
                steps = np.flatnonzero(cnt > 0)
                assert list(part.index) == list(steps)
                np.testing.assert_allclose(part["mean_abs"].to_numpy(), want[steps], atol=TOL)
                assert list(part["n_sequences"]) == list(cnt[steps])
    for col, ref in (("confidence", table["confidence"].to_numpy()), ("frac_saturated", sat["frac_saturated"])):
        h = b.histogram(col, "predicted_class")
        for g in sorted(set(table["predicted_class"].astype(str))):
            sel = table["predicted_class"].astype(str).to_numpy() == g
            want, _ = np.histogram(np.asarray(ref)[sel], bins=20, range=(0.0, 1.0))
            assert list(h[h["group"] == g]["count"]) == list(want)
    with pytest.raises(bundle.BundleError, match="grouped by"):
        b.mean_abs_score("grad_norm", "outcome")


def test_the_app_opens_a_bundle_lazily_and_searches_its_ids(built, monkeypatch):
    from rnnviz_app.sources import bundle_source as bs

    folder, ds = built[0], built[2]
    monkeypatch.setattr(bs, "MAX_BUNDLE_BYTES", 1000)   # far below the bundle: the lazy path has no such cap
    b = bs.open_lazy(folder)
    assert b._frame is None                               # the table was not read
    assert b.memory_bytes < bundle.open(folder, read=False).memory_bytes / 2   # less than a whole read takes
    ids = [str(i) for i in ds.ids]
    got = bs.search_ids(b, ids[40], limit=5)
    assert ids[40] in list(got["id"]) and len(got) <= 5
    assert bs.search_ids(b, "   ").empty


def test_position_aggregates_equal_the_live_pages_curves(built):
    """The Contributions page's "by position" and "by true class" curves from the build-time
    aggregates equal rankings.mean_abs_by_position on the live model's scores."""
    from rnnviz_core import bundle_aggregates as ba
    from rnnviz_core.attribution import rankings as rk

    folder, _, ds, table, scores, _ = built
    b = bundle.open(folder, read=False)
    names = np.asarray(ds.class_names, dtype=object)
    for m, ref in scores.items():
        ref = np.nan_to_num(np.asarray(ref, dtype=np.float32))
        want = rk.mean_abs_by_position(ref, relative=True, normalize=True, lengths=ds.lengths)
        got = ba.position_frame(b, m)
        assert list(got.columns) == list(want.columns)
        assert list(got["bin"]) == list(want["bin"]) and list(got["n"]) == list(want["n"])
        np.testing.assert_allclose(got["mean_abs"], want["mean_abs"], rtol=TOL)
        want = rk.mean_abs_by_group(ref, names[ds.y], lengths=ds.lengths, name="true class")
        got = ba.position_frame(b, m, "true_class")
        assert list(got.columns) == list(want.columns)
        assert list(got["true class"]) == list(want["true class"]) and list(got["n"]) == list(want["n"])
        np.testing.assert_allclose(got["mean_abs"], want["mean_abs"], rtol=TOL)
    assert ba.position_frame(b, "no_such_method") is None


@pytest.mark.parametrize("which", [0, 1], ids=["folder", "single file"])
def test_a_lazy_open_hashes_the_arrays_and_checks_parts_by_size_and_footer(built, which, tmp_path, monkeypatch):
    """A lazy open never reads a Parquet part whole (it would read every sequence to hash it), but
    still hashes every other file, and still refuses a part whose size or footer is wrong."""
    import shutil

    from rnnviz_core.bundle_files import BundleFiles

    path = built[which]
    hashed = []
    real = BundleFiles.sha256

    def spy(self, name, expected):
        hashed.append(name)
        return real(self, name, expected)

    monkeypatch.setattr(BundleFiles, "sha256", spy)
    b = bundle.open(path, read=False)
    assert hashed and not [n for n in hashed if n.startswith("sequences/")], hashed
    assert set(hashed) == {n for n in b.manifest["files"] if not n.startswith("sequences/")}
    hashed.clear()
    bundle.open(path)                        # a whole read hashes the parts too
    assert [n for n in hashed if n.startswith("sequences/")]
    monkeypatch.undo()
    if which == 1:
        return
    # a changed array is refused on a lazy open; a part cut short (its footer gone) too
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    data = bytearray((copy / "pca.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "pca.safetensors").write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match="does not match the hash"):
        bundle.open(copy, read=False)
    shutil.rmtree(copy)
    shutil.copytree(path, copy)
    part = sorted((copy / "sequences").iterdir())[0]
    raw = part.read_bytes()
    part.write_bytes(b"\0" * 8 + raw[8:-8] + b"\0" * 8)   # same size, footer magic gone
    with pytest.raises(bundle.BundleError):
        bundle.open(copy, read=False)
