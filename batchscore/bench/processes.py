"""Measuring a command as a process tree: wall clock, core-seconds (what Azure bills) and peak
memory of the process and every descendant."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding batchscore/


class PeakRss:
    """Samples the memory of a process and its descendants until stopped, and the CPU time
    each of them used (its last reading: a worker is reaped by a fork server the parent may
    never wait for, so the operating system's per-child accounting can miss it).

    Two memory figures: ``peak``, the summed RSS, counts a page every process maps once per
    process (the model pack, mapped read-only by every worker, counts once per worker), so it
    overstates; ``peak_pss``, the summed proportional set size (Linux), splits each shared
    page among the processes that map it: what the tree really holds, and what the bench
    reports. PSS, and the search for new descendants (it reads every process on the machine),
    cost more, so they happen every ``slow_every`` samples: the sampler's own CPU falls from
    about a quarter of a core to a tenth, which on two cores the measured product (the parent
    and its workers) otherwise shares with it while the single-process loop does not."""

    def __init__(self, pid: int, interval: float = 0.01, slow_every: int = 5) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self.peak_pss: int | None = 0 if sys.platform.startswith("linux") else None
        self.slow_every = slow_every
        self.cpu_by_pid: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        samples = 0
        tree = [root]
        while not self._stop.is_set():
            slow_turn = samples % self.slow_every == 0
            with_pss = self.peak_pss is not None and slow_turn
            rss = pss = 0
            try:
                if slow_turn:  # finding the descendants reads every process's stat file
                    tree = [root, *root.children(recursive=True)]
                for proc in tree:
                    try:
                        if with_pss:
                            memory = proc.memory_full_info()
                            pss += memory.pss
                        else:
                            memory = proc.memory_info()
                        rss += memory.rss
                        times = proc.cpu_times()
                        self.cpu_by_pid[proc.pid] = times.user + times.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            if with_pss:
                self.peak_pss = max(self.peak_pss or 0, pss)
            samples += 1
            self._stop.wait(self.interval)


@dataclass
class Measured:
    """One command's run: its stdout, wall seconds, core-seconds of its whole process tree
    (every descendant reaped along the way), the peak summed RSS of that tree and its peak
    summed PSS (None where the system does not tell; see :class:`PeakRss`)."""

    stdout: str
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    peak_pss_bytes: int | None = None


def run_measured(argv: list[str]) -> Measured:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_PACKAGE_PARENT), *_pythonpath()])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    with PeakRss(process.pid) as sampler:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(sampler.cpu_by_pid.values()))
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed (exit {process.returncode}):\n{tail}")
    return Measured(stdout, wall, cpu, sampler.peak, sampler.peak_pss)


def run_child(function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Measured]:
    """Run ``function`` (``package.module.name``) on ``payload`` in a fresh Python; its JSON
    result (the last line it prints) and the measured run."""
    module, name = function.rsplit(".", 1)
    code = (
        f"import json, sys; from {module} import {name}; "
        f"print(json.dumps({name}(json.loads(sys.argv[1]))))"
    )
    measured = run_measured([sys.executable, "-c", code, json.dumps(payload)])
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    measured.peak_rss_bytes = max(measured.peak_rss_bytes, int(result.get("maxrss_bytes", 0)))
    return result, measured


def _pythonpath() -> list[str]:
    existing = os.environ.get("PYTHONPATH", "")
    return [part for part in existing.split(os.pathsep) if part]


def maxrss_bytes() -> int:
    """This process's peak RSS since it started (its exec), in bytes."""
    try:  # Linux: VmHWM is per address space, reset by exec
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
