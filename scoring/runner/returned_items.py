"""What ``run()`` returned, as a count of items and (when rows are kept) an Arrow table.

Azure ML counts the items ``run`` returns (``len`` of a list or a DataFrame) and, with
``append_row_to``, appends every item. Locally the rows become columns:

* a DataFrame keeps its columns;
* a list of dicts: the dicts' keys are the columns;
* a list of lists/tuples: columns ``col0``, ``col1``, ...;
* a list of scalars (e.g. strings): one column ``result``.

Values of mixed types in one column are written as text rather than lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SCALAR_COLUMN = "result"
TABULAR_SORT_KEYS = ("Device", "Sensor", "TS")


class ReturnValueError(TypeError):
    """``run()`` returned something that is neither a DataFrame nor a list."""


def count_items(returned: object) -> int:
    """How many items ``run()`` returned (Azure's count for ``inputs - returned``)."""
    if isinstance(returned, pd.DataFrame):
        return len(returned)
    if isinstance(returned, list | tuple):
        return len(returned)
    raise ReturnValueError(
        f"run() returned {type(returned).__name__}; expected a pandas DataFrame or a list"
    )


def to_table(returned: pd.DataFrame | Sequence, sort_keys: bool) -> pa.Table:
    """The returned rows as an Arrow table; tabular results sorted by Device, Sensor, TS."""
    if isinstance(returned, pd.DataFrame):
        table = _frame_to_table(returned)
    else:
        table = _rows_to_table(list(returned))
    if sort_keys:
        keys = [name for name in TABULAR_SORT_KEYS if name in table.column_names]
        if keys and table.num_rows > 1 and not _already_sorted(table, keys):
            table = table.sort_by([(name, "ascending") for name in keys])
    return table


def _frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """Column by column (about twice as fast as ``from_pandas`` for a partition's rows);
    ``from_pandas`` when a column needs its inference (mixed objects, duplicate names)."""
    names = [str(name) for name in frame.columns]
    if len(set(names)) == len(names):
        try:
            arrays = []
            for _, series in frame.items():
                values = series.array
                if not hasattr(values, "__arrow_array__"):  # numpy-backed: hand over the array
                    values = series.to_numpy()
                arrays.append(pa.array(values))
            return pa.Table.from_arrays(arrays, names=names)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    return pa.Table.from_pandas(frame, preserve_index=False)


def _already_sorted(table: pa.Table, keys: list[str]) -> bool:
    """True when the rows are already in ``keys`` order: each row compared with the next, by
    Arrow kernels (a few milliseconds where a sort of a 200,000-row shard costs 15): the
    usual case, one pair's rows or a shard's pairs as the extract wrote them. Nulls: False
    (the sort decides where they go)."""
    rows = table.num_rows
    if any(table.column(name).null_count for name in keys):
        return False
    before = tied = None  # rows before their next one by an earlier key / equal on every key
    try:
        for name in keys:
            column = table.column(name)
            this, following = column.slice(0, rows - 1), column.slice(1)
            less, equal = pc.less(this, following), pc.equal(this, following)
            if before is None:
                before, tied = less, equal
            else:
                before = pc.or_(before, pc.and_(tied, less))
                tied = pc.and_(tied, equal)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return False
    return bool(pc.all(pc.or_(before, tied)).as_py())


def _rows_to_table(rows: list) -> pa.Table:
    if not rows:
        return pa.table({})
    if all(isinstance(row, dict) for row in rows):
        names: dict[object, None] = {}  # first-seen order of every key
        for row in rows:
            names.update(dict.fromkeys(row))
        data = {str(name): [row.get(name) for row in rows] for name in names}
    elif all(isinstance(row, list | tuple) for row in rows):
        width = max(len(row) for row in rows)
        data = {f"col{i}": [row[i] if i < len(row) else None for row in rows] for i in range(width)}
    else:
        data = {SCALAR_COLUMN: rows}
    return pa.table({name: _to_array(values) for name, values in data.items()})


def _to_array(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if value is None else str(value) for value in values])
