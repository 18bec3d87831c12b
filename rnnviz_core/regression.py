"""Old path of :mod:`rnnviz_core.analyses.regression` (moved in issue 20; kept for one release).

``rnnviz_core.regression`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .analyses import regression as _moved

sys.modules[__name__] = _moved
