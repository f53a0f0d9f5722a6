"""Atomic output: ``predictions.<format>`` and ``summary.json`` in the output folder.

Rows returned by the workers go to a temporary Parquet spool inside the output folder as
they arrive, so the parent never holds more than a bounded buffer of them. The spool keeps
mini-batch order: results that arrive early wait in a small buffer; if that buffer grows
past its budget (a slow or retried mini-batch holds the line) they are spilled as their own
row groups and put back in order when the file is published. Publishing is one
``os.replace``: a failed or repeated run never leaves partial or duplicate rows.

Column types: every column the prediction contract declares (``Score``, ``TS`` ...) is
written with its type (:data:`~scoring.data.schema.PREDICTION_SCHEMA`), whatever other columns
an entry script adds, so those never depend on which mini-batch arrived first; columns of a
script's own take the types of the first rows returned. A mini-batch whose rows do not convert
fails alone, naming the column.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from scoring.data.files import atomic_path, temporary_sibling
from scoring.data.schema import PREDICTION_COLUMNS, PREDICTION_SCHEMA

log = logging.getLogger(__name__)

PREDICTIONS_STEM = "predictions"
SUMMARY_FILE = "summary.json"
OUTPUT_FORMATS = ("parquet", "csv")
#: rows per row group when consecutive mini-batches are written together
ROW_GROUP_ROWS = 256 * 1024
#: the most rows one row group may take (pyarrow's own limit is 1 Mi rows)
MAX_ROW_GROUP_ROWS = 1024 * 1024
DEFAULT_BUFFER_BYTES = 256 * 1024 * 1024

_SPILLED = object()


class SchemaMismatchError(ValueError):
    """A mini-batch returned columns that cannot be written beside the earlier ones."""


def predictions_path(output_dir: Path, output_format: str) -> Path:
    return output_dir / f"{PREDICTIONS_STEM}.{output_format}"


class OrderedRowSpool:
    """Collects each mini-batch's rows (in any arrival order) into one file in index order."""

    def __init__(
        self,
        output_dir: Path,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        schema: pa.Schema | None = None,
    ) -> None:
        """``schema``: the declared columns and types (also of an empty result); None: taken
        from the rows (see :meth:`conform`)."""
        self.output_dir = output_dir
        self.buffer_bytes = buffer_bytes
        self.spool_path = temporary_sibling(output_dir / f"{PREDICTIONS_STEM}.spool")
        self.schema = schema
        self.declared = schema is not None
        self.rows = 0
        self.spilled = False
        self._writer: pq.ParquetWriter | None = None
        self._buffer: dict[int, object] = {}
        self._buffered_bytes = 0
        self._next_index = 0
        self._pending: list[pa.Table] = []
        self._pending_first = 0
        self._pending_rows = 0
        self._group_labels: list[int] = []  # first mini-batch index of each row group

    def conform(self, table: pa.Table) -> pa.Table:
        """The table with the run's columns and types, or a :class:`SchemaMismatchError`.

        The run's schema is the declared one if any, else the prediction contract's when the
        rows have its columns (so the product's output never depends on which mini-batch
        arrived first), else that of the first rows returned (generic entry scripts).
        """
        if self.schema is None:
            self.schema = contract_schema(table.column_names) or with_contract_types(table.schema)
        if table.schema.equals(self.schema):
            return table
        origin = (
            "the prediction contract"
            if self.schema.equals(PREDICTION_SCHEMA)
            else "the declared output"
            if self.declared
            else "the earlier mini-batches' rows"
        )
        if sorted(table.column_names) != sorted(self.schema.names):
            raise SchemaMismatchError(
                f"returned columns {table.column_names} differ from {origin}'s {self.schema.names}"
            )
        return cast_columns(table.select(self.schema.names), self.schema, origin)

    def add(self, index: int, table: pa.Table | None) -> None:
        """Record mini-batch ``index`` as done with these rows (None: no rows).

        Raises :class:`SchemaMismatchError` (and records nothing) if the rows do not fit
        the columns of the rows before them; the caller then adds ``None`` for the index.
        """
        if table is not None and table.num_rows:
            table = self.conform(table)
            self._buffer[index] = table
            self._buffered_bytes += table.nbytes
        else:
            self._buffer[index] = None
        self._advance()
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush_pending()
        if self._buffered_bytes > self.buffer_bytes:
            self._spill()

    def _advance(self) -> None:
        while self._next_index in self._buffer:
            item = self._buffer.pop(self._next_index)
            if item is _SPILLED:
                self._flush_pending()  # a row group never spans a spilled mini-batch
            elif item is not None:
                if not self._pending:
                    self._pending_first = self._next_index
                self._pending.append(item)
                self._pending_rows += item.num_rows
                self._buffered_bytes -= item.nbytes
            self._next_index += 1

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._write(self._pending_first, table)
        self._pending, self._pending_rows = [], 0

    def _spill(self) -> None:
        """Write the early arrivals now (out of order); publishing puts them back in place."""
        self._flush_pending()
        for index in sorted(self._buffer):
            item = self._buffer[index]
            if item is not None and item is not _SPILLED:
                self._write(index, item)
                self._buffered_bytes -= item.nbytes
                self._buffer[index] = _SPILLED
                self.spilled = True
        log.debug("spilled early mini-batches to %s", self.spool_path)

    def _write(self, label: int, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.spool_path, self.schema, **writer_options(self.schema)
            )
        for start in range(0, table.num_rows, MAX_ROW_GROUP_ROWS):
            piece = table.slice(start, MAX_ROW_GROUP_ROWS)
            self._writer.write_table(piece, row_group_size=piece.num_rows)
            self._group_labels.append(label)
        self.rows += table.num_rows

    def publish(self, destination: Path, output_format: str) -> int:
        """Write every row, in mini-batch order, to ``destination`` atomically; rows written."""
        self._flush_pending()
        for index in sorted(self._buffer):  # nothing should be left; keep any rows regardless
            item = self._buffer.pop(index)
            if item is not None and item is not _SPILLED:
                self._write(index, item)
                self.spilled = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if output_format == "parquet" and not self.spilled and self._group_labels:
            os.replace(self.spool_path, destination)
            return self.rows
        try:
            with atomic_path(destination) as temporary:
                self._rewrite_in_order(temporary, output_format)
        finally:
            self.discard()
        return self.rows

    def _rewrite_in_order(self, target: Path, output_format: str) -> None:
        if not self._group_labels:  # no rows at all: an empty file of the right kind
            if output_format == "parquet":
                pq.write_table(
                    pa.table({}) if self.schema is None else self.schema.empty_table(), target
                )
            else:
                target.write_text(
                    ""
                    if self.schema is None
                    else ",".join(f'"{n}"' for n in self.schema.names) + "\n"
                )
            return
        source = pq.ParquetFile(self.spool_path)
        order = sorted(range(len(self._group_labels)), key=lambda i: (self._group_labels[i], i))
        if output_format == "parquet":
            schema = source.schema_arrow
            with pq.ParquetWriter(target, schema, **writer_options(schema)) as writer:
                for group in order:
                    writer.write_table(source.read_row_group(group))
        else:
            with pa_csv.CSVWriter(str(target), source.schema_arrow) as writer:
                for group in order:
                    writer.write_table(source.read_row_group(group))

    def discard(self) -> None:
        """Drop the spool (a failed run publishes nothing)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.spool_path.unlink(missing_ok=True)


def contract_schema(names: list[str]) -> pa.Schema | None:
    """:data:`PREDICTION_SCHEMA` when ``names`` are exactly the contract's prediction
    columns (in any order), else None."""
    if sorted(names) == sorted(PREDICTION_COLUMNS):
        return PREDICTION_SCHEMA
    return None


def with_contract_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each column the prediction contract declares (``Score``, ``TS`` ...)
    given the contract's type: an entry script with columns of its own still gets those
    declared, not taken from whichever mini-batch arrived first."""
    declared = {field.name: field for field in PREDICTION_SCHEMA}
    return pa.schema([declared.get(field.name, field) for field in schema])


def cast_columns(table: pa.Table, schema: pa.Schema, origin: str) -> pa.Table:
    """``table`` (with ``schema``'s column names, in order) cast to ``schema``; a
    :class:`SchemaMismatchError` names the first column that does not convert."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    for field, column in zip(schema, table.columns, strict=True):
        try:
            column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SchemaMismatchError(
                f"returned column {field.name} as {column.type}, which does not convert to "
                f"{field.type}, its type in {origin}: {exc}"
            ) from exc
    raise SchemaMismatchError(f"returned rows do not convert to the types of {origin}")


def writer_options(schema: pa.Schema) -> dict:
    """Dictionary-encode only text columns: numbers rarely repeat, and trying them first
    makes writing several times slower (measured: ~600 vs ~160 ns per prediction row)."""
    text = [
        field.name
        for field in schema
        if pa.types.is_string(field.type)
        or pa.types.is_large_string(field.type)
        or pa.types.is_dictionary(field.type)
    ]
    return {"use_dictionary": text or False}


def kept_predictions(output_dir: Path, previous_summary: dict | None) -> dict | None:
    """The predictions file an earlier run published, which a failed run leaves in place:
    its name and, as the summary beside it tells, the run that published it and its rows
    (None where that summary does not say). None when there is no predictions file."""
    present = [
        path
        for path in (predictions_path(output_dir, fmt) for fmt in OUTPUT_FORMATS)
        if path.is_file()
    ]
    if not present:
        return None
    name = present[0].name
    kept = {"file": name, "published_by_run_started_at": None, "rows": None}
    output = (previous_summary or {}).get("output") or {}
    if Path(str(output.get("predictions_file") or "")).name == name:
        kept["published_by_run_started_at"] = previous_summary.get("started_at")
        kept["rows"] = output.get("rows_written")
    elif (output.get("kept_predictions") or {}).get("file") == name:
        kept = dict(output["kept_predictions"])  # the run before failed too: carried over
    return kept


def remove_stale_predictions(output_dir: Path, keep: Path | None = None) -> list[Path]:
    """Remove predictions files of an earlier run so the folder shows this run's outcome only."""
    removed = []
    for output_format in OUTPUT_FORMATS:
        path = predictions_path(output_dir, output_format)
        if path != keep and path.exists():
            path.unlink()
            removed.append(path)
    return removed
