"""What a page drew, read from Streamlit's own messages (tests/e2e/test_sizes.py, bench/bench_sizes.py).

:func:`record` listens to a page's websocket; :func:`drawn_charts` then returns, for the last
full script run (plus any fragment runs after it), every Vega-Lite chart the page holds: its
spec, its datasets decoded from Arrow, and the caption drawn right below it (the element after
the chart in the same container, when that is a caption). :func:`caption_problems` checks each
number in a caption against the numbers the chart draws.
"""
from __future__ import annotations

import json
import math
import re


def record(pg) -> dict:
    """Start keeping every ForwardMsg the page receives; returns the store (``pg._rv_msgs``)."""
    store = {"frames": []}
    pg._rv_msgs = store

    def on_frame(payload) -> None:
        if not isinstance(payload, str):
            store["frames"].append(payload)

    pg.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return store


def reset(pg) -> None:
    pg._rv_msgs["frames"].clear()


def _messages(frames):
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    by_hash, out = {}, []
    for payload in frames:
        msg = ForwardMsg()
        try:
            msg.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg
            continue
        if msg.WhichOneof("type") == "ref_hash":              # a message this client already holds
            ref = by_hash.get(msg.ref_hash)
            if ref is None:
                continue
            full = ForwardMsg()
            full.CopyFrom(ref)
            full.metadata.CopyFrom(msg.metadata)
            msg = full
        elif msg.hash:
            by_hash[msg.hash] = msg
        out.append(msg)
    return out


def elements(frames) -> dict:
    """delta path (tuple) -> Element of the page as it stands: the last full script run's elements,
    overwritten by the fragment runs that came after it."""
    msgs = [m for m in _messages(frames) if m.WhichOneof("type") == "delta"]
    full_runs = [m.metadata.run.script_run_id for m in msgs if not list(m.metadata.run.fragment_ids)]
    if not full_runs:
        return {}
    last = full_runs[-1]
    start = next(i for i, m in enumerate(msgs) if m.metadata.run.script_run_id == last)
    out = {}
    for m in msgs[start:]:
        if m.delta.WhichOneof("type") == "new_element":
            out[tuple(m.metadata.delta_path)] = m.delta.new_element
    return out


def _arrow_rows(data: bytes) -> list[dict]:
    import pyarrow as pa
    if not data:
        return []
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pylist()


def drawn_charts(pg) -> list[dict]:
    """Every Vega-Lite chart on the page: ``{"path", "spec", "datasets": {name: rows}, "caption"}``,
    in page order. ``spec["datasets"]`` is filled with the decoded rows (as Vega-Lite would see them)."""
    els = elements(pg._rv_msgs["frames"])
    out = []
    for path in sorted(els):
        el = els[path]
        if el.WhichOneof("type") != "vega_lite_chart":
            continue
        chart = el.vega_lite_chart
        spec = json.loads(chart.spec)
        datasets = {ds.name: _arrow_rows(ds.data.data) for ds in chart.datasets}
        if chart.HasField("data") and chart.data.data:
            datasets["__main__"] = _arrow_rows(chart.data.data)
        spec.setdefault("datasets", {}).update(datasets)
        nxt = els.get(path[:-1] + (path[-1] + 1,))
        caption = ""
        if nxt is not None and nxt.WhichOneof("type") == "markdown" and nxt.markdown.element_type == 2:  # CAPTION
            caption = nxt.markdown.body
        out.append({"path": path, "spec": spec, "datasets": datasets, "caption": caption})
    return out


def exceptions(pg) -> list[str]:
    """Exception elements of the page as it stands (type and message)."""
    return [f"{e.exception.type}: {e.exception.message}" for e in elements(pg._rv_msgs["frames"]).values()
            if e.WhichOneof("type") == "exception"]


def row_count(chart: dict) -> int:
    """Rows a chart ships to the browser (all its datasets together)."""
    return sum(len(rows) for rows in chart["datasets"].values())


# ----------------------------------------------------------------------------- captions
_NUM = re.compile(r"(?<![\w.#/-])(-?\d{1,3}(?:,\d{3})+|-?\d+)(\.\d+)?(%?)(?![\w/])")
_UNESCAPE = re.compile(r"\\(.)")


def caption_numbers(caption: str) -> list[tuple[str, float, int, bool, str]]:
    """``(text, value, decimals, percent, before)`` of every number written in a caption (``before``:
    the 40 characters before it), leaving out those inside quotes (names from the user's files)
    and parts of names (``s00012``, ``h_n``)."""
    text = _UNESCAPE.sub(r"\1", caption)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’", " ", text)
    text = re.sub(r"\b95% intervals?\b", "interval", text)          # the width of an interval, not data
    out = []
    for m in _NUM.finditer(text):
        whole, frac, pct = m.group(1), m.group(2) or "", m.group(3)
        value = float(whole.replace(",", "") + frac)
        out.append((m.group(0), value, max(len(frac) - 1, 0), bool(pct), text[max(0, m.start() - 40):m.start()]))
    return out


def _numbers_in(obj, acc: set) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            acc.add(float(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            _numbers_in(v, acc)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _numbers_in(v, acc)
    elif isinstance(obj, str):
        for _, v, *_ in caption_numbers(obj):
            acc.add(v)


def chart_numbers(chart: dict) -> tuple[set, list[tuple[float, float]]]:
    """``(values, ranges)``: every number the chart draws or states (data values, per-field counts
    of rows and distinct values, gaps between successive distinct values of a field, which is
    what a binned axis's cell width is, numbers in its titles and labels, rule positions) and,
    per numeric field, its (min, max) span (a step named inside a drawn range of steps)."""
    vals: set = set()
    ranges = []
    for rows in chart["datasets"].values():
        vals.add(float(len(rows)))
        fields: dict = {}
        for r in rows:
            for k, v in r.items():
                fields.setdefault(k, []).append(v)
        for k, col in fields.items():
            nums = sorted({float(v) for v in col if isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v)})
            distinct = {repr(v) for v in col if v is not None}
            vals.add(float(len(distinct)))
            vals.update(nums)
            for v in col:
                if isinstance(v, str):
                    _numbers_in(v, vals)
            if nums and re.search(r"step|position|^t$|^x$", str(k)):
                ranges.append((nums[0], nums[-1]))
                vals.update(b - a for a, b in zip(nums, nums[1:]))
                vals.add(nums[-1] - nums[0] + 1)
    spec = {k: v for k, v in chart["spec"].items() if k != "datasets"}
    _numbers_in(spec, vals)
    return vals, ranges


def _matches(value: float, decimals: int, percent: bool, candidates: set, ranges) -> bool:
    tol = 0.5 * 10 ** -decimals + 1e-9
    for c in candidates:
        for scaled in ((c * 100,) if percent else ()) + (c, abs(c)):
            if abs(scaled - value) <= tol:
                return True
    if not percent and decimals == 0:
        return any(lo <= value <= hi for lo, hi in ranges)
    return False


def _ratio_of(value: float, decimals: int, vals: set, bases: set) -> bool:
    """"X times the threshold": X is a drawn value divided by a number the page draws."""
    tol = 0.5 * 10 ** -decimals + 1e-9
    nums = [v for v in vals if v]
    return any(abs(a / b - value) <= tol for b in bases if b for a in nums[:50_000])


def caption_problems(chart: dict, page: list[dict] | None = None, known=()) -> list[str]:
    """Numbers in ``chart``'s caption that the page does not draw (empty when every one is there).

    A number must be one of ``chart``'s drawn numbers (:func:`chart_numbers`), rounded as the
    caption writes it (a percentage as a share), a step inside the drawn range of a step field, or
    a number another chart on the same ``page`` draws (a threshold drawn as the red line of the
    distribution chart, named in the heatmap's caption); "X times ..." is a drawn value divided by
    a number drawn on the page. ``known``: counts of the data the page shows, computed by the caller
    from the data itself (a caption may say "3,000 states sampled from all 21,723")."""
    if not chart["caption"]:
        return []
    vals, ranges = chart_numbers(chart)
    context: set = {float(k) for k in known}
    for other in page or []:
        if other is not chart:
            context |= chart_numbers(other)[0]
    text = _UNESCAPE.sub(r"\1", chart["caption"])
    out = []
    for raw, v, d, pct, before in caption_numbers(chart["caption"]):
        # a step named as a step ("step 37", "steps 160-175") may lie anywhere inside the drawn steps
        named_step = re.search(r"\b(steps?|words?|positions?)\s+(\d[\d,]*\s*(-|–|to|and)\s*)?$", before)
        if _matches(v, d, pct, vals, ranges if named_step else []) or _matches(v, d, pct, context, []):
            continue
        if re.search(re.escape(raw) + r"\s+times\b", text) and _ratio_of(v, d, vals, vals | context):
            continue
        out.append(f"{raw!r} in caption {text[:400]!r}")
    return out
