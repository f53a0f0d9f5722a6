"""Reading one partition of an extract folder: the one reader the extract module and the
local runner's workers share.

Kept apart from :mod:`scoring.extract` so a scoring worker does not import SQLAlchemy
(which the extract's database side needs) just to read its partitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.schema import TS


class ExtractFolderError(ValueError):
    """A folder is not a readable extract (no MLTable, a corrupt partition file ...)."""


def read_partition_files(files: Sequence[str | Path], keys: Mapping[str, str]) -> pd.DataFrame:
    """The rows of one partition's Parquet ``files`` with its ``keys`` (Device, Sensor) as
    columns after TS. Built in Arrow with one conversion to pandas: the local runner's workers
    read thousands of small partitions through this, so it is kept lean."""
    tables = []
    for path in files:
        try:
            tables.append(pq.ParquetFile(path).read())
        except (OSError, pa.ArrowException) as exc:
            raise ExtractFolderError(f"{path}: not a readable Parquet file ({exc})") from exc
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    table = table.drop_columns([name for name in keys if name in table.column_names])
    rows = table.num_rows
    front = [name for name in (TS,) if name in table.column_names]
    rest = [name for name in table.column_names if name not in front]
    key_columns = [pa.repeat(value, rows).cast(pa.large_string()) for value in keys.values()]
    table = pa.Table.from_arrays(
        [table.column(name) for name in front] + key_columns + [table.column(n) for n in rest],
        names=front + list(keys) + rest,
    )
    return table.to_pandas(use_threads=False)
