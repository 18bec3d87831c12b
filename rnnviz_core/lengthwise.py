"""Old path of :mod:`rnnviz_core.engine.lengthwise` (moved in issue 20; kept for one release).

``rnnviz_core.lengthwise`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .engine import lengthwise as _moved

sys.modules[__name__] = _moved
