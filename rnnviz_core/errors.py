"""Exceptions whose messages are written for the person who has to act on them.

Every error rnnviz raises on purpose is a subclass of :class:`RnnvizError` (itself a
``ValueError``), and its message says what is wrong and what to do. The app shows the message
as it is, so keep it one or two plain sentences with no traceback-speak.
"""


class RnnvizError(ValueError):
    """Base class: a problem with what the user gave us, explained in plain words."""


class InputError(RnnvizError):
    """The sequences (x), their lengths or an option passed to a core function are unusable."""


class ModelError(RnnvizError):
    """The model cannot be traced or run as given (no recurrent module, forward fails, ...)."""


class ModelFileError(RnnvizError):
    """A model file is refused or cannot be read (unsafe format, corrupt, unknown layout)."""


class DataError(RnnvizError):
    """A data file is refused or does not fit the model (missing column, NaN, sizes, ...)."""
