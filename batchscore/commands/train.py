"""``batchscore train``: one anomaly model per (Device, Sensor), from a readings file or the
``SensorReadings`` table, into a model store (the training itself is
:mod:`scoring.models.training`)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pandas as pd

from scoring.data.files import (
    TableFormatError,
    read_table,
    release_unused_memory,
    require_output_folder,
)
from scoring.data.schema import (
    DEVICE,
    READING_COLUMNS,
    READINGS_TABLE,
    SENSOR,
    TS,
    normalize_readings,
)
from scoring.errors import EXIT_FAILED, EXIT_OK, UsageError
from scoring.models.store import ModelStore, ModelStoreError
from scoring.models.train_params import (
    DEFAULT_GAMMA,
    DEFAULT_KERNEL,
    DEFAULT_MIN_ROWS,
    DEFAULT_NU,
    DEFAULT_OUTLIER_MADS,
    DEFAULT_RANGE_TOLERANCE,
    FEATURES,
    KERNELS,
    TrainParams,
)

# The database's default location, not scoring.data.db: importing SQLAlchemy cost every
# training run 0.3 s of start-up, and only a run that reads the database needs it.
from scoring.work_folder import DATABASE_URL as DEFAULT_DB_URL
from scoring.work_folder import MODELS_FOLDER

log = logging.getLogger(__name__)


def _gamma(text: str) -> str | float:
    if text in ("scale", "auto"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use scale, auto or a positive number") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train one Pipeline(StandardScaler, OneClassSVM) per (Device, Sensor) on the "
        f"{', '.join(FEATURES)} of aggregated readings, into a model store folder."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--input",
        metavar="FILE",
        help="aggregated readings, CSV or Parquet (columns TS, Device, Sensor, Value)",
    )
    source.add_argument(
        "--db",
        metavar="URL",
        help=f"SQLAlchemy URL of a database with the {READINGS_TABLE} table (default, without "
        f"--input: {DEFAULT_DB_URL}, where aggregate writes)",
    )
    parser.add_argument(
        "--models",
        metavar="DIR",
        default=MODELS_FOLDER,
        help=f"model store folder (default: {MODELS_FOLDER})",
    )
    parser.add_argument(
        "--kernel",
        choices=KERNELS,
        default=DEFAULT_KERNEL,
        help="OneClassSVM kernel (default: rbf, a smooth boundary around the normal range)",
    )
    parser.add_argument(
        "--gamma",
        type=_gamma,
        default=None,
        help="RBF kernel coefficient on standardised values: a number, scale or auto "
        "(default: 0.1, a kernel about 2 standard deviations wide; scikit-learn's 'scale' "
        "is 1 here and flags 12-32%% of normal Gaussian readings). Given without "
        "--outlier-mads or --range-tolerance, the model is scikit-learn's OneClassSVM as is",
    )
    parser.add_argument(
        "--nu",
        type=float,
        default=None,
        help="upper bound on the outlier fraction, lower bound on the support-vector "
        "fraction (default: 0.02: mostly-normal data, few support vectors, cheap scoring). "
        "Given without --outlier-mads or --range-tolerance, the model is scikit-learn's "
        "OneClassSVM as is",
    )
    parser.add_argument(
        "--outlier-mads",
        type=float,
        default=None,
        metavar="K",
        help=f"leave training rows out of the fit that are both farther than K robust "
        f"standard deviations (1.4826 x MAD) from the pair's median and in its sparsest "
        f"tenth: past anomalies (default: {DEFAULT_OUTLIER_MADS:g})",
    )
    parser.add_argument(
        "--range-tolerance",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"calibrate each pair's threshold so that its training range, widened by SHARE "
        f"of its width on each side, is normal (default: {DEFAULT_RANGE_TOLERANCE:g}; 0 "
        "is the range itself)",
    )
    parser.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        help=f"skip pairs with fewer usable rows (default: {DEFAULT_MIN_ROWS})",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (default: the number of CPUs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def read_readings_file(path: str) -> pd.DataFrame:
    """The readings of ``--input``; a file without the columns ``--help`` names (TS, Device,
    Sensor, Value: the ones ``aggregate`` and ``score`` require too) is refused, naming them."""
    try:
        frame = read_table(path, keys_as_categories=True)  # only grouped by them
    except FileNotFoundError as exc:
        raise UsageError(f"--input {path}: no such file") from exc
    except TableFormatError as exc:
        raise UsageError(f"--input {exc}") from exc
    try:  # on no rows: the check of the names alone, whatever the file's size
        normalize_readings(frame.head(0), path, required=READING_COLUMNS)
    except ValueError as exc:
        raise UsageError(f"--input {exc}") from exc
    return frame


def read_readings_db(url: str) -> pd.DataFrame:
    """The readings of the ``SensorReadings`` table (SQLite locally, Azure SQL with Entra)."""
    from scoring.data.db import database, read_readings

    with database(url) as engine:
        return read_readings(engine, (TS, DEVICE, SENSOR, *FEATURES))


def train_params(args: argparse.Namespace) -> TrainParams:
    """The model the flags ask for: ``--nu``/``--gamma`` alone ask for the reference model
    (scikit-learn's OneClassSVM on every row, nothing trimmed or calibrated); otherwise the
    defaults, with whatever was given."""
    gamma = DEFAULT_GAMMA if args.gamma is None else args.gamma
    nu = DEFAULT_NU if args.nu is None else args.nu
    tuned = args.outlier_mads is not None or args.range_tolerance is not None
    if (args.gamma is not None or args.nu is not None) and not tuned:
        return TrainParams.reference(kernel=args.kernel, gamma=gamma, nu=nu)
    return TrainParams(
        kernel=args.kernel,
        gamma=gamma,
        nu=nu,
        outlier_mads=DEFAULT_OUTLIER_MADS if args.outlier_mads is None else args.outlier_mads,
        range_tolerance=DEFAULT_RANGE_TOLERANCE
        if args.range_tolerance is None
        else args.range_tolerance,
    )


def run(args: argparse.Namespace) -> int:
    try:
        params = train_params(args).validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.min_rows < 1:
        raise UsageError(f"--min-rows {args.min_rows}: must be at least 1")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    models = Path(args.models)
    require_output_folder("--models", models)
    if args.input:
        readings, source = read_readings_file(args.input), args.input
    else:
        readings, source = read_readings_db(args.db or DEFAULT_DB_URL), READINGS_TABLE
    # The training (scikit-learn and SciPy, 1.5 to 2 s of imports) only when it runs, not
    # for --help or a refused argument.
    from scoring.models.training import prepare_pairs, train_pairs

    store = ModelStore(models)
    try:
        pairs, report = prepare_pairs(readings, source=source, min_rows=args.min_rows)
        # The frame goes once the pairs are made: at 100,000 pairs x 288 rows over a gigabyte,
        # held otherwise for the whole training.
        del readings
        release_unused_memory()
        report = train_pairs(
            pairs, report, store, params, jobs=args.jobs, progress=not args.no_progress
        )
    except ValueError as exc:  # missing columns, named with the source
        raise UsageError(str(exc)) from exc
    except ModelStoreError as exc:
        raise UsageError(f"--models: {exc}") from exc
    log.info(
        "trained %d models into %s (%d pairs skipped, %d failed, %d rows dropped)",
        len(report.trained),
        models,
        len(report.skipped),
        len(report.failed),
        report.dropped_rows,
    )
    if not report.trained:
        log.error("no model was trained from %s", source)
        return EXIT_FAILED
    return EXIT_OK
