"""Work a page will ask for, started in the background as soon as the loaded sequences are traced.

After an upload the start page needs only the model's outputs; the trace's gates follow in a
background thread (:func:`rnnviz_app.sources.sequences.full_trace`). Right after them, threads of the same
kind compute the Saturation page's first value spread (``page_saturation.prefetch_distribution``)
and the Contributions page's default scores (``page_contributions.prefetch_scores``: the gradient
size of every loaded step for the chosen target), the most expensive things a first visit of those
pages waits for at real sizes (seconds at 1,000 steps x 128 units). A page then takes the result,
or waits for the computation already under way instead of starting a second one. A failure here
is not shown: the page computes again and says why it fails. ``RNNVIZ_PREFETCH=0`` turns it off.

Jobs are kept per content key (model, data, device, target), a few at a time; nothing here
imports Streamlit, so a job can run outside a script run.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable

#: jobs kept (oldest dropped first); each holds one result of a few MB at most
MAX_JOBS = 8

_LOCK = threading.Lock()
_JOBS: "OrderedDict[tuple, Future]" = OrderedDict()
_CLAIMS: "dict[tuple, Claim]" = {}


def enabled() -> bool:
    """False when the host turned background work off (``RNNVIZ_PREFETCH=0``: every page then
    computes what it shows on its first visit)."""
    import os
    return os.environ.get("RNNVIZ_PREFETCH", "1").strip().lower() not in ("0", "false", "no", "off")


def start(key: tuple, fn: Callable[..., Any], *args: Any, claimable: bool = False) -> Future | None:
    """Run ``fn(*args)`` in a background thread once per ``key``; the job's future (an existing one
    when this key was started before), or None when background work is off (:func:`enabled`).
    ``claimable``: the job takes its :func:`claim` before its work, and a caller of
    :func:`result` that takes it first does the work instead."""
    if not enabled():
        return None
    with _LOCK:
        fut = _JOBS.get(key)
        if fut is not None:
            _JOBS.move_to_end(key)
            return fut
        fut = Future()
        _JOBS[key] = fut
        if claimable:
            _CLAIMS[key] = Claim()
        while len(_JOBS) > MAX_JOBS:
            old, _ = _JOBS.popitem(last=False)
            _CLAIMS.pop(old, None)

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to whoever takes the result
            fut.set_exception(e)

    # not a daemon: a daemon thread stopped inside a torch operation at interpreter exit aborts the
    # process ("terminate called without an active exception"); exit waits for the job instead
    threading.Thread(target=run, name="rnnviz-prefetch", daemon=False).start()
    return fut


class Claim:
    """The hand-over between a background job that must first wait for something (the trace's
    gates) and a page that may ask for the same result before that: whoever calls :meth:`take`
    first does the work; the other one gets False (the job then stops, the page then waits)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = False

    @property
    def taken(self) -> bool:
        return self._taken

    def take(self) -> bool:
        with self._lock:
            if self._taken:
                return False
            self._taken = True
            return True


def claim(key: tuple) -> Claim:
    """The :class:`Claim` of ``key``'s claimable job (a fresh, untaken one when there is none)."""
    with _LOCK:
        return _CLAIMS.get(key) or Claim()


def get(key: tuple) -> Future | None:
    """The job started for ``key``, or None."""
    with _LOCK:
        return _JOBS.get(key)


def result(key: tuple) -> Any | None:
    """The job's result for ``key`` (waiting for it when it is under way); None when there is no
    such job, it failed, or it had not begun its work (it then stops, and the caller computes the
    result itself instead of waiting for what the job waits for first)."""
    fut = get(key)
    if fut is None:
        return None
    with _LOCK:
        c = _CLAIMS.get(key)
    if c is not None and c.take():   # a claimable job that has not begun: it will not, the caller works
        return None
    try:
        return fut.result()
    except Exception:  # noqa: BLE001 - the caller computes again and explains its own failure
        return None


def scores_key(ctx_key: str, method: str, target: Any) -> tuple:
    """The job key of ``method``'s scores of the loaded sequences (``ctx_key``: Loaded.key)."""
    return ("scores", ctx_key, method, None if target is None else int(target))
