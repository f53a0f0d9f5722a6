"""Tiny inputs for the runner tests (not an entry script): extract folders, reading files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

MLTABLE = """\
paths:
  - pattern: ./**/*.parquet
transformations:
  - read_parquet
  - extract_columns_from_partition_format:
      partition_format: Device={Device}/Sensor={Sensor}/
"""


def readings(device: str, sensor: str, rows: int, negative_every: int = 0) -> pd.DataFrame:
    """``rows`` readings of one pair; every ``negative_every``-th Value is negative."""
    values = [float(i % 50) for i in range(rows)]
    if negative_every:
        values = [-1.0 if i % negative_every == 0 else v for i, v in enumerate(values)]
    return pd.DataFrame(
        {
            "TS": pd.date_range("2024-01-01", periods=rows, freq="min"),
            "Device": device,
            "Sensor": sensor,
            "Value": values,
        }
    )


def write_extract(
    folder: Path,
    devices: int = 3,
    sensors: tuple[str, ...] = ("temp", "vib"),
    rows: int = 5,
    negative_every: int = 0,
) -> Path:
    """An extract folder: MLTable + ``Device=<d>/Sensor=<s>/part-0.parquet``.

    The key columns live in the path only, as in the extract contract.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLTable").write_text(MLTABLE, encoding="utf-8")
    for d in range(devices):
        device = f"dev-{d:03d}"
        for sensor in sensors:
            frame = readings(device, sensor, rows, negative_every)
            frame = frame.drop(columns=["Device", "Sensor"])
            partition = folder / f"Device={quote(device)}" / f"Sensor={quote(sensor)}"
            partition.mkdir(parents=True)
            frame.to_parquet(partition / "part-0.parquet", index=False)
    return folder


def write_readings_file(path: Path, devices: int = 2, sensors=("temp",), rows: int = 4) -> Path:
    """One file of readings for several pairs, columns in odd case plus an extra column."""
    frames = [readings(f"dev-{d:03d}", s, rows) for d in range(devices) for s in sensors]
    frame = pd.concat(frames, ignore_index=True).rename(
        columns={"TS": "ts", "Device": "DEVICE", "Value": "value"}
    )
    frame["Site"] = "north"
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def write_files(folder: Path, names: list[str], size: int = 100) -> Path:
    """A folder of plain files of ``size`` bytes each (no MLTable: file input)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x" * size)
    return folder
