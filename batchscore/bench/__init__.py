"""``batchscore bench``: scoring strategies side by side on one synthetic fleet.

One fleet of S (Device, Sensor) pairs is generated: a training window of T rows per pair (a
day of 5-minute windows by default) and a scoring window of R rows per pair (R = 12 is what
an hourly run scores). Models are trained with the product's own ``train`` code (which also
packs them); the scoring window is written with the product's own extract writer in both
layouts. Then, on the same data, each mode is measured and every prediction checked against
scikit-learn's:

* ``sklearn-loop`` (the baseline): a careful in-process loop, models already loaded (not
  timed); timed: read the window's Parquet, one ``decision_function`` per pair into one
  array, labels from its sign, one output Parquet written. Beside it, the bench's earlier
  baseline: the loop over values in memory with ``decision_function`` and ``predict`` a pair.
* ``score-shard`` / ``score-file`` / ``score-pair``: the product end to end as a user runs
  it, ``batchscore score`` on the extract in shards of whole pairs, on the window as one
  Parquet file of readings, and on the extract in a folder per pair, from the interpreter's
  start to the published predictions and summary.
* ``fleet-kernel``: the vectorised kernel alone across every pair at once, on one core.
* ``process-per-pair`` (not run by default): one Python process per pair, as one pipeline step
  per pair would run, on a sample of pairs, extrapolated to S over the workers.
* ``train``: ``batchscore train`` end to end (model files, manifest and pack; every pack row
  verified afterwards) twice, each beside the in-process loop that fits the same models on
  readings in memory, nothing saved: ``train-reference`` (``--nu``/``--gamma`` given: plain
  scikit-learn models) beside ``fit-loop`` (one ``Pipeline.fit`` a pair), and ``train`` (the
  default model, trimmed and calibrated) beside ``fit-loop-default`` (the same steps through
  scikit-learn's public ``fit`` and ``decision_function``).

Each figure is reported as wall-clock seconds and as core-seconds (CPU time of the whole
process tree): on Azure ML, core-seconds are what is billed. ``--repeat`` alternates the
timed modes and reports the fastest run of each (the least disturbed on a shared machine).

One job per module: :mod:`.fleet` (the synthetic fleet), :mod:`.processes` (measuring a
process tree), :mod:`.strategies` (what is timed), :mod:`.checks` (correctness),
:mod:`.report` (the table), :mod:`.run` (one benchmark run); the names used elsewhere are
re-exported here.
"""

from __future__ import annotations

from batchscore.bench.checks import check_outputs, compare_predictions, sklearn_reference
from batchscore.bench.context import BenchContext
from batchscore.bench.fleet import FleetSpec, fleet_frames, pair_values, write_extract
from batchscore.bench.modes import DEFAULT_MODES, MODES
from batchscore.bench.processes import Measured, PeakRss, maxrss_bytes, run_child, run_measured
from batchscore.bench.report import format_report, ratios
from batchscore.bench.run import bench

__all__ = [
    "DEFAULT_MODES",
    "MODES",
    "BenchContext",
    "FleetSpec",
    "Measured",
    "PeakRss",
    "maxrss_bytes",
    "bench",
    "check_outputs",
    "compare_predictions",
    "fleet_frames",
    "format_report",
    "pair_values",
    "ratios",
    "run_child",
    "run_measured",
    "sklearn_reference",
    "write_extract",
]
