"""The ``rnnviz`` command line: precompute an analysis bundle where the model lives.

::

    rnnviz precompute --model-factory my_pkg.models:build --weights w.pt --data d.parquet --out out.rnnviz
    rnnviz precompute --model model.safetensors --data d.csv --out out.rnnviz --engine ray --methods grad_norm occlusion
    rnnviz inspect out.rnnviz
    rnnviz app --model-factory my_pkg.models:build --weights w.pt --data d.csv [--port 8501]

``--model-factory`` imports and runs your own code (the module is looked up from ``--app-dir``,
default: the current folder), which is why it exists only here, on your machine, and never in
the hosted app (``rnnviz app`` hands it to the dashboard it starts through a private launch file,
see :mod:`rnnviz_core.launch`). The bundle it writes holds numbers only, so the app can show it without your code.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _methods(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out += [m.strip() for m in v.split(",") if m.strip()]
    return out


def _parser() -> argparse.ArgumentParser:
    from .contributions import METHODS

    p = argparse.ArgumentParser(prog="rnnviz", description="rnnviz on the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    pre = sub.add_parser(
        "precompute", help="compute every analysis of a model on a dataset and write a bundle",
        description="Compute the analyses the rnnviz pages show and write them as an analysis bundle "
                    "(data only: Parquet, safetensors and a manifest) that the app can open without the model.")
    src = pre.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a model file rnnviz can load (.safetensors, or a state dict "
                                                "of the built-in family)")
    src.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                     help="your own code: a function taking no arguments that returns the nn.Module")
    pre.add_argument("--weights", type=Path, help="weights for --model-factory (.safetensors or a state-dict .pt)")
    pre.add_argument("--app-dir", type=Path, default=Path("."),
                     help="folder to import --model-factory's module from (default: the current folder)")
    pre.add_argument("--data", type=Path, required=True,
                     help="CSV/Parquet long form, NPZ or .ts (as the app reads them), or a sequence file "
                          "written by rnnviz_core.bundle.write_sequences (streamed in blocks)")
    pre.add_argument("--id-col")
    pre.add_argument("--order-col")
    pre.add_argument("--label-col", help="'' for no labels")
    pre.add_argument("--feature-cols", nargs="+")
    pre.add_argument("--group-cols", nargs="+")
    pre.add_argument("--missing", choices=["error", "fill", "drop"], default="error")
    pre.add_argument("--out", type=Path, required=True,
                     help="the bundle: a file ending in .rnnviz (one uncompressed zip) or a folder")
    pre.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    pre.add_argument("--methods", nargs="+", metavar="METHOD",
                     help=f"contribution methods (default: grad_norm input_x_grad); any of {', '.join(METHODS)}")
    pre.add_argument("--ig-steps", type=int, help="fixed step count for integrated_gradients (default: refine to 1%%)")
    pre.add_argument("--engine", choices=["local", "ray"], default="local")
    pre.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    pre.add_argument("--concurrency", type=int, help="Ray actors (default: one per CPU, or per GPU)")
    pre.add_argument("--batch-size", type=int, default=256, help="sequences per block (default 256)")
    pre.add_argument("--sample", type=int, default=64, help="sequences with full traces (default 64)")
    pre.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    pre.add_argument("--resume", action="store_true",
                     help="reuse the blocks a stopped run of this same build finished (local or Ray) "
                          "(kept in .<out>.rnnviz-build beside --out)")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _app_parser(sub)
    ins = sub.add_parser("inspect", help="check a bundle and say what it holds")
    ins.add_argument("bundle", help="a bundle folder or .rnnviz file, or a folder's file://, http(s):// or s3:// URL")
    return p


def _app_parser(sub) -> None:
    app = sub.add_parser(
        "app", help="start the dashboard on a model of your own class",
        description="Start the rnnviz dashboard (streamlit run) on your own model class, built by your own code, "
                    "with every page and view. Local use only: the dashboard runs your factory.")
    app.add_argument("--model-factory", metavar="MODULE:FUNCTION", required=True,
                     help="your own code: a function taking no arguments that returns the nn.Module")
    app.add_argument("--weights", type=Path, help="weights for the factory's model (.safetensors or a state-dict .pt)")
    app.add_argument("--data", type=Path, required=True,
                     help="CSV/Parquet long form, NPZ or .ts (as the app reads them)")
    app.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    app.add_argument("--app-dir", type=Path, default=Path("."),
                     help="folder to import --model-factory's module from (default: the current folder)")
    app.add_argument("--id-col")
    app.add_argument("--order-col")
    app.add_argument("--label-col", help="'' for no labels")
    app.add_argument("--feature-cols", nargs="+")
    app.add_argument("--group-cols", nargs="+")
    app.add_argument("--missing", choices=["error", "fill", "drop"], default="error")


def _app(a: argparse.Namespace) -> int:
    """Check the factory, the weights and the data here (plain errors, exit status 2), then serve
    the dashboard on them until interrupted."""
    from . import launch

    app_dir = a.app_dir.resolve()
    opts = {k: v for k, v in (("id_col", a.id_col), ("order_col", a.order_col), ("label_col", a.label_col),
                              ("feature_cols", a.feature_cols), ("group_cols", a.group_cols)) if v is not None}
    opts["missing"] = a.missing
    spec = {"kind": "factory", "factory": a.model_factory, "app_dir": str(app_dir),
            "weights": str(a.weights.resolve()) if a.weights else None, "data": str(a.data.resolve()),
            "data_options": opts}
    folder = launch.private_dir()
    path = launch.write_launch(folder, spec)
    model, data, mname, dname = launch.load_launch(path, spec)   # the same reading the app does
    print(f"rnnviz: {mname} on {dname} ({len(data)} sequences); starting the dashboard…", flush=True)
    proc, url = launch.start(path, a.port, extra_path=[str(app_dir)], log=None)
    print(f"rnnviz: the dashboard is at {url} (Ctrl+C stops it)", flush=True)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # stopped by its parent: stop the server too
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                proc.kill()


def _precompute(a: argparse.Namespace) -> int:
    from . import bundle
    from .models import load_model, load_model_from_factory

    app_dir = str(a.app_dir.resolve())
    if a.model_factory:
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        model = load_model_from_factory(a.model_factory, a.weights)
        prov = {"model_factory": a.model_factory}
        if a.weights:
            prov.update(weights_file=a.weights.name, weights_file_sha256=_sha256(a.weights))
    else:
        if a.weights:
            print("rnnviz: --weights goes with --model-factory; a --model file holds its own weights.",
                  file=sys.stderr)
            return 2
        model = load_model(a.model)
        prov = {"model_file": a.model.name, "model_file_sha256": _sha256(a.model)}
    data = _read_data(a, model)
    prov.update(data_file=a.data.name, data_file_sha256=_sha256(a.data))
    methods = _methods(a.methods) or list(bundle.DEFAULT_METHODS)
    opts = {}
    if a.ig_steps:
        opts["integrated_gradients"] = {"steps": a.ig_steps}
        if "integrated_gradients" not in methods:
            methods.append("integrated_gradients")
    if a.engine == "ray":
        _start_ray(a.ray_address, app_dir)
    out = bundle.build(model, data, a.out, methods=methods, method_options=opts, engine=a.engine,
                       batch_size=a.batch_size, sample=a.sample, device=a.device, overwrite=a.overwrite,
                       concurrency=a.concurrency, provenance=prov, resume=a.resume,
                       progress=not a.no_progress)
    b = bundle.open(out, read=False, max_memory=2**62)   # checked, not read into memory
    print(f"Wrote {out}: {b.n_sequences} sequences, methods {', '.join(b.methods)}, "
          f"{sum(e['bytes'] for e in b.manifest['files'].values()) / 1e6:.1f} MB.")
    return 0


def _read_data(a: argparse.Namespace, model):
    """A SequenceDataset, or the path of a sequence file (streamed by the builder)."""
    from .data import load_data

    if a.data.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq
        try:
            if b"rnnviz" in (pq.read_schema(a.data).metadata or {}):
                return a.data
        except Exception:
            pass
    return load_data(a.data, id_col=a.id_col, order_col=a.order_col, label_col=a.label_col,
                     feature_cols=a.feature_cols, group_cols=a.group_cols, missing=a.missing,
                     class_names=getattr(model, "class_names", None) or None)


def _start_ray(address: str | None, app_dir: str) -> None:
    try:
        import ray
    except ImportError:
        from .errors import InputError
        raise InputError("--engine ray needs Ray Data: pip install 'rnnviz[ray]'.") from None
    # workers import the model's class by name: give them the same import path as this process
    path = os.pathsep.join([app_dir] + [p for p in sys.path if p and os.path.isdir(p)])
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})


def _inspect(a: argparse.Namespace) -> int:
    from . import bundle

    from .bundle_remote import is_url

    if not is_url(a.bundle):
        a.bundle = Path(a.bundle)
    b = bundle.open(a.bundle, read=False, max_memory=2**62)   # checked, not read into memory
    m = b.manifest
    print(f"{a.bundle}: rnnviz bundle, format version {m['format_version']} (rnnviz {m['rnnviz_version']})")
    print(f"  model {m['model']['class']} sha256 {m['model']['sha256'][:16]}…")
    print(f"  data  {m['data']['name'] or '(unnamed)'}: {b.n_sequences} sequences, up to {b.max_length} steps, "
          f"{m['data']['n_features']} feature(s)")
    print(f"  state {m['analysis']['state']} ({m['analysis']['units']} units); methods: {', '.join(b.methods)}")
    print(f"  full traces for {m['analysis']['sample']['size']} sequences; built with engine "
          f"{m['build']['engine']}")
    if isinstance(a.bundle, Path) and a.bundle.is_file():
        print(f"  sha256 {_sha256(a.bundle)} (publish it as <sha256>.rnnviz in the app's RNNVIZ_BUNDLE_DIR "
              f"to let a link name it)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnviz`` console script; returns the exit status."""
    from .errors import RnnvizError

    a = _parser().parse_args(argv)
    try:
        if a.command == "app":
            return _app(a)
        return _precompute(a) if a.command == "precompute" else _inspect(a)
    except RnnvizError as exc:
        print(f"rnnviz: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
