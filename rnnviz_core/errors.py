"""Exceptions whose messages are written for the person who has to act on them.

Every error rnnviz raises on purpose is a subclass of :class:`RnnvizError` (itself a
``ValueError``), and its message says what is wrong and what to do. The app shows the message
as it is, so keep it one or two plain sentences with no traceback-speak.

An error may also carry a machine-readable ``code`` (e.g. ``"missing_column"``) and the
``field`` it is about (e.g. ``"label"``), so that an app can point at the control to use;
``str(exc)`` is the message alone either way::

    raise DataError("The file has no column 'label'.", code="missing_column", field="label")
"""
from __future__ import annotations


class RnnvizError(ValueError):
    """Base class: a problem with what the user gave us, explained in plain words.

    Parameters
    ----------
    message : str
        The plain-language message (what ``str(exc)`` returns).
    code : str, optional
        A short stable identifier of the kind of problem (``"feature_count"``,
        ``"missing_column"``, ...), for programs; None when not classified.
    field : str, optional
        The input, option or column the problem is about (``"lengths"``, ``"label"``), or None.
    """

    def __init__(self, *args, code: str | None = None, field: str | None = None):
        super().__init__(*args)
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


class MismatchError(InputError, ModelError):
    """The data and the model do not fit each other (feature count, token ids, dtype).

    Both an :class:`InputError` (the data as given cannot be used with this model) and a
    :class:`ModelError` (running the model failed), so either ``except`` clause catches it.
    """


class BundleError(RnnvizError):
    """A bundle is refused or cannot be read (wrong format or version, missing or extra files, hashes)."""
