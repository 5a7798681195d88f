"""benchmarks/peeking.py: the A/A simulation behind docs/experiments.md's "Look once" section.

Its exact binomial sampler is checked three ways: as an inversion (a fine grid of uniforms must
land on each outcome as often as its exact probability says, to one grid point), by its mean and
variance over many draws, and by a chi-square goodness-of-fit test against the exact pmf, which
is shown to reject a sampler that is slightly wrong. The simulation runs with a fixed seed and
4,000 simulations: every assertion on its figures holds for this seed, and would for any other
with overwhelming probability (or, where said, 99.9 %).
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_braze import comparison
from airflow_provider_braze.comparison import chi2_sf, wilson_interval

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]


def _load_benchmark():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("peeking_benchmark", ROOT / "benchmarks" / "peeking.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


peeking = _load_benchmark()


def pmf(n: int, p: float, k: int) -> float:
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


class Grid:
    """A stand-in for ``random.Random`` whose ``random()`` walks a grid over [0, 1)."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.next = 0

    def random(self) -> float:
        value = (self.next + 0.5) / self.points
        self.next += 1
        return value


# --------------------------------------------------------------------------- the sampler


@pytest.mark.parametrize(("n", "p"), [(1, 0.2), (7, 0.5), (10, 0.3), (25, 0.9), (200, 0.05), (60, 0.999)])
def test_binomial_is_an_inversion_of_the_exact_distribution(n: int, p: float) -> None:
    points = 100_000
    grid = Grid(points)
    counts = [0] * (n + 1)
    for _ in range(points):
        counts[peeking.binomial(grid, n, p)] += 1
    assert grid.next == points  # no uniform was drawn again
    for k, count in enumerate(counts):
        # k owns one interval of length P(k): the grid has P(k) * points of its points, give or take 1
        assert abs(count - points * pmf(n, p, k)) <= 1.0 + 1e-6 * points, (k, count, points * pmf(n, p, k))


@pytest.mark.parametrize(("n", "p"), [(10_000, 0.05), (500, 0.5), (250, 0.5), (40, 0.02)])
def test_binomial_mean_and_variance(n: int, p: float) -> None:
    draws = 40_000
    rng = random.Random(11)
    values = [peeking.binomial(rng, n, p) for _ in range(draws)]
    mean = math.fsum(values) / draws
    variance = math.fsum((value - mean) ** 2 for value in values) / (draws - 1)
    expected_mean, expected_variance = n * p, n * p * (1 - p)
    # 5 standard errors: the mean's sqrt(var / draws); the sample variance's about var * sqrt(2 / draws)
    # (plus the excess kurtosis (1 - 6pq) / npq, small here)
    assert abs(mean - expected_mean) < 5 * math.sqrt(expected_variance / draws)
    kurtosis = (1 - 6 * p * (1 - p)) / (n * p * (1 - p))
    assert abs(variance - expected_variance) < 5 * expected_variance * math.sqrt((2 + kurtosis) / draws)
    assert abs(variance / expected_variance - 1) < 0.05


def goodness_of_fit(sample: Callable[[random.Random], int], n: int, p: float, draws: int, seed: int) -> float:
    """The chi-square p-value of ``draws`` draws of ``sample`` against Binomial(n, p), the tails
    pooled so that every cell expects at least 5."""
    rng = random.Random(seed)
    counts = [0] * (n + 1)
    for _ in range(draws):
        counts[sample(rng)] += 1
    expected = [draws * pmf(n, p, k) for k in range(n + 1)]
    low = next(k for k in range(n + 1) if math.fsum(expected[: k + 1]) >= 5)
    high = next(k for k in range(n, -1, -1) if math.fsum(expected[k:]) >= 5)
    cells = [(sum(counts[: low + 1]), math.fsum(expected[: low + 1]))]
    cells += [(counts[k], expected[k]) for k in range(low + 1, high)]
    cells.append((sum(counts[high:]), math.fsum(expected[high:])))
    statistic = math.fsum((observed - wanted) ** 2 / wanted for observed, wanted in cells)
    return chi2_sf(statistic, len(cells) - 1)


@pytest.mark.parametrize(("n", "p"), [(20, 0.3), (12, 0.5), (30, 0.85), (1_000, 0.02)])
def test_binomial_fits_the_exact_pmf(n: int, p: float) -> None:
    assert goodness_of_fit(lambda rng: peeking.binomial(rng, n, p), n, p, 50_000, seed=5) > 0.001


def test_the_goodness_of_fit_test_rejects_a_slightly_wrong_sampler() -> None:
    n, p = 20, 0.3

    def too_likely(rng: random.Random) -> int:
        return peeking.binomial(rng, n, p * 1.05)  # 6.3 successes on average instead of 6

    def too_narrow(rng: random.Random) -> int:
        # the right mean, 0.89 of the variance: n - 4 trials at a rate that keeps n p
        return peeking.binomial(rng, n - 4, p * n / (n - 4))

    assert goodness_of_fit(too_likely, n, p, 50_000, seed=5) < 1e-6
    assert goodness_of_fit(too_narrow, n, p, 50_000, seed=5) < 1e-6


def test_binomial_edges() -> None:
    rng = random.Random(1)
    assert peeking.binomial(rng, 0, 0.4) == 0
    assert peeking.binomial(rng, 50, 0.0) == 0
    assert peeking.binomial(rng, 50, 1.0) == 50
    assert {peeking.binomial(rng, 1, 0.5) for _ in range(200)} == {0, 1}
    for bad in ((-1, 0.5), (5, -0.1), (5, 1.5), (5, math.nan)):
        with pytest.raises(ValueError, match="binomial needs"):
            peeking.binomial(rng, *bad)


def test_by_day_spreads_the_conversions_by_the_delay_distribution() -> None:
    rng = random.Random(3)
    totals = [0] * len(peeking.DELAY)
    draws, count = 4_000, 500
    for _ in range(draws):
        days = peeking.by_day(rng, count, peeking.DELAY)
        assert sum(days) == count
        assert min(days) >= 0
        totals = [total + day for total, day in zip(totals, days, strict=True)]
    for total, share in zip(totals, peeking.DELAY, strict=True):
        # each day's count is Binomial(count, share): its mean over the draws, within 5 standard errors
        se = math.sqrt(count * share * (1 - share) / draws)
        assert abs(total / draws - count * share) < 5 * se
    assert peeking.DELAY == (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 64)
    assert math.fsum(peeking.DELAY) == 1.0


# --------------------------------------------------------------------------- the simulation


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return peeking.simulate(simulations=4_000, seed=7)


def test_the_simulation_uses_the_providers_own_test() -> None:
    assert peeking.two_proportion_test is comparison.two_proportion_test


def test_one_look_keeps_alpha(result) -> None:  # type: ignore[no-untyped-def]
    one = "one look (day 7)"
    # the 95 % Wilson interval contains 0.05 for this seed; the 99.9 % one would for nearly any seed
    for confidence in (0.95, 0.999):
        low, high = result.interval(one, confidence)
        assert low <= 0.05 <= high, (confidence, low, high)
    # each day alone is one look, and keeps alpha too
    for count in result.single_day:
        low, high = wilson_interval(count, result.simulations, 0.999)
        assert low <= 0.05 <= high
    assert result.single_day[-1] == result.false_positives[one]


def test_daily_looks_inflate_false_positives(result) -> None:  # type: ignore[no-untyped-def]
    one = result.rate_of("one look (day 7)")
    two = result.rate_of("two looks (days 3, 7)")
    daily = result.rate_of("daily looks (days 1-7)")
    # each schedule's looks include the previous one's, on the same draws
    assert one <= two <= daily
    # expected about 11 %: 6 standard errors above 0.08, and 8 above one look + 0.03
    assert daily > 0.08
    assert daily > one + 0.03
    assert result.interval("daily looks (days 1-7)")[0] > 0.05


def test_the_simulation_is_reproducible(result) -> None:  # type: ignore[no-untyped-def]
    assert peeking.simulate(simulations=4_000, seed=7) == result
    assert peeking.simulate(simulations=300, seed=8) != peeking.simulate(simulations=300, seed=9)


def test_the_report_is_a_markdown_table(result) -> None:  # type: ignore[no-untyped-def]
    lines = peeking.report(result)
    rows = [line for line in lines if line.startswith("| ") and "of 4,000" in line]
    assert [row.split("|")[1].strip() for row in rows] == list(peeking.SCHEDULES)
    assert "seed 7" in lines[0]
    assert "50 %, 25 %, 12.5 %, 6.25 %, 3.125 %, 1.5625 %, 1.5625 %" in lines[1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        peeking.simulate(simulations=1, delay=(0.5, 0.4))
    with pytest.raises(ValueError, match="outside"):
        peeking.simulate(simulations=1, schedules={"day 9": (9,)})
