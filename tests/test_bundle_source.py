"""The app's bundle loader: by upload, by hash, by the host's path; the dataset view equals the data."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_app.sources import bundle_source as bs
from rnnviz_app.sources import uploads
from rnnviz_core import bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(60))
    d = tmp_path_factory.mktemp("src")
    path = bundle.build(model, ds, d / "race.rnnviz", batch_size=32, sample=6)
    return path, ds


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    uploads.upload_store.clear()
    bs.opened_bundles.clear()
    yield
    uploads.upload_store.clear()


class _Upload:
    def __init__(self, path):
        self.name, self._data = path.name, path.read_bytes()

    def getvalue(self):
        return self._data


def test_upload_then_open_by_hash(built, store):
    path, ds = built
    dig, b = bs.bundle_from_upload(_Upload(path))
    assert dig == hashlib.sha256(path.read_bytes()).hexdigest()
    again = bs.bundle_by_hash(dig)
    assert np.array_equal(again.scores("grad_norm"), b.scores("grad_norm"), equal_nan=True)


def test_published_bundle_by_hash_and_host_path(built, store, tmp_path, monkeypatch):
    path, _ = built
    dig = hashlib.sha256(path.read_bytes()).hexdigest()
    pub = tmp_path / "pub"
    pub.mkdir()
    shutil.copy(path, pub / f"{dig}.rnnviz")
    monkeypatch.setenv(bs.BUNDLE_DIR_ENV, str(pub))
    assert bs.bundle_by_hash(dig).n_sequences == 60
    with pytest.raises(bundle.BundleError, match="no longer has the analysis bundle"):
        bs.bundle_by_hash("0" * 64)
    with pytest.raises(bundle.BundleError, match="does not name an analysis bundle"):
        bs.bundle_by_hash("../../etc/passwd")
    monkeypatch.setenv(bs.BUNDLE_ENV, str(path))
    got, b = bs.host_bundle()
    assert got == dig and b.n_sequences == 60


def test_dataset_view_is_the_data(built):
    path, ds = built
    view = bs.bundle_data(bundle.open(path))
    assert list(view.ids) == list(ds.ids)
    assert np.array_equal(view.lengths, ds.lengths)
    assert np.array_equal(view.y, ds.y) and view.class_names == ds.class_names
    assert list(view.groups.columns) == list(ds.groups.columns)
    for c in ds.groups.columns:
        assert list(view.groups[c]) == list(ds.groups[c])
    assert view.feature_names == ds.feature_names


def test_views_that_need_the_model_say_so_plainly(built):
    path, ds = built
    b = bundle.open(path)
    assert bs.method_message(b, "grad_norm") is None
    msg = bs.method_message(b, "integrated_gradients")
    assert "does not include" in msg and "under Method" in msg and "(" not in msg
    rows, states = bs.sample_states(b, "z")
    ref = rv.trace(rv.demos.load_demo("race")[0], ds.X, ds.lengths, gates=True, device="cpu")["z"][rows]
    assert np.allclose(states, ref[:, : states.shape[1]], atol=1e-6, equal_nan=True)
    assert "6 of its 60 sequences" in bs.sequence_message(b)
    assert "0.9" in bs.threshold_message(b)
    assert all("does not include" in m for m in bs.NOT_INCLUDED.values())


# ----------------------------------------------------------------------------- fair storage (issue 19)
def _variants(path, n, tmp_path):
    """``n`` valid bundles of (nearly) one size that differ in their bytes (the manifest's build note)."""
    import json
    import zipfile

    out = []
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    for k in range(n):
        m = json.loads(members["manifest.json"])
        m["build"]["note"] = f"variant {k:03d}"
        p = tmp_path / f"v{k}.rnnviz"
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("manifest.json", json.dumps(m))
            for name, data in members.items():
                if name != "manifest.json":
                    zf.writestr(name, data)
        out.append(p)
    return out


def test_two_visitors_a_small_store_each_keeps_their_own(built, tmp_path, monkeypatch):
    """Visitor B uploading many bundles evicts B's own older bundles, never A's (A's link keeps
    working); each upload is kept under its uploader, so the per-visitor quota applies."""
    from rnnviz_core.store import UploadStore

    path, _ = built
    files = _variants(path, 5, tmp_path)
    size = max(p.stat().st_size for p in files)
    store = UploadStore(tmp_path / "up", max_bytes=3 * size + 1000, owner_bytes=2 * size + 500)
    monkeypatch.setattr(uploads, "upload_store", lambda: store)
    who = {"now": "A"}
    monkeypatch.setattr(uploads, "session_owner", lambda: who["now"])
    bs.opened_bundles().clear()
    dig_a, _ = bs.bundle_from_upload(_Upload(files[0]))
    who["now"] = "B"
    digs_b = [bs.bundle_from_upload(_Upload(p))[0] for p in files[1:]]
    assert dig_a in store                                   # A's bundle survives B's four uploads
    assert store.owner_total("A") == files[0].stat().st_size
    assert store.owner_total("B") <= 2 * size + 500         # B is held to the per-visitor quota ...
    assert digs_b[-1] in store and digs_b[0] not in store   # ... by losing B's own oldest first
    bs.opened_bundles().clear()                             # A's link, opened afresh from the store
    assert bs.bundle_by_hash(dig_a).n_sequences == 60


def test_a_refused_bundle_is_not_stored(built, tmp_path, monkeypatch):
    from rnnviz_core.store import UploadStore

    store = UploadStore(tmp_path / "up", max_bytes=10**8)
    monkeypatch.setattr(uploads, "upload_store", lambda: store)
    monkeypatch.setattr(uploads, "session_owner", lambda: "A")
    bad = tmp_path / "bad.rnnviz"
    bad.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(bundle.BundleError):
        bs.bundle_from_upload(_Upload(bad))
    assert store.total_bytes() == 0


def test_opened_bundles_are_bounded_by_bytes_not_count():
    from rnnviz_core.bundle_cache import BundleCache

    class Fake:
        def __init__(self, n):
            self.memory_bytes = n

    cache = BundleCache(max_bytes=1000)
    for k, n in enumerate([300, 300, 300]):
        cache.put(f"b{k}", Fake(n))
    assert cache.keys() == ["b0", "b1", "b2"] and cache.held_bytes() == 900
    cache.get("b0")                                   # b0 used again: b1 is now the oldest
    cache.put("big", Fake(600))                       # 900 + 600 > 1000: b1, then b2 go
    assert cache.keys() == ["b0", "big"] and cache.held_bytes() == 900
    cache.put("huge", Fake(1001))                     # larger than the bound: handed out, not kept
    assert "huge" not in cache.keys() and cache.held_bytes() == 900
    # one opened 60-sequence bundle counts its file bytes and what its reads take
    from rnnviz_core.bundle_cache import bundle_bytes
    assert bundle_bytes(Fake(5)) == 5
