"""The drift part of the publish step: each pair's window against its model's baseline.

For every (Device, Sensor) pair of the run, the window's values are compared with the
baseline of the model that scored them (:mod:`scoring.models.baseline`: PSI over the
baseline's decile bins, a threshold that accounts for the window's size). The publish step
writes the result beside the predictions as ``drift.parquet`` (columns
:data:`~scoring.models.baseline.DRIFT_COLUMNS`, one row per pair, sorted by Device, Sensor)
and puts the counts and the worst pairs into the run's summary, which the drifted-pairs alert
and ``batchscore runs show`` read.

Drift never fails a run: the predictions are the step's output. When the model store cannot
be read, the summary says why (``drift_failure``) and claims no count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scoring.data.files import atomic_path
from scoring.data.schema import DEVICE, SENSOR, TS, VALUE
from scoring.errors import UsageError
from scoring.models import baseline
from scoring.models.pack import store_baselines

log = logging.getLogger("scoring.steps.publish")

DRIFT_FILE = "drift.parquet"
#: drifted pairs named in the summary (the counts are exact)
WORST_PAIRS = 5

DRIFT_SCHEMA = pa.schema(
    [
        ("Device", pa.string()),
        ("Sensor", pa.string()),
        ("Statistic", pa.float64()),
        ("Threshold", pa.float64()),
        ("Drifted", pa.bool_()),
        ("Rows", pa.int64()),
        ("Note", pa.string()),
    ]
)


@dataclass
class DriftOutcome:
    """What the summary records of a run's drift (None: not known, never 0 by default)."""

    drift_statistic: str | None = None
    drift_pairs: int | None = None  # pairs whose drift is known
    drifted_pairs: int | None = None
    drift_unknown_pairs: int | None = None
    drift_worst: list[dict[str, Any]] = field(default_factory=list)
    drift_failure: str | None = None


def run_drift(table: pa.Table, models: Path | None, target: Path) -> DriftOutcome:
    """Compute the drift of every pair in ``table`` (the run's predictions) against the
    baselines of the store in ``models``; write ``target/drift.parquet``. Without ``models``
    nothing is computed (the outcome says so by its empty fields)."""
    if models is None:
        return DriftOutcome()
    try:
        baselines = store_baselines(models)
    except (UsageError, OSError) as exc:
        log.warning("drift not computed: %s", exc)
        return DriftOutcome(drift_failure=f"model store {models}: {exc}")
    drift = baseline.drift_table(
        table.column(DEVICE).to_numpy(zero_copy_only=False),
        table.column(SENSOR).to_numpy(zero_copy_only=False),
        table.column(VALUE).to_numpy(zero_copy_only=False).astype("float64"),
        table.column(TS).to_numpy(zero_copy_only=False),
        baselines,
    )
    known = drift["Drifted"].notna()
    outcome = DriftOutcome(
        drift_statistic=baseline.STATISTIC,
        drift_pairs=int(known.sum()),
        drifted_pairs=int(drift["Drifted"].fillna(False).astype(bool).sum()),
        drift_unknown_pairs=int((~known).sum()),
        drift_worst=baseline.worst_pairs(drift, WORST_PAIRS),
    )
    columns = {
        "Device": drift["Device"].tolist(),
        "Sensor": drift["Sensor"].tolist(),
        "Statistic": pa.array(drift["Statistic"].to_numpy(), pa.float64(), from_pandas=True),
        "Threshold": pa.array(drift["Threshold"].to_numpy(), pa.float64(), from_pandas=True),
        "Drifted": drift["Drifted"].to_numpy(dtype=object, na_value=None).tolist(),
        "Rows": drift["Rows"].to_numpy(),
        "Note": drift["Note"].tolist(),
    }
    with atomic_path(target / DRIFT_FILE) as tmp:
        pq.write_table(pa.table(columns, schema=DRIFT_SCHEMA), tmp)
    return outcome


def drifted_pairs(path: Path) -> list[tuple[str, str]]:
    """The (Device, Sensor) pairs a run's ``drift.parquet`` (or the window folder holding it)
    calls drifted, sorted: what a retraining of only the drifted pairs starts from."""
    file = path / DRIFT_FILE if path.is_dir() else path
    table = pq.read_table(file, columns=["Device", "Sensor", "Drifted"])
    rows = table.to_pydict()
    return sorted(
        (str(d), str(s))
        for d, s, drifted in zip(rows["Device"], rows["Sensor"], rows["Drifted"], strict=True)
        if drifted
    )
