"""SendAnalyticsSensor when Braze may track send analytics only for broadcasts (issue 17): a
send to listed users that still has no analytics long after it was sent fails with the reason,
instead of waiting out the timeout; a broadcast, or a send with analytics, never does."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze import analytics_check
from airflow_provider_braze.exceptions import (
    BrazeAnalyticsUnavailableError,
    BrazeAnalyticsUntrackedError,
    BrazeValidationError,
)
from airflow_provider_braze.sandbox import BrazeSandbox, email_message
from airflow_provider_braze.sensors.send_analytics import MAYBE_UNTRACKED, SendAnalyticsSensor
from tests.conftest import REST_ENDPOINT, sandbox_call

SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
EMPTY = {"message": "success", "data": []}
UNTRACKED = (
    "Braze has no analytics for send 's' of campaign 'c', sent to a list of users 2:00:00 ago (past "
    f"min_age 0:00:00 plus no_data_grace 1:00:00). {MAYBE_UNTRACKED}"
)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analytics_check, "_utcnow", lambda: NOW)


def sensor(**kwargs: Any) -> SendAnalyticsSensor:
    kwargs.setdefault("no_data_grace", 3600)
    return SendAnalyticsSensor(
        task_id="wait", campaign_id="c", send_id="s", poke_interval=5, timeout=60, **kwargs
    )


def ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat()


def with_data(sent: int) -> dict[str, Any]:
    return {
        "message": "success",
        "data": [
            {"time": NOW.date().isoformat(), "messages": {"email": [{"variation_name": "A", "sent": sent}]}}
        ],
    }


def poke(op: SendAnalyticsSensor) -> bool:
    return bool(op.poke({"ti": mock.MagicMock()}).is_done)  # type: ignore[arg-type]


def test_a_send_to_listed_users_without_analytics_past_the_grace_fails_with_the_reason(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(SERIES_URL, json=EMPTY)
    with pytest.raises(BrazeAnalyticsUntrackedError) as err:
        poke(sensor(broadcast=False, sent_at=ago(2)))
    assert str(err.value) == UNTRACKED
    assert (
        "Braze may keep send analytics only for broadcasts (its errors page: analytics are available"
        in UNTRACKED
    )
    # The rendered text of the send summary's flag says the same.
    with pytest.raises(BrazeAnalyticsUntrackedError):
        poke(sensor(broadcast="False", sent_at=ago(2)))


@pytest.mark.parametrize(
    ("kwargs", "answer"),
    [
        ({"broadcast": False, "sent_at": ago(0.5)}, EMPTY),  # still within the grace
        ({"broadcast": False, "sent_at": ago(2), "min_age": 7200}, EMPTY),  # min_age, then the grace
        ({"broadcast": True, "sent_at": ago(48)}, EMPTY),  # a broadcast is never taken for untracked
        ({"broadcast": False}, EMPTY),  # without sent_at the send's age is unknown
    ],
    ids=["within-grace", "min-age-first", "broadcast", "no-sent-at"],
)
def test_no_false_alarm(
    braze_conn: str, requests_mock: rm.Mocker, kwargs: dict[str, Any], answer: dict[str, Any]
) -> None:
    requests_mock.get(SERIES_URL, json=answer)
    assert poke(sensor(**kwargs)) is False


def test_a_series_of_zeros_is_no_analytics(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=with_data(0))
    with pytest.raises(BrazeAnalyticsUntrackedError):
        poke(sensor(broadcast=False, sent_at=ago(48)))


def test_min_age_then_the_grace(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=EMPTY)
    assert poke(sensor(broadcast=False, sent_at=ago(2.5), min_age=7200)) is False
    with pytest.raises(
        BrazeAnalyticsUntrackedError, match=r"past min_age 2:00:00 plus no_data_grace 1:00:00"
    ):
        poke(sensor(broadcast=False, sent_at=ago(3.5), min_age=7200))


def test_a_send_with_analytics_is_done_however_old(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=with_data(10))
    assert poke(sensor(broadcast=False, sent_at=ago(48))) is True


def test_when_it_is_not_known_whether_it_was_a_broadcast_it_warns_and_waits(
    braze_conn: str, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.get(SERIES_URL, json=EMPTY)
    assert poke(sensor(sent_at=ago(2))) is False
    out = capsys.readouterr().out
    assert (
        "Send 's' of campaign 'c' has no analytics 2:00:00 after it was sent. If it went to a list of "
        f"users: {MAYBE_UNTRACKED} Pass broadcast= (the send summary's) to fail at once instead of waiting."
    ) in out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"broadcast": "maybe"}, "broadcast must be True, False or None, got 'maybe'."),
        ({"no_data_grace": "a day"}, "no_data_grace must be a timedelta or seconds, got 'a day'."),
        ({"no_data_grace": timedelta(hours=-1)}, "no_data_grace must not be negative"),
    ],
)
def test_bad_arguments_are_refused(
    braze_conn: str, requests_mock: rm.Mocker, kwargs: dict[str, Any], message: str
) -> None:
    requests_mock.get(SERIES_URL, json=EMPTY)
    with pytest.raises(BrazeValidationError) as err:
        poke(sensor(sent_at=ago(2), **kwargs))
    assert str(err.value).startswith(message)


def test_the_trigger_says_untracked_and_the_task_fails_with_the_reason(
    braze_conn: str, httpx_via_requests_mock: rm.Mocker, requests_mock: rm.Mocker
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

    from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

    requests_mock.get(SERIES_URL, json=EMPTY)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True, broadcast="False", sent_at=ago(0.5)).execute({"ti": mock.MagicMock()})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert (kwargs["broadcast"], kwargs["no_data_grace_seconds"]) == (False, 3600.0)
    assert SendAnalyticsTrigger(**kwargs).serialize() == (classpath, kwargs)

    late = SendAnalyticsTrigger(**{**kwargs, "sent_at": ago(2)})

    async def first_event() -> dict[str, Any]:
        async for event in late.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    assert event == {"status": "unavailable", "message": UNTRACKED, "untracked": True}
    with pytest.raises(BrazeAnalyticsUntrackedError) as err:
        sensor(deferrable=True).execute_complete({"ti": mock.MagicMock()}, event=event)  # type: ignore[arg-type]
    assert str(err.value) == UNTRACKED
    with pytest.raises(AirflowSkipException):  # soft_fail: skipped instead
        sensor(deferrable=True, soft_fail=True).resume_execution(
            "execute_complete",
            {"event": event},
            {"ti": mock.MagicMock()},  # type: ignore[arg-type]
        )
    # The 14-day expiry stays what it was.
    with pytest.raises(BrazeAnalyticsUnavailableError) as expired:
        sensor(deferrable=True).execute_complete(
            {"ti": mock.MagicMock()},  # type: ignore[arg-type]
            event={"status": "unavailable", "message": "gone", "untracked": False},
        )
    assert type(expired.value) is BrazeAnalyticsUnavailableError


@pytest.mark.parametrize(("broadcast", "explained"), [(None, True), (False, True), (True, False)])
def test_a_timeout_without_any_analytics_names_the_possibility(
    broadcast: bool | None, explained: bool
) -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    event = {"status": "timeout", "summary": {"sent": 0, "days": 0, "channel_totals": {}}}
    with pytest.raises(AirflowSensorTimeout) as err:
        sensor(deferrable=True, broadcast=broadcast).execute_complete({"ti": mock.MagicMock()}, event=event)  # type: ignore[arg-type]
    expected = "Braze analytics for send 's' did not meet the condition in 60 s."
    if explained:
        expected += f" No analytics appeared. {MAYBE_UNTRACKED}"
    assert str(err.value) == expected


@pytest.mark.parametrize(("tracking", "untracked"), [("all_sends", False), ("broadcast_only", True)])
def test_against_the_sandbox_under_each_tracking(
    braze_sandbox: BrazeSandbox, monkeypatch: pytest.MonkeyPatch, tracking: str, untracked: bool
) -> None:
    """No grace at all: under all_sends the send has analytics at once (no false alarm), under
    broadcast_only it never will, and the sensor says why at its first check."""
    monkeypatch.setattr(analytics_check, "_utcnow", lambda: datetime.now(timezone.utc))
    braze_sandbox.state.set_behaviours(send_tracking=tracking)
    campaign = "sandbox-api-campaign"
    assert sandbox_call(braze_sandbox, "/sends/id/create", {"campaign_id": campaign, "send_id": "s"}).ok
    body = {"campaign_id": campaign, "send_id": "s", "external_user_ids": ["u1"], "messages": email_message()}
    assert sandbox_call(braze_sandbox, "/messages/send", body).status_code == 201
    op = SendAnalyticsSensor(
        task_id="wait",
        campaign_id=campaign,
        send_id="s",
        broadcast=False,
        no_data_grace=0,
        sent_at=datetime.now(timezone.utc).isoformat(),
    )
    if untracked:
        with pytest.raises(BrazeAnalyticsUntrackedError, match="sent to a list of users"):
            poke(op)
    else:
        assert poke(op) is True
