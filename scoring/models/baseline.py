"""A model's baseline: where its training values lay, compact enough to keep with every model.

Each model carries (:class:`Baseline`) its pair's **daily profile** (its training values'
least-squares fit by a mean and two daily harmonics, in UTC time of day: five numbers) and the
deciles of the training values' **residuals** from that profile: nine cut points, the share
of training rows in each of the ten bins they make, and the row count; 25 numbers, recorded
in its manifest entry and in the model pack. A scoring run then asks, per pair, how far the
window's residuals (each value minus the profile at its time of day) have moved from the
training residuals (:func:`drift_table`).

Why residuals from a daily profile: a run scores a window of an hour or a few, much shorter
than the daily cycle most sensors follow. Compared with *all* the training values, an
afternoon window holds only afternoon values and reads as drift every time (on the demo fleet,
37 of 40 pairs for a window of half a day). The residual of a value from the profile does
not depend on the time of day; a level shift moves it, a change of spread widens or narrows
it. Two harmonics follow a smooth cycle and the rounder part of a sharper one; a profile
needs a day of training to be fitted: with less (or no TS) it is flat, and the statistic
compares the plain distributions of the values.

The statistic is the **population stability index** over the baseline's decile bins::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with ``e_i`` the training share and ``a_i`` the window's share of bin ``i`` (both smoothed
by half a row per bin, so an empty bin is finite). Why PSI on quantile bins, and not a
distance in the sensor's units (Wasserstein) or the largest gap of the two distribution
functions (Kolmogorov-Smirnov):

* the baseline it needs is ten numbers per model, whatever the training size (KS and
  Wasserstein need the training values, or an approximation of them);
* it is unit-free: one threshold serves temperatures in degrees and speeds in rpm;
* it sees a level shift (the window piles into the outer bins) and a variance change
  either way (into both outer bins, or into the middle ones), which KS sees poorly;
* it is the established monitoring statistic with established thresholds: below 0.1 no
  change, 0.1 to 0.25 a moderate one, above 0.25 a significant one (Siddiqi, *Credit Risk
  Scorecards*, Wiley 2006; Yurdakul, *Statistical Properties of the Population Stability
  Index*, Western Michigan University 2018).

A pair counts as **drifted** when its PSI exceeds both 0.25 and what sampling noise alone
gives with this many rows: Yurdakul shows that without any change, PSI is about
``(1/n + 1/m) * chi2(B - 1)`` (n window rows, m training rows, B bins), so the threshold is
that distribution's 99th percentile when it is higher than 0.25 (a 12-row hourly window
needs a PSI of about 1.9 before it counts: a short window cannot show a small drift). The
half-row smoothing makes the test conservative: measured on Gaussian windows against a
432-row baseline (2,000 windows each), no-drift windows of 12, 36 and 144 rows were called
drifted 0%, 0.2% and 0% of the time; a shift of 1 standard deviation was found in 0%, 89%
and 100% of them, a shift of 3 in 59%, 100% and 100%, a doubled spread in 0%, 37% and 100%. With
fewer than :data:`MIN_ROWS` finite values, or no baseline (a model trained before baselines
were kept), the drift of a pair is unknown, never "not drifted".

What it cannot know: cycles other than the day's (a weekly one). It is also more sensitive
than a model is: residuals are narrow once the cycle is removed, so a shift a third of the
residual spread already counts, long before a model with a calibrated range flags anything.
That is the point (retrain before the flags go wrong), and why the alert fires on the
*share* of drifted pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

BINS = 10
#: daily harmonics of the profile; its size is 1 + 2 x this (a mean, a cosine and a sine each)
HARMONICS = 2
PROFILE_SIZE = 1 + 2 * HARMONICS
#: training rows must span this much of a day for a profile to be fitted
PROFILE_MIN_SPAN = pd.Timedelta(hours=23)
#: the conventional "significant shift" PSI (Siddiqi 2006)
PSI_SIGNIFICANT = 0.25
#: the no-drift percentile that the sample-size threshold sits at
NOISE_QUANTILE = 0.99
#: fewer finite values than this in a window: drift unknown
MIN_ROWS = 10
#: the statistic's name, as summaries and the drift table record it
STATISTIC = "psi"
#: the key of a manifest entry holding the baseline
ENTRY_KEY = "baseline"
_SMOOTHING = 0.5
_MIN_SPAN = PROFILE_MIN_SPAN.to_timedelta64()  # compares with numpy's and pandas' differences


@dataclass(frozen=True)
class Baseline:
    """A model's training values: ``profile`` (their fit by a mean and daily harmonics, as
    coefficients of :func:`day_terms`), and the deciles of their residuals from it:
    ``edges`` (BINS - 1 cut points, ascending), ``shares`` (the training share of each bin:
    residual <= edges[0], ..., > edges[-1]) and ``rows`` (training rows)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    rows: int
    profile: tuple[float, ...] = (0.0,) * PROFILE_SIZE

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": list(self.profile),
            "edges": list(self.edges),
            "shares": list(self.shares),
            "rows": self.rows,
        }

    def packed(self) -> np.ndarray:
        """This baseline as the pack stores it (:data:`PACKED_SIZE` values)."""
        return np.array([*self.edges, *self.shares, self.rows, *self.profile], dtype="float64")

    def residuals(self, values: np.ndarray, days: np.ndarray | None) -> np.ndarray:
        """``values`` minus the profile at their times of day (``days``: fractions of a day,
        :func:`day_fraction`; None: the profile's mean)."""
        if days is None:
            return values - self.profile[0]
        return values - day_terms(days) @ np.asarray(self.profile)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Baseline | None:
        """The baseline a manifest entry or pack row recorded; None when there is none or it
        is not one (an older model, a hand-edited manifest)."""
        if not isinstance(values, Mapping):
            return None
        try:
            edges = tuple(float(v) for v in values["edges"])
            shares = tuple(float(v) for v in values["shares"])
            rows = int(values["rows"])
            profile = tuple(float(v) for v in values["profile"])
        except (KeyError, TypeError, ValueError):
            return None
        if (
            len(edges) != BINS - 1
            or len(shares) != BINS
            or len(profile) != PROFILE_SIZE
            or rows < 1
        ):
            return None
        if not all(math.isfinite(v) for v in (*edges, *shares, *profile)):
            return None
        return cls(edges, shares, rows, profile)


def day_fraction(times: Any) -> np.ndarray:
    """The time of day of each time (naive UTC, as readings carry them) as a fraction of a
    day, 0 <= f < 1; NaN for a missing time."""
    stamps = _plain_datetimes(times)
    if stamps is None:  # aware times, lists, ...: as pandas reads them
        index = pd.DatetimeIndex(times)
        midnight = index.normalize()
        fraction = (index - midnight) / pd.Timedelta(days=1)
        return fraction.to_numpy(dtype="float64", na_value=np.nan)
    # The same quotient for a datetime64 array, without a pandas index per call (0.6 ms a
    # model at training, most of its baseline): the time since midnight over a day, both in
    # the array's own unit (the modulo floors, as normalize does before 1970).
    unit = np.datetime_data(stamps.dtype)[0]
    ticks_a_day = int(np.timedelta64(1, "D") // np.timedelta64(1, unit))
    fraction = (stamps.view("int64") % ticks_a_day) / ticks_a_day
    fraction[np.isnat(stamps)] = np.nan
    return fraction


def _plain_datetimes(times: Any) -> np.ndarray | None:
    """``times`` if a naive datetime64 array in seconds to nanoseconds, else None."""
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        unit, count = np.datetime_data(times.dtype)
        if unit in ("s", "ms", "us", "ns") and count == 1:
            return times
    return None


def day_terms(days: np.ndarray) -> np.ndarray:
    """The profile's terms at times of day ``days``: 1, cos(2 pi k f), sin(2 pi k f) for
    k = 1..HARMONICS (one row per time)."""
    angle = 2 * np.pi * np.asarray(days, dtype="float64")[:, None] * _HARMONIC_NUMBERS
    terms = np.empty((angle.shape[0], PROFILE_SIZE))
    terms[:, 0] = 1.0
    terms[:, 1 : 1 + HARMONICS] = np.cos(angle)  # on the contiguous angle, then copied: the
    terms[:, 1 + HARMONICS :] = np.sin(angle)  # same values as ever (SIMD paths differ by stride)
    return terms


_HARMONIC_NUMBERS = np.arange(1, HARMONICS + 1)
#: the cut points' quantiles, and where they sit among n sorted values: (n - 1) q
_DECILES = np.arange(1, BINS) / BINS


@lru_cache(maxsize=8)
def _decile_positions(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where numpy's quantile takes the deciles of ``n`` values (``_get_indexes``), their
    weights (``_get_gamma``) and the positions it partitions at: the same for every pair of
    a run with the same number of rows (read-only: shared)."""
    position = (n - 1) * _DECILES
    low = np.floor(position).astype(np.intp)
    high = low + 1
    last = position >= n - 1  # numpy's "above the bounds": one value, at -1
    low[last] = high[last] = -1
    weight = position - low
    kth = np.unique(np.concatenate(([0, -1], low, high)))
    for array in (low, high, weight, kth):
        array.flags.writeable = False
    return low, high, weight, kth


def _deciles(values: np.ndarray) -> np.ndarray:
    """``np.quantile(values, _DECILES)`` (its default linear method) to the last bit, for a
    1-D array of finite values: the same sort positions, weights and interpolation as numpy's
    ``_quantile`` and ``_lerp``, without the generic machinery that cost 60 us of a model's
    baseline (a test compares the two on many arrays).

    The values are arranged by numpy's own call, ``partition`` at the same positions, not by a
    sort: equal values (-0.0 and 0.0) may land in another order, and which one a sort puts
    first depends on the CPU (numpy sorts and partitions with AVX-512 where there is one)."""
    low, high, weight, kth = _decile_positions(values.size)
    ordered = np.partition(values, kth)
    a, b = ordered[low], ordered[high]
    step = b - a
    cuts = a + step * weight
    upper = weight >= 0.5  # numpy interpolates from the upper neighbour there
    cuts[upper] = (b - step * (1 - weight))[upper]
    return cuts


def baseline_of(values: np.ndarray, times: Any = None) -> Baseline:
    """The baseline of a model's training values (a 1-D array or the one-column feature
    matrix), taken at ``times`` (None: no daily profile; so too when the rows span less than
    :data:`PROFILE_MIN_SPAN`). Non-finite values are left out."""
    flat = np.asarray(values, dtype="float64").reshape(-1)
    finite = np.isfinite(flat)
    basis = None
    if times is not None:
        stamps = _plain_datetimes(times)
        if stamps is None:  # aware times, lists, ...: as pandas reads them (not cached)
            index = pd.DatetimeIndex(times)
            finite &= ~np.asarray(pd.isna(index))
            basis = _profile_basis(index[finite])
        else:
            finite &= ~np.isnat(stamps)
            kept = stamps if finite.all() else stamps[finite]
            basis = _basis_at(kept.dtype.str, kept.tobytes())
    if not finite.any():
        raise ValueError("no finite training value to take a baseline of")
    flat = flat[finite]
    if basis is None:
        profile = np.zeros(PROFILE_SIZE)
        profile[0] = flat.mean()
        residuals = flat - profile[0]
    else:
        terms, solver = basis
        profile = solver @ flat
        residuals = flat - terms @ profile
    edges = _deciles(residuals)
    counts = np.bincount(np.searchsorted(edges, residuals, side="left"), minlength=BINS)
    return Baseline(
        tuple(edges.tolist()),
        tuple((counts / flat.size).tolist()),
        int(flat.size),
        tuple(profile.tolist()),
    )


def _profile_basis(times: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The profile's terms at ``times`` (datetime64 values or a DatetimeIndex, none missing)
    and their pseudo-inverse, or None when the times span less than
    :data:`PROFILE_MIN_SPAN` (no profile). The profile of values taken at those times is the
    pseudo-inverse times the values: the least-squares fit of smallest norm, as
    ``np.linalg.lstsq`` gives it, with its cut-off for small singular values. Both arrays are
    read-only: :func:`_basis_at` hands the same ones to many pairs."""
    if not len(times) or times.max() - times.min() < _MIN_SPAN:
        return None
    terms = day_terms(day_fraction(times))
    solver = np.linalg.pinv(terms, rtol=None)  # rtol None: lstsq's cut-off, max(M, N) x eps
    terms.flags.writeable = solver.flags.writeable = False
    return terms, solver


@lru_cache(maxsize=8)
def _basis_at(dtype: str, stamps: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_profile_basis` of ``stamps`` (naive datetime64 values of ``dtype``, as bytes).

    Cached: a fleet's readings are windows on one clock (Stream Analytics' 5-minute tumbling
    windows), so most pairs of a training run share their times, and the terms and their
    least squares were most of a model's baseline (about 200 of 300 us); a pair on its own
    times costs the same as before. The answer depends on the times only, never on what the
    cache held."""
    return _profile_basis(np.frombuffer(stamps, dtype=dtype))


def psi(baseline: Baseline, values: np.ndarray, times: Any = None) -> float:
    """The PSI of ``values`` (finite), taken at ``times``, against ``baseline``."""
    days = day_fraction(times) if times is not None else None
    residuals = baseline.residuals(np.asarray(values, dtype="float64"), days)
    counts = np.bincount(
        np.searchsorted(np.asarray(baseline.edges), residuals, side="left"), minlength=BINS
    )
    return float(_psi(np.asarray(baseline.shares), baseline.rows, counts[None, :])[0])


def _psi(shares: np.ndarray, rows: np.ndarray | int, counts: np.ndarray) -> np.ndarray:
    """PSI per row of ``counts`` (pairs x BINS) against ``shares`` (pairs x BINS or BINS)."""
    n = counts.sum(axis=1, keepdims=True)
    rows = np.asarray(rows, dtype="float64").reshape(-1, 1)
    actual = (counts + _SMOOTHING) / (n + _SMOOTHING * BINS)
    expected = (shares * rows + _SMOOTHING) / (rows + _SMOOTHING * BINS)
    return ((actual - expected) * np.log(actual / expected)).sum(axis=1)


def threshold(rows: int | np.ndarray, baseline_rows: int | np.ndarray) -> np.ndarray:
    """The PSI above which a window of ``rows`` values counts as drifted from a baseline of
    ``baseline_rows`` (see the module docstring)."""
    from scipy.stats import chi2

    noise = chi2.ppf(NOISE_QUANTILE, BINS - 1)
    n = np.maximum(np.asarray(rows, dtype="float64"), 1.0)
    m = np.maximum(np.asarray(baseline_rows, dtype="float64"), 1.0)
    return np.maximum(PSI_SIGNIFICANT, (1.0 / n + 1.0 / m) * noise)


# ----------------------------------------------------------------- the drift of a run

DRIFT_COLUMNS = ("Device", "Sensor", "Statistic", "Threshold", "Drifted", "Rows", "Note")
NO_BASELINE = "no baseline (model trained before baselines were kept): retrain it"
TOO_FEW_ROWS = f"fewer than {MIN_ROWS} finite values in the window"


def drift_table(
    devices: Sequence[str] | np.ndarray,
    sensors: Sequence[str] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    times: Any,
    baselines: Mapping[tuple[str, str], Baseline | None],
) -> pd.DataFrame:
    """One row per (Device, Sensor) of the given readings (value and time of each): its PSI,
    the threshold, whether it drifted (True/False, or missing when unknown, with the reason
    in ``Note``) and the finite values counted (``Rows``). Vectorised over pairs: one binning
    pass for all rows."""
    day = day_fraction(times)
    frame = pd.DataFrame(
        {
            "Device": devices,
            "Sensor": sensors,
            "Value": np.asarray(values, dtype="float64"),
            "Day": day,
        }
    )
    frame = frame[np.isfinite(frame["Value"].to_numpy()) & np.isfinite(day)]
    keys = frame.groupby(["Device", "Sensor"], sort=True).ngroup().to_numpy()
    pairs = (
        frame[["Device", "Sensor"]].drop_duplicates().sort_values(["Device", "Sensor"])
        if len(frame)
        else pd.DataFrame({"Device": [], "Sensor": []})
    )
    found = [
        baselines.get((str(d), str(s)))
        for d, s in zip(pairs["Device"], pairs["Sensor"], strict=True)
    ]
    known = np.array([b is not None for b in found], dtype=bool)
    edges = np.array([b.edges if b else (np.inf,) * (BINS - 1) for b in found], dtype="float64")
    shares = np.array([b.shares if b else (1 / BINS,) * BINS for b in found], dtype="float64")
    profiles = np.array([b.profile if b else (0.0,) * PROFILE_SIZE for b in found], dtype=float)
    baseline_rows = np.array([b.rows if b else 1 for b in found], dtype="float64")
    edges = edges.reshape(len(found), BINS - 1)
    shares = shares.reshape(len(found), BINS)
    profiles = profiles.reshape(len(found), PROFILE_SIZE)
    terms = day_terms(frame["Day"].to_numpy())
    residuals = frame["Value"].to_numpy() - (terms * profiles[keys]).sum(axis=1)
    # A row's bin: how many of its pair's cut points lie below it (searchsorted, side left).
    bins = (residuals[:, None] > edges[keys]).sum(axis=1)
    counts = np.zeros((len(found), BINS), dtype="float64")
    np.add.at(counts, (keys, bins), 1.0)
    rows = counts.sum(axis=1)
    statistic = _psi(shares, baseline_rows, counts) if len(found) else np.empty(0)
    limit = threshold(rows, baseline_rows) if len(found) else np.empty(0)
    enough = rows >= MIN_ROWS
    decided = known & enough
    drifted = pd.array(
        [bool(s > t) if d else None for s, t, d in zip(statistic, limit, decided, strict=True)],
        dtype="boolean",
    )
    notes = np.where(~known, NO_BASELINE, np.where(~enough, TOO_FEW_ROWS, ""))
    return pd.DataFrame(
        {
            "Device": pairs["Device"].astype(str).to_numpy(),
            "Sensor": pairs["Sensor"].astype(str).to_numpy(),
            "Statistic": np.where(known, statistic, np.nan),
            "Threshold": np.where(known, limit, np.nan),
            "Drifted": drifted,
            "Rows": rows.astype("int64"),
            "Note": notes.astype(str),
        },
        columns=list(DRIFT_COLUMNS),
    )


def worst_pairs(table: pd.DataFrame, count: int) -> list[dict[str, Any]]:
    """The ``count`` drifted pairs of a drift table with the highest statistic, worst first."""
    drifted = table[table["Drifted"].fillna(False).astype(bool)]
    top = drifted.sort_values("Statistic", ascending=False, kind="mergesort").head(count)
    return [
        {
            "device": str(r.Device),
            "sensor": str(r.Sensor),
            STATISTIC: round(float(r.Statistic), 4),
            "threshold": round(float(r.Threshold), 4),
            "rows": int(r.Rows),
        }
        for r in top.itertuples(index=False)
    ]


# ----------------------------------------------------------------- where baselines are kept

#: floats of a baseline in the pack's ``baseline`` column: edges, shares, rows, profile
PACKED_SIZE = (BINS - 1) + BINS + 1 + PROFILE_SIZE
PACK_COLUMN = "baseline"


def packed(entry: Mapping[str, Any]) -> np.ndarray:
    """A manifest entry's baseline as the pack stores it (empty when it has none)."""
    baseline = Baseline.from_dict(entry.get(ENTRY_KEY))
    return np.empty(0) if baseline is None else baseline.packed()


def unpacked(values: np.ndarray) -> Baseline | None:
    """A pack row's baseline (None when the row has none)."""
    if len(values) != PACKED_SIZE:
        return None
    return Baseline.from_dict(
        {
            "edges": values[: BINS - 1],
            "shares": values[BINS - 1 : 2 * BINS - 1],
            "rows": values[2 * BINS - 1],
            "profile": values[2 * BINS :],
        }
    )


def pack_column(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The pack's ``baseline`` column for its rows (each row holds ``baseline``, a
    :func:`packed` array)."""
    import pyarrow as pa

    parts = [np.asarray(row.get(PACK_COLUMN, np.empty(0)), dtype="float64") for row in rows]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([part.size for part in parts], out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.empty(0)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(flat))
