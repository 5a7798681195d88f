"""Peeking: how checking a one-shot send's comparison day after day inflates false positives.

An A/A simulation. Two arms of ``--recipients`` people each (default 10,000) get the same content
once, so both have the same true conversion rate (``--rate``, default 5 %). Each person who
converts does so on a day drawn from a fixed delay distribution over 7 days (:data:`DELAY`: half
of the conversions on day 1, half of the rest on day 2, and so on, a geometric distribution with
p = 1/2 whose tail after day 7 is counted on day 7: 1/2, 1/4, 1/8, 1/16, 1/32, 1/64, 1/64).
At each look the cumulative conversions of the two arms, over their fixed recipients, are
compared with the provider's own test (``two_proportion_test`` in
``airflow_provider_braze.comparison``, the pooled two-sided z-test ``CompareSendsOperator``
uses), significant at p < ``--alpha`` (default 0.05). A marketer who stops at the first
significant look is wrong every time one is significant, since the arms are the same.

Each simulation draws the two arms once and reads every look schedule from the same p-values:

- one look, at the end (day 7): the planned analysis;
- two looks (days 3 and 7);
- daily looks (days 1 to 7), stopping at the first p < alpha.

Looks are cumulative: each sees the conversions so far. (Running the comparison again on the
very same data would give the same p-value, so it adds nothing to simulate; a comparison re-run
later on the same sends sees more data and is another look.) Printed: each schedule's false
positive rate with its 95 % Wilson interval, as a markdown table, and each day's rate when it is
the only look (each near alpha: it is the stopping rule, not any one test, that inflates).

Counts are drawn, not people: each arm's converters are Binomial(recipients, rate), split over
the days by successive conditional binomials (a multinomial). :func:`binomial` is exact (an
inversion of the binomial distribution, searched outward from its mode) and uses only the
standard library's ``random``, seeded (``--seed``, default 20261204): the same seed and
arguments give the same figures.

    python benchmarks/peeking.py [--simulations 20000] [--recipients 10000] [--rate 0.05]
                                 [--seed 20261204] [--alpha 0.05] [--quick]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine

from airflow_provider_braze.comparison import two_proportion_test, wilson_interval

if TYPE_CHECKING:
    from collections.abc import Sequence

SEED = 20261204
#: The share of conversions on each day after the send (day 1 first): geometric with p = 1/2,
#: the tail after day 7 counted on day 7. Sums to exactly 1.
DELAY = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 64)
#: Look schedules: name -> the days (1-based) on which the comparison is run.
SCHEDULES: dict[str, tuple[int, ...]] = {
    "one look (day 7)": (7,),
    "two looks (days 3, 7)": (3, 7),
    "daily looks (days 1-7)": (1, 2, 3, 4, 5, 6, 7),
}


class Uniform(Protocol):
    def random(self) -> float: ...


def binomial(rng: Uniform, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw: inversion, summing the probabilities from the mode outward.

    One uniform u is drawn; the outcomes are visited in a fixed order (the mode, mode + 1,
    mode - 1, mode + 2, mode - 2, ..., and the rest of one side once the other ends) and their
    probabilities are subtracted from u until it is used up. Any fixed order is an inversion of
    the distribution (each outcome k owns an interval of [0, 1) of length P(k)), so the draw is
    exact up to floating-point rounding; starting at the mode, it takes about
    sqrt(n p (1 - p)) steps. P(mode) comes from ``math.lgamma``, the others by the ratio of
    consecutive probabilities. Should rounding leave u unused after every outcome (a chance of
    the order of 1e-13), u is drawn again.
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"binomial needs n >= 0 and 0 <= p <= 1, got n={n}, p={p}")
    if n == 0 or p == 0.0:
        return 0
    if p == 1.0:
        return n
    q = 1.0 - p
    mode = min(n, int((n + 1) * p))
    log_mode = (
        math.lgamma(n + 1)
        - math.lgamma(mode + 1)
        - math.lgamma(n - mode + 1)
        + mode * math.log(p)
        + (n - mode) * math.log(q)
    )
    at_mode = math.exp(log_mode)
    up_ratio = p / q  # P(k + 1) / P(k) = (n - k) / (k + 1) * p / q
    down_ratio = q / p  # P(k - 1) / P(k) = k / (n - k + 1) * q / p
    while True:
        u = rng.random() - at_mode
        if u < 0.0:
            return mode
        high, high_p = mode, at_mode
        low, low_p = mode, at_mode
        while high < n or low > 0:
            if high < n:
                high_p *= (n - high) / (high + 1) * up_ratio
                high += 1
                u -= high_p
                if u < 0.0:
                    return high
            if low > 0:
                low_p *= low / (n - low + 1) * down_ratio
                low -= 1
                u -= low_p
                if u < 0.0:
                    return low


def by_day(rng: Uniform, count: int, delay: Sequence[float]) -> list[int]:
    """``count`` conversions spread over the days of ``delay`` (a multinomial draw): each day's
    count is a binomial draw from those not yet placed, with the day's share of what is left."""
    days = []
    left, share_left = count, 1.0
    for share in delay[:-1]:
        on_day = binomial(rng, left, min(1.0, share / share_left)) if share_left > 0 else 0
        days.append(on_day)
        left -= on_day
        share_left -= share
    days.append(left)
    return days


@dataclass(frozen=True)
class Result:
    """False positives of each schedule (and of each single day's look) over ``simulations``."""

    simulations: int
    recipients: int
    rate: float
    alpha: float
    seed: int
    delay: tuple[float, ...]
    false_positives: dict[str, int]
    single_day: tuple[int, ...]

    def rate_of(self, schedule: str) -> float:
        return self.false_positives[schedule] / self.simulations

    def interval(self, schedule: str, confidence: float = 0.95) -> tuple[float, float]:
        return wilson_interval(self.false_positives[schedule], self.simulations, confidence)


def simulate(
    simulations: int = 20_000,
    recipients: int = 10_000,
    rate: float = 0.05,
    seed: int = SEED,
    alpha: float = 0.05,
    delay: Sequence[float] = DELAY,
    schedules: dict[str, tuple[int, ...]] | None = None,
) -> Result:
    """Run ``simulations`` A/A experiments; count, per look schedule, those where any look of the
    schedule has p < ``alpha`` (the marketer stops there and declares a winner)."""
    schedules = dict(SCHEDULES if schedules is None else schedules)
    days = len(delay)
    if not math.isclose(math.fsum(delay), 1.0, abs_tol=1e-12) or min(delay) < 0:
        raise ValueError(f"delay must be non-negative shares summing to 1, got {delay}")
    for name, looks in schedules.items():
        if not looks or not all(1 <= day <= days for day in looks):
            raise ValueError(f"schedule {name!r} looks on days outside 1..{days}: {looks}")
    rng = random.Random(seed)
    false_positives = dict.fromkeys(schedules, 0)
    single_day = [0] * days
    for _ in range(simulations):
        arms = [by_day(rng, binomial(rng, recipients, rate), delay) for _ in range(2)]
        significant = []
        so_far = [0, 0]
        for day in range(days):
            so_far = [so_far[0] + arms[0][day], so_far[1] + arms[1][day]]
            _, p_value = two_proportion_test(so_far[0], recipients, so_far[1], recipients)
            significant.append(p_value < alpha)
            single_day[day] += significant[-1]
        for name, looks in schedules.items():
            if any(significant[day - 1] for day in looks):
                false_positives[name] += 1
    return Result(
        simulations=simulations,
        recipients=recipients,
        rate=rate,
        alpha=alpha,
        seed=seed,
        delay=tuple(delay),
        false_positives=false_positives,
        single_day=tuple(single_day),
    )


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def report(result: Result) -> list[str]:
    lines = [
        f"A/A simulations: {result.simulations:,}, seed {result.seed}; two arms of "
        f"{result.recipients:,} recipients each, true conversion rate {percent(result.rate)} in both; "
        f"two-proportion z-test (pooled, two-sided) at alpha {result.alpha:g}",
        "share of the conversions on each day after the send (day 1 first): "
        + ", ".join(f"{100 * share:g} %" for share in result.delay),
        "",
        "| Looks | False positives | Rate | 95 % Wilson interval |",
        "|---|---|---|---|",
    ]
    for name in result.false_positives:
        low, high = result.interval(name)
        lines.append(
            f"| {name} | {result.false_positives[name]:,} of {result.simulations:,} | "
            f"**{percent(result.rate_of(name))}** | {percent(low)} to {percent(high)} |"
        )
    lines += [
        "",
        "each day as the only look: "
        + ", ".join(
            f"day {day} {percent(count / result.simulations)}"
            for day, count in enumerate(result.single_day, 1)
        ),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20_000)
    parser.add_argument("--recipients", type=int, default=10_000, help="per arm")
    parser.add_argument("--rate", type=float, default=0.05, help="the true conversion rate of both arms")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="2,000 simulations")
    args = parser.parse_args()
    if args.quick:
        args.simulations = 2_000

    started = time.perf_counter()
    result = simulate(args.simulations, args.recipients, args.rate, args.seed, args.alpha)
    elapsed = time.perf_counter() - started
    print(machine())
    print("\n".join(report(result)))
    print(f"\n{elapsed:.1f} s")


if __name__ == "__main__":
    main()
