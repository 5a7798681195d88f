"""Comparing sends: the statistics against a reference, the verdicts, and CompareSendsOperator."""

from __future__ import annotations

import csv
import json
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_braze.comparison import (
    MPP_NOTE,
    VariantTotals,
    adjust_p_values,
    chi2_sf,
    compare,
    describe_table,
    difference_interval,
    relative_lift_interval,
    sample_ratio_test,
    two_proportion_test,
    wilson_interval,
)
from airflow_provider_braze.delivery import checkpoint as checkpoint_module
from airflow_provider_braze.delivery.checkpoint import MemoryCheckpointStore
from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.operators.analytics import CompareSendsOperator
from tests.conftest import REST_ENDPOINT

SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"


@pytest.fixture(autouse=True)
def variables_in_memory(monkeypatch: pytest.MonkeyPatch) -> MemoryCheckpointStore:
    """The comparison records its looks in Airflow Variables by default; without a running
    Airflow these tests keep them in one memory store."""
    store = MemoryCheckpointStore()
    monkeypatch.setattr(checkpoint_module, "VariableCheckpointStore", lambda: store)
    return store


# Reference values computed with statsmodels 0.15.0 (proportions_ztest, proportion_confint with
# method="wilson").
REFERENCE = [
    # (x1, n1, x2, n2), p-value, Wilson (x1, n1)
    ((596, 8983, 51, 1890), 4.861204459012286e-11, (0.061383813164409676, 0.07168201027314093)),
    ((62, 9020, 17, 1915), 0.34705433337898284, (0.005365964697847709, 0.008801112527975078)),
    ((5, 20, 1, 25), 0.039473223724636415, (0.11186170140766563, 0.4687008776187441)),
    ((2883, 8983, 490, 1890), 1.3720772439158087e-07, (0.31136394292795133, 0.330668242157224)),
]  # fmt: skip


@pytest.mark.parametrize(("counts", "p_value", "wilson"), REFERENCE)
def test_statistics_match_the_reference(
    counts: tuple[int, int, int, int], p_value: float, wilson: tuple[float, float]
) -> None:
    x1, n1, x2, n2 = counts
    assert two_proportion_test(x1, n1, x2, n2)[1] == pytest.approx(p_value, rel=1e-6)
    assert wilson_interval(x1, n1) == pytest.approx(wilson, rel=1e-9)


# Score intervals of the difference and of the relative lift (ratio - 1), computed independently
# of the code under test: the restricted maximum likelihood estimates found numerically
# (scipy 1.16 minimize_scalar on the binomial log-likelihood, not the closed-form roots), the
# score statistic inverted with brentq (xtol 1e-15). statsmodels 0.15.0's
# confint_proportions_2indep(method="score", correction=False) agrees on equal groups, but its
# restricted estimate is off for very unequal groups (e.g. 18604/23153 vs 1846/14337: its bound
# 0.66790 has a score of 1.779, not 1.960) and often fails to bracket, so it is not the reference.
SCORE_REFERENCE = [
    # (x1, n1, x2, n2), confidence, difference interval, relative lift interval (None: unbounded)
    (
        (596, 8983, 51, 1890),
        0.95,
        (0.029765758958177405, 0.04779652335664938),
        (0.8589031103565994, 2.258160832059672),
    ),
    (
        (596, 8983, 51, 1890),
        0.99,
        (0.026433477301103743, 0.050278934956216756),
        (0.7047956131122821, 2.5573726860992485),
    ),
    (
        (62, 9020, 17, 1915),
        0.95,
        (-0.007494577422741433, 0.001861482933755182),
        (-0.5430378960569497, 0.31384169240604964),
    ),
    (
        (62, 9020, 17, 1915),
        0.99,
        (-0.00968530030468714, 0.002878039781169084),
        (-0.6105182982309945, 0.542932667202388),
    ),
    (
        (5, 20, 1, 25),
        0.95,
        (0.011700445131544817, 0.43656100856179825),
        (0.07147019304455626, 37.787461366204845),
    ),
    (
        (5, 20, 1, 25),
        0.99,
        (-0.06497391006676702, 0.5070052364830836),
        (-0.28294379474963516, 58.065581032065865),
    ),
    (
        (120, 2000, 60, 2000),
        0.95,
        (0.017327000912612987, 0.043161397814692914),
        (0.47846285315385884, 1.7072771143805978),
    ),
    (
        (120, 2000, 60, 2000),
        0.99,
        (0.01334132392487143, 0.04748747787493362),
        (0.3461954181983433, 1.9746307346941965),
    ),
    (
        (18604, 23153, 1846, 14337),
        0.95,
        (0.6671898314965659, 0.6821902240564964),
        (4.978419831142432, 5.515940429154721),
    ),
    (
        (18604, 23153, 1846, 14337),
        0.99,
        (0.6647772879873113, 0.6844913921518101),
        (4.898683262338527, 5.605261499865067),
    ),
    (
        (3, 25, 61342, 61514),
        0.95,
        (-0.9555373526398391, -0.6976455649832791),
        (-0.9582149958807635, -0.6996020798564885),
    ),
    (
        (3, 25, 61342, 61514),
        0.99,
        (-0.9663264998629741, -0.6286860034572135),
        (-0.9690333583355815, -0.6304492473594183),
    ),
    ((0, 40, 6, 50), 0.95, (-0.23804817744154838, -0.027781339486212128), (-1.0, -0.2452277605073626)),
    ((0, 40, 6, 50), 0.99, (-0.28432220444103035, 0.029998932147218126), (-1.0, 0.27836656769430346)),
    (
        (40, 40, 30, 50),
        0.95,
        (0.27608389224344865, 0.5381856247550681),
        (0.3813755360680533, 1.1653721729657032),
    ),
    (
        (40, 40, 30, 50),
        0.99,
        (0.23619431930371895, 0.5798037243946106),
        (0.3220984763845205, 1.3798402180985443),
    ),
    (
        (1234, 100000, 1100, 100000),
        0.95,
        (0.0003989721886464133, 0.0022831013668148633),
        (0.03476585907195995, 0.21619671267414708),
    ),
    (
        (1234, 100000, 1100, 100000),
        0.99,
        (0.00010300248470424134, 0.0025805744196625018),
        (0.008854037229760081, 0.24743602590483915),
    ),
]


@pytest.mark.parametrize(("counts", "confidence", "difference", "lift"), SCORE_REFERENCE)
def test_score_intervals_match_the_reference(
    counts: tuple[int, int, int, int],
    confidence: float,
    difference: tuple[float, float],
    lift: tuple[float, float | None],
) -> None:
    assert difference_interval(*counts, confidence) == pytest.approx(difference, rel=1e-6, abs=1e-9)
    found = relative_lift_interval(*counts, confidence)
    assert found is not None
    x1, n1, x2, n2 = counts
    assert found[0] == pytest.approx((x1 * n2) / (n1 * x2) - 1, rel=1e-12)
    assert found[1:] == pytest.approx(lift, rel=1e-6, abs=1e-9)


@given(
    st.integers(1, 200_000).flatmap(lambda n1: st.tuples(st.integers(0, n1), st.just(n1))),
    st.integers(1, 200_000).flatmap(lambda n2: st.tuples(st.integers(0, n2), st.just(n2))),
    st.sampled_from([0.9, 0.95, 0.99, 0.9975, 0.99975]),
)
@settings(max_examples=400, deadline=None)
def test_intervals_exclude_zero_exactly_when_the_test_rejects(
    variant: tuple[int, int], control: tuple[int, int], confidence: float
) -> None:
    (x1, n1), (x2, n2) = variant, control
    rejects = two_proportion_test(x1, n1, x2, n2)[1] < 1 - confidence
    low, high = difference_interval(x1, n1, x2, n2, confidence)
    assert low <= x1 / n1 - x2 / n2 <= high
    assert (low > 0 or high < 0) == rejects
    lift = relative_lift_interval(x1, n1, x2, n2, confidence)
    if lift is not None:
        lift_low, lift_high = lift[1], lift[2]
        assert (lift_low > 0 or (lift_high is not None and lift_high < 0)) == rejects


def test_relative_lift_without_a_control_rate_is_none() -> None:
    assert relative_lift_interval(5, 100, 0, 100) is None
    lift = relative_lift_interval(0, 100, 5, 100)
    assert lift is not None
    assert lift[:2] == (-1.0, -1.0)
    assert lift[2] is not None
    assert -1 < lift[2] < 0.2
    rows = compare(
        [email("control", 100, 10, 0, 0), email("a", 100, 20, 3, 0)], control="control", correction="none"
    ).rows
    clicks = next(r for r in rows if (r["variant"], r["metric"]) == ("a", "clicks"))
    assert (clicks["relative_lift"], clicks["relative_lift_low"], clicks["relative_lift_high"]) == (
        None,
        None,
        None,
    )
    opens = next(r for r in rows if (r["variant"], r["metric"]) == ("a", "opens"))
    assert opens["relative_lift"] == pytest.approx(1.0)
    assert (opens["relative_lift"], opens["relative_lift_low"], opens["relative_lift_high"]) == pytest.approx(
        relative_lift_interval(20, 100, 10, 100, 0.95), rel=1e-12
    )


def test_nothing_to_tell_apart_is_p_one() -> None:
    assert two_proportion_test(0, 10, 0, 12) == (0.0, 1.0)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753279986288926))
    assert difference_interval(0, 10, 0, 12) == pytest.approx((-0.24249400665524096, 0.27753279986288926))


def test_corrections_match_the_reference() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    assert adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])
    assert adjust_p_values(p, "none") == p
    with pytest.raises(BrazeValidationError, match="correction must be one of holm, bonferroni, none"):
        adjust_p_values(p, "fdr")


def email(variant: str, sent: int, opens: int, clicks: int, conversions: int, **more: Any) -> VariantTotals:
    counts: dict[str, Any] = {
        "sent": sent,
        "delivered": sent,
        "unique_opens": opens,
        "unique_clicks": clicks,
        "unique_recipients": sent,
        "conversions": conversions,
        "revenue": 10.0 * conversions,
        **more,
    }
    return VariantTotals(variant, "camp", f"send-{variant}", None, "email", counts, 1)


def test_verdicts_say_who_beats_whom_and_when_nothing_is_clear() -> None:
    comparison = compare(
        [
            email("control", 2000, 500, 60, 20),
            email("a", 2000, 505, 62, 21),
            email("b", 2000, 640, 120, 22),
        ],
        control="control",
    )
    # No primary metric: every metric but opens decides, in one Holm family of 8 tests; what
    # the data rule out is said at the level the kept tests were judged at (1 - 0.05/6).
    assert comparison.verdicts["a"] == (
        "a shows no significant difference from control yet at this sample size; the data rule "
        "out effects outside these ranges (points, at 99.17 %): delivered -0.3 to +0.3, clicks "
        "-1.4 to +1.6, conversions -0.9 to +1.0"
    )
    # Opens also differ (+7 points) but are a diagnostic: the verdict is on clicks.
    assert comparison.verdicts["b"] == (
        "b beats control on clicks: +3.0 points, +100 % [+32 %, +203 %] (p < 0.001, holm-adjusted)"
    )
    assert comparison.significant("b") == ["opens", "clicks"]
    rows = {(r["variant"], r["metric"]): r for r in comparison.rows}
    clicks = rows[("b", "clicks")]
    assert (clicks["count"], clicks["base"], clicks["rate"]) == (120, 2000, 0.06)
    assert clicks["difference"] == pytest.approx(0.03)
    assert clicks["p_value"] == pytest.approx(two_proportion_test(120, 2000, 60, 2000)[1])
    # Second smallest p of 8 in the Holm step-down: judged at 0.05 / 7.
    assert clicks["interval_level"] == pytest.approx(1 - 0.05 / 7)
    assert (clicks["difference_low"], clicks["difference_high"]) == pytest.approx(
        difference_interval(120, 2000, 60, 2000, 1 - 0.05 / 7)
    )
    assert (rows[("b", "opens")]["role"], clicks["role"]) == ("diagnostic", "primary")
    assert rows[("control", "opens")]["verdict"] == "control"
    assert rows[("a", "opens")]["verdict"].startswith("no significant difference on opens (p = ")
    assert rows[("b", "conversions")]["revenue_per_recipient"] == pytest.approx(0.11)
    assert comparison.notes == [f"{MPP_NOTE}."]


def test_trailing_variants_are_named_as_such() -> None:
    comparison = compare(
        [email("control", 2000, 600, 60, 20), email("b", 2000, 450, 20, 20)], control="control"
    )
    assert comparison.verdicts["b"].startswith("b trails control on clicks: -2.0 points, -67 % [")
    assert comparison.verdicts["b"].endswith("] (p < 0.001, holm-adjusted)")


def test_a_difference_in_opens_alone_is_a_diagnostic_not_a_verdict() -> None:
    comparison = compare(
        [email("control", 2000, 600, 60, 20), email("b", 2000, 450, 60, 20)], control="control"
    )
    assert comparison.significant("b") == ["opens"]
    assert comparison.verdicts["b"].startswith("b shows no significant difference from control yet")
    assert comparison.verdicts["b"].endswith(
        "; opens differ (-7.5 points), a diagnostic only (see the note on opens)"
    )
    assert "Apple Mail Privacy Protection" in comparison.notes[0]


def test_the_correction_is_what_keeps_a_lucky_variant_from_winning() -> None:
    # Raw p about 0.02 on clicks: significant alone, not after adjusting for 2 variants x 4 metrics.
    variants = [
        email("control", 2000, 500, 60, 20),
        email("a", 2000, 500, 88, 20),
        email("b", 2000, 500, 60, 20),
    ]
    raw = two_proportion_test(88, 2000, 60, 2000)[1]
    assert 0.01 < raw < 0.05
    assert compare(variants, control="control", correction="none").significant("a") == ["clicks"]
    assert compare(variants, control="control", correction="none").verdicts["a"] == (
        f"a beats control on clicks: +1.4 points, +47 % [+6 %, +102 %] (p = {raw:.3f})"
    )
    assert compare(variants, control="control").significant("a") == []
    assert compare(variants, control="control", correction="bonferroni").significant("a") == []


def test_counts_that_are_not_a_share_of_people_are_not_tested() -> None:
    comparison = compare([email("control", 100, 50, 10, 5), email("a", 100, 50, 10, 150)], control="control")
    row = next(r for r in comparison.rows if (r["variant"], r["metric"]) == ("a", "conversions"))
    assert (row["rate"], row["p_value"], row["verdict"]) == (None, None, "not tested")
    assert comparison.notes == [
        "a: conversions (150) exceed their base (100), so they are not a share of people and are not tested.",
        f"{MPP_NOTE}.",
    ]


def test_several_days_of_unique_counts_are_flagged() -> None:
    several = VariantTotals("a", "camp", "send-a", None, "email", email("a", 10, 5, 1, 0).counts, 3)
    comparison = compare([email("control", 10, 5, 1, 0), several], control="control")
    assert comparison.notes[0].startswith("The analytics cover 3 days: Braze counts unique opens, clicks")


@pytest.mark.parametrize(
    ("variants", "control", "message"),
    [
        (
            [email("control", 10, 1, 1, 1), email("a", 10, 1, 1, 1)],
            "ctrl",
            "The control 'ctrl' is not one of",
        ),
        ([email("control", 10, 1, 1, 1)], "control", "needs the control and at least one other variant"),
        ([email("control", 10, 1, 1, 1), email("a", 0, 0, 0, 0)], "control", "Variant 'a' .* has no email"),
    ],
)
def test_compare_refuses_what_it_cannot_compare(
    variants: list[VariantTotals], control: str, message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        compare(variants, control=control)


def test_the_log_table_is_aligned_and_marks_significance() -> None:
    comparison = compare(
        [email("control", 2000, 500, 60, 20), email("b", 2000, 640, 120, 22)], control="control"
    )
    lines = describe_table(comparison)
    assert lines[0].split() == [
        "variant",
        "metric",
        "role",
        "count/base",
        "rate",
        "%",
        "[95",
        "%",
        "CI]",
        "vs",
        "control,",
        "pts",
        "[CI]",
        "level",
        "p",
        "adj.",
    ]
    assert lines[5].split() == [
        "b",
        "delivered",
        "primary",
        "2000/2000",
        "100.00",
        "[99.81,",
        "100.00]",
        "+0.0",
        "[-0.3,",
        "+0.3]",
        "97.5%",
        "1.000",
    ]
    assert lines[6].split() == [
        "b",
        "opens",
        "diagnostic",
        "640/2000",
        "32.00",
        "[29.99,",
        "34.08]",
        "+7.0",
        "[+3.4,",
        "+10.5]",
        "98.75%",
        "<0.001",
        "*",
    ]
    assert lines[7].split() == [
        "b",
        "clicks",
        "primary",
        "120/2000",
        "6.00",
        "[5.04,",
        "7.13]",
        "+3.0",
        "[+1.5,",
        "+4.6]",
        "98.33%",
        "<0.001",
        "*",
    ]
    assert lines[9].startswith(
        "Each difference's interval is at the level its test was judged at after the holm"
    )
    # Columns line up: each row's fourth column starts where the header's does.
    start = lines[0].index("count/base")
    assert all(line[start - 2 : start] == "  " and line[start] != " " for line in lines[:9])


# --------------------------------------------------------------------------- the operator


def day(variations: dict[str, list[dict[str, Any]]], time: str = "2026-11-02") -> dict[str, Any]:
    return {"time": time, "messages": variations, "conversions": 0, "unique_recipients": 0, "revenue": 0}


def email_stats(sent: int, opens: int, clicks: int, conversions: int, **label: Any) -> dict[str, Any]:
    return {
        **label,
        "sent": sent,
        "delivered": sent,
        "unique_opens": opens,
        "unique_clicks": clicks,
        "unique_recipients": sent,
        "conversions": conversions,
        "revenue": 5.0 * conversions,
    }


def answer(*days: dict[str, Any]) -> dict[str, Any]:
    return {"message": "success", "data": list(days)}


def mock_sends(requests_mock: rm.Mocker, by_send: dict[str, dict[str, Any]]) -> None:
    def respond(request: Any, context: Any) -> dict[str, Any]:
        return by_send[request.qs["send_id"][0]]

    requests_mock.get(SERIES_URL, json=respond)


def run(op: CompareSendsOperator) -> tuple[dict[str, Any], mock.MagicMock]:
    ti = mock.MagicMock()
    return op.execute({"ti": ti}), ti


SENDS = {
    "control": answer(day({"email": [email_stats(2000, 500, 60, 20, variation_name="Variant 1")]})),
    "a": answer(day({"email": [email_stats(2000, 505, 62, 21, variation_name="Variant 1")]})),
    "b": answer(day({"email": [email_stats(2000, 640, 120, 22, variation_name="Variant 1")]})),
}


def test_operator_fetches_each_send_once_and_writes_table_jsonl_and_chart(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    op = CompareSendsOperator(
        task_id="compare",
        campaign_id="camp",
        sends={"b": "send-b", "control": "send-control", "a": "send-a"},
        output_path=f"file://{tmp_path}/out/comparison.csv",
    )
    summary, ti = run(op)
    assert [r.qs["send_id"] for r in requests_mock.request_history] == [
        ["send-control"],
        ["send-b"],
        ["send-a"],
    ]
    assert all(
        r.qs["campaign_id"] == ["camp"] and r.qs["length"] == ["14"] for r in requests_mock.request_history
    )
    assert summary["verdicts"] == {
        "b": "b beats control on clicks: +3.0 points, +100 % [+32 %, +203 %] (p < 0.001, holm-adjusted)",
        "a": "a shows no significant difference from control yet at this sample size; the data rule "
        "out effects outside these ranges (points, at 99.17 %): delivered -0.3 to +0.3, clicks -1.4 "
        "to +1.6, conversions -0.9 to +1.0",
    }
    assert summary["variants"]["b"] == {
        "campaign_id": "camp",
        "send_id": "send-b",
        "variation": None,
        "recipients": 2000,
        "significant": ["opens", "clicks"],
    }
    assert summary["table"] == f"file://{tmp_path}/out/comparison.csv"
    assert summary["table_jsonl"] == f"file://{tmp_path}/out/comparison.jsonl"
    assert summary["chart"] == f"file://{tmp_path}/out/comparison.svg"
    rows = list(csv.DictReader((tmp_path / "out/comparison.csv").open()))
    assert [(r["variant"], r["metric"]) for r in rows][:4] == [
        ("control", "delivered"),
        ("control", "opens"),
        ("control", "clicks"),
        ("control", "conversions"),
    ]
    assert len(rows) == 12
    lines = [json.loads(x) for x in (tmp_path / "out/comparison.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in lines] == [r["verdict"] for r in rows]
    svg = (tmp_path / "out/comparison.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "opens" in svg
    json.dumps(summary)  # small and JSON-serialisable for XCom
    assert not ti.xcom_push.called  # the table went to storage, not XCom


def test_the_same_comparison_draws_the_same_chart(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    charts = []
    for attempt in ("one", "two"):
        op = CompareSendsOperator(
            task_id="compare",
            campaign_id="camp",
            sends={n: f"send-{n}" for n in SENDS},
            output_path=str(tmp_path / attempt / "c.jsonl"),
            chart_format="png",
        )
        summary, _ = run(op)
        charts.append(Path(summary["chart"]).read_bytes())
    assert charts[0] == charts[1]
    assert charts[0].startswith(b"\x89PNG")


def test_without_matplotlib_the_chart_is_skipped_and_said_so(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    op = CompareSendsOperator(
        task_id="compare",
        campaign_id="camp",
        sends={n: f"send-{n}" for n in SENDS},
        output_path=str(tmp_path / "c.csv"),
    )
    summary, _ = run(op)
    assert summary["chart"] is None
    assert summary["chart_skipped"] == (
        "matplotlib is not installed: install airflow-provider-braze-rest[charts] for charts."
    )
    assert (tmp_path / "c.csv").exists()
    assert not list(tmp_path.glob("*.svg"))


def test_without_output_path_the_table_goes_to_xcom(braze_conn: str, requests_mock: rm.Mocker) -> None:
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    summary, ti = run(
        CompareSendsOperator(task_id="c", campaign_id="camp", sends={n: f"send-{n}" for n in SENDS})
    )
    ((_, kwargs),) = [(c.args, c.kwargs) for c in ti.xcom_push.call_args_list]
    assert kwargs["key"] == "table"
    assert len(kwargs["value"]) == 12
    assert "table" not in summary


def test_variations_within_one_send_id(braze_conn: str, requests_mock: rm.Mocker) -> None:
    one_send = answer(
        day(
            {
                "email": [
                    email_stats(2000, 500, 60, 20, variation_api_id="var-1"),
                    email_stats(2000, 700, 130, 30, variation_api_id="var-2"),
                ]
            }
        )
    )
    mock_sends(requests_mock, {"s": one_send})
    op = CompareSendsOperator(
        task_id="c",
        campaign_id="camp",
        sends=[
            {"variant": "control", "send_id": "s", "message_variation_id": "var-1"},
            {"variant": "new", "send_id": "s", "message_variation_id": "var-2"},
        ],
    )
    summary, _ = run(op)
    assert len(requests_mock.request_history) == 1  # one send ID, fetched once
    assert summary["variants"]["new"]["variation"] == "var-2"
    assert summary["verdicts"]["new"].startswith("new beats control on clicks")


def test_variations_reported_by_name_need_their_name(braze_conn: str, requests_mock: rm.Mocker) -> None:
    by_name = answer(
        day(
            {
                "email": [
                    email_stats(100, 50, 6, 2, variation_name="Variant 1"),
                    email_stats(100, 70, 13, 3, variation_name="Variant 2"),
                ]
            }
        )
    )
    mock_sends(requests_mock, {"s": by_name})
    sends = {
        "control": {"send_id": "s", "message_variation_id": "var-1"},
        "b": {"send_id": "s", "message_variation_id": "var-2"},
    }
    with pytest.raises(
        BrazeValidationError, match="reported send 's''s variations by name \\(Variant 1, Variant 2\\)"
    ):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends=sends))
    sends = {
        "control": {"send_id": "s", "variation_name": "Variant 1"},
        "b": {"send_id": "s", "variation_name": "Variant 9"},
    }
    with pytest.raises(
        BrazeValidationError,
        match="has no email analytics for variation 'Variant 9'; Braze reported Variant 1, Variant 2",
    ):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends=sends))
    sends["b"]["variation_name"] = "Variant 2"
    summary, _ = run(CompareSendsOperator(task_id="c", campaign_id="camp", sends=sends))
    assert summary["variants"]["b"]["recipients"] == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "sends": {
                    "control": {"send_id": "s1", "campaign_id": "c1"},
                    "a": {"send_id": "s2", "campaign_id": "c2"},
                }
            },
            "The sends belong to different campaigns \\(c1, c2\\).*allow_mixed_campaigns=True",
        ),
        (
            {"sends": {"control": "s1", "a": "s1"}, "campaign_id": "c"},
            "Variants 'control' and 'a' are the same send",
        ),
        (
            {"sends": {"ctrl": "s1", "a": "s2"}, "campaign_id": "c"},
            "The control 'control' is not one of the variants",
        ),
        (
            {"sends": {"control": "s1"}, "campaign_id": "c"},
            "needs the control and at least one other variant",
        ),
        ({"sends": {"control": "s1", "a": "s2"}}, "campaign_id"),
        ({"sends": {"control": "s1", "a": ""}, "campaign_id": "c"}, "send_id"),
        ({"sends": "s1", "campaign_id": "c"}, "sends must map variant names to send IDs"),
        (
            {"sends": [{"variant": "control", "send_id": "s1", "colour": 1}], "campaign_id": "c"},
            "unknown key\\(s\\) colour",
        ),
        (
            {
                "sends": [{"variant": "control", "send_id": "s"}, {"variant": "control", "send_id": "t"}],
                "campaign_id": "c",
            },
            "Variant 'control' is given twice",
        ),
        (
            {
                "sends": {
                    "control": {"send_id": "s", "message_variation_id": "v", "variation_name": "n"},
                    "a": "t",
                },
                "campaign_id": "c",
            },
            "give message_variation_id or variation_name, not both",
        ),
    ],
)
def test_operator_refuses_bad_sends_before_any_request(
    kwargs: dict[str, Any], message: str, braze_conn: str, requests_mock: rm.Mocker
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        run(CompareSendsOperator(task_id="c", **kwargs))
    assert requests_mock.request_history == []


def test_mixed_campaigns_when_said_so(braze_conn: str, requests_mock: rm.Mocker) -> None:
    mock_sends(requests_mock, {"send-control": SENDS["control"], "send-b": SENDS["b"]})
    sends = {
        "control": {"send_id": "send-control", "campaign_id": "c1"},
        "b": {"send_id": "send-b", "campaign_id": "c2"},
    }
    summary, _ = run(CompareSendsOperator(task_id="c", sends=sends, allow_mixed_campaigns=True))
    assert [r.qs["campaign_id"] for r in requests_mock.request_history] == [["c1"], ["c2"]]
    assert summary["variants"]["b"]["campaign_id"] == "c2"


def test_several_channels_need_a_choice(braze_conn: str, requests_mock: rm.Mocker) -> None:
    push = {
        "sent": 100,
        "delivered": 100,
        "direct_opens": 5,
        "body_clicks": 2,
        "unique_recipients": 100,
        "conversions": 1,
    }
    both = answer(day({"email": [email_stats(100, 50, 6, 2)], "ios_push": [push]}))
    mock_sends(requests_mock, {"s1": both, "s2": both})
    op = CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"})
    with pytest.raises(BrazeValidationError, match="several channels \\(email, ios_push\\): pass channel="):
        run(op)
    summary, _ = run(
        CompareSendsOperator(
            task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"}, channel="ios_push"
        )
    )
    assert summary["channel"] == "ios_push"
    # Push has no diagnostic: direct opens decide like the other metrics.
    assert summary["verdicts"]["a"] == (
        "a shows no significant difference from control yet at this sample size; the data rule out "
        "effects outside these ranges (points, at 98.75 %): delivered -5.9 to +5.9, direct opens -9.2 "
        "to +9.2, body clicks -7.4 to +7.4, conversions -6.7 to +6.7"
    )


def test_no_analytics_yet_is_a_clear_error(braze_conn: str, requests_mock: rm.Mocker) -> None:
    mock_sends(requests_mock, {"s1": answer(), "s2": answer()})
    with pytest.raises(BrazeValidationError, match="None of the sends has analytics yet"):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correction": "fdr"}, "correction must be one of holm, bonferroni, none"),
        ({"chart_format": "gif"}, "chart_format must be 'svg', 'png' or None"),
        ({"confidence": 95}, "confidence must be at least 0.5 and below 1"),
        ({"confidence": True}, "confidence must be at least 0.5 and below 1"),
    ],
)
def test_operator_refuses_settings_it_cannot_honour(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "a", "b": "b"}, **kwargs)


def test_a_bad_output_name_fails_before_any_request(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    op = CompareSendsOperator(
        task_id="c",
        campaign_id="camp",
        sends={"control": "s1", "a": "s2"},
        output_path=str(tmp_path / "table.xlsx"),
    )
    with pytest.raises(
        BrazeValidationError, match=r"output_path must name the table's file, ending in \.csv or \.jsonl"
    ):
        run(op)
    assert requests_mock.request_history == []


# ------------------------------------------------------------------- what adversarial runs found


def test_sends_from_a_mapped_task_are_taken(braze_conn: str, requests_mock: rm.Mocker) -> None:
    class LazySequence:  # what a mapped task's output is downstream: iterable, not a list
        def __init__(self, items: list[dict[str, Any]]) -> None:
            self.items = items

        def __iter__(self) -> Any:
            raise AssertionError("iterating probes one past the end, which Airflow logs as an error")

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, index: int) -> dict[str, Any]:
            return self.items[index]

    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    sends = LazySequence([{"variant": n, "send_id": f"send-{n}"} for n in SENDS])
    summary, _ = run(CompareSendsOperator(task_id="c", campaign_id="camp", sends=sends))
    assert set(summary["verdicts"]) == {"a", "b"}


@pytest.mark.parametrize(
    "sends",
    [
        # The same variation, once by API ID and once by name.
        {
            "control": {"send_id": "s", "message_variation_id": "id-a"},
            "a": {"send_id": "s", "variation_name": "Var A"},
        },
        # A whole send and one of its variations: a's people are inside the control.
        {"control": {"send_id": "s"}, "a": {"send_id": "s", "variation_name": "Var B"}},
    ],
)
def test_variants_that_count_the_same_people_are_refused(
    braze_conn: str, requests_mock: rm.Mocker, sends: dict[str, Any]
) -> None:
    both = answer(
        day(
            {
                "email": [
                    email_stats(1000, 250, 30, 10, variation_name="Var A", variation_api_id="id-a"),
                    email_stats(1000, 260, 31, 11, variation_name="Var B", variation_api_id="id-b"),
                ]
            }
        )
    )
    mock_sends(requests_mock, {"s": both})
    with pytest.raises(
        BrazeValidationError, match="Variants 'control' and 'a' both count send 's', variation"
    ):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends=sends))


def test_a_comparison_with_nothing_to_test_says_so(braze_conn: str, requests_mock: rm.Mocker) -> None:
    webhook = answer(day({"webhook": [{"sent": 1000, "errors": 0, "unique_recipients": 1000}]}))
    mock_sends(requests_mock, {"s1": webhook, "s2": webhook})
    summary, _ = run(
        CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"})
    )
    assert summary["verdicts"]["a"] == (
        "a could not be compared with control: Braze reported none of the counts the rates need "
        "(see the notes)"
    )
    assert summary["notes"] == [
        "a: nothing was tested: the webhook analytics of a or control lack what the rates need: "
        "conversions (conversions of recipients)."
    ]


@pytest.mark.parametrize("name", ["a\n", "a b", "a.b", "é"])
def test_variant_names_are_whole_matches(name: str) -> None:
    from airflow_provider_braze.experiments import check_shares

    with pytest.raises(BrazeValidationError, match="must be 1 to 64 letters"):
        check_shares({name: 0.5, "b": 0.5})
    with pytest.raises(BrazeValidationError, match="must be a variant name"):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "s1", name: "s2"}))


def test_names_differing_only_in_case_are_refused() -> None:
    from airflow_provider_braze.experiments import check_shares

    with pytest.raises(BrazeValidationError, match="'a' and 'A' differ only in letter case"):
        check_shares({"a": 0.5, "A": 0.5})


@pytest.mark.parametrize("path", ["/tmp/out/comparison", "/tmp/out/", "/tmp/out/table.xlsx"])
def test_the_table_path_needs_a_table_suffix(braze_conn: str, requests_mock: rm.Mocker, path: str) -> None:
    op = CompareSendsOperator(
        task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"}, output_path=path
    )
    with pytest.raises(
        BrazeValidationError, match=r"output_path must name the table's file, ending in \.csv or \.jsonl"
    ):
        run(op)
    assert requests_mock.request_history == []


def test_p_values_are_never_rounded_across_the_threshold() -> None:
    from airflow_provider_braze.comparison import format_p

    assert format_p(0.0497, 0.05) == "p = 0.0497"
    assert format_p(0.04996, 0.05) == "p = 0.04996"
    assert format_p(0.0503, 0.05) == "p = 0.050"  # not below 0.05, and does not read as below
    assert format_p(0.003) == "p = 0.003"
    assert format_p(0.0004, 0.05) == "p < 0.001"
    comparison = compare([email("control", 139, 13, 1, 0), email("b", 139, 26, 1, 0)], control="control")
    row = next(r for r in comparison.rows if (r["variant"], r["metric"]) == ("b", "opens"))
    if row["significant"]:
        assert "p = 0.050," not in row["verdict"]


def test_a_negative_count_from_braze_is_an_unexpected_answer(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    from airflow_provider_braze.exceptions import BrazeUnexpectedResponseError

    bad = answer(day({"email": [email_stats(100, -5, 1, 0)]}))
    mock_sends(requests_mock, {"s1": bad, "s2": SENDS["a"]})
    with pytest.raises(BrazeUnexpectedResponseError, match="negative unique_opens"):
        run(CompareSendsOperator(task_id="c", campaign_id="camp", sends={"control": "s1", "a": "s2"}))


# --------------------------------------------------------------------------- sample ratio


def reference_chi2_sf(x: float, df: int, digits: int = 400) -> float:
    """Q(df/2, x/2) = 1 - P(df/2, x/2) in 400-digit decimal arithmetic, P by its power series
    ``y^a e^-y / Gamma(a+1) * sum_n y^n / ((a+1)...(a+n))`` and pi by Machin's formula:
    independent of the code under test (which sums the upper tail's finite series)."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = digits

        def atan_inverse(n: int) -> Decimal:
            x = Decimal(1) / n
            term, total, k = x, x, 1
            while True:
                term *= -x * x
                step = term / (2 * k + 1)
                if step == 0:
                    return total
                total += step
                k += 1

        a, y = Decimal(df) / 2, Decimal(x) / 2
        if df % 2 == 0:
            gamma = Decimal(math.factorial(df // 2))
        else:
            m = (df + 1) // 2  # a + 1 = m + 1/2
            pi = 16 * atan_inverse(5) - 4 * atan_inverse(239)
            gamma = Decimal(math.factorial(2 * m)) / (Decimal(4) ** m * math.factorial(m)) * pi.sqrt()
        total, term, n = Decimal(1), Decimal(1), 1
        while term >= Decimal(10) ** (5 - digits) * total:
            term = term * y / (a + n)
            total += term
            n += 1
        return float(1 - (a * y.ln() - y).exp() / gamma * total)


@pytest.mark.parametrize(
    ("statistic", "df"),
    [
        (0.5, 1),
        (3.0, 1),
        (7.8, 3),
        (10.0, 3),
        (12.5, 10),
        (30.0, 5),
        (50.0, 40),
        (100.0, 11),
        (291.0, 7),
        (1200.0, 30),
        (1300.0, 1),
        (1300.0, 9),
        (1350.0, 2),
    ],
)
def test_chi_square_tail_matches_a_high_precision_series(statistic: float, df: int) -> None:
    expected = reference_chi2_sf(statistic, df)
    assert expected > 1e-300
    assert chi2_sf(statistic, df) == pytest.approx(expected, rel=1e-12)


def test_chi_square_tail_of_the_familiar_quantiles() -> None:
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-12)
    assert chi2_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-12)
    assert chi2_sf(0.0, 3) == 1.0


def test_the_issues_10_45_45_example_is_a_sample_ratio_mismatch() -> None:
    planned = {"control": 0.1, "a": 0.45, "b": 0.45}
    ratio = sample_ratio_test({"control": 10_000, "a": 50_000, "b": 45_000}, planned)
    # Expected 10 500, 47 250, 47 250 of 105 000, in exact fractions.
    statistic = Fraction(500**2, 10_500) + Fraction(2750**2, 47_250) + Fraction(2250**2, 47_250)
    assert ratio.statistic == pytest.approx(float(statistic), rel=1e-13)
    assert ratio.df == 2
    assert ratio.p_value == pytest.approx(reference_chi2_sf(float(statistic), 2), rel=1e-12)
    assert ratio.p_value == pytest.approx(6.44e-64, rel=1e-3)
    assert ratio.mismatch
    assert ratio.observed["a"] == pytest.approx(50_000 / 105_000)


def srm_variants() -> list[VariantTotals]:
    return [
        email("control", 10_000, 2500, 300, 100),
        email("a", 50_000, 12_600, 1500, 500),
        email("b", 45_000, 14_400, 2700, 450),
    ]


def test_a_mismatch_judges_no_variant() -> None:
    planned = {"control": 0.1, "a": 0.45, "b": 0.45}
    unplanned = compare(srm_variants(), control="control")
    assert unplanned.sample_ratio is None
    assert unplanned.significant("b") == ["opens", "clicks"]
    comparison = compare(srm_variants(), control="control", planned_shares=planned)
    assert comparison.sample_ratio is not None
    assert comparison.sample_ratio.mismatch
    expected = (
        "the sample ratio does not match the plan (planned control 10.0 %, a 45.0 %, b 45.0 %; observed "
        "control 9.5 %, a 47.6 %, b 42.9 %; chi-square 291.01, 2 df, p = 6.4e-64): the split or the "
        "sends lost or added people unevenly, so the variants are not comparable and no variant is "
        "called better or worse"
    )
    assert comparison.verdicts == {"a": f"a: {expected}", "b": f"b: {expected}"}
    assert comparison.significant("b") == []
    assert {r["verdict"] for r in comparison.rows if r["variant"] != "control"} == {
        "not judged: sample ratio mismatch"
    }
    assert comparison.notes[0] == f"Sample ratio mismatch: {expected}."
    assert describe_table(comparison)[-1].startswith("Sample ratio MISMATCH: no variant is judged (planned")


def test_a_matching_sample_ratio_changes_no_verdict() -> None:
    variants = [email("control", 2000, 500, 60, 20), email("b", 2000, 640, 120, 22)]
    plain = compare(variants, control="control")
    checked = compare(variants, control="control", planned_shares='{"control": 0.5, "b": 0.5}')
    assert checked.sample_ratio is not None
    assert (checked.sample_ratio.statistic, checked.sample_ratio.p_value) == (0.0, 1.0)
    assert not checked.sample_ratio.mismatch
    assert checked.verdicts == plain.verdicts
    assert describe_table(checked)[-1] == (
        "Sample ratio matches the plan (planned control 50.0 %, b 50.0 %; observed control 50.0 %, "
        "b 50.0 %; chi-square 0.00, 1 df, p = 1)"
    )


@pytest.mark.parametrize(
    ("planned", "message"),
    [
        ({"control": 0.5, "a": 0.25, "b": 0.25, "c": 0.0001}, "planned_shares: The shares must add up to 1"),
        (
            {"control": 0.5, "a": 0.2, "z": 0.3},
            "planned_shares names variant\\(s\\) 'z' that are not compared",
        ),
        ({"control": 0.5, "a": 0.5}, "planned_shares has no share for variant\\(s\\) 'b'"),
        ("{not json", "planned_shares: shares is not a JSON object"),
        ([0.5, 0.5], "planned_shares: shares must map each variant name"),
    ],
)
def test_bad_planned_shares_are_refused(planned: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        compare(srm_variants(), control="control", planned_shares=planned)


def test_operator_passes_planned_shares_and_reports_the_sample_ratio(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    planned = {"control": 0.1, "a": 0.45, "b": 0.45}
    op = CompareSendsOperator(
        task_id="compare",
        campaign_id="camp",
        sends={"b": "send-b", "control": "send-control", "a": "send-a"},
        planned_shares=planned,
    )
    summary, _ = run(op)
    ratio = summary["sample_ratio"]
    assert ratio["mismatch"] is True  # 2000 each, planned 10/45/45
    assert ratio["planned"] == planned
    assert ratio["recipients"] == {"control": 2000, "a": 2000, "b": 2000}
    assert all("the sample ratio does not match the plan" in v for v in summary["verdicts"].values())
    assert summary["variants"]["b"]["significant"] == []
    assert "planned_shares" in CompareSendsOperator.template_fields


def test_operator_refuses_literal_planned_shares_that_do_not_add_up() -> None:
    with pytest.raises(BrazeValidationError, match="The shares must add up to 1"):
        CompareSendsOperator(task_id="c", sends={"control": "s1", "a": "s2"}, planned_shares={"control": 0.5})


def test_a_dag_passes_the_splits_planned_shares_by_xcom() -> None:
    from airflow.sdk import DAG, XComArg

    from airflow_provider_braze.operators.experiments import SplitAudienceOperator

    with DAG("planned_shares", schedule=None):
        split = SplitAudienceOperator(
            task_id="split",
            recipients=["u1"],
            experiment="e",
            shares={"control": 0.5, "a": 0.5},
            output_path="/tmp/x",
        )
        compare_task = CompareSendsOperator(
            task_id="compare",
            campaign_id="camp",
            sends={"control": "s1", "a": "s2"},
            planned_shares=XComArg(split, key="planned_shares"),
        )
    assert compare_task.upstream_task_ids == {"split"}
    assert compare_task.planned_shares.key == "planned_shares"
