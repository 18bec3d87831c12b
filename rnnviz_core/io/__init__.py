"""Reading files by concern (issue 20): nothing read from a file is ever run or rendered.

:mod:`.limits` (every size limit of the data readers; reading a path, bytes or an upload within
one), :mod:`.dataset` (:class:`~.dataset.SequenceDataset`), :mod:`.tables` (CSV, Parquet),
:mod:`.columns` (a long table into sequences), :mod:`.guess` (``inspect_columns``), :mod:`.npz`,
:mod:`.ts` (UCR/UEA), :mod:`.tokens` (text, vocabularies), :mod:`.classes` (class orders),
:mod:`.load` (``load_data``), :mod:`.model_files` (model files read without running code).
Nothing is imported here; ``rnnviz_core.data`` re-exports the data readers' names (one release).

The data docs, as they were in ``rnnviz_core/data.py``:
Sequence data in: one :class:`SequenceDataset` from CSV/Parquet (long form), NPZ or UCR/UEA ``.ts``.

Long form means one row per sequence step::

    dog_id, race_no, position, time, weight, box, days_since, track, grade, label
    d0001,  1,       3,        30.1, 31.2,   4,   0,          Sandown, 5, place (2-3)
    d0001,  2,       ...

with a sequence id column, an order column, numeric feature columns, an optional label
column (constant within a sequence) and optional extra per-sequence columns (grouping).
Columns are inferred where that is unambiguous and can always be named with keyword
arguments (:func:`inspect_columns` reports the guesses and the candidates for each role
without refusing anything). Every problem raises :class:`~rnnviz_core.errors.DataError` with a
message that says what is wrong and what to do, and a ``code``/``field`` naming the choice to
change.

Also read: token data (a text column plus a vocabulary, or integer ids: ``X`` int64 [N, T]),
the class order a file declares (:func:`class_order_candidates`), and untrusted files within
bounded memory: sizes are refused from counts (rows, columns, a case's commas, an array's
``.npy`` header, Parquet metadata) before anything is expanded.
"""
