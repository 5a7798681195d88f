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
    CHANNEL_METRICS,
    ROW_FIELDS,
    activity_days,
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


def push(name: str, sent: int, **extra: Any) -> dict[str, Any]:
    """A push variation, shaped as /sends/data_series documents its ``ios_push`` example."""
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


def email(name: str, sent: int, **extra: Any) -> dict[str, Any]:
    """An email variation, with the statistics /campaigns/data_series documents for email."""
    stats = {
        "variation_name": name,
        "sent": sent,
        "opens": sent // 2,
        "unique_opens": sent // 4,
        "clicks": sent // 10,
        "unique_clicks": sent // 20,
        "unsubscribes": 1,
        "bounces": 1,
        "delivered": sent - 1,
        "reported_spam": 0,
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
                "ios_push": [push("iOS push", 100)],
                "email": [
                    email("Variant A", 500, conversions1=3, conversions1_by_send_time=2),
                    email("Variant B", 480, variation_api_id="var-b", amp_opens=7),
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
            "messages": {"email": [email("Variant A", 10)]},
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
    assert (first["opens"], first["unique_opens"], first["clicks"], first["unique_clicks"]) == (
        250,
        125,
        50,
        25,
    )
    assert first["direct_opens"] is None  # an email has opens, not direct opens
    assert (first["conversions1"], first["conversions1_by_send_time"]) == (3, 2)
    assert (first["day_conversions"], first["day_unique_recipients"], first["day_revenue"]) == (
        6,
        1_080,
        37.5,
    )
    assert rows[1]["variation_api_id"] == "var-b"
    assert rows[1]["amp_opens"] == 7  # a field Braze added since: kept, not dropped
    assert rows[1]["conversions1"] is None  # optional and absent
    assert (rows[2]["direct_opens"], rows[2]["body_clicks"], rows[2]["opens"]) == (25, 10, None)
    assert rows[3]["day_revenue"] is None  # the day had no revenue field
    assert rows[4]["sent"] is None
    assert rows[4]["day_unique_recipients"] == 0


def test_totals_by_channel_use_each_channels_own_statistics() -> None:
    totals = totals_by_channel(send_analytics_rows(ANSWER, campaign_id="c", send_id="s"))
    assert set(totals) == {"email", "ios_push"}
    assert totals["email"] == {
        "sent": 990,
        "delivered": 987,
        "opens": 495,
        "unique_opens": 247,
        "clicks": 99,
        "unique_clicks": 49,
        "unsubscribes": 3,
        "bounces": 3,
        "reported_spam": 0,
        "unique_recipients": 990,
        "conversions": 6,
        "revenue": 37.5,
        "days": 2,
    }
    assert list(totals["ios_push"]) == [
        *CHANNEL_METRICS["ios_push"],
        "unique_recipients",
        "conversions",
        "revenue",
        "days",
    ]
    assert (totals["ios_push"]["direct_opens"], totals["ios_push"]["delivered"]) == (25, 99)
    assert describe_totals(totals) == [
        # Two days: unique counts are per day, so no unique open rate (it could pass 100%).
        "email: 990 sent, 987 delivered, 247 unique opens, 49 unique clicks, 3 unsubscribes, 3 bounces, "
        "0 spam reports, 6 conversions, revenue 37.50 USD (over 2 days; unique counts are per day, summed)",
        "ios_push: 100 sent, 25 direct opens, 33 total opens, 10 body clicks, 1 bounce, "
        "direct open rate 25.0%, 2 conversions, revenue 12.50 USD",
    ]
    assert describe_totals({}) == ["no message statistics yet"]


#: Braze's /campaigns/data_series example for email, exactly as documented (values filled in).
DOCUMENTED_EMAIL = {
    "variation_api_id": "email-variation-1",
    "sent": 1_000,
    "opens": 400,
    "unique_opens": 300,
    "clicks": 60,
    "unique_clicks": 50,
    "unsubscribes": 4,
    "bounces": 10,
    "delivered": 990,
    "reported_spam": 1,
}


def test_a_documentation_shaped_email_answer_reads_as_email() -> None:
    """The issue's case: an email answer as Braze documents it must not read "0 direct opens"."""
    answer = {
        "message": "success",
        "data": [{"time": "2026-11-21", "messages": {"email": [DOCUMENTED_EMAIL]}}],
    }
    rows = send_analytics_rows(answer, campaign_id="c", send_id="s")
    (row,) = rows
    assert (row["variation_api_id"], row["variation_name"]) == ("email-variation-1", None)
    totals = totals_by_channel(rows)
    (line,) = describe_totals(totals)
    assert line == (
        "email: 1000 sent, 990 delivered, 300 unique opens, 50 unique clicks, 4 unsubscribes, 10 bounces, "
        "1 spam report, unique open rate 30.3%, n/a conversions, revenue n/a"
    )
    assert "direct" not in line
    assert totals["email"]["conversions"] is None  # not reported is not zero


#: One variation per channel Braze documents, with that channel's statistics as documented.
DOCUMENTED_CHANNELS: dict[str, dict[str, int]] = {
    "android_push": {"sent": 100, "direct_opens": 9, "total_opens": 12, "bounces": 2, "body_clicks": 5},
    "sms": {
        "sent": 200,
        "sent_to_carrier": 198,
        "delivered": 190,
        "rejected": 2,
        "delivery_failed": 8,
        "clicks": 20,
        "opt_out": 3,
        "help": 1,
    },
    "whats_app": {"sent": 50, "delivered": 48, "failed": 2, "read": 30},
    "content_cards": {
        "sent": 80,
        "total_clicks": 12,
        "total_dismissals": 6,
        "total_impressions": 90,
        "unique_clicks": 10,
        "unique_dismissals": 5,
        "unique_impressions": 40,
    },
    "webhook": {"sent": 30, "errors": 1},
    "trigger_in_app_message": {
        "impressions": 70,
        "clicks": 7,
        "first_button_clicks": 3,
        "second_button_clicks": 1,
    },
}
EXPECTED_LINES = {
    "android_push": "android_push: 100 sent, 9 direct opens, 12 total opens, 5 body clicks, 2 bounces, "
    "direct open rate 9.0%",
    "sms": "sms: 200 sent, 190 delivered, 8 failed, 2 rejected, 20 clicks, 3 opt-outs, delivery rate 95.0%",
    "whats_app": "whats_app: 50 sent, 48 delivered, 30 read, 2 failed, read rate 62.5%",
    "content_cards": "content_cards: 80 sent, 40 unique impressions, 10 unique clicks, 5 unique dismissals, "
    "unique click rate 25.0%",
    "webhook": "webhook: 30 sent, 1 error",
    "trigger_in_app_message": "trigger_in_app_message: 70 impressions, 7 clicks, 3 first button clicks, "
    "1 second button click, click rate 10.0%",
}


@pytest.mark.parametrize("channel", sorted(DOCUMENTED_CHANNELS))
def test_every_documented_channel_is_totalled_in_its_own_terms(channel: str) -> None:
    stats = DOCUMENTED_CHANNELS[channel]
    answer = {
        "message": "success",
        "data": [
            {"time": "2026-11-21", "messages": {channel: [{"variation_name": "V", **stats, "revenue": 1.25}]}}
        ],
    }
    rows = send_analytics_rows(answer, campaign_id="c", send_id="s")
    assert {name: rows[0][name] for name in stats} == stats
    totals = totals_by_channel(rows)[channel]
    assert list(totals) == [*CHANNEL_METRICS[channel], "unique_recipients", "conversions", "revenue", "days"]
    for name in CHANNEL_METRICS[channel]:
        assert totals[name] == stats.get(name)  # None where not documented for this answer
    assert describe_totals({channel: totals}) == [
        f"{EXPECTED_LINES[channel]}, n/a conversions, revenue 1.25 USD"
    ]


def test_a_channel_braze_added_since_is_totalled_over_its_numeric_fields() -> None:
    answer = {
        "message": "success",
        "data": [
            {
                "time": "2026-11-21",
                "messages": {"line": [{"variation_name": "V", "sent": 5, "reads": 2, "note": "x"}]},
            },
            {"time": "2026-11-22", "messages": {"line": [{"variation_name": "V", "sent": 1, "reads": 1}]}},
        ],
    }
    totals = totals_by_channel(send_analytics_rows(answer, campaign_id="c", send_id="s"))
    assert totals == {
        "line": {
            "unique_recipients": None,
            "conversions": None,
            "revenue": None,
            "sent": 6,
            "reads": 3,
            "days": 2,
        }
    }
    assert describe_totals(totals) == ["line: 6 sent, 3 reads, n/a conversions, revenue n/a"]


def test_unique_rates_are_not_made_of_uniques_summed_over_days() -> None:
    """Braze counts uniques per day: 80, 70 and 60 unique opens of 100 delivered over three days
    are not a 210% unique open rate."""
    answer = {
        "message": "success",
        "data": [
            {
                "time": day,
                "messages": {
                    "email": [{**DOCUMENTED_EMAIL, "sent": sent, "delivered": sent, "unique_opens": uo}]
                },
            }
            for day, sent, uo in (("2026-11-21", 100, 80), ("2026-11-22", 0, 70), ("2026-11-23", 0, 60))
        ],
    }
    totals = totals_by_channel(send_analytics_rows(answer, campaign_id="c", send_id="s"))
    assert (totals["email"]["unique_opens"], totals["email"]["days"]) == (210, 3)
    (line,) = describe_totals(totals)
    assert "rate" not in line
    assert "%" not in line
    assert line.endswith("(over 3 days; unique counts are per day, summed)")
    # A single day's uniques are unique: the rate is shown.
    one_day = {"message": "success", "data": answer["data"][:1]}
    (line,) = describe_totals(totals_by_channel(send_analytics_rows(one_day, campaign_id="c", send_id="s")))
    assert "unique open rate 80.0%" in line


def test_totals_keep_revenue_in_cents() -> None:
    answer = {
        "message": "success",
        "data": [
            {
                "time": f"2026-11-2{n}",
                "messages": {"email": [{"variation_name": "A", "sent": 1, "revenue": 0.1}]},
            }
            for n in range(3)
        ],
    }
    assert (
        totals_by_channel(send_analytics_rows(answer, campaign_id="c", send_id="s"))["email"]["revenue"]
        == 0.3
    )


def test_activity_days_ignore_days_with_nothing_but_zeros() -> None:
    """Whether the series starts on the day of the send is undocumented: zero-filled days are
    not activity, whatever the channel's statistics are called."""
    zero_push = push("P", 0, delivered=0, undelivered=0, total_opens=0, bounces=0, revenue=0, conversions=0)
    zero_push["conversions_by_send_time"] = 0
    answer = {
        "message": "success",
        "data": [
            {"time": "2026-11-20", "messages": {"ios_push": [zero_push]}},
            {"time": "2026-11-21", "messages": {}},
            {"time": "2026-11-22", "messages": {"ios_push": [push("P", 3)]}},
            {
                "time": "2026-11-23",
                "messages": {"content_cards": [{"variation_name": "C", "sent": 0, "unique_clicks": 2}]},
            },
        ],
    }
    assert activity_days(send_analytics_rows(answer, campaign_id="c", send_id="s")) == [
        "2026-11-22",
        "2026-11-23",
    ]


@pytest.mark.parametrize("name", [12, ["A"], {"a": 1}])
def test_a_variation_name_that_is_not_text_is_an_error(name: Any) -> None:
    answer = {"data": [{"time": "2026-11-21", "messages": {"email": [{"variation_name": name, "sent": 1}]}}]}
    with pytest.raises(BrazeUnexpectedResponseError, match=r"variation_name is .*, not text"):
        send_analytics_rows(answer, campaign_id="c", send_id="s")


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
    assert hook.get_send_analytics("c-1", "s-1", 14) == ANSWER
    assert requests_mock.last_request.qs == {"campaign_id": ["c-1"], "send_id": ["s-1"], "length": ["14"]}
    hook.get_send_analytics("c-1", "s-1", 7, ending_at=datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc))
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
        hook.get_send_analytics(*args)
    assert requests_mock.call_count == 0


def test_get_send_data_series_names_its_permission(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, status_code=403, json={"message": "Access Denied"})
    with pytest.raises(BrazeAuthError, match=r"lacks the 'sends\.data_series' permission") as err:
        hook.get_send_analytics("c", "s", 14)
    assert err.value.required_permission == "sends.data_series"


def test_get_send_data_series_is_retried_after_a_timeout(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    import requests

    requests_mock.get(SERIES_URL, [{"exc": requests.exceptions.ReadTimeout}, {"json": ANSWER}])
    assert hook.get_send_analytics("c", "s", 14) == ANSWER  # a read is safe to repeat
