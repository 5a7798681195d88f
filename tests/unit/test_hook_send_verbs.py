"""BrazeHook's send verbs: exact bodies, local validation, no resend after an unknown outcome."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import requests_mock as rm

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeBadRequestError,
    BrazeServerError,
    BrazeValidationError,
)
from airflow_provider_braze.hooks.braze import BrazeHook, RateLimitPacer, RateLimitStatus
from airflow_provider_braze.sandbox import email_message
from tests.conftest import FROZEN_NOW, REST_ENDPOINT, SOON

SEND_URL = f"{REST_ENDPOINT}/messages/send"
TRIGGER_URL = f"{REST_ENDPOINT}/campaigns/trigger/send"
SCHEDULE_URL = f"{REST_ENDPOINT}/messages/schedule/create"
TRIGGER_SCHEDULE_URL = f"{REST_ENDPOINT}/campaigns/trigger/schedule/create"
EMAIL = email_message("camp")


@pytest.fixture
def hook(braze_conn: str, sleeps: list[float]) -> BrazeHook:
    return BrazeHook()


def test_send_messages_body(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(SEND_URL, status_code=201, json={"message": "success", "dispatch_id": "d1"})
    answer = hook.send_messages(
        "camp",
        send_id="s1",
        external_user_ids=["u1", "u2"],
        user_aliases=[{"alias_name": "a", "alias_label": "l"}],
        messages=EMAIL,
        recipient_subscription_state="opted_in",
        override_frequency_capping=True,
    )
    assert answer == {"message": "success", "dispatch_id": "d1", "errors": []}
    assert requests_mock.last_request.json() == {
        "campaign_id": "camp",
        "send_id": "s1",
        "external_user_ids": ["u1", "u2"],
        "user_aliases": [{"alias_name": "a", "alias_label": "l"}],
        "messages": EMAIL,
        "recipient_subscription_state": "opted_in",
        "override_frequency_capping": True,
    }


def test_segment_broadcast_body(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(SEND_URL, json={"message": "success", "dispatch_id": "d1", "send_id": "gen"})
    answer = hook.send_messages("camp", segment_id="seg", broadcast=True, messages=EMAIL)
    assert answer["send_id"] == "gen"
    assert requests_mock.last_request.json() == {
        "campaign_id": "camp",
        "segment_id": "seg",
        "broadcast": True,
        "messages": EMAIL,
    }


def test_trigger_campaign_send_body(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(TRIGGER_URL, json={"message": "success", "dispatch_id": "d2"})
    recipients = [
        {"external_user_id": "u1", "trigger_properties": {"coupon": "X"}},
        {"user_alias": {"alias_name": "a", "alias_label": "l"}},
        {"email": "x@example.com", "prioritization": ["identified", "most_recently_updated"]},
    ]
    hook.send_triggered_campaign(
        "tcamp",
        send_id="s2",
        recipients=recipients,
        trigger_properties={"season": "spring"},
        attachments=[{"file_name": "a.pdf", "url": "https://example.com/a.pdf"}],
    )
    assert requests_mock.last_request.json() == {
        "campaign_id": "tcamp",
        "send_id": "s2",
        "recipients": recipients,
        "trigger_properties": {"season": "spring"},
        "attachments": [{"file_name": "a.pdf", "url": "https://example.com/a.pdf"}],
    }


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (f"{SOON}T09:00:00Z", {"time": f"{SOON}T09:00:00Z"}),
        (f"{SOON}T10:00:00+01:00", {"time": f"{SOON}T09:00:00Z"}),
        (f"{SOON}T09:00:00", {"time": f"{SOON}T09:00:00Z"}),
        (datetime.fromisoformat(f"{SOON}T09:00:00+00:00"), {"time": f"{SOON}T09:00:00Z"}),
        # Local and optimal time: the users' wall clock, sent without a zone designator.
        (
            {"time": f"{SOON}T09:00:00", "in_local_time": True},
            {"time": f"{SOON}T09:00:00", "in_local_time": True},
        ),
        (
            {"time": datetime.fromisoformat(f"{SOON}T09:30:00"), "at_optimal_time": True},
            {"time": f"{SOON}T09:30:00", "at_optimal_time": True},
        ),
        (
            {"time": f"{SOON}T09:00:00", "in_local_time": False},
            {"time": f"{SOON}T09:00:00Z", "in_local_time": False},
        ),
    ],
)
def test_schedule_messages(
    hook: BrazeHook, requests_mock: rm.Mocker, schedule: Any, expected: dict[str, Any]
) -> None:
    requests_mock.post(
        SCHEDULE_URL, status_code=201, json={"message": "success", "dispatch_id": "d3", "schedule_id": "sch1"}
    )
    answer = hook.schedule_messages("camp", schedule=schedule, external_user_ids=["u1"], messages=EMAIL)
    assert answer["schedule_id"] == "sch1"
    body = requests_mock.last_request.json()
    assert body["schedule"] == expected
    assert body["external_user_ids"] == ["u1"]


def test_schedule_campaign_trigger(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        TRIGGER_SCHEDULE_URL, json={"message": "success", "schedule_id": "sch2", "dispatch_id": "d"}
    )
    answer = hook.schedule_triggered_campaign(
        "tcamp", schedule={"time": f"{SOON}T09:00:00", "at_optimal_time": True}, broadcast=True
    )
    assert answer["schedule_id"] == "sch2"
    assert requests_mock.last_request.json() == {
        "campaign_id": "tcamp",
        "broadcast": True,
        "schedule": {"time": f"{SOON}T09:00:00", "at_optimal_time": True},
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"external_user_ids": [f"u{i}" for i in range(51)]},
            "51 external user IDs and aliases in one request",
        ),
        (
            {
                "external_user_ids": [f"u{i}" for i in range(30)],
                "user_aliases": [{"alias_name": "a", "alias_label": "l"}] * 21,
            },
            "51 external user IDs and aliases",
        ),
        (
            {"external_user_ids": ["u1"], "segment_id": "seg", "broadcast": True},
            "broadcast=True cannot be combined",
        ),
        ({"segment_id": "seg"}, "pass broadcast=True"),
        ({"broadcast": True}, "needs a segment_id or an audience"),
        ({"external_user_ids": "u1"}, "external_user_ids must be a list of strings"),
        ({"external_user_ids": ["u1", ""]}, r"external_user_ids\[1\] must be a non-empty string"),
        ({"user_aliases": [{"alias_name": "a"}]}, "user alias object"),
        ({"external_user_ids": ["u1"], "messages": {}}, "messages must be a non-empty object"),
        (
            {"external_user_ids": ["u1"], "recipient_subscription_state": "everyone"},
            "recipient_subscription_state",
        ),
        ({"external_user_ids": ["u1"], "send_id": "x" * 65}, "at most 64"),
    ],
)
def test_send_messages_validation(
    hook: BrazeHook, requests_mock: rm.Mocker, kwargs: dict[str, Any], message: str
) -> None:
    kwargs.setdefault("messages", EMAIL)
    with pytest.raises(BrazeValidationError, match=message):
        hook.send_messages("camp", **kwargs)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipients": [{"external_user_id": f"u{i}"} for i in range(51)]}, "51 recipients in one request"),
        ({"recipients": [{"external_user_id": "u1", "email": "a@b.c"}]}, "exactly one of external_user_id"),
        ({"recipients": [{"email": "a@b.c"}]}, "needs a prioritization list"),
        ({"recipients": [{"external_user_id": "u1", "colour": "red"}]}, "unknown field"),
        (
            {"recipients": [{"external_user_id": "u1", "trigger_properties": "x"}]},
            "trigger_properties must be",
        ),
        ({"recipients": ["u1"]}, "must be a recipient object"),
        (
            {"recipients": [{"external_user_id": "u1"}], "broadcast": True},
            "broadcast=True cannot be combined",
        ),
        ({}, "pass broadcast=True"),
    ],
)
def test_trigger_validation(
    hook: BrazeHook, requests_mock: rm.Mocker, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        hook.send_triggered_campaign("tcamp", **kwargs)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("next tuesday", "not an ISO-8601 date and time"),
        (datetime(2026, 12, 1, 9), "has no time zone"),
        ({"in_local_time": True}, "schedule needs a time"),
        ({"time": f"{SOON}T09:00:00Z", "when": "soon"}, "unknown field"),
        ({"time": f"{SOON}T09:00:00Z", "in_local_time": "yes"}, "must be true or false"),
        (42, "must be an ISO-8601 string or a datetime"),
        # A zone with local or optimal time: 09:00+02:00 is not "09:00 where each user is".
        ({"time": f"{SOON}T09:00:00Z", "in_local_time": True}, "with in_local_time Braze reads"),
        ({"time": f"{SOON}T09:00:00+02:00", "at_optimal_time": True}, "with at_optimal_time"),
        (
            {"time": datetime.fromisoformat(f"{SOON}T09:00:00+00:00"), "in_local_time": True},
            f"give the wall-clock time, e.g. '{SOON}T09:00:00'",
        ),
        ({"time": f"{SOON}T09:00:00", "in_local_time": True, "at_optimal_time": True}, "choose one"),
    ],
)
def test_schedule_validation(hook: BrazeHook, requests_mock: rm.Mocker, schedule: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        hook.schedule_messages("camp", schedule=schedule, external_user_ids=["u1"], messages=EMAIL)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(("hours_ago", "refused"), [(13, True), (11, False), (-24, False)])
def test_a_local_time_that_has_passed_everywhere_is_refused_before_sending(
    hook: BrazeHook, requests_mock: rm.Mocker, hours_ago: float, refused: bool
) -> None:
    """Braze refuses a local-time send whose time has passed: once 12 hours past it (UTC-12),
    it has passed in every zone. Checked locally, before the first request."""
    requests_mock.post(SCHEDULE_URL, status_code=201, json={"message": "success", "schedule_id": "s"})
    wall_clock = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).replace(tzinfo=None)
    schedule = {"time": wall_clock.isoformat(timespec="seconds"), "in_local_time": True}
    if refused:
        with pytest.raises(BrazeValidationError, match="has already passed in every time zone"):
            hook.schedule_messages("camp", schedule=schedule, external_user_ids=["u1"], messages=EMAIL)
        assert requests_mock.call_count == 0
    else:
        hook.schedule_messages("camp", schedule=schedule, external_user_ids=["u1"], messages=EMAIL)
        assert requests_mock.last_request.json()["schedule"] == schedule


@pytest.mark.parametrize(
    "failure",
    [
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": requests.exceptions.ConnectionError("Connection aborted.")},
        {"status_code": 504, "text": "<html>Gateway Timeout</html>"},
    ],
)
def test_unknown_outcome_is_never_resent(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float], failure: dict[str, Any]
) -> None:
    requests_mock.post(SEND_URL, [failure, {"json": {"message": "success"}}])
    with pytest.raises(BrazeAmbiguousRequestError, match=r"may or may not|outcome unknown"):
        hook.send_messages("camp", external_user_ids=["u1"], messages=EMAIL)
    assert requests_mock.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_failures_before_processing_are_retried(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float], status: int
) -> None:
    requests_mock.post(
        SEND_URL, [{"status_code": status, "json": {"message": "busy"}}, {"json": {"message": "success"}}]
    )
    assert hook.send_messages("camp", external_user_ids=["u1"], messages=EMAIL)["message"] == "success"
    assert requests_mock.call_count == 2


def test_5xx_after_retries_is_a_server_error(
    braze_conn: str, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(SEND_URL, status_code=503, json={"message": "Service Unavailable"})
    with pytest.raises(BrazeServerError, match="Gave up after 3 attempts"):
        BrazeHook(max_retries=2).send_messages("camp", external_user_ids=["u1"], messages=EMAIL)


def test_non_fatal_errors_are_returned(
    hook: BrazeHook, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.post(SEND_URL, json={"message": "success", "dispatch_id": "d", "errors": ["u9 is unknown"]})
    answer = hook.send_messages("camp", external_user_ids=["u9"], messages=EMAIL)
    assert answer["errors"] == ["u9 is unknown"]
    assert 'non-fatal errors: ["u9 is unknown"]' in capsys.readouterr().out


# ---------------------------------------------------------------------------- pacing


def hook_pacer() -> RateLimitPacer:
    """A hook's pacer: on the hook's clock and sleep, which the ``sleeps`` fixture replaces."""
    return BrazeHook().pacer


def status(remaining: int, reset_in: float) -> RateLimitStatus:
    return RateLimitStatus(
        limit=100,
        remaining=remaining,
        reset_at=datetime.fromtimestamp(FROZEN_NOW + reset_in, tz=timezone.utc),
    )


def test_pacer_spreads_the_window_and_counts_requests_in_flight(sleeps: list[float]) -> None:
    pacer = hook_pacer()
    assert pacer.acquire("k", 100) == 0  # nothing known yet
    # 3 left for 30 s, 1 of them kept for other senders' requests in flight (1 % of 100).
    pacer.release("k", status(3, 30))
    assert pacer.acquire("k", 100) == 0  # 2 to spend in 30 s: one now ...
    assert pacer.acquire("k", 100) == pytest.approx(15.0)  # ... one 15 s later
    waited = pacer.acquire("k", 100)  # a third would use the reserve: wait for the reset
    assert 15.05 <= waited <= 15.25
    assert sleeps == [15.0, waited]


def test_pacer_slows_down_when_other_senders_spend_the_window(sleeps: list[float]) -> None:
    """The window is the workspace's: what others spend shows in ``remaining``, and the pacer
    spreads only what is left, so senders share the window instead of racing for it."""
    pacer = hook_pacer()
    pacer.release("k", status(101, 10))
    assert pacer.acquire("k", 100) == 0  # 100 to spend in 10 s: the next one 0.1 s later
    pacer.release("k", status(100, 10))
    assert pacer.acquire("k", 100) == pytest.approx(0.1)  # then 99 in 9.9 s: 0.1 s apart
    pacer.release("k", status(40, 10))  # other senders spent 59 meanwhile
    assert pacer.acquire("k", 100) == pytest.approx(0.1)  # the gap set before the drop
    pacer.release("k", status(39, 10))
    # 39 to spend (1 of the 40 kept back) in the 9.8 s left: 0.251 s apart, not 0.1.
    assert pacer.acquire("k", 100) == pytest.approx(9.8 / 39, rel=1e-6)


def test_pacer_keeps_the_lowest_count_of_a_window(sleeps: list[float]) -> None:
    pacer = hook_pacer()
    pacer.release("k", status(5, 30))
    pacer.release("k", status(0, 30))
    pacer.release("k", status(3, 30))  # an older answer arriving late
    assert pacer.acquire("k", 100) > 0
    pacer.release("k", status(100, 90))  # a new window
    assert pacer.acquire("k", 100) == 0


def test_pacer_does_not_wait_beyond_the_budget(sleeps: list[float]) -> None:
    pacer = hook_pacer()
    pacer.release("k", status(0, 3600))
    assert pacer.acquire("k", 120) == 0  # Braze's 429 then decides
    assert sleeps == []


def test_a_new_window_lifts_the_wait(sleeps: list[float]) -> None:
    pacer = hook_pacer()
    pacer.release("k", status(0, -1))  # the window already ended
    assert pacer.acquire("k", 100) == 0


def test_a_prepared_send_is_checked_once_and_batches_only_add_recipients(
    hook: BrazeHook, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(SEND_URL, status_code=201, json={"message": "success", "dispatch_id": "d"})
    prepared = hook.prepare_messages("camp", send_id="s1", messages=EMAIL)
    assert requests_mock.call_count == 0  # preparing makes no request
    hook.send_prepared(prepared, ["u1", {"alias_name": "a", "alias_label": "l"}])
    first = requests_mock.last_request.json()
    hook.send_prepared(prepared, ["u2"])
    second = requests_mock.last_request.json()
    assert first["external_user_ids"] == ["u1"]
    assert first["user_aliases"] == [{"alias_name": "a", "alias_label": "l"}]
    assert second["external_user_ids"] == ["u2"]
    assert "user_aliases" not in second
    assert {k: v for k, v in first.items() if k not in ("external_user_ids", "user_aliases")} == {
        k: v for k, v in second.items() if k != "external_user_ids"
    }
    with pytest.raises(BrazeValidationError, match="at most 50"):
        hook.send_prepared(prepared, [f"u{i}" for i in range(51)])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.prepare_messages("c", messages=EMAIL, override_messaging_limits=True), "for scheduled"),
        (
            lambda h: h.prepare_messages(
                "c", messages=EMAIL, schedule=f"{SOON}T00:00:00Z", override_frequency_capping=True
            ),
            "takes override_messaging_limits",
        ),
        (
            lambda h: h.prepare_triggered_campaign("c", schedule=f"{SOON}T00:00:00Z", attachments=[{}]),
            "takes no attachments",
        ),
    ],
)
def test_prepare_refuses_what_the_endpoint_cannot_take(hook: BrazeHook, call: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        call(hook)


@pytest.mark.parametrize("status", [413, 400])
def test_a_body_braze_finds_too_large_is_refused_not_retried(
    hook: BrazeHook, requests_mock: rm.Mocker, status: int
) -> None:
    """Braze's pages answer a body over 4 MB with 413 (user data endpoints) or "413 or 400"
    (rate limits): either is a refusal of that request, never retried."""
    requests_mock.post(SEND_URL, status_code=status, json={"message": "Request Entity Too Large"})
    with pytest.raises(BrazeBadRequestError) as err:
        hook.send_messages("camp", external_user_ids=["u1"], messages=EMAIL)
    assert (err.value.status_code, requests_mock.call_count) == (status, 1)


def test_a_body_over_4_mb_is_refused_before_sending(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    big = email_message("camp", body="x" * 4_000_000)
    with pytest.raises(BrazeValidationError, match="Braze refuses bodies over 4 MB"):
        hook.send_messages("camp", external_user_ids=["u1"], messages=big)
    assert requests_mock.call_count == 0


def test_an_empty_send_id_for_analytics_is_refused_without_misleading_advice(hook: BrazeHook) -> None:
    with pytest.raises(BrazeValidationError, match="send_id is required") as err:
        hook.get_send_analytics("camp", "", 7)
    assert "pass None" not in str(err.value)
