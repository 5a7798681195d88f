"""Braze's clock as the worker learns it (Date header), pacing on it, and what a send's answer
may hold: tests named after the promise they protect."""

from __future__ import annotations

import json
import math
from email.utils import formatdate
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAmbiguousResponseError,
    BrazeBadRequestError,
    BrazeRateLimitError,
    BrazeUnexpectedResponseError,
)
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.rate_limit import ServerClock
from airflow_provider_braze.sandbox import email_message
from tests.conftest import API_KEY, REST_ENDPOINT

SEND_URL = f"{REST_ENDPOINT}/messages/send"
SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"
EMAIL = email_message("camp")


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

    def __init__(self, limit: int, window: int, skew: float, *, date: bool = True) -> None:
        self.limit = limit
        self.window = window
        self.skew = skew
        self.date = date
        self.used: dict[int, int] = {}
        self.statuses: list[int] = []

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        now = braze_module._wall_clock() + self.skew + 0.01
        start = int(now // self.window) * self.window
        self.used[start] = self.used.get(start, 0) + 1
        remaining = self.limit - self.used[start]
        context.headers = {
            **({"Date": formatdate(math.floor(now), usegmt=True)} if self.date else {}),
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
    assert braze.statuses.count(429) / len(braze.statuses) < 0.05  # in fact none: 0 of 300


def test_without_a_date_header_a_skewed_worker_still_meets_no_storm(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    """The previous test can fail: without ``Date`` a worker 30 s ahead cannot know Braze's
    clock, believes every window has reset and meets 429s. Once the reset looks due, one
    request at a time finds out, and each 429 backs off exponentially, so they stay a handful per
    window; every send lands once."""
    braze = VirtualBraze(limit=20, window=5, skew=-30.0, date=False)  # backoffs always reach a reset
    requests_mock.post(SEND_URL, json=braze)
    assert _send_all(BrazeHook(), 100) == 0
    assert braze.statuses.count(201) == 100
    windows = len(braze.used)
    assert 0 < braze.statuses.count(429) <= 5 * windows


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
        BrazeHook().get_send_analytics("camp", "send", 3)
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


class SteppingBraze(VirtualBraze):
    """A VirtualBraze whose clock steps by ``step`` seconds after ``at`` answers, or whose answer
    number ``at`` alone carries a ``Date`` ``outlier`` seconds off (a node with a bad clock)."""

    def __init__(self, *, at: int, step: float = 0.0, outlier: float = 0.0) -> None:
        super().__init__(limit=20, window=10, skew=0.0)
        self.at, self.step, self.outlier = at, step, outlier

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        answer = super().__call__(request, context)
        if len(self.statuses) == self.at:
            self.skew += self.step
            if self.outlier:
                shifted = braze_module._wall_clock() + self.skew + self.outlier
                context.headers["Date"] = formatdate(math.floor(shifted), usegmt=True)
        return answer


@pytest.mark.parametrize(("step", "outlier"), [(-30.0, 0.0), (30.0, 0.0), (0.0, 5.0), (0.0, 3600.0)])
def test_a_clock_that_steps_or_a_node_that_lies_costs_a_few_429s_at_most(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, step: float, outlier: float
) -> None:
    braze = SteppingBraze(at=20, step=step, outlier=outlier)
    requests_mock.post(SEND_URL, json=braze)
    assert _send_all(BrazeHook(), 200) == 0
    assert braze.statuses.count(201) == 200
    assert braze.statuses.count(429) <= 4


def test_a_429_waits_for_the_reset_its_own_answer_names(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    """The worker's clock is 30 s ahead and nothing was learnt yet: the 429's own Date says
    how far the reset is."""
    braze_now = braze_module._wall_clock() - 30
    headers = {
        "Date": formatdate(math.floor(braze_now), usegmt=True),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.floor(braze_now) + 7),
    }
    requests_mock.post(
        SEND_URL,
        [
            {"status_code": 429, "json": {"message": "API rate limit exceeded"}, "headers": headers},
            {"status_code": 201, "json": {"dispatch_id": "d"}},
        ],
    )
    BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    assert 7.0 <= sum(sleeps) <= 8.0


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Reset": "inf"},
        {"X-RateLimit-Reset": "1e400"},
        {"X-RateLimit-Remaining": "9" * 400},
        {"X-RateLimit-Remaining": "-inf", "X-RateLimit-Reset": "nan"},
    ],
)
def test_nonsense_rate_limit_headers_on_a_processed_send_change_nothing(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, headers: dict[str, str]
) -> None:
    requests_mock.post(SEND_URL, status_code=201, json={"dispatch_id": "d"}, headers=headers)
    hook = BrazeHook()
    for _ in range(3):
        assert hook.send_messages("camp", external_user_ids=["u"], messages=EMAIL)["dispatch_id"] == "d"


def test_a_2xx_body_nested_too_deep_to_read_is_an_unknown_outcome(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    requests_mock.post(SEND_URL, status_code=201, text="[" * 5_000 + "]" * 5_000)
    with pytest.raises(BrazeAmbiguousResponseError):
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)


@pytest.mark.parametrize(("errors", "expected"), [("boom", ["boom"]), (None, []), ({"k": "v"}, [{"k": "v"}])])
def test_non_fatal_errors_are_always_a_list(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, errors: Any, expected: list[Any]
) -> None:
    requests_mock.post(SEND_URL, status_code=201, json={"dispatch_id": "d", "errors": errors})
    assert BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)["errors"] == expected


# ------------------------------------------------------------------ the key, wherever a proxy puts it


def _offsets_around_the_excerpt() -> list[int]:
    return [150, 165, 180, 190, 199, 200, 205]


@pytest.mark.parametrize("offset", _offsets_around_the_excerpt())
def test_no_part_of_the_key_survives_where_a_body_excerpt_cuts(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker, offset: int
) -> None:
    body = "x" * offset + API_KEY + "y" * 300
    requests_mock.post(SEND_URL, status_code=201, text=body, headers={"Content-Type": "text/html"})
    with pytest.raises(BrazeAmbiguousResponseError) as err:
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    for part in (API_KEY[:12], API_KEY[-12:], API_KEY[8:20]):
        assert part not in str(err.value)
        assert part not in str(err.value.message)


def test_the_key_in_headers_a_proxy_answers_with_is_redacted(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    requests_mock.post(
        SEND_URL, status_code=302, headers={"Location": f"https://elsewhere.example/?k={API_KEY}"}, text=""
    )
    with pytest.raises(Exception) as redirect:  # noqa: PT011
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    requests_mock.post(
        SEND_URL, status_code=201, text="<p>", headers={"Content-Type": f"text/html; {API_KEY}"}
    )
    with pytest.raises(BrazeAmbiguousResponseError) as content_type:
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    for err in (redirect, content_type):
        assert API_KEY not in str(err.value)
        assert "***" in str(err.value)


def test_the_key_echoed_anywhere_in_an_answer_is_redacted(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    from urllib.parse import quote

    echoed = [API_KEY.upper(), quote(API_KEY, safe=""), "".join(f"%{ord(c):02X}" for c in API_KEY)]
    requests_mock.post(
        SEND_URL,
        status_code=201,
        json={"dispatch_id": API_KEY, "schedule_id": API_KEY, "errors": [*echoed, {"nested": [API_KEY]}]},
    )
    answer = BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    text = json.dumps(answer)
    assert API_KEY.lower() not in text.lower()
    assert all(variant not in text for variant in echoed)
    requests_mock.post(
        SEND_URL, status_code=400, json={"message": "bad", "errors": [API_KEY, {"k": API_KEY}]}
    )
    with pytest.raises(BrazeBadRequestError) as err:
        BrazeHook().send_messages("camp", external_user_ids=["u"], messages=EMAIL)
    assert API_KEY not in json.dumps(err.value.errors)
    assert API_KEY not in str(err.value)
