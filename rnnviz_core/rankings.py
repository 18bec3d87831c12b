"""Old path of :mod:`rnnviz_core.attribution.rankings` (moved in issue 20; kept for one release).

``rnnviz_core.rankings`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .attribution import rankings as _moved

sys.modules[__name__] = _moved
