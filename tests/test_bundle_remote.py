"""A bundle folder behind a URL (issue 21): served over HTTP with byte ranges and from an S3 store
(moto's server), opened lazily, read by ranges only, and equal to the same bundle opened from disk;
plain sentences for an unreachable address, a missing manifest, a folder that is no bundle, a
server without ranges; a URL from a link or an upload is never opened."""
from __future__ import annotations

import http.server
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_core import bundle
from rnnviz_core.errors import BundleError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(400))
    d = tmp_path_factory.mktemp("remote")
    folder = bundle.build(model, ds, d / "b", batch_size=100, sample=4)   # 4 parts
    return Path(folder)


def _handler(root: Path, log: dict, ranges: bool = True):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):   # quiet
            pass

        def _file(self):
            log["requests"] += 1
            p = (root / self.path.lstrip("/").split("?")[0]).resolve()
            if root.resolve() not in p.parents or not p.is_file():
                self.send_error(404)
                return None
            return p

        def do_HEAD(self):
            p = self._file()
            if p is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(p.stat().st_size))
                self.end_headers()

        def do_GET(self):
            p = self._file()
            if p is None:
                return
            data = p.read_bytes()
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
            if ranges and m:
                a, b = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
                body = data[a:b + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log["bytes"] += len(body)
    return H


@pytest.fixture()
def serve():
    servers = []

    def start(root: Path, ranges: bool = True):
        log = {"bytes": 0, "requests": 0}
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, log, ranges))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/", log

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _total(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _same_views(remote, local):
    """What the lazy views read, equal between a remote and a local open of one bundle."""
    rows = [399, 3, 150]
    cols = ["id", "confidence", "predicted_class", "length"]
    a, b = remote.lazy().rows(rows, cols), local.lazy().rows(rows, cols)
    assert list(a["id"]) == list(b["id"]) and list(a["predicted_class"]) == list(b["predicted_class"])
    np.testing.assert_array_equal(a["confidence"].to_numpy(), b["confidence"].to_numpy())
    for m in remote.methods:
        np.testing.assert_array_equal(remote.lazy().steps(rows, f"score:{m}"), local.lazy().steps(rows, f"score:{m}"))
        x, y = remote.mean_abs_score(m, "predicted_class"), local.mean_abs_score(m, "predicted_class")
        np.testing.assert_array_equal(x.to_numpy(), y.to_numpy())
    x, y = remote.histogram("confidence", "all"), local.histogram("confidence", "all")
    np.testing.assert_array_equal(x.to_numpy(), y.to_numpy())
    assert remote.lazy().find_ids("1", limit=5).equals(local.lazy().find_ids("1", limit=5))


def test_http_bundle_is_read_by_ranges_and_equals_the_local_one(built, serve):
    url, log = serve(built)
    local = bundle.open(built, read=False)
    remote = bundle.open(url, read=False)
    assert remote.n_sequences == local.n_sequences == 400
    assert getattr(remote._files, "remote", False)
    # the open (manifest, headers, footers), two rows, one row's scores, one aggregate: a fraction
    # of the bundle (here a row group is a quarter of a part; at scale it is far less)
    remote.lazy().rows([3, 150], ["confidence"])
    remote.lazy().steps([3], "score:grad_norm")
    remote.mean_abs_score("grad_norm", "all")
    total = _total(built)
    assert 0 < log["bytes"] < total / 3, (log["bytes"], total)
    _same_views(remote, local)

    # read whole (the eager open), the table equals the local one, and each file is checked by hash
    whole = bundle.open(url)
    np.testing.assert_array_equal(whole.scores("grad_norm"), bundle.open(built).scores("grad_norm"))


def test_http_bundle_changed_on_the_server_is_refused_when_read_whole(built, serve, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(built, copy)
    p = copy / "aggregates.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF          # same size, different bytes: only the hash can tell
    p.write_bytes(bytes(data))
    url, _ = serve(copy)
    b = bundle.open(url, read=False)
    with pytest.raises(BundleError, match="does not match the hash"):
        b.mean_abs_score(b.methods[0], "all")


def test_plain_sentences_for_bad_addresses(built, serve, tmp_path):
    with socket.socket() as s:           # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BundleError, match="cannot be reached"):
        bundle.open(f"http://127.0.0.1:{port}/b/", read=False)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    url, _ = serve(empty)
    with pytest.raises(BundleError, match="it has no manifest.json"):
        bundle.open(url, read=False)

    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "a web app"}')
    url, _ = serve(other)
    with pytest.raises(BundleError, match="not an rnnviz bundle"):
        bundle.open(url, read=False)

    url, log = serve(built, ranges=False)
    with pytest.raises(BundleError, match="does not serve byte ranges"):
        bundle.open(url, read=False)
    assert log["bytes"] < _total(built)   # refused at the first reply, not downloaded

    with pytest.raises(BundleError, match="not a bundle address"):
        bundle.open("ftp://example.org/b", read=False)
    with pytest.raises(BundleError, match="There is no bundle at"):
        bundle.open((tmp_path / "nothing").as_uri(), read=False)
    assert bundle.open(built.as_uri(), read=False).n_sequences == 400   # file:// is a path


def test_a_url_from_a_link_or_an_upload_is_never_opened(built, serve, tmp_path, monkeypatch):
    from rnnviz_app.sources import bundle_source as bs
    from rnnviz_app.sources import uploads

    url, log = serve(built)
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RNNVIZ_BUNDLE_DIR", str(tmp_path))
    uploads.upload_store.clear()
    bs.opened_bundles.clear()
    for link in (url, url + "manifest.json", "s3://bucket/b", f"file://{built}"):
        with pytest.raises(BundleError, match="does not name an analysis bundle"):
            bs.bundle_by_hash(link)

    class Up:
        name = "b.rnnviz"

        def getvalue(self):
            return url.encode()

    with pytest.raises(BundleError, match="not an rnnviz bundle"):
        bs.bundle_from_upload(Up())
    assert log["requests"] == 0

    # the host's own setting is opened (lazily), under its manifest's hash
    monkeypatch.setenv("RNNVIZ_BUNDLE", url)
    dig, b = bs.host_bundle()
    assert b.n_sequences == 400 and len(dig) == 64 and log["requests"] > 0
    uploads.upload_store.clear()
    bs.opened_bundles.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_bundle_is_read_by_ranges_and_equals_the_local_one(built, monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    from pyarrow import fs

    port = _free_port()
    try:
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
    except Exception as e:   # pragma: no cover - only where moto's server cannot start
        pytest.skip(f"moto's S3 server could not start here: {e}")
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        monkeypatch.setenv("RNNVIZ_S3_ENDPOINT", f"http://127.0.0.1:{port}")
        s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                             access_key="testing", secret_key="testing", allow_bucket_creation=True)
        s3.create_dir("rnnviz-test")
        fs.copy_files(str(built), "rnnviz-test/runs/b", source_filesystem=fs.LocalFileSystem(),
                      destination_filesystem=s3)

        from rnnviz_core.bundle_remote import RemoteFiles

        served = []
        real = RemoteFiles.read_range

        def counting(self, name, start, n):
            served.append(n)
            return real(self, name, start, n)

        monkeypatch.setattr(RemoteFiles, "read_range", counting)
        remote = bundle.open("s3://rnnviz-test/runs/b", read=False)
        local = bundle.open(built, read=False)
        remote.lazy().rows([3, 150], ["confidence"])
        remote.lazy().steps([3], "score:grad_norm")
        remote.mean_abs_score("grad_norm", "all")
        assert 0 < sum(served) < _total(built) / 3, (sum(served), _total(built))
        _same_views(remote, local)

        with pytest.raises(BundleError, match="it has no manifest.json"):
            bundle.open("s3://rnnviz-test/runs/none", read=False)
        s3.delete_file("rnnviz-test/runs/b/aggregates.safetensors")
        with pytest.raises(BundleError, match="aggregates.safetensors is missing"):
            bundle.open("s3://rnnviz-test/runs/b", read=False)
    finally:
        server.stop()


def test_rnnviz_inspect_reads_a_bundle_by_url(built, serve, capsys):
    from rnnviz_core import cli

    url, log = serve(built)
    assert cli.main(["inspect", url]) == 0
    out = capsys.readouterr().out
    assert "400 sequences" in out and "publish it as" not in out   # a file's hash line: local files only
    assert 0 < log["bytes"] < _total(built) / 3
