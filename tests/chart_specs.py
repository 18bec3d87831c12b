"""Reading Vega-Lite specs in the chart tests."""


def views(spec: dict) -> list[dict]:
    """Every unit view (mark + encoding) in a Vega-Lite spec, flattened."""
    out = [spec] if "mark" in spec else []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += views(sub)
    return out
