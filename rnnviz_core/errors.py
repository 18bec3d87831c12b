"""Exceptions whose messages are written for the person who has to act on them.

Every error rnnviz raises on purpose is a subclass of :class:`RnnvizError` (itself a
``ValueError``), and its message says what is wrong and what to do. The app shows the message
as it is, so keep it one or two plain sentences with no traceback-speak.
"""
from __future__ import annotations


class RnnvizError(ValueError):
    """Base class: a problem with what the user gave us, explained in plain words.

    ``code`` (a short stable key such as ``"missing_column"``) and ``field`` (the choice the
    user can change, such as ``"label"``, or None) let the app point at the control to use;
    ``str(exc)`` is the message.
    """

    def __init__(self, msg: str = "", *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.field = field


class InputError(RnnvizError):
    """The sequences (x), their lengths or an option passed to a core function are unusable."""


class ModelError(RnnvizError):
    """The model cannot be traced or run as given (no recurrent module, forward fails, ...)."""


class ModelFileError(RnnvizError):
    """A model file is refused or cannot be read (unsafe format, corrupt, unknown layout)."""


class DataError(RnnvizError):
    """A data file is refused or does not fit the model (missing column, NaN, sizes, ...)."""
