"""Send analytics: the row parser on real-shaped answers, files, and the hook verb."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_braze.analytics import (
    ROW_FIELDS,
    describe_totals,
    output_format_for,
    rows_to_text,
    send_analytics_rows,
    totals_by_channel,
)
from airflow_provider_braze.exceptions import (
    BrazeAuthError,
    BrazeUnexpectedResponseError,
    BrazeValidationError,
)
from airflow_provider_braze.hooks.braze import BrazeHook
from tests.conftest import REST_ENDPOINT

SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"


def variation(name: str, sent: int, **extra: Any) -> dict[str, Any]:
    stats = {
        "variation_name": name,
        "sent": sent,
        "delivered": sent - 1,
        "undelivered": 1,
        "delivery_failed": 0,
        "direct_opens": sent // 4,
        "total_opens": sent // 3,
        "bounces": 1,
        "body_clicks": sent // 10,
        "revenue": 12.5,
        "unique_recipients": sent,
        "conversions": 2,
        "conversions_by_send_time": 1,
    }
    stats.update(extra)
    return stats


#: Two days, two channels, an A/B test on email, an optional conversion event, a field Braze
#: added later, and a third day with totals but no message statistics.
ANSWER = {
    "message": "success",
    "data": [
        {
            "time": "2026-11-21",
            "messages": {
                "ios_push": [variation("iOS push", 100)],
                "email": [
                    variation("Variant A", 500, conversions1=3, conversions1_by_send_time=2),
                    variation("Variant B", 480, variation_api_id="var-b"),
                ],
            },
            "conversions": 6,
            "conversions_by_send_time": 3,
            "conversions1": 3,
            "unique_recipients": 1_080,
            "revenue": 37.5,
        },
        {
            "time": "2026-11-22",
            "messages": {"email": [variation("Variant A", 10)]},
            "conversions": 2,
            "unique_recipients": 10,
        },
        {"time": "2026-11-23", "messages": {}, "conversions": 0, "unique_recipients": 0, "revenue": 0},
    ],
}


def test_rows_are_tidy() -> None:
    rows = send_analytics_rows(ANSWER, campaign_id="c", send_id="s")
    keys = [(r["date"], r["channel"], r["variation_name"]) for r in rows]
    assert keys == [
        ("2026-11-21", "email", "Variant A"),
        ("2026-11-21", "email", "Variant B"),
        ("2026-11-21", "ios_push", "iOS push"),
        ("2026-11-22", "email", "Variant A"),
        ("2026-11-23", None, None),
    ]
    first = rows[0]
    assert list(first)[: len(ROW_FIELDS)] == list(ROW_FIELDS)
    assert (first["campaign_id"], first["send_id"], first["sent"], first["delivered"]) == ("c", "s", 500, 499)
    assert (first["conversions1"], first["conversions1_by_send_time"]) == (3, 2)
    assert (first["day_conversions"], first["day_unique_recipients"], first["day_revenue"]) == (
        6,
        1_080,
        37.5,
    )
    assert rows[1]["variation_api_id"] == "var-b"  # kept, not dropped
    assert rows[1]["conversions1"] is None  # optional and absent
    assert rows[3]["day_revenue"] is None  # the day had no revenue field
    assert rows[4]["sent"] is None
    assert rows[4]["day_unique_recipients"] == 0


def test_totals_by_channel() -> None:
    totals = totals_by_channel(send_analytics_rows(ANSWER, campaign_id="c", send_id="s"))
    assert set(totals) == {"email", "ios_push"}
    assert totals["email"]["sent"] == 990
    assert totals["email"]["revenue"] == 37.5
    assert totals["ios_push"]["delivered"] == 99
    lines = describe_totals(totals)
    assert lines[0].startswith("email: 990 sent, 987 delivered, 247 direct opens (25.0%)")
    assert describe_totals({}) == ["no message statistics yet"]


@pytest.mark.parametrize("answer", [{"message": "success", "data": []}, {"message": "success"}])
def test_no_data(answer: dict[str, Any]) -> None:
    assert send_analytics_rows(answer, campaign_id="c", send_id="s") == []


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ({"data": {"time": "x"}}, "'data' is a dict, not a list"),
        ({"data": ["2026-11-21"]}, r"data\[0\] is a str, not an object"),
        ({"data": [{"time": None}]}, r"data\[0\].time is None, not an ISO-8601 date"),
        ({"data": [{"time": "2026-11-21", "messages": []}]}, r"data\[0\].messages is a list"),
        ({"data": [{"time": "2026-11-21", "messages": {"email": {}}}]}, "not a list of variations"),
        (
            {"data": [{"time": "2026-11-21", "messages": {"email": [{"sent": "many"}]}}]},
            r"\.sent is 'many', not a number",
        ),
        ({"data": [{"time": "2026-11-21", "revenue": "lots"}]}, r"data\[0\].revenue is 'lots'"),
    ],
)
def test_unexpected_shapes_are_clear_errors(answer: dict[str, Any], detail: str) -> None:
    with pytest.raises(BrazeUnexpectedResponseError, match=detail) as err:
        send_analytics_rows(answer, campaign_id="c", send_id="s")
    assert "GET /sends/data_series is not in the documented shape" in str(err.value)


def test_csv_and_jsonl() -> None:
    rows = send_analytics_rows(ANSWER, campaign_id="c", send_id="s")
    parsed = list(csv.DictReader(io.StringIO(rows_to_text(rows, "csv"))))
    assert len(parsed) == 5
    assert parsed[0]["sent"] == "500"
    assert parsed[0]["conversions1"] == "3"
    assert parsed[1]["variation_api_id"] == "var-b"
    assert parsed[4]["channel"] == ""
    lines = rows_to_text(rows, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == rows
    with pytest.raises(BrazeValidationError, match="'csv' or 'jsonl'"):
        rows_to_text(rows, "xml")


def test_output_format() -> None:
    assert output_format_for("s3://b/x.csv", None) == "csv"
    assert output_format_for("/tmp/x.ndjson", None) == "jsonl"
    assert output_format_for("/tmp/x.data", "jsonl") == "jsonl"
    with pytest.raises(BrazeValidationError, match="Cannot tell the format"):
        output_format_for("/tmp/x.data", None)


# ---------------------------------------------------------------------------- the hook verb


@pytest.fixture
def hook(braze_conn: str, sleeps: list[float]) -> BrazeHook:
    return BrazeHook()


def test_get_send_data_series_request(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    assert hook.get_send_data_series("c-1", "s-1", 14) == ANSWER
    assert requests_mock.last_request.qs == {"campaign_id": ["c-1"], "send_id": ["s-1"], "length": ["14"]}
    hook.get_send_data_series("c-1", "s-1", 7, ending_at=datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc))
    assert requests_mock.last_request.qs["ending_at"] == ["2026-11-30t23:59:00z"]  # requests-mock lowercases


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("c", "s", 0), "between 1 and 100"),
        (("c", "s", 101), "between 1 and 100"),
        (("c", "s", True), "whole number of days"),
        (("c", "s", "14"), "whole number of days"),
        (("c", None, 14), "send_id is required"),
        (("", "s", 14), "campaign_id is empty"),
        (("c", "s", 14, "yesterday"), "ending_at 'yesterday' is not an ISO-8601"),
        (("c", "s", 14, datetime(2026, 11, 30)), "has no time zone"),
    ],
)
def test_get_send_data_series_validation(
    hook: BrazeHook, requests_mock: rm.Mocker, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        hook.get_send_data_series(*args)
    assert requests_mock.call_count == 0


def test_get_send_data_series_names_its_permission(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, status_code=403, json={"message": "Access Denied"})
    with pytest.raises(BrazeAuthError, match=r"needs the 'sends\.data_series' permission") as err:
        hook.get_send_data_series("c", "s", 14)
    assert err.value.required_permission == "sends.data_series"


def test_get_send_data_series_is_retried_after_a_timeout(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    import requests

    requests_mock.get(SERIES_URL, [{"exc": requests.exceptions.ReadTimeout}, {"json": ANSWER}])
    assert hook.get_send_data_series("c", "s", 14) == ANSWER  # a read is safe to repeat
