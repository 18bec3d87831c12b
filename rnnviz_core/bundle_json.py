"""JSON from bundles, read with bounds: nesting depth, number sizes, no NaN or Infinity.

Python's ``json`` recurses once per nesting level (100,000 levels raise ``RecursionError``), turns a
5,000-digit number into an ``int`` (or fails with a message about "integer string conversion")
and accepts ``NaN``; a bundle's manifest and safetensors headers are read here instead, and each
of those is refused with a sentence that names what is wrong.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

import numpy as np

#: deepest nesting a manifest or header needs (the manifest has 4 levels)
MAX_DEPTH = 16
#: most characters of one JSON number (a 64-bit integer has 20; a double's repr at most 24)
MAX_NUMBER_CHARS = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def loads(raw: bytes, what: str, refuse: Callable[[str], Exception]) -> Any:
    """``raw`` parsed as JSON, or ``refuse(sentence)`` raised; ``what`` names the file in the sentence."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"{what} is not UTF-8 text.") from None
    # nesting depth before parsing: brackets outside strings, counted with numpy (no recursion)
    bare = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    if bare.size:
        step = (np.isin(bare, (ord("["), ord("{"))).astype(np.int64)
                - np.isin(bare, (ord("]"), ord("}"))).astype(np.int64))
        depth = int(np.cumsum(step).max(initial=0))
        if depth > MAX_DEPTH:
            raise refuse(f"{what} is nested {depth} levels deep; a bundle's JSON needs at most {MAX_DEPTH}.")

    def number(s: str, kind: type) -> Any:
        if len(s) > MAX_NUMBER_CHARS:
            raise _Bad(f"{what} holds a number written with {len(s)} characters; a bundle's numbers need at "
                       f"most {MAX_NUMBER_CHARS}.")
        v = kind(s)
        if kind is float and not np.isfinite(v):
            raise _Bad(f"{what} holds the number {s}, too large for a bundle.")
        return v

    def constant(s: str) -> Any:
        raise _Bad(f"{what} holds {s}, which is not a number a bundle may hold.")

    try:
        return json.loads(text, parse_int=lambda s: number(s, int), parse_float=lambda s: number(s, float),
                          parse_constant=constant)
    except _Bad as exc:
        raise refuse(str(exc)) from None
    except (ValueError, RecursionError):
        raise refuse(f"{what} is not valid JSON.") from None


class _Bad(Exception):
    pass
