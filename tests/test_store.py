"""The upload store keeps files under their content hash, bounded in size, with no listing."""
import hashlib
import os
import time

import pytest

from rnnviz_core.errors import InputError
from rnnviz_core.store import UploadStore, content_hash


def test_put_get_roundtrip_keeps_bytes_and_name(tmp_path):
    store = UploadStore(tmp_path / "s", max_bytes=10_000)
    digest = store.put(b"hello model", name="/some/dir/m.safetensors")
    assert digest == hashlib.sha256(b"hello model").hexdigest()
    assert len(digest) == 64
    data, name = store.get(digest)
    assert data == b"hello model"
    assert name == "m.safetensors"  # directories dropped
    assert digest in store


def test_same_content_same_hash_stored_once(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10_000)
    a = store.put(b"x" * 100, name="a.csv")
    b = store.put(b"x" * 100, name="b.csv")
    assert a == b
    assert store.total_bytes() == 100


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "ABC", "g" * 64, "a" * 63, None, 5])
def test_malformed_or_unknown_hash_is_keyerror(tmp_path, bad):
    store = UploadStore(tmp_path, max_bytes=10_000)
    store.put(b"data")
    with pytest.raises(KeyError):
        store.get(bad)
    assert bad not in store


def test_unknown_wellformed_hash_is_keyerror(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10_000)
    with pytest.raises(KeyError):
        store.get(content_hash(b"never stored"))


def test_evicts_least_recently_used_to_stay_under_bound(tmp_path):
    store = UploadStore(tmp_path, max_bytes=250)
    old = store.put(b"a" * 100)
    time.sleep(0.01)
    mid = store.put(b"b" * 100)
    time.sleep(0.01)
    store.get(old)  # old is now the most recently used
    time.sleep(0.01)
    new = store.put(b"c" * 100)
    assert store.total_bytes() <= 250
    assert old in store and new in store
    assert mid not in store
    with pytest.raises(KeyError):
        store.get(mid)


def test_file_larger_than_bound_is_refused_with_plain_message(tmp_path):
    store = UploadStore(tmp_path, max_bytes=50)
    with pytest.raises(InputError, match="MB"):
        store.put(b"z" * 51)
    assert store.total_bytes() == 0


def test_tampered_file_is_not_served(tmp_path):
    store = UploadStore(tmp_path, max_bytes=1000)
    digest = store.put(b"original")
    (tmp_path / digest).write_bytes(b"changed!")
    with pytest.raises(KeyError):
        store.get(digest)
    assert digest not in store


def test_no_listing_api_and_private_folder(tmp_path):
    store = UploadStore(tmp_path / "new", max_bytes=1000)
    public = [n for n in dir(store) if not n.startswith("_")]
    assert not any(word in n for n in public for word in ("list", "keys", "items", "iter"))
    assert not hasattr(store, "__iter__")
    assert oct(os.stat(tmp_path / "new").st_mode & 0o777) == oct(0o700)


def test_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "env"))
    store = UploadStore(max_bytes=1000)
    assert store.folder == tmp_path / "env"
    store.put(b"q")
    assert (tmp_path / "env").is_dir()
