"""What decides a comparison's verdicts: the primary metric, guardrails, the intervals that agree
with the verdicts, and what a verdict that finds nothing rules out."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze.comparison import (
    VariantTotals,
    compare,
    difference_interval,
    relative_lift_interval,
)
from airflow_provider_braze.delivery import checkpoint as checkpoint_module
from airflow_provider_braze.delivery.checkpoint import MemoryCheckpointStore
from airflow_provider_braze.exceptions import BrazeCheckpointError, BrazeValidationError
from airflow_provider_braze.operators.analytics import CompareSendsOperator
from tests.unit.test_comparison import answer, day, email_stats, mock_sends


def email(variant: str, sent: int, clicks: int, conversions: int = 0, **more: Any) -> VariantTotals:
    counts: dict[str, Any] = {
        "sent": sent,
        "delivered": sent,
        "unique_opens": sent // 4,
        "unique_clicks": clicks,
        "unique_recipients": sent,
        "conversions": conversions,
        "unsubscribes": 0,
        "bounces": 0,
        "reported_spam": 0,
        **more,
    }
    return VariantTotals(variant, "camp", f"send-{variant}", None, "email", counts, 1)


def row(comparison: Any, variant: str, metric: str) -> dict[str, Any]:
    return next(r for r in comparison.rows if (r["variant"], r["metric"]) == (variant, metric))


# One-sided pooled z-tests computed with statsmodels 0.15.0: proportions_ztest([x1, x2], [n1, n2],
# alternative="larger") and alternative="smaller".
ONE_SIDED_REFERENCE = [
    ((120, 2000, 60, 2000), 2.3664986340811627e-06, 0.999997633501366),
    ((62, 9020, 17, 1915), 0.8264728333105086, 0.17352716668949142),
    ((5, 20, 1, 25), 0.019736611862318208, 0.9802633881376818),
]


@pytest.mark.parametrize(("counts", "larger", "smaller"), ONE_SIDED_REFERENCE)
def test_a_guardrail_is_a_one_sided_test_towards_harm(
    counts: tuple[int, int, int, int], larger: float, smaller: float
) -> None:
    x1, n1, x2, n2 = counts
    # More unsubscribes is worse: the test is "larger"; fewer clicks is worse: "smaller".
    comparison = compare(
        [
            email("control", n2, x2, unsubscribes=x2, delivered=n2),
            email("b", n1, x1, unsubscribes=x1, delivered=n1),
        ],
        control="control",
        primary_metric="conversions",
        guardrails=["unsubscribes", "clicks"],
    )
    unsubscribes, clicks = row(comparison, "b", "unsubscribes"), row(comparison, "b", "clicks")
    assert unsubscribes["p_value"] == pytest.approx(larger, rel=1e-6, abs=1e-300)
    assert clicks["p_value"] == pytest.approx(smaller, rel=1e-6, abs=1e-300)
    assert (unsubscribes["sided"], clicks["sided"]) == (
        "one-sided (more is worse)",
        "one-sided (less is worse)",
    )
    # Each guardrail is its own family of one test: nothing to adjust.
    assert unsubscribes["p_adjusted"] == unsubscribes["p_value"]
    assert unsubscribes["significant"] == (larger < 0.05)
    assert clicks["significant"] == (smaller < 0.05)
    # The two-sided interval at 1 - 2 alpha: its harmful end is the one-sided 95 % bound, and it
    # excludes 0 on that side exactly when the guardrail is harmed.
    assert unsubscribes["interval_level"] == pytest.approx(0.90)
    assert (unsubscribes["difference_low"], unsubscribes["difference_high"]) == pytest.approx(
        difference_interval(x1, n1, x2, n2, 0.90)
    )
    assert (unsubscribes["difference_low"] > 0) == unsubscribes["significant"]
    assert (clicks["difference_high"] < 0) == clicks["significant"]
    assert comparison.harmed("b") == [
        name for name, harmed in (("unsubscribes", larger < 0.05), ("clicks", smaller < 0.05)) if harmed
    ]


def test_a_harmed_guardrail_is_named_in_the_verdict_beside_the_win() -> None:
    comparison = compare(
        [email("control", 20_000, 600, unsubscribes=20), email("b", 20_000, 800, unsubscribes=60)],
        control="control",
        primary_metric="clicks",
        guardrails=["unsubscribes", "reported_spam"],
    )
    verdict = comparison.verdicts["b"]
    assert verdict.startswith("b beats control on clicks: +1.0 points, +33 % [")
    assert "; b harms the guardrail unsubscribes: +0.2 points, +200 % [" in verdict
    assert verdict.endswith("(p < 0.001, one-sided, holm-adjusted)")
    assert comparison.harmed("b") == ["unsubscribes"]
    spam = row(comparison, "b", "reported_spam")
    assert (spam["role"], spam["significant"]) == ("guardrail", False)
    # 0 of 20,000 in both: nothing to tell apart, and the data bound the harm.
    assert spam["p_value"] == 0.5  # z = 0
    assert spam["verdict"].startswith(
        "no harm detected on reported_spam (p = 0.500, one-sided, holm-adjusted); "
    )
    assert spam["verdict"].endswith("the data rule out an increase above +0.01 points at 95 %")


def test_the_primary_metric_is_its_own_family() -> None:
    # Raw p about 0.02 on clicks: lost among 2 variants x 4 metrics, found when clicks is the one
    # metric that decides (a family of the 2 variants' tests).
    variants = [
        email("control", 2000, 60, 20),
        email("a", 2000, 88, 20),
        email("b", 2000, 61, 20),
    ]
    without = compare(variants, control="control")
    assert row(without, "a", "clicks")["significant"] is False
    decided = compare(variants, control="control", primary_metric="clicks")
    clicks = row(decided, "a", "clicks")
    assert clicks["role"] == "primary"
    p_a, p_b = clicks["p_value"], row(decided, "b", "clicks")["p_value"]
    assert clicks["p_adjusted"] == pytest.approx(2 * p_a)  # Holm over the 2 primary tests
    assert row(decided, "b", "clicks")["p_adjusted"] == pytest.approx(max(2 * p_a, p_b))
    assert clicks["significant"] is True
    assert decided.verdicts["a"].startswith("a beats control on clicks: +1.4 points, +47 % [")
    # The other metrics are reported beside it, adjusted among themselves, never in the verdict.
    conversions = row(decided, "a", "conversions")
    assert conversions["role"] == "secondary"
    assert "conversions" not in decided.verdicts["a"]
    assert decided.verdicts["b"].startswith(
        "b shows no significant difference from control on clicks yet at this sample size (p = "
    )
    assert "the data rule out changes below " in decided.verdicts["b"]


def test_a_no_difference_verdict_says_what_the_data_rule_out() -> None:
    comparison = compare(
        [email("control", 10_000, 500), email("a", 10_000, 510)], control="control", primary_metric="clicks"
    )
    clicks = row(comparison, "a", "clicks")
    low, high = difference_interval(510, 10_000, 500, 10_000, 0.95)
    lift = relative_lift_interval(510, 10_000, 500, 10_000, 0.95)
    assert lift is not None
    assert (clicks["difference_low"], clicks["difference_high"]) == pytest.approx((low, high))
    assert comparison.verdicts["a"] == (
        f"a shows no significant difference from control on clicks yet at this sample size "
        f"(p = {clicks['p_adjusted']:.3f}, holm-adjusted): the data rule out changes below "
        f"{100 * low:+.1f} or above {100 * high:+.1f} points ({100 * lift[1]:+.0f} % to "
        f"{100 * lift[2]:+.0f} %) at 95 %"
    )


def test_a_bound_near_zero_keeps_its_sign_and_digits() -> None:
    # p = 0.08: the upper end is +0.03 points; "above +0.0" would claim no increase is possible.
    comparison = compare(
        [email("control", 10_000, 100), email("a", 10_000, 77)], control="control", primary_metric="clicks"
    )
    clicks = row(comparison, "a", "clicks")
    assert clicks["significant"] is False
    assert 0 < clicks["difference_high"] < 0.0005
    assert "the data rule out changes below -0.49 or above +0.03 points" in comparison.verdicts["a"]


def test_an_untested_primary_metric_or_guardrail_is_said_not_tested() -> None:
    a = email("a", 10_000, 300)
    a.counts["unique_clicks"] = None
    comparison = compare(
        [email("control", 10_000, 100), a],
        control="control",
        primary_metric="clicks",
        guardrails=["unsubscribes"],
    )
    assert comparison.verdicts["a"] == (
        "a could not be compared with control on clicks: the counts the rate needs are missing or are "
        "not a share of people (see the notes)"
    )
    note = (
        "a: the primary metric clicks was not tested: the email analytics of a or control lack "
        "unique_clicks or delivered, or the count exceeds its base."
    )
    assert note in comparison.notes
    b = email("b", 10_000, 300)
    b.counts["unsubscribes"] = None
    guarded = compare(
        [email("control", 10_000, 100), b],
        control="control",
        primary_metric="clicks",
        guardrails=["unsubscribes"],
    )
    assert guarded.verdicts["b"].startswith("b beats control on clicks: ")
    assert guarded.verdicts["b"].endswith("; guardrail unsubscribes not tested (see the notes)")
    assert guarded.harmed("b") == []


def test_tiny_effects_keep_their_digits() -> None:
    # 10^8 per arm: +0.03 points is significant, and must not read "+0.0".
    comparison = compare(
        [email("control", 100_000_000, 10_000_000), email("b", 100_000_000, 10_030_000)],
        control="control",
        primary_metric="clicks",
    )
    assert comparison.verdicts["b"].startswith(
        "b beats control on clicks: +0.03 points, +0.3 % [+0.2 %, +0.4 %]"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"primary_metric": "revenue"},
            "email has no metric 'revenue': a comparison on email tests delivered, opens",
        ),
        ({"guardrails": ["spam"]}, "email has no metric 'spam'"),
        (
            {"primary_metric": "unsubscribes"},
            "'unsubscribes' is a metric where more is worse: pass it in guardrails",
        ),
        (
            {"primary_metric": "clicks", "guardrails": ["clicks"]},
            "'clicks' is both the primary metric and a guardrail",
        ),
        ({"guardrails": ["bounces", "bounces"]}, "guardrails names bounces more than once"),
        ({"guardrails": [3]}, "guardrails must be a list of metric names"),
        ({"guardrails": ["opens"]}, "'opens' cannot be a guardrail: Apple Mail Privacy Protection"),
        ({"primary_metric": ""}, "primary_metric must be a metric name"),
    ],
)
def test_metric_choices_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message.replace("(", r"\(")):
        compare([email("control", 100, 5), email("a", 100, 6)], control="control", **kwargs)


def twenty_variants(seed: int) -> list[VariantTotals]:
    # 19 variants with true click rates of 5 % to 5.6 % against a control at 5 %: many
    # unadjusted intervals exclude 0 while the Holm-adjusted tests keep most.
    rng = random.Random(seed)
    variants = [email("control", 20_000, sum(rng.random() < 0.05 for _ in range(20_000)))]
    for index in range(19):
        rate = 0.05 + 0.006 * rng.random()
        clicks = sum(rng.random() < rate for _ in range(20_000))
        conversions = sum(rng.random() < 0.01 for _ in range(20_000))
        variants.append(email(f"v{index + 1}", 20_000, clicks, conversions, unsubscribes=rng.randint(0, 40)))
    return variants


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"primary_metric": "clicks", "guardrails": ["unsubscribes"]},
        {"correction": "bonferroni"},
        {"correction": "none", "guardrails": ["unsubscribes", "conversions"]},
    ],
)
def test_no_interval_disagrees_with_its_verdict(seed: int, kwargs: dict[str, Any]) -> None:
    comparison = compare(twenty_variants(seed), control="control", **kwargs)
    tested = [r for r in comparison.rows if r["p_value"] is not None]
    assert len(tested) >= 19 * 4
    unadjusted_disagreements = 0
    for r in tested:
        low, high = r["difference_low"], r["difference_high"]
        if r["role"] == "guardrail":
            harmful_end_excludes = low > 0 if r["sided"].startswith("one-sided (more") else high < 0
            assert harmful_end_excludes == r["significant"], r
        else:
            assert (low > 0 or high < 0) == r["significant"], r
            plain = difference_interval(r["count"], r["base"], *_control_counts(comparison, r), 0.95)
            unadjusted_disagreements += (plain[0] > 0 or plain[1] < 0) and not r["significant"]
        lift_low, lift_high = r["relative_lift_low"], r["relative_lift_high"]
        if lift_low is not None and r["role"] != "guardrail":
            assert (lift_low > 0 or (lift_high is not None and lift_high < 0)) == r["significant"], r
    if kwargs.get("correction") != "none":
        # What the issue saw: unadjusted 95 % intervals excluding 0 beside "no significant
        # difference". The data make that happen; the table's own intervals never do.
        assert unadjusted_disagreements > 0


def _control_counts(comparison: Any, r: dict[str, Any]) -> tuple[float, float]:
    control = row(comparison, comparison.control, r["metric"])
    return control["count"], control["base"]


# --------------------------------------------------------------------------- CompareSendsOperator


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> MemoryCheckpointStore:
    """Airflow Variables, kept in memory (no running Airflow here)."""
    store = MemoryCheckpointStore()
    monkeypatch.setattr(checkpoint_module, "VariableCheckpointStore", lambda: store)
    return store


def task_instance(run_id: str = "run-1") -> mock.MagicMock:
    ti = mock.MagicMock()
    ti.dag_id, ti.task_id, ti.run_id, ti.map_index = "experiment", "compare", run_id, -1
    return ti


def unsubscribing(sent: int, clicks: int, unsubscribes: int) -> dict[str, Any]:
    return {**email_stats(sent, sent // 4, clicks, 0), "unsubscribes": unsubscribes}


def alike(requests_mock: rm.Mocker, *names: str) -> None:
    """Braze's answer for each named send (control and b by default): the same email day each."""
    same = answer(day({"email": [email_stats(2000, 500, 60, 20)]}))
    mock_sends(requests_mock, {f"send-{n}": same for n in names or ("control", "b")})


def compare_op(**kwargs: Any) -> CompareSendsOperator:
    kwargs.setdefault("sends", {"control": "send-control", "b": "send-b"})
    return CompareSendsOperator(task_id="compare", campaign_id="camp", **kwargs)


def test_the_operator_decides_on_the_primary_metric_and_names_a_harmed_guardrail(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    mock_sends(
        requests_mock,
        {
            "send-control": answer(day({"email": [unsubscribing(20_000, 600, 20)]})),
            "send-b": answer(day({"email": [unsubscribing(20_000, 800, 60)]})),
        },
    )
    op = compare_op(primary_metric="clicks", guardrails=["unsubscribes"])
    summary = op.execute({"ti": task_instance()})
    assert summary["primary_metric"] == "clicks"
    assert summary["guardrails"] == ["unsubscribes"]
    assert summary["harmed"] == {"b": ["unsubscribes"]}
    assert summary["provisional"] is None
    assert summary["verdicts"]["b"].startswith("b beats control on clicks: +1.0 points, +33 % [")
    assert "; b harms the guardrail unsubscribes: +0.2 points" in summary["verdicts"]["b"]
    assert {"primary_metric", "guardrails", "sent_at"} <= set(CompareSendsOperator.template_fields)
    # The look is recorded, once, as final.
    assert [key.split("__")[3] for key in looks.keys("braze_looks__")] == ["final"]


def test_a_rendered_guardrails_list_is_read(braze_conn: str, requests_mock: rm.Mocker, looks: Any) -> None:
    mock_sends(
        requests_mock,
        {
            "send-control": answer(day({"email": [unsubscribing(2000, 60, 2)]})),
            "send-b": answer(day({"email": [unsubscribing(2000, 61, 2)]})),
        },
    )
    summary = compare_op(guardrails='["unsubscribes", "bounces"]').execute({"ti": task_instance()})
    assert summary["guardrails"] == ["unsubscribes", "bounces"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"primary_metric": "clicks", "guardrails": ["clicks"]}, "'clicks' is both the primary metric"),
        ({"guardrails": "unsubscribes,bounces"}, None),  # one (odd) name: refused at run time
        ({"min_age": -5}, "min_age must not be negative"),
        ({"checkpoint": "relative/folder"}, "checkpoint must be 'variable'"),
    ],
)
def test_bad_choices_fail_the_dag_at_parse_time(kwargs: dict[str, Any], message: str | None) -> None:
    if message is None:
        compare_op(**kwargs)
        return
    with pytest.raises(BrazeValidationError, match=message):
        compare_op(**kwargs)


def test_an_unknown_metric_fails_before_judging(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    mock_sends(
        requests_mock,
        {f"send-{n}": answer(day({"email": [email_stats(100, 20, 5, 1)]})) for n in ("control", "b")},
    )
    with pytest.raises(BrazeValidationError, match="email has no metric 'unsubscribes,bounces'"):
        compare_op(guardrails="unsubscribes,bounces").execute({"ti": task_instance()})


def test_a_comparison_before_min_age_is_provisional(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    mock_sends(
        requests_mock,
        {
            f"send-{n}": answer(
                day({"email": [email_stats(2000, 500, 60 + 60 * (n == "b"), 20)]}, time="2026-11-02")
            )
            for n in ("control", "b")
        },
    )
    now = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
    with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=now):
        summary = compare_op(min_age=timedelta(hours=24), sent_at="2026-11-02T09:00:00Z").execute(
            {"ti": task_instance()}
        )
    reason = "the sends are 6:00:00 old, younger than the planned min_age 1 day, 0:00:00"
    assert summary["provisional"] == reason
    assert summary["verdicts"]["b"].startswith(f"Provisional ({reason}): b beats control on clicks")
    assert summary["notes"][0].startswith(f"Provisional verdicts: {reason}. Every look at an experiment")
    # Recorded as a provisional look: it does not spoil the planned one.
    later = datetime(2026, 11, 3, 10, 0, tzinfo=timezone.utc)
    with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=later):
        planned = compare_op(min_age=timedelta(hours=24), sent_at="2026-11-02T09:00:00Z").execute(
            {"ti": task_instance("run-2")}
        )
    assert planned["provisional"] is None
    assert not planned["verdicts"]["b"].startswith("Provisional")


def test_without_sent_at_the_age_is_never_overstated(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    alike(requests_mock)  # analytics on 2026-11-02
    # The first day of analytics is Nov 2 in some time zone: the send may have been as late as
    # Nov 3, 12:00 UTC, so on Nov 3, 20:00 it may be only 8 hours old.
    now = datetime(2026, 11, 3, 20, 0, tzinfo=timezone.utc)
    with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=now):
        summary = compare_op(min_age=86_400).execute({"ti": task_instance()})
    assert summary["provisional"] == (
        "the youngest send may be only 8:00:00 old, younger than the planned min_age 1 day, 0:00:00"
    )


def test_a_retry_that_decides_after_an_early_look_is_the_final_look(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    alike(requests_mock)

    def look(run_id: str, hours: int) -> Any:
        now = datetime(2026, 11, 2, 9, tzinfo=timezone.utc) + timedelta(hours=hours)
        with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=now):
            op = compare_op(min_age=timedelta(hours=24), sent_at="2026-11-02T09:00:00Z")
            return op.execute({"ti": task_instance(run_id)})["provisional"]

    assert look("run-1", 12).startswith("the sends are 12:00:00 old")
    assert look("run-1", 30) is None  # the same task instance, retried in time: it decides
    assert look("run-2", 31).startswith("control and b were already compared once with final verdicts")


def test_a_repeated_comparison_is_another_look(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore, tmp_path: Any
) -> None:
    alike(requests_mock)
    first = compare_op().execute({"ti": task_instance("run-1")})
    assert first["provisional"] is None
    # A retry of the same task instance is the same look.
    assert compare_op().execute({"ti": task_instance("run-1")})["provisional"] is None
    # Another run comparing the same sends (named differently, in another order) is another look.
    again = compare_op(sends={"b2": "send-b", "ctl": "send-control"}, control="ctl").execute(
        {"ti": task_instance("run-2")}
    )
    assert again["provisional"].startswith(
        "ctl and b2 were already compared once with final verdicts (first at 20"
    )
    assert again["provisional"].endswith("): this is another look")
    assert all(
        v.startswith("Provisional (ctl and b2 were already compared once") for v in again["verdicts"].values()
    )
    # Other sends are another experiment; a folder store works the same way.
    mock_sends(
        requests_mock,
        {f"send-{n}": answer(day({"email": [email_stats(2000, 500, 60, 20)]})) for n in ("control", "c")},
    )
    other = compare_op(sends={"control": "send-control", "c": "send-c"}, checkpoint=str(tmp_path))
    assert other.execute({"ti": task_instance("run-3")})["provisional"] is None
    assert other.execute({"ti": task_instance("run-4")})["provisional"] is not None
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("braze_looks__")]) == 2


def test_a_pair_compared_again_inside_a_larger_comparison_is_another_look(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    mock_sends(
        requests_mock,
        {
            f"send-{n}": answer(day({"email": [email_stats(2000, 500, 60, 20)]}))
            for n in ("control", "b", "c")
        },
    )
    assert compare_op().execute({"ti": task_instance("run-1")})["provisional"] is None
    bigger = compare_op(sends={"control": "send-control", "b": "send-b", "c": "send-c"})
    summary = bigger.execute({"ti": task_instance("run-2")})
    assert summary["provisional"].startswith("control and b were already compared once with final verdicts")
    # c's pair had no final look: the provisional comparison did not decide it, so it still can.
    assert (
        compare_op(sends={"control": "send-control", "c": "send-c"}).execute({"ti": task_instance("run-3")})[
            "provisional"
        ]
        is None
    )


def test_min_age_zero_is_no_planned_time_and_a_future_sent_at_is_refused(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    alike(requests_mock)  # analytics on 2026-11-02
    now = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
    with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=now):
        assert compare_op(min_age=0).execute({"ti": task_instance("run-1")})["provisional"] is None
        with pytest.raises(
            BrazeValidationError, match=r"sent_at 2026-11-04T09:00:00\+00:00 is in the future"
        ):
            compare_op(min_age=60, sent_at="2026-11-04T09:00:00Z").execute({"ti": task_instance("run-2")})
        # Without sent_at the send may have been as late as now, never later.
        young = compare_op(min_age=3600, checkpoint=None).execute({"ti": task_instance("run-3")})[
            "provisional"
        ]
    assert young == "the youngest send may be only 0:00:00 old, younger than the planned min_age 1:00:00"


def test_without_a_checkpoint_looks_are_not_remembered_and_it_says_so(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    alike(requests_mock)
    log = mock.MagicMock()
    with mock.patch.object(CompareSendsOperator, "log", new_callable=mock.PropertyMock, return_value=log):
        for run_id in ("run-1", "run-2"):
            assert compare_op(checkpoint=None).execute({"ti": task_instance(run_id)})["provisional"] is None
    warnings = [call.args[0] for call in log.warning.call_args_list]
    assert (
        warnings.count(
            "checkpoint=None: earlier comparisons of these sends are not looked up, so a repeated look is "
            "not flagged as provisional."
        )
        == 2
    )


def test_a_comparison_that_fails_is_no_look(
    braze_conn: str, requests_mock: rm.Mocker, looks: MemoryCheckpointStore
) -> None:
    alike(requests_mock)
    with pytest.raises(BrazeValidationError, match="email has no metric 'click'"):
        compare_op(primary_metric="click").execute({"ti": task_instance("run-1")})
    assert looks.keys("braze_looks__") == []
    # Fixed in a new run: the first look.
    assert compare_op(primary_metric="clicks").execute({"ti": task_instance("run-2")})["provisional"] is None


def test_a_failing_listing_fails_the_comparison(
    braze_conn: str, requests_mock: rm.Mocker, monkeypatch: Any
) -> None:
    alike(requests_mock)

    class Unreachable(MemoryCheckpointStore):
        def keys(self, prefix: str) -> list[str]:
            raise BrazeCheckpointError("Cannot list the checkpoint Variables: the API server did not answer")

    monkeypatch.setattr(checkpoint_module, "VariableCheckpointStore", Unreachable)
    with pytest.raises(BrazeCheckpointError, match="Cannot list"):
        compare_op().execute({"ti": task_instance()})
