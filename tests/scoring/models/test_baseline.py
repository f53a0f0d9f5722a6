"""A model's baseline and the drift statistic (PSI over the decile bins of the residuals from
the daily profile): no drift, a level shift and a variance change each way, on windows of the
sizes runs have, and a daily cycle that is not drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.models import baseline
from scoring.models.baseline import Baseline, baseline_of, drift_table, psi, threshold

TRAINING_ROWS = 432  # 36 hours of 5-minute windows, as the demo trains


@pytest.fixture(scope="module")
def trained() -> Baseline:
    return baseline_of(np.random.default_rng(1).normal(20.0, 2.0, TRAINING_ROWS))


def _drifted_share(trained: Baseline, rows: int, mean: float, sd: float, windows: int) -> float:
    rng = np.random.default_rng(rows * 1000 + int(mean * 10) + int(sd * 100))
    limit = float(threshold(rows, trained.rows))
    return float(
        np.mean([psi(trained, rng.normal(mean, sd, rows)) > limit for _ in range(windows)])
    )


def test_the_baseline_is_the_deciles_of_the_residuals() -> None:
    values = np.arange(1.0, 101.0)
    found = baseline_of(values.reshape(-1, 1))
    assert found.edges == pytest.approx(np.quantile(values, np.arange(1, 10) / 10) - 50.5)
    assert found.shares == pytest.approx([0.1] * 10)
    assert found.rows == 100
    assert found.profile == pytest.approx([50.5, 0, 0, 0, 0]), "no times: a flat profile"
    assert Baseline.from_dict(found.to_dict()) == found
    assert baseline.unpacked(baseline.packed({"baseline": found.to_dict()})) == found
    # training packs the Baseline it computed; the pack's writer, the entry it recorded
    assert found.packed().tobytes() == baseline.packed({"baseline": found.to_dict()}).tobytes()
    assert found.packed().size == baseline.PACKED_SIZE
    assert baseline_of(np.array([5.0, np.nan, 5.0, np.inf])).rows == 2, "non-finite left out"
    with pytest.raises(ValueError, match="no finite training value"):
        baseline_of(np.array([np.nan]))


def test_the_deciles_are_numpys_quantiles_to_the_last_bit() -> None:
    """baseline._deciles replaces np.quantile's generic path: the same cut points, bit for bit,
    on sizes 1 to 600, with ties, constants, negative zeros and wide magnitudes."""
    rng = np.random.default_rng(11)
    arrays = [np.array([3.5]), np.array([-0.0]), np.array([2.0, -1.0]), np.zeros(17)]
    arrays += [np.array([-0.0, 0.0] * 5), np.array([0.0, -0.0, -0.0, 0.0, 1.0] * 7)]
    for size in [*range(3, 40), 100, 288, 432, 599]:
        arrays.append(rng.normal(0.0, 1.0, size))
        arrays.append(rng.integers(-3, 4, size).astype("float64"))  # many ties
        arrays.append(rng.standard_t(1.2, size) * 10.0 ** rng.integers(-8, 9))
    for values in arrays:
        expected = np.quantile(values, np.arange(1, 10) / 10)
        assert baseline._deciles(values).tobytes() == expected.tobytes(), values
    shared = baseline._decile_positions(288)  # cached per row count: nobody may write to it
    assert not any(array.flags.writeable for array in shared)


def test_the_day_terms_are_a_mean_and_the_harmonics() -> None:
    days = np.array([0.0, 0.125, 0.25, 0.6])
    angle = 2 * np.pi * days[:, None] * np.arange(1, baseline.HARMONICS + 1)
    expected = np.hstack([np.ones((4, 1)), np.cos(angle), np.sin(angle)])
    assert baseline.day_terms(days).tobytes() == expected.tobytes()


@pytest.mark.parametrize("broken", [None, {}, {"edges": [1.0], "shares": [1.0], "rows": 3},
                                    {"edges": "x", "shares": [], "rows": 1}])  # fmt: skip
def test_an_entry_without_a_usable_baseline_has_none(broken) -> None:
    assert Baseline.from_dict(broken) is None


@pytest.mark.parametrize("rows", [36, 144])
def test_no_shift_is_not_drift(trained, rows) -> None:
    assert _drifted_share(trained, rows, 20.0, 2.0, 400) <= 0.01


@pytest.mark.parametrize(("rows", "mean"), [(36, 24.0), (144, 22.0), (144, 17.0)])
def test_a_level_shift_is_drift(trained, rows, mean) -> None:
    assert _drifted_share(trained, rows, mean, 2.0, 200) >= 0.95


@pytest.mark.parametrize(("rows", "sd"), [(144, 4.0), (144, 0.6), (36, 0.6)])
def test_a_variance_change_either_way_is_drift(trained, rows, sd) -> None:
    assert _drifted_share(trained, rows, 20.0, sd, 200) >= 0.95


def test_the_statistic_grows_with_the_shift(trained) -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 2.0, 144)
    values = [psi(trained, 20.0 + shift + noise) for shift in (0.0, 1.0, 2.0, 4.0)]
    assert values == sorted(values) and values[0] < 0.25 < values[-1]


def test_a_short_window_needs_a_large_shift(trained) -> None:
    """An hourly run has 12 rows per pair: sampling noise alone moves PSI a lot there."""
    assert float(threshold(12, trained.rows)) > 1.5 > float(threshold(144, trained.rows))
    assert _drifted_share(trained, 12, 20.0, 2.0, 400) <= 0.01
    assert _drifted_share(trained, 12, 20.0 + 4 * 2.0, 2.0, 100) >= 0.95


def test_the_drift_table_of_a_run(trained) -> None:
    rng = np.random.default_rng(3)
    frames = [
        pd.DataFrame({"Device": "d1", "Sensor": "steady", "Value": rng.normal(20, 2, 144)}),
        pd.DataFrame({"Device": "d1", "Sensor": "shifted", "Value": rng.normal(26, 2, 144)}),
        pd.DataFrame({"Device": "d2", "Sensor": "old-model", "Value": rng.normal(20, 2, 144)}),
        pd.DataFrame({"Device": "d2", "Sensor": "few", "Value": [20.0] * 4 + [np.nan] * 20}),
    ]
    run = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0)  # any order
    table = drift_table(
        run["Device"].to_numpy(),
        run["Sensor"].to_numpy(),
        run["Value"].to_numpy(),
        pd.Timestamp("2026-01-01 10:00") + pd.to_timedelta(run.index.to_numpy() % 144 * 5, "min"),
        {("d1", "steady"): trained, ("d1", "shifted"): trained, ("d2", "few"): trained},
    )
    assert list(table.columns) == list(baseline.DRIFT_COLUMNS)
    rows = table.set_index(["Device", "Sensor"])
    assert bool(rows.loc[("d1", "steady"), "Drifted"]) is False
    assert bool(rows.loc[("d1", "shifted"), "Drifted"]) is True
    assert rows.loc[("d1", "shifted"), "Statistic"] == pytest.approx(
        psi(trained, frames[1]["Value"].to_numpy())
    ), "one vectorised pass gives each pair's own PSI"
    assert pd.isna(rows.loc[("d2", "old-model"), "Drifted"])
    assert "no baseline" in rows.loc[("d2", "old-model"), "Note"]
    assert pd.isna(rows.loc[("d2", "few"), "Drifted"]) and rows.loc[("d2", "few"), "Rows"] == 4
    (worst,) = baseline.worst_pairs(table, 5)
    assert (worst["device"], worst["sensor"]) == ("d1", "shifted") and worst["rows"] == 144


def test_an_empty_run_has_an_empty_drift_table() -> None:
    table = drift_table([], [], [], pd.DatetimeIndex([]), {})
    assert table.empty and list(table.columns) == list(baseline.DRIFT_COLUMNS)


def _cycling(hours: float, start: str, rng: np.random.Generator, level=20.0, noise=0.3):
    times = pd.date_range(start, periods=int(hours * 12), freq="5min")
    phase = 2 * np.pi * np.asarray(times.hour + times.minute / 60) / 24
    return level + 3.0 * np.sin(phase) + rng.normal(0, noise, len(times)), times


def test_part_of_a_daily_cycle_is_not_drift_a_shifted_cycle_is() -> None:
    """Half a day of a cycling sensor holds only that half's values: against the plain
    distribution that reads as drift; against the daily profile it does not."""
    rng = np.random.default_rng(4)
    values, times = _cycling(36, "2026-01-01 00:00", rng)
    with_profile, without = baseline_of(values, times), baseline_of(values)
    afternoon, when = _cycling(12, "2026-01-02 12:00", rng)
    limit = float(threshold(len(afternoon), len(values)))
    assert psi(with_profile, afternoon, when) < limit
    assert psi(without, afternoon) > limit, "the plain distribution calls the cycle drift"
    assert psi(with_profile, afternoon + 1.5, when) > limit, "a level shift half the cycle"
    noisier, _ = _cycling(12, "2026-01-02 12:00", rng, noise=0.9)
    assert psi(with_profile, noisier, when) > limit, "the same cycle, three times the noise"


def test_the_profile_needs_a_day_of_training() -> None:
    rng = np.random.default_rng(6)
    values, times = _cycling(12, "2026-01-01 00:00", rng)
    assert baseline_of(values, times).profile[1:] == (0.0,) * 4, "half a day: flat"
    values, times = _cycling(30, "2026-01-01 00:00", rng)
    profile = baseline_of(values, times).profile
    assert profile[0] == pytest.approx(20.0, abs=0.1)
    assert np.hypot(profile[1], profile[3]) == pytest.approx(3.0, abs=0.1), "the cycle found"


def _lstsq_profile(values: np.ndarray, times) -> np.ndarray:
    terms = baseline.day_terms(baseline.day_fraction(np.asarray(times)))
    return np.linalg.lstsq(terms, values, rcond=None)[0]


@pytest.mark.parametrize(
    ("periods", "freq"),
    # the last two: readings at two and at three times of day (terms of rank 2 and 3)
    [(288, "5min"), (433, "7min"), (40, "37min"), (20, "12h"), (12, "8h")],
)
def test_the_profile_is_the_least_squares_fit_of_smallest_norm(periods, freq) -> None:
    """The profile is numpy's least squares (lstsq's minimum-norm answer and cut-off), also
    when the times cover too few times of day for every harmonic (readings twice a day)."""
    rng = np.random.default_rng(periods)
    times = pd.date_range("2026-03-01 00:02", periods=periods, freq=freq).to_numpy()
    values = 20.0 + 3.0 * np.sin(2 * np.pi * rng.random(periods)) + rng.normal(0, 0.5, periods)
    found = np.array(baseline_of(values, times).profile)
    expected = _lstsq_profile(values, times)
    assert np.allclose(found, expected, rtol=1e-12, atol=1e-12 * np.abs(values).max())


def test_a_baseline_does_not_depend_on_what_the_cache_held() -> None:
    """Pairs on one clock share the profile's terms and their pseudo-inverse (cached by their
    times); a pair's baseline is the same bits whether its times were cached or not, and what
    the cache hands out cannot be written to."""
    rng = np.random.default_rng(8)
    values, times = _cycling(30, "2026-01-01 00:00", rng)
    other_values, other_times = _cycling(26, "2026-02-01 00:05", rng)
    times = times.to_numpy()
    baseline._basis_at.cache_clear()
    first = baseline_of(values, times)
    baseline_of(other_values, other_times.to_numpy())
    again = baseline_of(values, times.copy())  # equal times, another array: from the cache
    assert baseline._basis_at.cache_info().hits == 1
    baseline._basis_at.cache_clear()
    assert again == first == baseline_of(values, times)
    terms, solver = baseline._basis_at(times.dtype.str, times.tobytes())
    with pytest.raises(ValueError, match="read-only"):
        solver[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        terms[0, 0] = 1.0
    short = times[: 12 * 20]  # 20 hours: no profile
    assert baseline._basis_at(short.dtype.str, short.tobytes()) is None


def _pandas_day_fraction(times) -> np.ndarray:
    """The time of day as pandas reads it (what day_fraction computed before it went to numpy)."""
    index = pd.DatetimeIndex(times)
    return ((index - index.normalize()) / pd.Timedelta(days=1)).to_numpy(
        dtype="float64", na_value=np.nan
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_the_time_of_day_is_pandas_to_the_bit(unit: str) -> None:
    """Across 1900 to 2200, before 1970 too (a floor, not a truncation), missing times, and
    aware times read on their own clock."""
    rng = np.random.default_rng(11)
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    ticks = rng.integers(-2_200_000_000, 7_200_000_000, 20_000) * per_second
    ticks += rng.integers(0, per_second, ticks.size)
    times = ticks.astype(f"datetime64[{unit}]")
    times[::37] = np.datetime64("NaT")
    found = baseline.day_fraction(times)
    assert np.array_equal(found, _pandas_day_fraction(times), equal_nan=True)
    assert ((found >= 0) & (found < 1) | np.isnan(found)).all()
    aware = pd.DatetimeIndex(times).tz_localize("UTC").tz_convert("America/New_York")
    assert np.array_equal(baseline.day_fraction(aware), _pandas_day_fraction(aware), equal_nan=True)
    assert np.array_equal(
        baseline.day_fraction(pd.Series(times)), _pandas_day_fraction(times), equal_nan=True
    )
