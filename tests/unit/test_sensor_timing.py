"""SendAnalyticsSensor checks as soon as the send reaches min_age, then every poke_interval: in
poke mode (the sleep), reschedule mode (the reschedule date) and deferred (the trigger's sleep).
A fake clock: nothing here sleeps."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze import analytics_check
from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor, next_check_in
from tests.conftest import REST_ENDPOINT

SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"
START = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
EMPTY = {"message": "success", "data": []}
DATA = {
    "message": "success",
    "data": [
        {"time": START.date().isoformat(), "messages": {"email": [{"variation_name": "A", "sent": 10}]}}
    ],
}


class Clock:
    """Now, moved only by the waits the code under test asks for."""

    def __init__(self) -> None:
        self.now = START
        self.waits: list[float] = []
        self._thread = threading.get_ident()
        self._real_asleep = asyncio.sleep

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)

    async def asleep(self, seconds: float) -> None:
        # Patching asyncio.sleep patches it for every thread: a sandbox's uvicorn loop left
        # running by an earlier test polls it every 0.1 s. Only this test's thread is faked.
        if threading.get_ident() != self._thread:
            await self._real_asleep(seconds)
            return
        self.sleep(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(analytics_check, "_utcnow", lambda: clock.now)
    return clock


def sensor(**kwargs: Any) -> SendAnalyticsSensor:
    # Sent 240 s ago, min_age 300 s: the send is old enough 60 s after the first check.
    kwargs = {"sent_at": (START - timedelta(seconds=240)).isoformat(), "min_age": 300, **kwargs}
    return SendAnalyticsSensor(
        task_id="wait", campaign_id="c", send_id="s", poke_interval=900, timeout=86_400, **kwargs
    )


def context() -> Any:
    ti = mock.MagicMock()
    ti.get_first_reschedule_date.return_value = None
    return {"ti": ti}


def test_next_check_in() -> None:
    soon = START + timedelta(seconds=60)
    assert next_check_in(900, soon, START) == 60
    assert next_check_in(900, None, START) == 900  # without sent_at: no moment to aim at
    assert next_check_in(900, START, START) == 900  # reached: poke_interval
    assert next_check_in(900, START - timedelta(hours=1), START) == 900
    assert next_check_in(30, soon, START) == 30  # poke_interval comes first


@pytest.mark.parametrize(
    ("answers", "waits"),
    [
        ([DATA, DATA], [60.0]),  # analytics already there: the check at min_age succeeds
        ([EMPTY, EMPTY, DATA], [60.0, 900.0]),  # then every poke_interval
    ],
    ids=["done-at-min-age", "then-poke-interval"],
)
def test_poke_mode_sleeps_until_min_age_then_poke_interval(
    braze_conn: str,
    requests_mock: rm.Mocker,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    answers: list[dict[str, Any]],
    waits: list[float],
) -> None:
    from airflow.sdk.bases import sensor as airflow_sensor

    requests_mock.get(SERIES_URL, [{"json": a} for a in answers])
    monkeypatch.setattr(airflow_sensor.time, "sleep", clock.sleep)
    summary = sensor(mode="poke").execute(context())
    assert summary["sent"] == 10
    assert clock.waits == waits
    assert requests_mock.call_count == len(answers)


def test_reschedule_mode_comes_back_at_min_age_then_after_poke_interval(
    braze_conn: str, requests_mock: rm.Mocker, clock: Clock
) -> None:
    from airflow.sdk import timezone as airflow_timezone
    from airflow.sdk.exceptions import AirflowRescheduleException

    requests_mock.get(SERIES_URL, json=EMPTY)
    comes_back = []
    for _ in range(2):
        with (
            mock.patch.object(airflow_timezone, "utcnow", return_value=clock.now),
            pytest.raises(AirflowRescheduleException) as rescheduled,
        ):
            sensor(mode="reschedule").execute(context())
        comes_back.append((rescheduled.value.reschedule_date - clock.now).total_seconds())
        clock.now = rescheduled.value.reschedule_date
    assert comes_back == [60.0, 900.0]


def test_a_sensor_without_sent_at_keeps_poke_interval(
    braze_conn: str, requests_mock: rm.Mocker, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.bases import sensor as airflow_sensor

    requests_mock.get(SERIES_URL, [{"json": EMPTY}, {"json": DATA}])
    monkeypatch.setattr(airflow_sensor.time, "sleep", clock.sleep)
    sensor(mode="poke", sent_at=None, min_age=None).execute(context())
    assert clock.waits == [900.0]


@pytest.mark.parametrize(
    ("answers", "waits"),
    [([DATA], [60.0]), ([EMPTY, DATA], [60.0, 900.0])],
    ids=["done-at-min-age", "then-poke-interval"],
)
def test_the_trigger_waits_until_min_age_then_poke_interval(
    braze_conn: str,
    httpx_via_requests_mock: rm.Mocker,
    requests_mock: rm.Mocker,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    answers: list[dict[str, Any]],
    waits: list[float],
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_braze.triggers import send_analytics as trigger_module

    # The worker's first check: not old enough, so the sensor defers.
    requests_mock.get(SERIES_URL, [{"json": EMPTY}, {"json": EMPTY}, *({"json": a} for a in answers)])
    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True).execute(context())
    trigger = deferred.value.trigger
    monkeypatch.setattr(trigger_module.asyncio, "sleep", clock.asleep)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    assert event["status"] == "done"
    assert clock.waits == waits  # its own first check is at once, like the worker's
    assert requests_mock.call_count == 2 + len(answers)
