"""The exact fast kernel for many pairs at once: every row of a shard in one vectorised pass.

A shard holds thousands of (Device, Sensor) pairs, a few rows each (an hourly window is 12
five-minute rows per pair). Scoring pair after pair pays Python and NumPy call overheads per
pair that dwarf its arithmetic; here every row of every packed 1-feature model is scored at
once. Each row gathers its model's parameters (scaler mean and scale, table origin and cell
width, gamma, rho, guard band) by the model's row in the pack, finds its Taylor cell, and
gathers that cell's coefficients from the pack's table column, which is stored cell-major so
the whole column is one ``(total cells, TAYLOR_DEGREE + 1)`` array: one index per row. The
arithmetic is the per-pair kernel's (:class:`scoring.models.kernel.TaylorTable`), so decision
values agree with scikit-learn's within the same bound, and rows inside a model's guard band
are flagged for the exact estimator exactly as there.
"""

from __future__ import annotations

import numpy as np

from scoring.models.kernel import taylor_sum
from scoring.models.pack import COEFFICIENTS, PackedStore

#: rows per block: keeps each block's temporaries (13 coefficients a row) in cache
BLOCK_ROWS = 1 << 15


def table_models(pack: PackedStore, model_rows: np.ndarray) -> np.ndarray:
    """Which of the given pack rows this kernel scores: one feature and a Taylor table."""
    n_features = pack.numbers["n_features"][model_rows]
    table_offsets = pack.lists["table"][0]
    has_table = table_offsets[model_rows + 1] > table_offsets[model_rows]
    return (n_features == 1) & has_table


def decision_values(
    pack: PackedStore, model_rows: np.ndarray, lengths: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decision values of ``values`` (float64, finite), where run ``i`` of ``lengths[i]``
    consecutive rows belongs to the model in pack row ``model_rows[i]`` (each one of
    :func:`table_models`); and a mask of the rows inside their model's guard band, whose sign
    only the exact estimator may decide."""
    numbers = pack.numbers
    mean_offsets, mean_values = pack.lists["mean"]
    scale_offsets, scale_values = pack.lists["scale"]
    table_offsets, table_values = pack.lists["table"]
    table = table_values.reshape(-1, COEFFICIENTS)
    width = numbers["table_width"][model_rows]

    def per_row(per_model: np.ndarray) -> np.ndarray:
        return np.repeat(per_model, lengths)

    mean = per_row(mean_values[mean_offsets[model_rows]])
    scale = per_row(scale_values[scale_offsets[model_rows]])
    lo = per_row(numbers["table_lo"][model_rows])
    inverse_width = per_row(1.0 / width)
    half = per_row(0.5 * width)
    cells = per_row((table_offsets[model_rows + 1] - table_offsets[model_rows]) // COEFFICIENTS)
    first_cell = per_row(table_offsets[model_rows] // COEFFICIENTS)
    gamma = per_row(numbers["gamma"][model_rows])
    rho = per_row(numbers["rho"][model_rows])
    guard = per_row(numbers["guard"][model_rows])

    z = values - mean
    z /= scale
    out = np.empty(len(values))
    for start in range(0, len(values), BLOCK_ROWS):
        stop = start + BLOCK_ROWS
        out[start:stop] = _kernel_sum(
            z[start:stop],
            lo[start:stop],
            inverse_width[start:stop],
            half[start:stop],
            cells[start:stop],
            first_cell[start:stop],
            gamma[start:stop],
            table,
        )
    out -= rho
    return out, np.abs(out) <= guard


def _kernel_sum(z, lo, inverse_width, half, cells, first_cell, gamma, table) -> np.ndarray:
    """sum_i c_i exp(-gamma (z - s_i)^2) per row, each with its own model's table."""
    position = (z - lo) * inverse_width
    inside = (position >= 0) & (position < cells)
    cell = np.where(inside, position, 0).astype(np.intp)
    delta = z - (lo + (2 * cell + 1) * half)  # z minus the cell's centre
    coefs = table[first_cell + cell]  # (rows, degree + 1): one gather a row
    return taylor_sum(lambda k: coefs[:, k], delta, gamma, inside)
