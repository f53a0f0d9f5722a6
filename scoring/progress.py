"""Progress of long stages: a tqdm bar on a terminal, plain log lines otherwise.

Two calls cover every use::

    from scoring.progress import progress, progress_bar

    for partition in progress(partitions, total=len(partitions), desc="scoring", unit="part"):
        ...

    with progress_bar(total=n_rows, desc="inserting", unit="row") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

Where the output goes is chosen once per bar:

* ``SCORING_PROGRESS=bar``: always a tqdm bar on stderr;
* ``SCORING_PROGRESS=log``: log lines (logger ``scoring.progress``, level INFO) at
  most every ``SCORING_PROGRESS_SECONDS`` (default 10) and one when the stage ends;
  this is what CI and the cluster's log files want;
* ``SCORING_PROGRESS=off``: nothing;
* unset or ``auto``: a bar when stderr is a terminal, log lines otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")

_log = logging.getLogger("scoring.progress")
MODES = ("auto", "bar", "log", "off")


class Bar(Protocol):
    """What :func:`progress_bar` returns."""

    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, *exc: object) -> None: ...


def _mode() -> str:
    mode = os.environ.get("SCORING_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        _log.warning("SCORING_PROGRESS=%r is not one of %s; using auto", mode, ", ".join(MODES))
        mode = "auto"
    if mode == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        mode = "bar" if isatty is not None and isatty() else "log"
    return mode


def _interval_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("SCORING_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


class _LogBar:
    """Log lines instead of a bar: periodic while running, one summary at the end."""

    def __init__(
        self, total: int | None, desc: str, unit: str, logger: logging.Logger, quiet: bool
    ) -> None:
        self.total, self.desc, self.unit, self.logger, self.quiet = total, desc, unit, logger, quiet
        self.count = 0
        self.started = self.last = time.monotonic()
        self.interval = _interval_seconds()
        self.closed = False

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        done = f"{self.count}/{self.total}" if self.total else str(self.count)
        pct = f" ({100.0 * self.count / self.total:.0f}%)" if self.total else ""
        return f"{self.desc or 'progress'}: {done} {self.unit}{pct} in {elapsed:.1f}s"

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if not self.quiet and now - self.last >= self.interval:
            self.last = now
            self.logger.info(self._line())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.quiet:
                self.logger.info(self._line())

    def __enter__(self) -> _LogBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TqdmBar:
    def __init__(self, total: int | None, desc: str, unit: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> _TqdmBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    logger: logging.Logger | None = None,
) -> Bar:
    """A bar you advance yourself with ``update(n)``; use it as a context manager."""
    mode = _mode()
    if mode == "bar":
        return _TqdmBar(total, desc, unit)
    return _LogBar(total, desc, unit, logger or _log, quiet=mode == "off")


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Yield the items of ``iterable`` while showing progress (see the module doc).

    ``total`` defaults to ``len(iterable)`` when the iterable has a length.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar(total=total, desc=desc, unit=unit, logger=logger) as bar:
        for item in iterable:
            yield item
            bar.update(1)
