"""The app's bundle loader: by upload, by hash, by the host's path; the dataset view equals the data."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_app import bundle_source as bs
from rnnviz_app import uploads
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
    bs._open_bytes.clear()
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
