"""Computation cached under the source's content hashes (the loaded model's and data's, or the
open analysis bundle's).

Large arguments (model, dataset, trace) are not hashed by Streamlit: the cache key is the
loaded context's digest, the device, a caller-given ``key`` and the small keyword options.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from rnnviz_app.sources.context import loaded
from rnnviz_app.state.hashing import digest


def source_key() -> str:
    """The key of the source this run shows (:attr:`rnnviz_app.sources.source.BundleSource.key` /
    :attr:`~rnnviz_app.sources.source.LiveSource.key`): the open analysis bundle's hash, else the
    loaded model's and data's digest (:attr:`~rnnviz_app.sources.context.Loaded.key`)."""
    ref = st.session_state.get("_bundle_open")   # set by bundle_sidebar.opened on every run
    return f"bundle:{ref[0]}" if ref else loaded().key


def _cache_key(fn: Callable[..., Any], key: tuple, kwargs: dict) -> tuple[str, str]:
    name = f"{fn.__module__}.{fn.__qualname__}"
    return name, digest(name, source_key(), key, sorted((k, repr(v)) for k, v in kwargs.items()))


@st.cache_data(max_entries=48, show_spinner=False)
def _cached_call(name: str, key: str, _fn, _args, _kwargs):
    return _fn(*_args, **_kwargs)


def compute(fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` cached under the loaded model/data content hashes.

    Large arguments (model, dataset, trace) are not hashed by Streamlit; the cache key is the
    loaded model's and data's SHA-256, the device, ``key`` (anything else the inputs depend on)
    and the small keyword options.
    """
    name, k = _cache_key(fn, key, kwargs)
    return _cached_call(name, k, fn, args, kwargs)


@st.cache_resource(max_entries=12, show_spinner=False)
def _shared_call(name: str, key: str, _fn, _args, _kwargs):
    return _fn(*_args, **_kwargs)


def shared(fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """Like :func:`compute` for results that cannot be copied cheaply (a Trace): one shared
    object per content hash, never mutated by the app."""
    name, k = _cache_key(fn, key, kwargs)
    return _shared_call(name, k, fn, args, kwargs)


@st.cache_resource
def _seen_keys() -> set:
    return set()


def compute_status(label: str, fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """:func:`compute`, showing ``label`` in an ``st.status`` box while it is computed for the
    first time in this server (a cached result appears without the box)."""
    _, ck = _cache_key(fn, key, kwargs)
    if ck in _seen_keys():
        return compute(fn, *args, key=key, **kwargs)
    with st.status(label, expanded=False) as box:
        out = compute(fn, *args, key=key, **kwargs)
        box.update(label=label.rstrip("…") + ": done.", state="complete")
    _seen_keys().add(ck)
    return out
