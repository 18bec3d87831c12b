"""Old path of :mod:`rnnviz_core.analyses.findings` (moved in issue 20; kept for one release).

``rnnviz_core.findings`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .analyses import findings as _moved

sys.modules[__name__] = _moved
