"""Reading Vega-Lite specs in the chart tests."""


def views(spec: dict, _data: dict | None = None) -> list[dict]:
    """Every unit view (mark + encoding) in a Vega-Lite spec, flattened; a view that draws the
    data of an enclosing layer or concatenation gets that ``data`` (a copy of the view is returned)."""
    data = spec.get("data", _data)
    out = []
    if "mark" in spec:
        out.append(spec if "data" in spec or data is None else {**spec, "data": data})
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += views(sub, data)
    return out


class _Row:
    def __init__(self, row: dict):
        self.__dict__.update(row)

    def __getattr__(self, name):  # a field the row lacks reads as null, as in Vega
        return None


def _isfinite(v) -> bool:
    import math
    return isinstance(v, (int, float)) and math.isfinite(v)


def drawn(spec: dict, view: dict) -> list[dict]:
    """The rows of ``view``'s inline dataset that pass its filter transforms: what the view draws.

    Filters are the plain expressions these charts use (``datum.a == datum.b``, ``datum.kind ==
    'x'``, ``indexof([...], datum.kind) >= 0``, ``isFinite(datum.x)``), evaluated row by row;
    a view with any other transform (a filter on a slider, a join) is refused, so a test cannot
    read rows that the browser would not draw.
    """
    rows = spec["datasets"][view["data"]["name"]]
    env = {"indexof": lambda arr, v: arr.index(v) if v in arr else -1, "isFinite": _isfinite}
    for tr in view.get("transform", []):
        expr = tr.get("filter")
        if set(tr) != {"filter"} or not isinstance(expr, str) or "step_now" in expr:
            raise ValueError(f"drawn() reads plain filters only, not {tr}")
        rows = [r for r in rows if eval(expr, dict(env), {"datum": _Row(r)})]  # noqa: S307 (test-only, own specs)
    return rows
