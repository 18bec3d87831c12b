"""Old path of :mod:`rnnviz_core.engine.recurrence` (moved in issue 20; kept for one release).

``rnnviz_core.recurrence`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .engine import recurrence as _moved

sys.modules[__name__] = _moved
