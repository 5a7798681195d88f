"""Compare the analytics of several sends (or variations): rates, intervals, tests, verdicts.

Each variant's rates are proportions of people (opens of deliveries, clicks of deliveries,
conversions of recipients...) with Wilson score intervals; each variant is compared with the
control by a two-sided two-proportion z-test (pooled), a Newcombe interval for the
difference and a log-ratio (Katz) interval for the relative lift, and the p-values of every
comparison in the table are adjusted together (Holm by default) so that testing several
variants and metrics does not make a false "winner" likely.
docs/experiments.md says what this assumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.analytics import PUSH_CHANNELS, channel_statistics
from airflow_provider_braze.exceptions import BrazeUnexpectedResponseError, BrazeValidationError
from airflow_provider_braze.hooks.endpoints import GET_SEND_ANALYTICS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

#: Multiple-comparison corrections: Holm (step-down; never less powerful than Bonferroni),
#: Bonferroni, or none.
CORRECTIONS = ("holm", "bonferroni", "none")

_PUSH_RATES = (
    ("delivered", "delivered", "sent"),
    ("direct opens", "direct_opens", "delivered"),
    ("body clicks", "body_clicks", "delivered"),
)
#: Each channel's rates compared in an experiment: (metric, numerator, denominator). Each
#: numerator counts people among the denominator's, so the rate is a proportion; the outcome
#: ``conversions`` (of recipients) is added for every channel.
EXPERIMENT_RATES: dict[str, tuple[tuple[str, str, str], ...]] = {
    **dict.fromkeys(PUSH_CHANNELS, _PUSH_RATES),
    "email": (
        ("delivered", "delivered", "sent"),
        ("opens", "unique_opens", "delivered"),
        ("clicks", "unique_clicks", "delivered"),
    ),
    "sms": (("delivered", "delivered", "sent"), ("clicks", "clicks", "delivered")),
    "whats_app": (("delivered", "delivered", "sent"), ("read", "read", "delivered")),
    "content_cards": (
        ("impressions", "unique_impressions", "sent"),
        ("clicks", "unique_clicks", "sent"),
    ),
    "webhook": (),
}
CONVERSIONS = ("conversions", "conversions", "recipients")
#: Each channel's metrics where more is worse, offered as guardrails only: (metric, numerator,
#: denominator), Braze's own names.
HARM_RATES: dict[str, tuple[tuple[str, str, str], ...]] = {
    **dict.fromkeys(PUSH_CHANNELS, (("bounces", "bounces", "sent"),)),
    "email": (
        ("unsubscribes", "unsubscribes", "delivered"),
        ("bounces", "bounces", "sent"),
        ("reported_spam", "reported_spam", "delivered"),
    ),
    "sms": (
        ("opt_out", "opt_out", "delivered"),
        ("delivery_failed", "delivery_failed", "sent"),
        ("rejected", "rejected", "sent"),
    ),
    "whats_app": (("failed", "failed", "sent"),),
    "content_cards": (("dismissals", "unique_dismissals", "sent"),),
    "webhook": (),
}
#: Metrics that are a diagnostic, never part of a verdict unless chosen as the primary metric:
#: e-mail opens, which Apple Mail Privacy Protection inflates.
DIAGNOSTICS = frozenset({("email", "opens")})
#: What a row's metric is for: ``primary`` decides the verdict (the primary metric, or every
#: metric that is not a diagnostic when there is none), ``secondary`` is reported beside a primary
#: metric, ``diagnostic`` never decides, ``guardrail`` must not get worse (one-sided test).
ROLES = ("primary", "secondary", "diagnostic", "guardrail")
MPP_NOTE = (
    "Opens are a diagnostic here, not a verdict: Apple Mail Privacy Protection opens e-mails on "
    "the device's behalf (images are fetched whether or not the person reads), so opens are "
    "inflated, and more so for Apple Mail users; judge a variant by clicks or conversions"
)

#: The table's columns, in order (CSV header).
TABLE_FIELDS = (
    "variant",
    "campaign_id",
    "send_id",
    "variation",
    "channel",
    "metric",
    "role",
    "count",
    "base",
    "rate",
    "rate_low",
    "rate_high",
    "recipients",
    "delivered",
    "revenue",
    "revenue_per_recipient",
    "difference",
    "difference_low",
    "difference_high",
    "interval_level",
    "relative_lift",
    "relative_lift_low",
    "relative_lift_high",
    "p_value",
    "p_adjusted",
    "sided",
    "significant",
    "verdict",
)


@dataclass(frozen=True)
class VariantTotals:
    """One variant's totals over the analytics rows it was given."""

    variant: str
    campaign_id: str
    send_id: str
    variation: str | None
    channel: str
    counts: dict[str, float | None]
    days: int

    @property
    def recipients(self) -> float | None:
        value = self.counts.get("unique_recipients")
        return value if value is not None else self.counts.get("sent")


#: A sample ratio whose chi-square p-value is below this is a mismatch.
SAMPLE_RATIO_THRESHOLD = 0.001


@dataclass(frozen=True)
class SampleRatio:
    """The chi-square goodness-of-fit test of the variants' recipients against the planned
    shares: a mismatch means the split or the sends lost or added people unevenly."""

    statistic: float
    df: int
    p_value: float
    mismatch: bool
    planned: dict[str, float]
    observed: dict[str, float]
    recipients: dict[str, float]

    def describe(self) -> str:
        planned = ", ".join(f"{name} {100 * share:.1f} %" for name, share in self.planned.items())
        observed = ", ".join(f"{name} {100 * share:.1f} %" for name, share in self.observed.items())
        return (
            f"planned {planned}; observed {observed}; chi-square {self.statistic:.2f}, {self.df} df, "
            f"p = {format_tiny_p(self.p_value)}"
        )


@dataclass
class Comparison:
    """The result: one table row per (variant, metric), verdicts per variant, and notes."""

    channel: str
    control: str
    confidence: float
    correction: str
    rows: list[dict[str, Any]]
    verdicts: dict[str, str]
    notes: list[str] = field(default_factory=list)
    #: The sample ratio check; None without planned shares.
    sample_ratio: SampleRatio | None = None
    #: The metric that decides the verdicts; None: every metric that is not a diagnostic.
    primary_metric: str | None = None
    #: Metrics no variant may worsen.
    guardrails: tuple[str, ...] = ()
    #: Why the verdicts are provisional (too early, or another look at the same sends); None.
    provisional: str | None = None

    def harmed(self, variant: str) -> list[str]:
        """The guardrails ``variant`` worsened."""
        return [
            r["metric"]
            for r in self.rows
            if r["variant"] == variant and r["role"] == "guardrail" and r["significant"]
        ]

    def significant(self, variant: str) -> list[str]:
        return [r["metric"] for r in self.rows if r["variant"] == variant and r["significant"]]


# --------------------------------------------------------------------------- statistics


def z_value(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.959964 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(count: float, base: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``count / base``."""
    if base <= 0:
        return (math.nan, math.nan)
    z = z_value(confidence)
    p = count / base
    denominator = 1 + z * z / base
    centre = (p + z * z / (2 * base)) / denominator
    half = z * math.sqrt(p * (1 - p) / base + z * z / (4 * base * base)) / denominator
    # At 0 or 1 the interval ends at the proportion itself (exactly, not give or take a rounding).
    low = 0.0 if count == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if count == base else min(1.0, max(p, centre + half))
    return (low, high)


def two_proportion_test(count1: float, base1: float, count2: float, base2: float) -> tuple[float, float]:
    """Two-sided z-test that two proportions are equal, with the pooled variance.

    :return: ``(z, p_value)``; when both proportions are 0 (or both 1) there is nothing to tell
        apart: ``(0.0, 1.0)``.
    """
    pooled = (count1 + count2) / (base1 + base2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / base1 + 1 / base2))
    if se == 0:
        return 0.0, 1.0
    z = (count1 / base1 - count2 / base2) / se
    # erfc keeps its relative precision far into the tail (1 + erf(-x) cancels to 0 by |z| = 8).
    return z, min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def _decreasing_root(function: Callable[[float], float], low: float, high: float, target: float) -> float:
    """The point of ``[low, high]`` where the decreasing ``function`` crosses ``target``, by
    bisection down to the last representable step (no tolerance to tune)."""
    for _ in range(2000):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if function(middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z, precise far into the tail: the one-sided p-value."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def difference_score(count1: float, base1: float, count2: float, base2: float, delta: float) -> float:
    """The score statistic of ``count1/base1 - count2/base2 = delta``: the observed difference
    minus ``delta``, over its standard error at the two proportions that are most likely under
    that hypothesis (their restricted maximum likelihood estimates, the closed-form cubic root of
    Farrington and Manning, 1990). At ``delta = 0`` those are the pooled proportion, so this is
    :func:`two_proportion_test`'s z."""
    p1, p2 = count1 / base1, count2 / base2
    theta = base2 / base1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (27 * a**3) - b * c / (6 * a * a) + d / (2 * a)
    u = math.copysign(math.sqrt(max(0.0, b * b / (9 * a * a) - c / (3 * a))), v)
    if u == 0:
        q1 = -b / (3 * a)
    else:
        q1 = 2 * u * math.cos((math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3) - b / (3 * a)
    q1 = min(1.0, max(0.0, q1))
    q2 = min(1.0, max(0.0, q1 - delta))
    return _score(p1 - p2 - delta, q1 * (1 - q1) / base1 + q2 * (1 - q2) / base2)


def ratio_score(count1: float, base1: float, count2: float, base2: float, ratio: float) -> float:
    """The score statistic of ``(count1/base1) / (count2/base2) = ratio`` (Koopman's, without
    Miettinen and Nurminen's small-sample factor): the restricted estimates are the root of a
    quadratic. At ``ratio = 1`` it is :func:`two_proportion_test`'s z."""
    p1, p2 = count1 / base1, count2 / base2
    a = (base1 + base2) * ratio
    b = -(ratio * (base1 + count2) + count1 + base2)
    c = count1 + count2
    # The smaller root, written so that it does not cancel when ``a`` is tiny (b < 0 < c).
    q2 = 2 * c / (-b + math.sqrt(max(0.0, b * b - 4 * a * c)))
    q1 = ratio * q2
    return _score(p1 - ratio * p2, q1 * (1 - q1) / base1 + ratio * ratio * q2 * (1 - q2) / base2)


def _score(difference: float, variance: float) -> float:
    if variance > 0:
        return difference / math.sqrt(variance)
    return math.copysign(math.inf, difference) if difference else 0.0


def difference_interval(
    count1: float, base1: float, count2: float, base2: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The score interval for ``count1/base1 - count2/base2`` (Mee's: every difference the score
    test at ``confidence`` does not reject, :func:`difference_score`). It inverts the same test
    as :func:`two_proportion_test`, so it excludes 0 exactly when that test's p-value is below
    ``1 - confidence``; it keeps good coverage for small counts and rates near 0 or 1."""
    z = z_value(confidence)
    estimate = count1 / base1 - count2 / base2

    def score(delta: float) -> float:
        return difference_score(count1, base1, count2, base2, delta)

    low = -1.0 if score(-1.0) <= z else _decreasing_root(score, -1.0, estimate, z)
    high = 1.0 if score(1.0) >= -z else _decreasing_root(score, estimate, 1.0, -z)
    return (low, high)


def relative_lift_interval(
    count1: float, base1: float, count2: float, base2: float, confidence: float = 0.95
) -> tuple[float, float, float | None] | None:
    """The relative lift ``(count1/base1) / (count2/base2) - 1`` and its interval.

    The interval is the score interval of the ratio of two proportions (every ratio the score
    test at ``confidence`` does not reject, :func:`ratio_score`), minus 1. Like
    :func:`difference_interval` it inverts :func:`two_proportion_test`, so it excludes a lift of
    0 exactly when the difference's interval excludes 0.

    :return: ``(lift, low, high)``; None when the second (control) proportion is 0 (no ratio);
        ``high`` is None when no ratio can be ruled out above (the first proportion is 1 and
        the control's too small to tell).
    """
    if count2 <= 0 or base1 <= 0 or base2 <= 0:
        return None
    estimate = (count1 / base1) / (count2 / base2)
    z = z_value(confidence)

    def score(log_ratio: float) -> float:
        return ratio_score(count1, base1, count2, base2, math.exp(log_ratio))

    # Searched on the log scale, where the statistic is smooth in both directions.
    # With no events in the variant the estimate is 0: start where the ratio is tiny but its
    # variance does not underflow yet.
    centre = math.log(estimate) if count1 > 0 else -690.0
    low = 0.0
    if count1 > 0:
        edge = centre - 1
        while score(edge) <= z and edge > -745:
            edge -= 1
        low = math.exp(_decreasing_root(score, edge, centre, z))
    edge = centre + 1
    while score(edge) >= -z and edge < 700:
        edge += 1
    high = None if score(edge) >= -z else math.exp(_decreasing_root(score, centre, edge, -z)) - 1
    return (estimate - 1, low - 1, high)


def chi2_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with ``df`` (a positive whole number) degrees of freedom.

    The regularized upper incomplete gamma Q(df/2, statistic/2) as its exact finite series
    (y = statistic/2): for even df ``exp(-y) sum_{j<df/2} y^j / j!``; for odd df
    ``erfc(sqrt(y)) + exp(-y) sum_{j=1}^{(df-1)/2} y^(j-1/2) / Gamma(j+1/2)``. The terms are
    summed in log space, so p-values down to about 1e-300 keep their relative precision (about
    1e-13) instead of underflowing term by term. No scipy needed.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise BrazeValidationError(f"df must be a positive whole number, got {df!r}.")
    if statistic <= 0:
        return 1.0
    y = statistic / 2
    log_y = math.log(y)
    if df % 2 == 0:
        logs = [j * log_y - math.lgamma(j + 1) - y for j in range(df // 2)]
        head = 0.0
    else:
        logs = [(j - 0.5) * log_y - math.lgamma(j + 0.5) - y for j in range(1, (df - 1) // 2 + 1)]
        head = math.erfc(math.sqrt(y))
    if not logs:
        return min(1.0, head)
    top = max(logs)
    tail = math.exp(top) * math.fsum(math.exp(value - top) for value in logs)
    return min(1.0, head + tail)


def format_tiny_p(p: float) -> str:
    """A p-value however small: ``0.31``, ``0.0004``, ``6.4e-64``."""
    return f"{p:.2g}"


def sample_ratio_test(recipients: Mapping[str, float], planned: Mapping[str, float]) -> SampleRatio:
    """Pearson's chi-square goodness-of-fit test of ``recipients`` (variant -> count) against
    the ``planned`` shares (variant -> share, the same variants), with variants - 1 degrees of
    freedom."""
    total = math.fsum(recipients.values())
    planned_total = math.fsum(planned.values())
    statistic = 0.0
    for name, count in recipients.items():
        expected = total * planned[name] / planned_total
        statistic += (count - expected) ** 2 / expected
    df = len(recipients) - 1
    p_value = chi2_sf(statistic, df)
    return SampleRatio(
        statistic=statistic,
        df=df,
        p_value=p_value,
        mismatch=p_value < SAMPLE_RATIO_THRESHOLD,
        planned={name: planned[name] / planned_total for name in recipients},
        observed={name: count / total for name, count in recipients.items()},
        recipients=dict(recipients),
    )


def check_planned_shares(planned_shares: Any, variants: Iterable[str]) -> dict[str, float]:
    """``planned_shares`` checked (:func:`~airflow_provider_braze.experiments.check_shares`):
    one share per compared variant, no others. A JSON object in a string (a rendered template)
    is read as the mapping."""
    from airflow_provider_braze.experiments import check_shares

    names = list(variants)
    try:
        checked = check_shares(planned_shares)
    except BrazeValidationError as err:
        raise BrazeValidationError(f"planned_shares: {err}") from err
    unknown = [name for name in checked if name not in names]
    if unknown:
        raise BrazeValidationError(
            f"planned_shares names variant(s) {', '.join(map(repr, unknown))} that are not compared: "
            f"{', '.join(names)}."
        )
    missing = [name for name in names if name not in checked]
    if missing:
        raise BrazeValidationError(
            f"planned_shares has no share for variant(s) {', '.join(map(repr, missing))}."
        )
    return checked


def check_confidence(confidence: Any) -> float:
    """A confidence level: a number at least 0.5 and below 1 (0.95 for 95 % intervals)."""
    from airflow_provider_braze.validation import is_number

    if not is_number(confidence) or not 0.5 <= confidence < 1:
        raise BrazeValidationError(f"confidence must be at least 0.5 and below 1, got {confidence!r}.")
    return float(confidence)


def check_correction(correction: Any) -> str:
    """A multiple-comparison correction: one of :data:`CORRECTIONS`."""
    if correction not in CORRECTIONS:
        raise BrazeValidationError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}.")
    return str(correction)


def adjust_p_values(p_values: list[float], method: str = "holm") -> list[float]:
    """p-values adjusted for testing them all: ``holm`` (step-down), ``bonferroni`` or ``none``."""
    m = len(p_values)
    if method == "none" or m <= 1:
        return list(p_values)
    if method == "bonferroni":
        return [min(1.0, p * m) for p in p_values]
    check_correction(method)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# --------------------------------------------------------------------------- totals


def selected_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    variant: str,
    send_id: str,
    channel: str,
    message_variation_id: str | None = None,
    variation_name: str | None = None,
) -> list[Mapping[str, Any]]:
    """One variant's rows of a send's analytics: its channel's, and its variation's when given
    (by API ID or by dashboard name). A variation Braze did not report is an error naming those
    it did."""
    rows = [r for r in rows if r.get("channel") == channel]
    chosen = rows
    variation = message_variation_id or variation_name
    if message_variation_id is not None:
        chosen = [r for r in rows if r.get("variation_api_id") == message_variation_id]
        if not chosen and rows and all(r.get("variation_api_id") is None for r in rows):
            names = sorted({str(r.get("variation_name")) for r in rows})
            raise BrazeValidationError(
                f"Variant {variant!r}: Braze reported send {send_id!r}'s variations by name "
                f"({', '.join(names)}), not by API ID, so message_variation_id "
                f"{message_variation_id!r} cannot be found; give the variant's variation_name instead."
            )
    elif variation_name is not None:
        chosen = [r for r in rows if r.get("variation_name") == variation_name]
    if variation is not None and rows and not chosen:
        found = sorted({str(r.get("variation_api_id") or r.get("variation_name")) for r in rows})
        raise BrazeValidationError(
            f"Variant {variant!r}: send {send_id!r} has no {channel} analytics for variation "
            f"{variation!r}; Braze reported {', '.join(found)}."
        )
    return chosen


def variant_totals(
    rows: Iterable[Mapping[str, Any]],
    *,
    variant: str,
    campaign_id: str,
    send_id: str,
    channel: str,
    message_variation_id: str | None = None,
    variation_name: str | None = None,
) -> VariantTotals:
    """Sum one variant's rows (:func:`selected_rows`) over all days."""
    chosen = selected_rows(
        rows,
        variant=variant,
        send_id=send_id,
        channel=channel,
        message_variation_id=message_variation_id,
        variation_name=variation_name,
    )
    counts: dict[str, float | None] = dict.fromkeys(channel_statistics(channel))
    days: set[str] = set()
    for row in chosen:
        for name in channel_statistics(channel, row):
            value = row.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if value < 0:
                    raise BrazeUnexpectedResponseError(
                        f"Braze reported a negative {name} ({value}) for send {send_id!r} on "
                        f"{row.get('date')}: analytics counts cannot be negative.",
                        endpoint=str(GET_SEND_ANALYTICS),
                    )
                counts[name] = (counts.get(name) or 0) + value
                if value > 0:
                    days.add(str(row.get("date")))
    return VariantTotals(
        variant, campaign_id, send_id, message_variation_id or variation_name, channel, counts, len(days)
    )


# --------------------------------------------------------------------------- comparison


def compare(
    variants: list[VariantTotals],
    *,
    control: str,
    confidence: float = 0.95,
    correction: str = "holm",
    planned_shares: Mapping[str, float] | None = None,
    primary_metric: str | None = None,
    guardrails: Iterable[str] = (),
    provisional: str | None = None,
) -> Comparison:
    """Rates, intervals, tests against ``control`` and verdicts for ``variants`` (one channel).

    Tests are grouped into families whose p-values are adjusted together (``correction``):
    without ``primary_metric`` every two-sided test in the table is one family (and every metric
    but e-mail opens decides the verdict); with it, the primary metric's tests of the variants
    are one family and decide the verdict alone, the other metrics are a second family reported
    beside it; each guardrail's tests of the variants are a family of their own. Each difference
    and relative-lift interval is at the level its test was judged at within its family, so an
    interval excludes 0 exactly when its row is significant (the level is in ``interval_level``).

    :param planned_shares: Optional. Variant -> planned share of the audience (e.g. the split's
        ``planned_shares`` XCom): the variants' recipients are then tested against it
        (:attr:`Comparison.sample_ratio`); on a mismatch no variant is called better or worse.
    :param primary_metric: Optional. The one metric that decides the verdicts (e.g. ``clicks``
        or ``conversions``; :func:`channel_metrics` lists them).
    :param guardrails: Metrics no variant may worsen (e.g. ``unsubscribes``, ``bounces``,
        ``reported_spam``): a one-sided test each, in the direction of harm; a variant that
        worsens one has it named in its verdict.
    :param provisional: Optional. Why these verdicts are not final (the sends are younger than
        the planned analysis time, or the same sends were compared before); every verdict then
        starts with it.
    """
    check_confidence(confidence)
    check_correction(correction)
    by_name = {v.variant: v for v in variants}
    if control not in by_name:
        raise BrazeValidationError(
            f"The control {control!r} is not one of the variants: {', '.join(by_name)}."
        )
    if len(by_name) < 2:
        raise BrazeValidationError("A comparison needs the control and at least one other variant.")
    channels = {v.channel for v in variants}
    if len(channels) != 1:
        raise BrazeValidationError(
            f"Variants must be compared on one channel, got {', '.join(sorted(channels))}."
        )
    channel = channels.pop()
    planned = None if planned_shares is None else check_planned_shares(planned_shares, by_name)
    primary_metric, guarded = check_metric_choice(primary_metric, guardrails)
    metrics = metric_roles(channel, primary_metric, guarded)
    notes: list[str] = []
    for v in variants:
        if not v.recipients:
            raise BrazeValidationError(
                f"Variant {v.variant!r} (send {v.send_id!r}{_variation_text(v)}) has no {channel} "
                "analytics yet: nobody was sent to, or Braze has not reported the send."
            )
    days = max(v.days for v in variants)
    if days > 1:
        notes.append(
            f"The analytics cover {days} days: Braze counts unique opens, clicks and recipients per "
            "day, so a person active on two days counts twice and rates may be overstated."
        )

    rows: list[dict[str, Any]] = []
    families: dict[str, list[int]] = {}  # family -> indexes of its rows with a test
    # The control's rate of each metric, what every variant is compared with.
    reference = {
        metric: _rate_row(by_name[control], metric, numerator, denominator, confidence, [])
        for metric, numerator, denominator, *_ in metrics
    }
    for v in variants:
        for metric, numerator, denominator, role, harm in metrics:
            row = _rate_row(v, metric, numerator, denominator, confidence, notes)
            row["role"] = role
            if v.variant != control and row["rate"] is not None:
                base_row = reference[metric]
                if base_row["rate"] is not None:
                    x1, n1, x2, n2 = row["count"], row["base"], base_row["count"], base_row["base"]
                    row["difference"] = x1 / n1 - x2 / n2
                    z, two_sided = two_proportion_test(x1, n1, x2, n2)
                    if role == "guardrail":
                        # One-sided, towards harm: more of a harm metric, less of any other.
                        row["p_value"] = upper_tail(z if harm == "more" else -z)
                        row["sided"] = f"one-sided ({harm} is worse)"
                    else:
                        row["p_value"], row["sided"] = two_sided, "two-sided"
                    family = metric if role == "guardrail" else _two_sided_family(role, primary_metric)
                    families.setdefault(family, []).append(len(rows))
            rows.append(row)
    alpha = 1 - confidence
    for indexes in families.values():
        p_values = [rows[i]["p_value"] for i in indexes]
        levels = judged_levels(p_values, correction, alpha)
        for index, p_adjusted, level in zip(
            indexes, adjust_p_values(p_values, correction), levels, strict=True
        ):
            row = rows[index]
            row["p_adjusted"] = p_adjusted
            row["significant"] = p_adjusted < alpha
            # A one-sided test at ``level`` is one end of the two-sided interval at 1 - 2 level.
            row["interval_level"] = 1 - (2 * level if row["role"] == "guardrail" else level)
            _add_intervals(row, reference[row["metric"]])
            row["verdict"] = _metric_verdict(row, control, correction, alpha)
    for row in rows:
        if row["variant"] == control:
            row["verdict"] = "control"
        elif row["verdict"] is None:
            row["verdict"] = "not tested"
    verdicts = {
        v.variant: _variant_verdict(v.variant, rows, control, correction, alpha)
        for v in variants
        if v.variant != control
    }
    if any(r["metric"] == "opens" and r["rate"] is not None for r in rows) and channel == "email":
        if primary_metric == "opens":
            notes.append(
                "Opens are the primary metric, but Apple Mail Privacy Protection opens e-mails on "
                "the device's behalf, so opens are inflated and a difference in opens may not be "
                "one in reading; clicks or conversions are the safer verdict."
            )
        else:
            notes.append(f"{MPP_NOTE}.")
    sample_ratio = None
    if planned is not None:
        sample_ratio = sample_ratio_test({v.variant: float(v.recipients or 0) for v in variants}, planned)
    if sample_ratio is not None and sample_ratio.mismatch:
        mismatch = (
            f"the sample ratio does not match the plan ({sample_ratio.describe()}): the split or the "
            "sends lost or added people unevenly, so the variants are not comparable and no variant "
            "is called better or worse"
        )
        for row in rows:
            if row["p_value"] is not None:
                row["significant"] = False
                row["verdict"] = "not judged: sample ratio mismatch"
        verdicts = {name: f"{name}: {mismatch}" for name in verdicts}
        notes.insert(0, f"Sample ratio mismatch: {mismatch}.")
    if provisional:
        verdicts = {name: f"Provisional ({provisional}): {text}" for name, text in verdicts.items()}
        notes.insert(0, f"Provisional verdicts: {provisional}. {PEEKING_NOTE}")
    for row in rows:
        if row["variant"] != control and row["p_value"] is None and row["role"] in ("primary", "guardrail"):
            over = row["count"] is not None and bool(row["base"]) and row["count"] > row["base"]
            nothing = not any(r["variant"] == row["variant"] and r["p_value"] is not None for r in rows)
            if over or (nothing and row["role"] == "primary"):
                continue  # a note already says why
            numerator, denominator = next((m[1], m[2]) for m in metrics if m[0] == row["metric"])
            notes.append(
                f"{row['variant']}: the {'guardrail' if row['role'] == 'guardrail' else 'primary metric'} "
                f"{row['metric']} was not tested: the {channel} analytics of {row['variant']} or {control} "
                f"lack {numerator} or {denominator}, or the count exceeds its base."
            )
    for v in variants:
        if v.variant != control and not any(
            r["variant"] == v.variant and r["p_value"] is not None for r in rows
        ):
            wanted = ", ".join(
                f"{metric} ({numerator} of {denominator})" for metric, numerator, denominator, *_ in metrics
            )
            notes.append(
                f"{v.variant}: nothing was tested: the {channel} analytics of {v.variant} or {control} "
                f"lack what the rates need: {wanted}."
            )
    return Comparison(
        channel,
        control,
        confidence,
        correction,
        rows,
        verdicts,
        notes,
        sample_ratio,
        primary_metric,
        tuple(guarded),
        provisional or None,
    )


#: Said with provisional verdicts.
PEEKING_NOTE = (
    "Every look at an experiment before its planned analysis time is another chance for chance "
    "to look like a winner (docs/experiments.md, 'Look once'): decide at the planned time, once."
)


def channel_metrics(channel: str) -> dict[str, tuple[str, str, bool]]:
    """The metrics a comparison on ``channel`` can test: metric -> (numerator, denominator,
    whether more is worse). Harm metrics (unsubscribes...) serve as guardrails only."""
    metrics = {
        metric: (numerator, denominator, False)
        for metric, numerator, denominator in (*EXPERIMENT_RATES.get(channel, ()), CONVERSIONS)
    }
    for metric, numerator, denominator in HARM_RATES.get(channel, ()):
        metrics[metric] = (numerator, denominator, True)
    return metrics


def check_metric_choice(primary_metric: Any, guardrails: Any) -> tuple[str | None, list[str]]:
    """``primary_metric`` (None or a name) and ``guardrails`` (names, or one name) checked for
    their form, before the channel is known: no name twice, the primary metric not a guardrail."""
    if primary_metric is not None and (not isinstance(primary_metric, str) or not primary_metric.strip()):
        raise BrazeValidationError(
            f"primary_metric must be a metric name such as 'clicks' or 'conversions', got {primary_metric!r}."
        )
    if isinstance(guardrails, str):
        guardrails = [guardrails]
    if guardrails is None:
        guardrails = []
    if not isinstance(guardrails, (list, tuple)) or not all(
        isinstance(name, str) and name.strip() for name in guardrails
    ):
        raise BrazeValidationError(
            "guardrails must be a list of metric names such as ['unsubscribes', 'bounces'], got "
            f"{guardrails!r}."
        )
    names = [name.strip() for name in guardrails]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BrazeValidationError(f"guardrails names {', '.join(twice)} more than once.")
    primary = primary_metric.strip() if primary_metric is not None else None
    if primary is not None and primary in names:
        raise BrazeValidationError(
            f"{primary!r} is both the primary metric and a guardrail: a metric either decides the "
            "verdict or must not get worse."
        )
    return primary, names


def metric_roles(
    channel: str, primary_metric: str | None, guardrails: list[str]
) -> list[tuple[str, str, str, str, str]]:
    """Each metric tested on ``channel`` as ``(metric, numerator, denominator, role, harm)``,
    ``harm`` being which direction is worse for a guardrail (``more`` or ``less``). Unknown names
    are an error listing the channel's metrics."""
    known = channel_metrics(channel)
    for name in [primary_metric, *guardrails]:
        if name is not None and name not in known:
            raise BrazeValidationError(
                f"{channel} has no metric {name!r}: a comparison on {channel} tests "
                f"{', '.join(known)} ({', '.join(m for m, spec in known.items() if spec[2])} only as "
                "guardrails)."
                if any(spec[2] for spec in known.values())
                else f"{channel} has no metric {name!r}: a comparison on {channel} tests {', '.join(known)}."
            )
    for name in guardrails:
        if (channel, name) in DIAGNOSTICS:
            raise BrazeValidationError(
                f"{name!r} cannot be a guardrail: Apple Mail Privacy Protection inflates e-mail opens, "
                "so they are a diagnostic; guard clicks or conversions instead."
            )
    if primary_metric is not None and known[primary_metric][2]:
        raise BrazeValidationError(
            f"{primary_metric!r} is a metric where more is worse: pass it in guardrails, and a "
            "metric that shows success (clicks, conversions...) as primary_metric."
        )
    roles = []
    for metric, (numerator, denominator, worse_when_more) in known.items():
        if metric in guardrails:
            roles.append((metric, numerator, denominator, "guardrail", "more" if worse_when_more else "less"))
        elif worse_when_more:
            continue
        elif primary_metric is None:
            role = "diagnostic" if (channel, metric) in DIAGNOSTICS else "primary"
            roles.append((metric, numerator, denominator, role, ""))
        elif metric == primary_metric:
            roles.append((metric, numerator, denominator, "primary", ""))
        else:
            role = "diagnostic" if (channel, metric) in DIAGNOSTICS else "secondary"
            roles.append((metric, numerator, denominator, role, ""))
    return roles


def _two_sided_family(role: str, primary_metric: str | None) -> str:
    # Without a primary metric every two-sided test is one family (diagnostics included, so
    # the table's adjustment stays what it always was); with one, the primary metric is a
    # family of its own and everything else reported beside it another.
    if primary_metric is None or role != "primary":
        return " two-sided" if primary_metric is None else " secondary"
    return " primary"


def judged_levels(p_values: list[float], method: str, alpha: float) -> list[float]:
    """The significance level each of a family's tests is judged at, so that its adjusted
    p-value is below ``alpha`` exactly when its own p-value is below this level: ``alpha`` with
    no correction; ``alpha / m`` for Bonferroni; for Holm, ``alpha / (m - k)`` for the k-th
    smallest p-value while the step-down rejects, and for every test from the first it keeps,
    the level it stopped at (each kept p-value is at least that level)."""
    m = len(p_values)
    if method == "none" or m <= 1:
        return [alpha] * m
    if method == "bonferroni":
        return [alpha / m] * m
    adjusted = adjust_p_values(p_values, "holm")
    levels = [0.0] * m
    stopped: int | None = None
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if adjusted[index] < alpha:
            levels[index] = alpha / (m - rank)
        else:
            stopped = rank if stopped is None else stopped
            levels[index] = alpha / (m - stopped)
    return levels


def _add_intervals(row: dict[str, Any], control_row: dict[str, Any]) -> None:
    """The row's difference and relative-lift intervals against the control's row, at the row's
    ``interval_level``."""
    x1, n1, x2, n2 = row["count"], row["base"], control_row["count"], control_row["base"]
    level = row["interval_level"]
    row["difference_low"], row["difference_high"] = difference_interval(x1, n1, x2, n2, level)
    lift = relative_lift_interval(x1, n1, x2, n2, level)
    if lift is not None:
        row["relative_lift"], row["relative_lift_low"], row["relative_lift_high"] = lift


def _rate_row(
    v: VariantTotals, metric: str, numerator: str, denominator: str, confidence: float, notes: list[str]
) -> dict[str, Any]:
    recipients, delivered, revenue = v.recipients, v.counts.get("delivered"), v.counts.get("revenue")
    row: dict[str, Any] = dict.fromkeys(TABLE_FIELDS)
    row.update(
        variant=v.variant,
        campaign_id=v.campaign_id,
        send_id=v.send_id,
        variation=v.variation,
        channel=v.channel,
        metric=metric,
        recipients=recipients,
        delivered=delivered,
        revenue=revenue,
        revenue_per_recipient=(
            round(revenue / recipients, 4) if revenue is not None and recipients else None
        ),
        significant=False,
    )
    count = v.counts.get(numerator)
    base = recipients if denominator == "recipients" else v.counts.get(denominator)
    row.update(count=count, base=base)
    if count is None or not base:
        return row
    if count > base:
        notes.append(
            f"{v.variant}: {metric} ({count:g}) exceed their base ({base:g}), so they are not a share "
            "of people and are not tested."
        )
        return row
    low, high = wilson_interval(count, base, confidence)
    row.update(rate=count / base, rate_low=low, rate_high=high)
    return row


def format_p(p: float, alpha: float | None = None) -> str:
    """``p = 0.003``, ``p < 0.001``; with ``alpha``, never rounded onto it or across it (a
    significant 0.0497 reads ``p = 0.0497``, not ``p = 0.050``)."""
    if p < 0.001:
        return "p < 0.001"
    for digits in (3, 4, 5, 6):
        text = f"{p:.{digits}f}"
        if alpha is None or (float(text) < alpha) == (p < alpha):
            return f"p = {text}"
    return f"p < {alpha:g}" if alpha is not None and p < alpha else f"p = {p:.6f}"


def _metric_verdict(row: dict[str, Any], control: str, correction: str, alpha: float) -> str:
    adjusted = "" if correction == "none" else f", {correction}-adjusted"
    sided = ", one-sided" if row["role"] == "guardrail" else ""
    p = f"({format_p(row['p_adjusted'], alpha)}{sided}{adjusted})"
    metric, variant = row["metric"], row["variant"]
    if row["role"] == "guardrail":
        if row["significant"]:
            return f"{variant} harms the guardrail {metric}: {_effect(row)} {p}"
        return f"no harm detected on {metric} {p}; {_rules_out(row)}"
    if not row["significant"]:
        return f"no significant difference on {metric} {p}; {_rules_out(row)}"
    word = "beats" if row["difference"] > 0 else "trails"
    return f"{variant} {word} {control} on {metric}: {_effect(row)} {p}"


def _effect(row: dict[str, Any]) -> str:
    """``+0.9 points, +9 % [+3 %, +15 %]``: the difference and the relative lift with its interval."""
    effect = f"{format_points(row['difference'])} points"
    if row["relative_lift"] is not None:
        effect += f", {format_lift(row['relative_lift'])}"
        if row["relative_lift_low"] is not None:
            high = row["relative_lift_high"]
            effect += (
                f" [{format_lift(row['relative_lift_low'])}, {'+inf' if high is None else format_lift(high)}]"
            )
    return effect


def _rules_out(row: dict[str, Any]) -> str:
    """Which effects the data rule out, at the row's interval level: for a two-sided test both
    ends of the interval, for a guardrail the harm its far end excludes."""
    low, high, level = row["difference_low"], row["difference_high"], row["interval_level"]
    lift_low, lift_high = row["relative_lift_low"], row["relative_lift_high"]
    if row["role"] == "guardrail":
        # The one-sided bound on the harmful side, at 1 - (1 - level) / 2.
        one_sided = 1 - (1 - level) / 2
        more = row["sided"].startswith("one-sided (more")
        bound, lift = (high, lift_high) if more else (low, lift_low)
        word = "an increase above" if more else "a decrease below"
        relative = f" ({format_lift(lift)})" if lift is not None else ""
        return (
            f"the data rule out {word} {format_points(bound)} points{relative} at {format_level(one_sided)}"
        )
    relative = ""
    if lift_low is not None and lift_high is not None:
        relative = f" ({format_lift(lift_low)} to {format_lift(lift_high)})"
    digits = interval_digits(low, high)
    return (
        f"the data rule out changes below {format_points(low, digits)} or above "
        f"{format_points(high, digits)} points{relative} at {format_level(level)}"
    )


def format_points(fraction: float, digits: int | None = None) -> str:
    """A difference of rates in percentage points, by default with at least one significant
    digit: ``+0.9``, ``-12.3``, ``+0.03`` (a tiny effect is never printed as ``+0.0``)."""
    points = 100 * fraction
    if digits is None:
        digits = 1 if points == 0 else max(1, -math.floor(math.log10(abs(points))))
    return f"{points:+.{digits}f}"


def interval_digits(low: float, high: float) -> int:
    """Decimals for an interval in points (and its estimate): enough to tell its ends apart, and
    to give each end a significant digit, so that no end reads 0 or crosses 0 by rounding
    (``+0.0 [-0.3, +0.3]``, ``+0.030 [+0.026, +0.034]``, ``[-0.52, +0.03]``); at least one."""
    digits = [1]
    width = 100 * (high - low)
    if width > 0:
        digits.append(-math.floor(math.log10(width)))
    for end in (low, high):
        if end:
            digits.append(-math.floor(math.log10(abs(100 * end))))
    return min(12, max(digits))


def _points_interval(estimate: float, low: float, high: float) -> str:
    digits = interval_digits(low, high)
    return f"{format_points(estimate, digits)} [{format_points(low, digits)}, {format_points(high, digits)}]"


def format_lift(lift: float) -> str:
    """A relative lift in percent: ``+9 %``; below 1 % with one significant digit (``+0.4 %``,
    ``+0.03 %``)."""
    percent = 100 * lift
    if abs(percent) >= 1 or percent == 0:
        return f"{percent:+.0f} %"
    return f"{percent:+.{max(1, -math.floor(math.log10(abs(percent))))}f} %"


def format_level(level: float) -> str:
    """A confidence level in percent, with the digits it needs, two decimals at most unless
    more are needed to stay below 100: ``95 %``, ``97.5 %``, ``99.17 %``, ``99.998 %``."""
    percent = 100 * level
    digits = next((d for d in range(3) if abs(round(percent, d) - percent) < 1e-9), 2)
    while f"{percent:.{digits}f}" == "100" + "." * bool(digits) + "0" * digits and digits < 12:
        digits += 1
    return f"{percent:.{digits}f} %"


def _variant_verdict(
    variant: str, rows: list[dict[str, Any]], control: str, correction: str, alpha: float
) -> str:
    own = [r for r in rows if r["variant"] == variant]
    if all(r["p_value"] is None for r in own):
        return (
            f"{variant} could not be compared with {control}: Braze reported none of the counts "
            "the rates need (see the notes)"
        )
    untested = [r["metric"] for r in own if r["role"] == "primary" and r["p_value"] is None]
    deciding = [r for r in own if r["role"] == "primary" and r["p_value"] is not None]
    found = [r["verdict"] for r in deciding if r["significant"]]
    if found:
        text = "; ".join(found)
    elif not deciding:
        text = (
            f"{variant} could not be compared with {control} on {' or '.join(untested)}: the counts "
            "the rate needs are missing or are not a share of people (see the notes)"
        )
    else:
        single = len(deciding) == 1
        on = f" on {deciding[0]['metric']}" if single else ""
        adjusted = "" if correction == "none" else f", {correction}-adjusted"
        text = f"{variant} shows no significant difference from {control}{on} yet at this sample size"
        if single:
            text += f" ({format_p(deciding[0]['p_adjusted'], alpha)}{adjusted}): {_rules_out(deciding[0])}"
        else:
            # One family, nothing rejected: every row is at the same level.
            ranges = ", ".join(
                f"{r['metric']} {format_points(r['difference_low'], digits)} to "
                f"{format_points(r['difference_high'], digits)}"
                for r in deciding
                for digits in [interval_digits(r["difference_low"], r["difference_high"])]
            )
            text += (
                f"; the data rule out effects outside these ranges (points, at "
                f"{format_level(deciding[0]['interval_level'])}): {ranges}"
            )
    diagnostics = [r for r in own if r["role"] == "diagnostic" and r["significant"]]
    if diagnostics and not found:
        text += "; " + "; ".join(
            f"{r['metric']} differ ({format_points(r['difference'])} points), a diagnostic only (see the "
            f"note on {r['metric']})"
            for r in diagnostics
        )
    if untested and deciding:
        text += f"; not tested: {', '.join(untested)} (see the notes)"
    harms = [r["verdict"] for r in own if r["role"] == "guardrail" and r["significant"]]
    unguarded = [r["metric"] for r in own if r["role"] == "guardrail" and r["p_value"] is None]
    if unguarded:
        harms.append(f"guardrail {', '.join(unguarded)} not tested (see the notes)")
    return "; ".join([text, *harms])


def _variation_text(v: VariantTotals) -> str:
    return f", variation {v.variation!r}" if v.variation else ""


def describe_table(comparison: Comparison) -> list[str]:
    """The table as aligned text lines, for the task log: rates and differences in percent
    (points for differences), each difference's interval at the level its test was judged at
    (the ``level`` column), adjusted p-values, and each metric's role."""
    rate_level = format_level(comparison.confidence)
    header = (
        "variant",
        "metric",
        "role",
        "count/base",
        f"rate % [{rate_level} CI]",
        f"vs {comparison.control}, pts [CI]",
        "level",
        "p adj.",
    )
    lines = [header]
    for row in comparison.rows:
        counted, rate, diff, level, p = "n/a", "n/a", "", "", ""
        if row["count"] is not None and row["base"] is not None:
            counted = f"{row['count']:g}/{row['base']:g}"
        if row["rate"] is not None:
            rate = f"{100 * row['rate']:.2f} [{100 * row['rate_low']:.2f}, {100 * row['rate_high']:.2f}]"
        if row["difference"] is not None and row["difference_low"] is not None:
            diff = _points_interval(row["difference"], row["difference_low"], row["difference_high"])
            level = format_level(row["interval_level"]).replace(" %", "%")
        if row["p_adjusted"] is not None:
            p = (
                format_p(row["p_adjusted"], 1 - comparison.confidence)
                .removeprefix("p = ")
                .replace("p < ", "<")
            )
            if row["role"] == "guardrail":
                p += " (1-sided)"
            p += (" harm" if row["role"] == "guardrail" else " *") if row["significant"] else ""
        role = "-" if row["variant"] == comparison.control else row["role"]
        lines.append((row["variant"], row["metric"], role, counted, rate, diff, level, p))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.append(
        "Each difference's interval is at the level its test was judged at after the "
        f"{comparison.correction} adjustment ('level'), so it excludes 0 exactly when the row is "
        "significant (*); a guardrail's is two-sided at 1 - 2 alpha, each end a one-sided bound."
        if comparison.correction != "none"
        else "Differences' intervals are unadjusted, like the p-values."
    )
    ratio = comparison.sample_ratio
    if ratio is not None:
        verdict = "MISMATCH: no variant is judged" if ratio.mismatch else "matches the plan"
        text.append(f"Sample ratio {verdict} ({ratio.describe()})")
    return text


# ------------------------------------------------------------------ looks at the same sends


def looks_prefix(specs: Iterable[Mapping[str, Any]]) -> str:
    """The record-name prefix of every comparison of these sends (campaign, send ID and
    variation of each; the variants' names and order do not matter). A comparison records one
    look per pair of the control and a variant, so that comparing a pair again inside a larger
    comparison is another look too."""
    import hashlib
    import json

    sends = sorted(
        [
            str(spec["campaign_id"]),
            str(spec["send_id"]),
            str(spec.get("message_variation_id") or spec.get("variation_name") or ""),
        ]
        for spec in specs
    )
    return f"braze_looks__{hashlib.sha256(json.dumps(sends).encode()).hexdigest()[:20]}__"


def record_looks(
    location: Any, prefixes: Mapping[str, str], task_instance: tuple[Any, ...], *, final: bool
) -> dict[str, list[str]]:
    """Record this look at each pair of sends (``prefixes``: a name -> its
    :func:`looks_prefix`) in the checkpoint store at ``location``, and return, per name, when
    earlier *final* looks at that pair happened (UTC, oldest first; names without any are left
    out).

    One small record per look and pair, named ``<prefix><task instance digest>__<final|
    provisional>__<UTC time>``: a look is never rewritten, so concurrent comparisons cannot lose
    each other's, and a retry of the same task instance finds its own record and is the same
    look. The look is final only if ``final`` and no pair had an earlier final look. The store
    lists strictly (a listing that fails is an error, never "no earlier look")."""
    import hashlib
    from datetime import datetime, timezone

    from airflow_provider_braze.delivery.checkpoint import checkpoint_store

    store = checkpoint_store(location)
    own = hashlib.sha256(repr(tuple(str(part) for part in task_instance)).encode()).hexdigest()[:16]
    earlier: dict[str, list[str]] = {}
    mine: dict[str, set[str]] = {}
    for name, prefix in prefixes.items():
        mine[name] = set()
        for key in store.keys(prefix):
            look, _, rest = key[len(prefix) :].partition("__")
            kind, _, at = rest.partition("__")
            if look == own:
                mine[name].add(kind)
            elif kind == "final":
                earlier.setdefault(name, []).append(at)
    kind = "final" if final and not earlier else "provisional"
    at = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for name, prefix in prefixes.items():
        # A retry that was provisional (too early) and now decides records that it decided, so
        # that later comparisons by other task instances are another look.
        if kind not in mine[name] and "final" not in mine[name]:
            store.write(f"{prefix}{own}__{kind}__{at}", {"look": kind, "at": at})
    return {name: sorted(times) for name, times in earlier.items()}


# ------------------------------------------------------------------ CompareSendsOperator's inputs


def experiment_sends(
    sends: Any, campaign_id: str | None, control: str, allow_mixed_campaigns: bool
) -> list[dict[str, Any]]:
    """``sends`` as a checked list of ``{variant, campaign_id, send_id, message_variation_id?,
    variation_name?}``, the control first."""
    from collections.abc import Iterable, Mapping, Sized

    from airflow_provider_braze.experiments import VARIANT_NAME
    from airflow_provider_braze.validation import validate_campaign_id, validate_required_send_id

    if isinstance(sends, Mapping):
        items = [
            {"variant": name, **(spec if isinstance(spec, Mapping) else {"send_id": spec})}
            for name, spec in sends.items()
        ]
    elif isinstance(sends, Iterable) and not isinstance(sends, (str, bytes)):
        # A list, or what a mapped task's output gives downstream: a lazy sequence, read by
        # index up to its length (iterating it probes one past the end, which Airflow logs as
        # an error).
        if isinstance(sends, Sized) and hasattr(sends, "__getitem__"):
            sends = [sends[index] for index in range(len(sends))]
        items = [dict(item) if isinstance(item, Mapping) else item for item in sends]
    else:
        raise BrazeValidationError(
            f"sends must map variant names to send IDs (or objects), or list objects with a "
            f"'variant'; got {type(sends).__name__}."
        )
    known = {"variant", "send_id", "campaign_id", "message_variation_id", "variation_name"}
    specs: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], str] = {}
    for position, item in enumerate(items):
        where = f"sends[{position}]"
        if not isinstance(item, dict):
            raise BrazeValidationError(f"{where} must be an object, got {type(item).__name__}.")
        unknown = sorted(set(item) - known)
        if unknown:
            raise BrazeValidationError(
                f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        variant = item.get("variant")
        if not isinstance(variant, str) or not VARIANT_NAME.fullmatch(variant):
            raise BrazeValidationError(f"{where}.variant must be a variant name, got {variant!r}.")
        if any(s["variant"] == variant for s in specs):
            raise BrazeValidationError(f"Variant {variant!r} is given twice.")
        if "message_variation_id" in item and "variation_name" in item:
            raise BrazeValidationError(
                f"Variant {variant!r}: give message_variation_id or variation_name, not both."
            )
        spec = {
            "variant": variant,
            "campaign_id": validate_campaign_id(item.get("campaign_id", campaign_id)),
            "send_id": validate_required_send_id(item.get("send_id")),
        }
        for name in ("message_variation_id", "variation_name"):
            if name in item:
                if not isinstance(item[name], str) or not item[name].strip():
                    raise BrazeValidationError(f"Variant {variant!r}: {name} must be a non-empty string.")
                spec[name] = item[name]
        variation = spec.get("message_variation_id") or spec.get("variation_name")
        same = (spec["campaign_id"], spec["send_id"], variation)
        if same in seen:
            what = "send and variation" if variation else "send"
            raise BrazeValidationError(
                f"Variants {seen[same]!r} and {variant!r} are the same {what} ({spec['send_id']!r}): a "
                "comparison needs a different send ID or message variation per variant."
            )
        seen[same] = variant
        specs.append(spec)
    names = [s["variant"] for s in specs]
    if control not in names:
        raise BrazeValidationError(f"The control {control!r} is not one of the variants: {', '.join(names)}.")
    if len(specs) < 2:
        raise BrazeValidationError("A comparison needs the control and at least one other variant.")
    campaigns = sorted({s["campaign_id"] for s in specs})
    if len(campaigns) > 1 and not allow_mixed_campaigns:
        raise BrazeValidationError(
            f"The sends belong to different campaigns ({', '.join(campaigns)}): their audiences and "
            "content may differ in more than the variant. Pass allow_mixed_campaigns=True if that "
            "is intended."
        )
    return sorted(specs, key=lambda s: s["variant"] != control)


def check_no_overlap(
    specs: list[dict[str, Any]], rows_by_send: dict[tuple[str, str], list[dict[str, Any]]], channel: str
) -> None:
    """Two variants must not count the same people: the same variation named by API ID and by
    name, or a whole send and one of its variations."""
    taken: dict[tuple[Any, ...], str] = {}
    for spec in specs:
        rows = selected_rows(
            rows_by_send[(spec["campaign_id"], spec["send_id"])],
            variant=spec["variant"],
            send_id=spec["send_id"],
            channel=channel,
            message_variation_id=spec.get("message_variation_id"),
            variation_name=spec.get("variation_name"),
        )
        for row in rows:
            key = (
                spec["campaign_id"],
                spec["send_id"],
                row.get("date"),
                row.get("variation_name"),
                row.get("variation_api_id"),
            )
            other = taken.setdefault(key, spec["variant"])
            if other != spec["variant"]:
                variation = row.get("variation_name") or row.get("variation_api_id")
                raise BrazeValidationError(
                    f"Variants {other!r} and {spec['variant']!r} both count send {spec['send_id']!r}"
                    f"{f', variation {variation!r}' if variation else ''}: a comparison needs variants "
                    "made of different people (a send ID or a message variation each)."
                )


def check_table_path(path: Any) -> None:
    from airflow_provider_braze.storage import FILE_FORMATS, suffix_of

    if suffix_of(str(path)) not in FILE_FORMATS:
        raise BrazeValidationError(
            f"output_path must name the table's file, ending in .csv or .jsonl (both are written, "
            f"and the chart next to them), got {str(path)!r}."
        )


def only_channel(rows_by_send: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    channels = sorted({r["channel"] for rows in rows_by_send.values() for r in rows if r.get("channel")})
    if len(channels) == 1:
        return str(channels[0])
    if not channels:
        raise BrazeValidationError(
            "None of the sends has analytics yet (Braze reports them a while after the send and "
            "keeps them 14 days); wait for them, e.g. with SendAnalyticsSensor."
        )
    raise BrazeValidationError(
        f"The sends used several channels ({', '.join(channels)}): pass channel= to say which to compare."
    )
