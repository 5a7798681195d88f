"""GetSendAnalyticsOperator and SendAnalyticsSensor (requests-mock), and the sandbox's series."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
import requests_mock as rm

from airflow_provider_braze.exceptions import BrazeAnalyticsUnavailableError, BrazeError, BrazeValidationError
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.operators.analytics import GetSendAnalyticsOperator
from airflow_provider_braze.sandbox import BrazeSandbox, SandboxState
from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor
from tests.conftest import REST_ENDPOINT, VALID_OBJECTS, braze_connection, messages_for, sandbox_call
from tests.unit.test_analytics import ANSWER

SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"


def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


def days_ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def series(sent: int, day: str | None = None) -> dict[str, Any]:
    day = day or datetime.now(timezone.utc).date().isoformat()
    return {
        "message": "success",
        "data": [
            {"time": day, "messages": {"email": [{"variation_name": "A", "sent": sent, "delivered": sent}]}}
        ],
    }


# ---------------------------------------------------------------------------- operator


def test_operator_returns_rows_and_pushes_totals(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    ctx = context()
    rows = GetSendAnalyticsOperator(task_id="a", campaign_id="c", send_id="s", length=30).execute(ctx)
    assert isinstance(rows, list)
    assert len(rows) == 5
    assert requests_mock.last_request.qs["length"] == ["30"]
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in ctx["ti"].xcom_push.call_args_list}
    assert pushed["row_count"] == 5
    assert pushed["channel_totals"]["email"]["sent"] == 990


def test_operator_writes_csv_and_returns_the_path(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    target = tmp_path / "out" / "stats.csv"
    result = GetSendAnalyticsOperator(
        task_id="a", campaign_id="c", send_id="s", output_path=str(target)
    ).execute(context())
    assert result == str(target)
    rows = list(csv.DictReader(target.open()))
    assert [r["channel"] for r in rows] == ["email", "email", "ios_push", "email", ""]


def test_operator_writes_jsonl_to_an_object_storage_url(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    url = f"file://{tmp_path}/stats.jsonl"
    result = GetSendAnalyticsOperator(task_id="a", campaign_id="c", send_id="s", output_path=url).execute(
        context()
    )
    assert str(result).endswith("stats.jsonl")
    lines = (tmp_path / "stats.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["variation_name"] == "Variant A"


def test_operator_keeps_xcom_small(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    with pytest.raises(
        BrazeError, match=r"5 rows are too many for XCom \(max_xcom_rows=3\); set output_path"
    ):
        GetSendAnalyticsOperator(task_id="a", campaign_id="c", send_id="s", max_xcom_rows=3).execute(
            context()
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "between 1 and 100"),
        ({"send_id": None}, "send_id is required"),
        ({"ending_at": "soon"}, "ending_at 'soon' is not an ISO-8601"),
        ({"output_path": "/tmp/stats.parquet"}, "Cannot tell the format"),
    ],
)
def test_operator_checks_arguments_first(
    braze_conn: str, requests_mock: rm.Mocker, kwargs: dict[str, Any], message: str
) -> None:
    arguments = {"campaign_id": "c", "send_id": "s", **kwargs}
    with pytest.raises(BrazeValidationError, match=message):
        GetSendAnalyticsOperator(task_id="a", **arguments).execute(context())
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------------------- sensor: conditions


def sensor(**kwargs: Any) -> SendAnalyticsSensor:
    return SendAnalyticsSensor(
        task_id="wait", campaign_id="c", send_id="s", poke_interval=5, timeout=60, **kwargs
    )


def test_waits_for_data(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, [{"json": {"message": "success", "data": []}}, {"json": series(10)}])
    assert sensor().poke(context()).is_done is False
    result = sensor().poke(context())
    assert result.is_done is True
    assert result.xcom_value == {
        "sent": 10,
        "days": 1,
        "channel_totals": {
            "email": {
                "sent": 10,
                "delivered": 10,
                "opens": None,  # Braze did not report them: unknown, not zero
                "unique_opens": None,
                "clicks": None,
                "unique_clicks": None,
                "unsubscribes": None,
                "bounces": None,
                "reported_spam": None,
                "unique_recipients": None,
                "conversions": None,
                "revenue": None,
                "days": 1,
            }
        },
    }


def test_days_without_message_statistics_do_not_count(braze_conn: str, requests_mock: rm.Mocker) -> None:
    today = datetime.now(timezone.utc).date().isoformat()
    requests_mock.get(SERIES_URL, json={"data": [{"time": today, "messages": {}, "unique_recipients": 0}]})
    assert sensor().poke(context()).is_done is False


def test_min_sent(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, [{"json": series(10)}, {"json": series(100)}])
    assert sensor(min_sent=50).poke(context()).is_done is False
    assert sensor(min_sent="50").poke(context()).is_done is True  # as a rendered template gives it
    with pytest.raises(BrazeValidationError, match="min_sent must be a whole number"):
        sensor(min_sent="fifty").poke(context())


def test_min_age_from_sent_at(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=series(10))
    assert sensor(min_age=timedelta(hours=24), sent_at=days_ago(0.5)).poke(context()).is_done is False
    assert sensor(min_age=timedelta(hours=24), sent_at=days_ago(1.5)).poke(context()).is_done is True
    assert sensor(min_age=3600, sent_at=days_ago(0.5)).poke(context()).is_done is True  # seconds work too
    assert sensor(min_age="90000", sent_at=days_ago(0.5)).poke(context()).is_done is False
    with pytest.raises(BrazeValidationError, match="min_age must be a timedelta or seconds"):
        sensor(min_age="a day").poke(context())
    for endless in ("nan", "inf", "-inf", "1e300"):
        with pytest.raises(BrazeValidationError, match="min_age must be a finite number of seconds"):
            sensor(min_age=endless).poke(context())


def test_old_send_warns(
    braze_conn: str, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.get(SERIES_URL, json=series(10))
    assert sensor(sent_at=days_ago(15)).poke(context()).is_done is True
    assert "Braze keeps send analytics for 14 days, so fetch them now" in capsys.readouterr().out


def test_expired_send_fails_clearly(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json={"message": "success", "data": []})
    with pytest.raises(
        BrazeAnalyticsUnavailableError, match="is 20 days old and Braze keeps send analytics for 14 days"
    ):
        sensor(sent_at=days_ago(20.2)).poke(context())


def zero_filled(days: int, sent_today: int) -> dict[str, Any]:
    """A series over the whole window, as Braze may answer (its docs do not say): every day has
    the send's variation, all zeros until today's send."""
    today = datetime.now(timezone.utc).date()
    data = []
    for back in range(days - 1, -1, -1):
        sent = sent_today if back == 0 else 0
        stats = {"variation_name": "A", "sent": sent, "delivered": sent, "unique_opens": 0, "revenue": 0.0}
        data.append({"time": (today - timedelta(days=back)).isoformat(), "messages": {"email": [stats]}})
    return {"message": "success", "data": data}


def test_sensor_does_not_take_the_series_start_for_the_send_day(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    """A series that starts 13 days before today's send, with zeros: the send is hours old, not
    13 days, so ``min_age`` is not met and there is one day of activity."""
    requests_mock.get(SERIES_URL, json=zero_filled(14, sent_today=25))
    result = sensor(min_age=timedelta(days=1)).poke(context())
    assert result.is_done is False
    assert (result.xcom_value["sent"], result.xcom_value["days"]) == (25, 1)


NOW = datetime(2026, 11, 26, 20, 0, tzinfo=timezone.utc)


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    from airflow_provider_braze import analytics_check

    monkeypatch.setattr(analytics_check, "_utcnow", lambda: NOW)
    return NOW


@pytest.mark.parametrize(
    ("day", "one_day_met", "two_days_met"),
    [
        ("2026-11-26", False, False),
        ("2026-11-25", False, False),
        ("2026-11-24", True, False),
        ("2026-11-23", True, True),
    ],
)
def test_without_sent_at_min_age_counts_from_the_latest_the_first_day_can_end(
    braze_conn: str,
    requests_mock: rm.Mocker,
    frozen_now: datetime,
    day: str,
    one_day_met: bool,
    two_days_met: bool,
) -> None:
    """Braze reports days, not times, in a zone it does not name: a send reported on the 25th
    may have happened at 11:59 UTC on the 26th (a UTC-12 day), so at 20:00 on the 26th it is not
    yet known to be a day old; one reported on the 24th is (its day ended by the 25th, 12:00)."""
    requests_mock.get(SERIES_URL, json=series(5, day))
    assert sensor(min_age=timedelta(days=1)).poke(context()).is_done is one_day_met
    assert sensor(min_age=timedelta(days=2)).poke(context()).is_done is two_days_met


def test_a_send_reported_yesterday_in_a_western_zone_is_not_met_early(
    braze_conn: str, requests_mock: rm.Mocker, frozen_now: datetime
) -> None:
    """Zeros around the send day; a workspace whose days are Los Angeles days may report a send
    made at 03:00 UTC on the 26th as the 25th: 17 hours old at 20:00, so 19 hours is not met."""
    answer = {
        "message": "success",
        "data": [
            {"time": day, "messages": {"email": [{"variation_name": "A", "sent": sent, "delivered": sent}]}}
            for day, sent in (("2026-11-24", 0), ("2026-11-25", 100), ("2026-11-26", 0))
        ],
    }
    requests_mock.get(SERIES_URL, json=answer)
    result = sensor(min_age=timedelta(hours=19)).poke(context())
    assert result.is_done is False
    assert (result.xcom_value["sent"], result.xcom_value["days"]) == (100, 1)
    assert sensor(min_age=timedelta(hours=7)).poke(context()).is_done is True  # 8 hours at least


def test_a_zero_age_is_reported_as_zero(
    braze_conn: str, requests_mock: rm.Mocker, frozen_now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.get(SERIES_URL, json=series(5, "2026-11-26"))
    assert sensor(min_age=60, sent_at=NOW.isoformat()).poke(context()).is_done is False
    assert "(now 0:00:00)" in capsys.readouterr().out


def test_sensor_waits_through_a_window_of_zeros(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        SERIES_URL, [{"json": zero_filled(14, sent_today=0)}, {"json": zero_filled(14, sent_today=3)}]
    )
    first = sensor().poke(context())
    assert (first.is_done, first.xcom_value["days"]) == (False, 0)  # zeros are not analytics yet
    assert sensor().poke(context()).is_done is True


def test_a_window_of_zeros_is_no_data_for_an_expired_send(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=zero_filled(14, sent_today=0))
    with pytest.raises(BrazeAnalyticsUnavailableError, match="is 20 days old"):
        sensor(sent_at=days_ago(20.2)).poke(context())


@pytest.mark.parametrize("series_behaviour", ["window", "send_days"])
def test_sensor_against_the_sandbox_under_each_series_shape(
    braze_sandbox: BrazeSandbox, series_behaviour: str
) -> None:
    braze_sandbox.state.set_behaviours(analytics_series=series_behaviour)
    send_to(braze_sandbox, "shape", 12, ("email", "sms"))
    waiting = SendAnalyticsSensor(
        task_id="w",
        campaign_id="sandbox-api-campaign",
        send_id="shape",
        min_age=timedelta(hours=1),
        timeout=60,
    ).poke(context())
    assert waiting.is_done is False  # sent moments ago, whatever day the series starts on
    done = SendAnalyticsSensor(
        task_id="w", campaign_id="sandbox-api-campaign", send_id="shape", min_sent=24, timeout=60
    ).poke(context())
    assert done.is_done is True
    assert (done.xcom_value["sent"], done.xcom_value["days"]) == (24, 1)
    assert set(done.xcom_value["channel_totals"]) == {"email", "sms"}
    assert done.xcom_value["channel_totals"]["sms"]["sent_to_carrier"] <= 12


# ---------------------------------------------------------------------------- sensor: deferral


def test_deferrable_checks_first_then_defers_to_a_trigger_that_checks(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

    requests_mock.get(SERIES_URL, json={"message": "success", "data": []})
    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True, min_sent="10", min_age=3600, sent_at="2026-11-26T10:00:00Z").execute(
            context()
        )
    trigger = deferred.value.trigger
    assert isinstance(trigger, SendAnalyticsTrigger)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_braze.triggers.send_analytics.SendAnalyticsTrigger"
    assert kwargs["min_sent"] == 10
    assert kwargs["min_age_seconds"] == 3600
    assert kwargs["sent_at"] == "2026-11-26T10:00:00+00:00"
    assert kwargs["poke_interval"] == 5
    end_at = datetime.fromisoformat(kwargs["end_at"]) - datetime.now(timezone.utc)
    assert timedelta(seconds=55) < end_at <= timedelta(seconds=60)  # the sensor's timeout
    assert requests_mock.call_count == 1  # one check on the worker, then the trigger checks
    assert SendAnalyticsTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_deferrable_returns_at_once_when_already_met(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=series(7))
    assert sensor(deferrable=True).execute(context())["sent"] == 7


def test_what_the_trigger_says_decides_the_task(braze_conn: str) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

    done = {"status": "done", "summary": {"sent": 7, "days": 1, "channel_totals": {}}}
    assert sensor(deferrable=True).execute_complete(context(), event=done) == done["summary"]
    with pytest.raises(AirflowSensorTimeout, match="did not meet the condition in 60 s"):
        sensor(deferrable=True).execute_complete(context(), event={"status": "timeout"})
    with pytest.raises(AirflowSkipException):
        sensor(deferrable=True, soft_fail=True).execute_complete(context(), event={"status": "timeout"})
    with pytest.raises(BrazeAnalyticsUnavailableError, match="keeps send analytics"):
        sensor(deferrable=True).execute_complete(
            context(), event={"status": "unavailable", "message": "Braze keeps send analytics for 14 days"}
        )
    with pytest.raises(BrazeError, match="failed in the triggerer: BrazeAuthError: 401"):
        sensor(deferrable=True).execute_complete(
            context(), event={"status": "error", "message": "BrazeAuthError: 401"}
        )


def test_a_wake_up_without_an_event_is_an_error_not_a_guess(braze_conn: str) -> None:
    """Only SendAnalyticsTrigger defers this sensor, and it always sends an event."""
    with pytest.raises(BrazeError, match="without its event"):
        sensor(deferrable=True).execute_complete(context(), event=None)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([{"json": {"message": "success", "data": []}}, {"json": series(12)}], "done"),
        ([{"json": {"message": "success", "data": []}}], "timeout"),
        ([{"status_code": 401, "json": {"message": "Invalid API key"}}], "error"),
        # Braze down for a while: the trigger keeps checking, as reschedule mode would.
        (
            [
                {"status_code": 503, "text": "down"},
                {"status_code": 503, "text": "down"},
                {"json": series(12)},
            ],
            "done",
        ),
    ],
)
def test_the_trigger_checks_braze_until_the_condition_is_met(
    braze_conn: str,
    httpx_via_requests_mock: rm.Mocker,
    requests_mock: rm.Mocker,
    answers: list[dict[str, Any]],
    expected: str,
) -> None:
    import asyncio

    from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

    requests_mock.get(SERIES_URL, answers)
    end_at = datetime.now(timezone.utc) + timedelta(seconds=0.3 if expected == "timeout" else 30)
    trigger = SendAnalyticsTrigger(
        campaign_id="c",
        send_id="s",
        length=14,
        min_sent=10,
        min_age_seconds=None,
        sent_at=None,
        poke_interval=0.01,
        end_at=end_at.isoformat(),
        braze_conn_id="braze_default",
    )

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    assert event["status"] == expected
    if expected == "done":
        assert event["summary"]["sent"] == 12
        assert requests_mock.call_count >= 2
    if expected == "error":
        assert "401" in event["message"]
        assert "canary" not in event["message"]  # no key in what the trigger reports


def test_template_fields() -> None:
    assert set(SendAnalyticsSensor.template_fields) == {
        "campaign_id",
        "send_id",
        "sent_at",
        "min_sent",
        "min_age",
        "broadcast",
        "no_data_grace",
    }
    assert set(GetSendAnalyticsOperator.template_fields) == {
        "campaign_id",
        "send_id",
        "ending_at",
        "output_path",
    }


# ---------------------------------------------------------------------------- the sandbox's series


def sandbox_get(sandbox: BrazeSandbox, **params: Any) -> requests.Response:
    return sandbox_call(sandbox, "/sends/data_series", method="GET", params=params)


def send_to(sandbox: BrazeSandbox, send_id: str, count: int, channels: tuple[str, ...] = ("email",)) -> None:
    hook = BrazeHook()
    hook.create_send_id("sandbox-api-campaign", send_id)
    hook.send_messages(
        "sandbox-api-campaign",
        send_id=send_id,
        external_user_ids=[f"u{i}" for i in range(count)],
        messages=messages_for(*channels),
    )


def sent_days(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a series on which something was sent."""
    return [day for day in answer["data"] if any(v["sent"] for vs in day["messages"].values() for v in vs)]


def test_sandbox_series_follows_the_ledger(braze_sandbox: BrazeSandbox) -> None:
    send_to(braze_sandbox, "s1", 40, ("email", "apple_push"))
    answer = sandbox_get(braze_sandbox, campaign_id="sandbox-api-campaign", send_id="s1", length=14).json()
    assert len(answer["data"]) == 14  # the default: the whole window, zeros before the send
    (day,) = sent_days(answer)
    assert day == answer["data"][-1]  # today's
    assert set(day["messages"]) == {"email", "ios_push"}
    email = day["messages"]["email"][0]
    assert (email["sent"], email["unique_recipients"]) == (40, 40)
    assert email["delivered"] + email["bounces"] == 40
    assert email["unique_opens"] <= email["opens"]
    assert email["unique_clicks"] <= email["unique_opens"]
    assert "direct_opens" not in email  # an email is opened, not directly opened
    push = day["messages"]["ios_push"][0]
    assert push["delivered"] + push["undelivered"] == 40
    assert push["direct_opens"] <= push["total_opens"]
    assert day["unique_recipients"] == 40
    rows = GetSendAnalyticsOperator(task_id="a", campaign_id="sandbox-api-campaign", send_id="s1").execute(
        context()
    )
    assert isinstance(rows, list)
    assert [r["channel"] for r in rows if r["sent"]] == ["email", "ios_push"]


def test_sandbox_series_is_deterministic() -> None:
    answers = []
    for _ in range(2):
        with BrazeSandbox(state=SandboxState("k-0123456789", seed=42)) as sandbox:
            with mock.patch.dict("os.environ", {"AIRFLOW_CONN_BRAZE_DEFAULT": sandbox.connection_json()}):
                send_to(sandbox, "same", 25)
            answers.append(
                sandbox_get(sandbox, campaign_id="sandbox-api-campaign", send_id="same", length=1).json()
            )
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("series_behaviour", "lengths"), [("send_days", (1, 4, 0)), ("window", (15, 15, 15))]
)
def test_sandbox_series_keeps_14_days(series_behaviour: str, lengths: tuple[int, int, int]) -> None:
    clock = mock.Mock(return_value=1_790_000_000.0)  # 2026-09-21
    state = SandboxState("k-0123456789", clock=clock, behaviours={"analytics_series": series_behaviour})
    with BrazeSandbox(state=state) as sandbox:
        with mock.patch.dict("os.environ", {"AIRFLOW_CONN_BRAZE_DEFAULT": sandbox.connection_json()}):
            send_to(sandbox, "old", 5)
        seen = []
        for days_later in (0, 3, 15):
            clock.return_value = 1_790_000_000.0 + days_later * 86_400
            answer = sandbox_get(sandbox, campaign_id="sandbox-api-campaign", send_id="old", length=30).json()
            seen.append((len(answer["data"]), len(sent_days(answer))))
    assert seen == [(lengths[0], 1), (lengths[1], 1), (lengths[2], 0)]  # gone after 14 days


def test_sandbox_reports_each_channel_in_its_documented_shape(braze_sandbox: BrazeSandbox) -> None:
    from airflow_provider_braze.analytics import CHANNEL_METRICS

    send_to(braze_sandbox, "every-channel", 30, tuple(VALID_OBJECTS))
    (day,) = sent_days(
        sandbox_get(
            braze_sandbox, campaign_id="sandbox-api-campaign", send_id="every-channel", length=1
        ).json()
    )
    outcomes = {"revenue", "unique_recipients", "conversions", "conversions_by_send_time"}
    assert len(day["messages"]) == len(VALID_OBJECTS)
    for channel, (stats,) in day["messages"].items():
        assert set(stats) == {"variation_name", *CHANNEL_METRICS[channel], *outcomes}, channel
        assert stats["sent"] == 30
        counts = [value for name, value in stats.items() if name not in ("variation_name", "revenue")]
        assert all(isinstance(value, int) and 0 <= value <= 30 for value in counts), (channel, stats)
    assert (
        day["messages"]["ios_push"][0]["variation_name"],
        day["messages"]["email"][0]["variation_name"],
    ) != (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [("variation_name", ["Variant 1", "Variant 2"]), ("variation_api_id", ["spring-a", "spring-b"])],
)
def test_sandbox_reports_per_variation(braze_sandbox: BrazeSandbox, key: str, expected: list[str]) -> None:
    braze_sandbox.state.set_behaviours(analytics_variation_key=key)
    braze_sandbox.state.add_campaign("spring", variations={"spring-a": "email", "spring-b": "email"})
    hook = BrazeHook()
    hook.create_send_id("spring", "ab")
    for variation, users in (("spring-a", 7), ("spring-b", 5)):
        message = {"email": {**VALID_OBJECTS["email"], "message_variation_id": variation}}
        hook.send_messages(
            "spring",
            send_id="ab",
            external_user_ids=[f"{variation}-{n}" for n in range(users)],
            messages=message,
        )
    (day,) = sent_days(sandbox_get(braze_sandbox, campaign_id="spring", send_id="ab", length=1).json())
    email = day["messages"]["email"]
    assert [(v[key], v["sent"]) for v in email] == list(zip(expected, [7, 5], strict=True))
    other = {"variation_name", "variation_api_id"} - {key}
    assert not any(name in v for v in email for name in other)
    rows = GetSendAnalyticsOperator(task_id="a", campaign_id="spring", send_id="ab", length=1).execute(
        context()
    )
    assert isinstance(rows, list)
    assert [(r[key], r["sent"]) for r in rows] == list(zip(expected, [7, 5], strict=True))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"send_id": "s", "length": 14}, "Bad Request: campaign_id is required"),
        ({"campaign_id": "sandbox-api-campaign", "length": 14}, "Bad Request: send_id is required"),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": "s", "length": 0},
            "Bad Request: length must be an integer between 1 and 100",
        ),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": "s", "length": 101},
            "Bad Request: length must be an integer between 1 and 100",
        ),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": "s", "length": 5, "ending_at": "x"},
            "Bad Request: ending_at must be an ISO-8601 date and time",
        ),
        ({"campaign_id": "nope", "send_id": "s", "length": 5}, "Invalid Campaign ID"),
        ({"campaign_id": "sandbox-api-campaign", "send_id": "never", "length": 5}, "Invalid send_id"),
    ],
)
def test_sandbox_series_validation(braze_sandbox: BrazeSandbox, params: dict[str, Any], message: str) -> None:
    """Braze's wording in ``message`` (the errors page's names), any detail in ``errors``."""
    response = sandbox_get(braze_sandbox, **params)
    assert response.status_code == 400
    name, _, detail = message.partition(": ")
    assert response.json()["message"] == name
    if detail:
        assert detail in response.json()["errors"]


def test_sandbox_series_needs_its_permission(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.state.add_key("no-analytics-key", permissions=["messages.send"])
    response = requests.get(
        braze_sandbox.url + "/sends/data_series",
        params={"campaign_id": "sandbox-api-campaign", "send_id": "s", "length": 1},
        headers={"Authorization": "Bearer no-analytics-key"},
        timeout=10,
    )
    assert response.status_code == 403


@pytest.mark.parametrize(("setting", "expected"), [(None, False), ("True", True), ("False", False)])
def test_deferrable_follows_airflows_default_deferrable(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: bool
) -> None:
    if setting is None:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    assert sensor().deferrable is expected
    assert sensor(deferrable=not expected).deferrable is (not expected)  # an explicit value wins


def test_a_trigger_timing_out_while_braze_is_down_says_why(
    braze_conn: str, httpx_via_requests_mock: rm.Mocker, requests_mock: rm.Mocker
) -> None:
    import asyncio

    from airflow.sdk.exceptions import AirflowSensorTimeout

    from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

    monkey = {"max_retries": 0}
    requests_mock.get(SERIES_URL, status_code=503, text="down")
    trigger = SendAnalyticsTrigger(
        campaign_id="c",
        send_id="s",
        length=14,
        min_sent=10,
        min_age_seconds=None,
        sent_at=None,
        poke_interval=0.01,
        end_at=(datetime.now(timezone.utc) + timedelta(seconds=0.3)).isoformat(),
        braze_conn_id="braze_default",
    )

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_BRAZE_DEFAULT": braze_connection(extra=monkey)}):
        event = asyncio.run(first_event())
    assert event["status"] == "timeout"
    assert event["message"].startswith("BrazeServerError: Braze answered 503")
    with pytest.raises(
        AirflowSensorTimeout, match="The last check failed: BrazeServerError: Braze answered 503"
    ):
        sensor(deferrable=True).execute_complete(context(), event=event)
