"""Old path of :mod:`rnnviz_core.model.pairing` (moved in issue 20; kept for one release).

``rnnviz_core.pairing`` is that very module (same object), so attributes set on it reach the code.
"""
import sys

from .model import pairing as _moved

sys.modules[__name__] = _moved
