"""Braze's clock as the worker learns it (Date header), pacing on it, and what a send's answer
may hold: tests named after the promise they protect."""

from __future__ import annotations

import math
from email.utils import formatdate
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAmbiguousResponseError,
    BrazeRateLimitError,
    BrazeUnexpectedResponseError,
)
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.rate_limit import ServerClock
from tests.conftest import API_KEY, REST_ENDPOINT

SEND_URL = f"{REST_ENDPOINT}/messages/send"
SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"
EMAIL = {"email": {"app_id": "app", "subject": "Hi", "body": "Hello"}}


def test_server_clock_is_a_lower_bound_of_brazes_time() -> None:
    local = [1_000.0]
    clock = ServerClock(lambda: local[0])
    assert clock.now() == 1_000.0  # nothing learnt yet
    # Braze is 30.4 s behind; Date has whole seconds and was written before the answer arrived.
    clock.observe(formatdate(math.floor(1_000.0 - 30.4 - 0.02), usegmt=True), received_at=1_000.0)
    assert -31.5 <= clock.offset <= -30.4 + 1e-9
    for phase in range(10):  # answers at every fraction of a second make the bound tight
        at = 1_000.0 + phase / 10
        clock.observe(formatdate(math.floor(at - 30.4), usegmt=True), received_at=at)
    assert -30.5 <= clock.offset <= -30.4 + 1e-9  # never above the true offset


@pytest.mark.parametrize("date", [None, "", "not a date", "Mon, 01 Jan 1990 00:00:00 GMT"])
def test_server_clock_ignores_what_is_not_brazes_clock(date: str | None) -> None:
    clock = ServerClock(lambda: 2_000_000_000.0)
    clock.observe(date, received_at=2_000_000_000.0)
    assert clock.offset == 0.0


class VirtualBraze:
    """A Braze workspace limit on a clock ``skew`` seconds off the worker's (virtual time that
    moves only when the hook sleeps), answering through requests-mock."""

    def __init__(self, limit: int, window: int, skew: float) -> None:
        self.limit = limit
        self.window = window
        self.skew = skew
        self.used: dict[int, int] = {}
        self.statuses: list[int] = []

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        now = braze_module._wall_clock() + self.skew + 0.01
        start = int(now // self.window) * self.window
        self.used[start] = self.used.get(start, 0) + 1
        remaining = self.limit - self.used[start]
        context.headers = {
            "Date": formatdate(math.floor(now), usegmt=True),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(start + self.window),
        }
        if remaining < 0:
            context.status_code = 429
            self.statuses.append(429)
            return {"message": "API rate limit exceeded"}
        context.status_code = 201
        self.statuses.append(201)
        return {"message": "success", "dispatch_id": "d"}


def _send_all(hook: BrazeHook, count: int) -> int:
    gave_up = 0
    for _ in range(count):
        try:
            hook.send_messages("camp", external_user_ids=["u"], messages=EMAIL)
        except BrazeRateLimitError:
            gave_up += 1
    return gave_up


@pytest.mark.parametrize("skew", [30.0, -30.0, 0.0])
def test_pacing_corrects_for_a_worker_clock_that_is_off(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, skew: float
) -> None:
    """Braze's reset is an epoch on its own clock: a worker 30 s ahead (or behind) still paces
    right, from the Date header of the answers (under 5 % of answers 429)."""
    braze = VirtualBraze(limit=20, window=10, skew=-skew)
    requests_mock.post(SEND_URL, json=braze)
    hook = BrazeHook()
    assert _send_all(hook, 300) == 0
    assert braze.statuses.count(201) == 300  # every send made it, once
    assert braze.statuses.count(429) / len(braze.statuses) < 0.05


def test_without_the_date_header_a_skewed_worker_draws_429s(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous test can fail: ignoring Braze's clock, the same worker meets mostly 429s."""
    monkeypatch.setattr(ServerClock, "observe", lambda self, *args, **kwargs: None)
    braze = VirtualBraze(limit=20, window=10, skew=-30.0)
    requests_mock.post(SEND_URL, json=braze)
    _send_all(BrazeHook(), 100)
    assert braze.statuses.count(429) / len(braze.statuses) > 0.3


def test_a_send_answered_2xx_with_an_unreadable_body_is_an_unknown_outcome(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    requests_mock.post(
        SEND_URL, status_code=201, text="<html>OK</html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(
        BrazeAmbiguousResponseError, match="may have taken effect, so it was not repeated"
    ) as err:
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    assert isinstance(err.value, BrazeAmbiguousRequestError)
    assert isinstance(err.value, BrazeUnexpectedResponseError)
    assert err.value.status_code == 201
    assert requests_mock.call_count == 1


def test_a_read_answered_2xx_with_an_unreadable_body_is_just_unexpected(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    requests_mock.get(SERIES_URL, status_code=200, text="")
    with pytest.raises(BrazeUnexpectedResponseError) as err:
        BrazeHook().get_send_data_series("camp", "send", 3)
    assert not isinstance(err.value, BrazeAmbiguousRequestError)


def test_non_fatal_errors_are_redacted_before_anyone_keeps_them(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    requests_mock.post(
        SEND_URL,
        status_code=201,
        json={"dispatch_id": "d", "errors": [f"echo: Bearer {API_KEY}", {"header": API_KEY}]},
    )
    answer = BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    assert API_KEY not in repr(answer)
    assert answer["errors"] == ["echo: Bearer ***", {"header": "***"}]
