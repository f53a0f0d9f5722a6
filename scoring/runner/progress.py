"""Progress of a run: a tqdm bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("scoring.runner")

LOG_EVERY_SECONDS = 10.0


class RunProgress:
    """Counts finished mini-batches; never raises, so it cannot break a run."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._bar = None
        self._last_log = time.monotonic()
        self._enabled = enabled and total > 0
        if self._enabled and sys.stderr.isatty():
            self._bar = tqdm(total=total, unit="mini-batch", desc="scoring", file=sys.stderr)

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if self._bar is not None:
            self._bar.update(1)
            if failed:
                self._bar.set_postfix(failed=self.failed, refresh=False)
        elif self._enabled and time.monotonic() - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = time.monotonic()
            log.info("%d/%d mini-batches done (%d failed)", self.done, self.total, self.failed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
