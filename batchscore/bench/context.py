"""What one benchmark run works with: the fleet, the workers, the modes and where each mode
reads and writes (shared by the runner and the output checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchscore.bench.fleet import FleetSpec
from batchscore.bench.modes import FILE, LAYOUT_OF


@dataclass
class BenchContext:
    spec: FleetSpec
    workers: int
    modes: tuple[str, ...]
    work: Path
    repeat: int = 1
    sample: int = 20
    shard_rows: int = 200_000
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def store_dir(self) -> Path:
        return self.work / "models"

    def extract_dir(self, layout: str) -> Path:
        return self.work / f"extract-{layout}"

    @property
    def window_file(self) -> Path:
        """The scoring window as one Parquet file, in time order as a stream writes it."""
        return self.work / "window.parquet"

    @property
    def training_file(self) -> Path:
        return self.work / "training.parquet"

    def input_of(self, mode: str) -> Path:
        return self.window_file if mode == FILE else self.extract_dir(LAYOUT_OF[mode])
