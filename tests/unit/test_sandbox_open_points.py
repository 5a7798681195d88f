"""The sandbox's settings for Braze's open points (issue 17): where the docs are silent or
disagree, each plausible behaviour is a setting, and each setting does what it says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from airflow_provider_braze.sandbox import BrazeSandbox, SandboxState, email_message
from airflow_provider_braze.sandbox.state import DEFAULT_BEHAVIOURS, UNDOCUMENTED_BEHAVIOURS
from tests.conftest import sandbox_call

API = "sandbox-api-campaign"
TRIGGERED = "sandbox-api-triggered-campaign"
WORKSPACE = "sandbox-workspace"
#: 2026-09-21 14:13:20 UTC; that day's end and the next one's.
NOW = 1_790_000_000.0
MIDNIGHT = 1_790_035_200


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def create(sandbox: BrazeSandbox, body: dict[str, Any]) -> requests.Response:
    return sandbox_call(sandbox, "/sends/id/create", body)


def series(sandbox: BrazeSandbox, campaign_id: str, send_id: str) -> requests.Response:
    return sandbox_call(
        sandbox,
        "/sends/data_series",
        method="GET",
        params={"campaign_id": campaign_id, "send_id": send_id, "length": 3},
    )


def sent(answer: requests.Response) -> int:
    """Messages sent over the series, all channels and variations."""
    assert answer.status_code == 200, answer.text
    return sum(v["sent"] for day in answer.json()["data"] for vs in day["messages"].values() for v in vs)


def test_the_open_points_are_settings_with_these_values() -> None:
    assert {name: UNDOCUMENTED_BEHAVIOURS[name] for name in DEFAULT_BEHAVIOURS} == {
        "send_id_recreate": ("count", "idempotent", "refuse"),
        "send_id_recreate_wording": ("already_exists", "bad_request", "invalid_send_id"),
        "send_id_quota": ("successes", "attempts"),
        "send_id_quota_day": ("utc_midnight", "rolling"),
        "unknown_send_id": ("refuse", "accept"),
        "send_tracking": ("all_sends", "broadcast_only"),
        "local_time_passed": ("all_zones", "company_zone"),
        "analytics_series": ("window", "send_days"),
        "analytics_variation_key": ("variation_name", "variation_api_id"),
        "data_series_unknown_send_id": ("refuse", "empty"),
        "data_series_triggered_campaign": ("refuse", "empty", "tracked"),
        "data_series_scheduled_sends": ("untracked", "tracked"),
        "scheduled_broadcast_pool": ("shared", "broadcast"),
        "alias_send_to_existing_only": ("refused", "false_only"),
    }
    assert set(DEFAULT_BEHAVIOURS) == set(UNDOCUMENTED_BEHAVIOURS)


# ---------------------------------------------------------------------------- /sends/id/create


@pytest.mark.parametrize(
    ("wording", "answer"),
    [
        (
            "already_exists",
            {"message": "Bad Request", "errors": [f"send_id 'spring' already exists for campaign '{API}'"]},
        ),
        ("bad_request", {"message": "Bad Request"}),
        ("invalid_send_id", {"message": "Invalid send_id"}),
    ],
)
def test_the_refusal_to_re_create_a_send_id_is_worded_as_chosen(
    braze_sandbox: BrazeSandbox, wording: str, answer: dict[str, Any]
) -> None:
    braze_sandbox.state.set_behaviours(send_id_recreate="refuse", send_id_recreate_wording=wording)
    body = {"campaign_id": API, "send_id": "spring"}
    assert create(braze_sandbox, body).status_code == 200
    again = create(braze_sandbox, body)
    assert (again.status_code, again.json()) == (400, answer)
    assert again.headers["X-RateLimit-Remaining"] == "99"


@pytest.mark.parametrize(
    ("counted", "remaining"), [("successes", ["99", "99", "99"]), ("attempts", ["99", "98", "97"])]
)
def test_which_create_requests_count_toward_the_quota(
    braze_sandbox: BrazeSandbox, counted: str, remaining: list[str]
) -> None:
    braze_sandbox.state.set_behaviours(send_id_quota=counted, send_id_recreate="refuse")
    answers = [
        create(braze_sandbox, {"campaign_id": API, "send_id": "spring"}),
        create(braze_sandbox, {"campaign_id": API, "send_id": "spring"}),  # refused: exists
        create(braze_sandbox, {"campaign_id": "no-such-campaign", "send_id": "autumn"}),  # refused
    ]
    assert [a.status_code for a in answers] == [200, 400, 400]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == remaining


def test_when_every_attempt_counts_a_spent_quota_refuses_even_a_bad_request() -> None:
    state = SandboxState("k-0123456789", send_id_daily_limit=1, behaviours={"send_id_quota": "attempts"})
    with BrazeSandbox(state=state) as sandbox:
        first = create(sandbox, {"campaign_id": "no-such-campaign"})
        second = create(sandbox, {"campaign_id": API, "send_id": "spring"})
    assert (first.status_code, first.json()["message"]) == (400, "Invalid Campaign ID")
    assert (second.status_code, second.json()) == (
        429,
        {"message": "Rate limit exceeded: at most 1 send identifiers per workspace per day"},
    )
    assert state.send_ids == {}


def test_the_quota_day_starts_at_midnight_utc_or_rolls() -> None:
    clock = FakeClock(NOW)
    state = SandboxState("k-0123456789", clock=clock, send_id_daily_limit=2)
    with BrazeSandbox(state=state) as sandbox:
        assert create(sandbox, {"campaign_id": API}).headers["X-RateLimit-Reset"] == str(MIDNIGHT)
        state.set_behaviours(send_id_quota_day="rolling")  # the count restarts
        first = create(sandbox, {"campaign_id": API})
        clock.now += 3_600
        second = create(sandbox, {"campaign_id": API})
        assert [first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]] == ["1", "0"]
        # The unit of the first comes back 24 hours after it, not at midnight.
        assert second.headers["X-RateLimit-Reset"] == str(int(NOW) + 86_400)
        clock.now = MIDNIGHT + 60.0
        assert create(sandbox, {"campaign_id": API}).status_code == 429
        clock.now = NOW + 86_400
        again = create(sandbox, {"campaign_id": API})
        assert (again.status_code, again.headers["X-RateLimit-Remaining"]) == (200, "0")


# ---------------------------------------------------------------------------- local-time schedules


def wall_clock(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def schedule_local(sandbox: BrazeSandbox, time: str) -> requests.Response:
    body = {
        "campaign_id": TRIGGERED,
        "recipients": [{"external_user_id": "u1"}],
        "schedule": {"time": time, "in_local_time": True},
    }
    return sandbox_call(sandbox, "/campaigns/trigger/schedule/create", body)


@pytest.mark.parametrize(
    ("passed", "minutes_in_company_zone", "status", "error"),
    [
        ("company_zone", -5, 400, "in_local_time is true but time has passed in your company's time zone"),
        ("company_zone", 5, 201, None),
        ("all_zones", -5, 201, None),  # 5 minutes ago in Los Angeles is still ahead in UTC-12
        ("all_zones", -21 * 60, 400, "in_local_time is true but schedule.time has passed in all time zones"),
    ],
)
def test_a_local_time_has_passed_in_the_company_zone_or_everywhere(
    passed: str, minutes_in_company_zone: int, status: int, error: str | None
) -> None:
    state = SandboxState(
        "k-0123456789", behaviours={"local_time_passed": passed}, company_time_zone="America/Los_Angeles"
    )
    company_now = datetime.now(ZoneInfo("America/Los_Angeles"))
    with BrazeSandbox(state=state) as sandbox:
        answer = schedule_local(sandbox, wall_clock(company_now + timedelta(minutes=minutes_in_company_zone)))
    assert answer.status_code == status, answer.text
    if error is not None:
        assert answer.json() == {"message": "Bad Request", "errors": [error]}


def test_an_unknown_company_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'; give an IANA name"):
        SandboxState("k-0123456789", company_time_zone="Mars/Olympus")


# ---------------------------------------------------------------------------- what has send analytics


def send_to_users(sandbox: BrazeSandbox, send_id: str) -> None:
    assert create(sandbox, {"campaign_id": API, "send_id": send_id}).status_code == 200
    body = {
        "campaign_id": API,
        "send_id": send_id,
        "external_user_ids": ["u1", "u2"],
        "messages": email_message(),
    }
    assert sandbox_call(sandbox, "/messages/send", body).status_code == 201


@pytest.mark.parametrize(("tracking", "tracked"), [("all_sends", 2), ("broadcast_only", 0)])
def test_a_send_to_listed_users_is_tracked_unless_only_broadcasts_are(
    braze_sandbox: BrazeSandbox, tracking: str, tracked: int
) -> None:
    braze_sandbox.state.set_behaviours(send_tracking=tracking)
    send_to_users(braze_sandbox, "listed")
    assert sent(series(braze_sandbox, API, "listed")) == tracked
    assert braze_sandbox.state.deliveries(API, "listed") == {"u1": 1, "u2": 1}  # delivered either way
    broadcast = {
        "campaign_id": API,
        "send_id": "listed",
        "broadcast": True,
        "segment_id": "everyone",
        "messages": email_message(),
    }
    assert sandbox_call(braze_sandbox, "/messages/send", broadcast).status_code == 201
    # A broadcast is tracked either way (the sandbox's segments have no members: a day, zero sent).
    assert len(braze_sandbox.state.daily_sends(API, "listed")) == 1


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (
            "refuse",
            400,
            {
                "message": "Invalid send_id",
                "errors": [f"send_id 'never' was not created for campaign '{API}'"],
            },
        ),
        ("empty", 200, {"message": "success", "data": []}),
    ],
)
def test_data_series_for_a_send_id_never_created(
    braze_sandbox: BrazeSandbox, answer: str, status: int, body: dict[str, Any]
) -> None:
    braze_sandbox.state.set_behaviours(data_series_unknown_send_id=answer)
    response = series(braze_sandbox, API, "never")
    assert (response.status_code, response.json()) == (status, body)


@pytest.mark.parametrize("answer", ["refuse", "empty", "tracked"])
def test_data_series_for_an_api_triggered_campaign(braze_sandbox: BrazeSandbox, answer: str) -> None:
    braze_sandbox.state.set_behaviours(data_series_triggered_campaign=answer)
    assert create(braze_sandbox, {"campaign_id": TRIGGERED, "send_id": "t1"}).status_code == 200
    body = {"campaign_id": TRIGGERED, "send_id": "t1", "recipients": [{"external_user_id": "u1"}]}
    assert sandbox_call(braze_sandbox, "/campaigns/trigger/send", body).status_code == 201
    response = series(braze_sandbox, TRIGGERED, "t1")
    if answer == "refuse":
        assert (response.status_code, response.json()["message"]) == (400, "Invalid Campaign ID")
    elif answer == "empty":
        assert (response.status_code, response.json()) == (200, {"message": "success", "data": []})
    else:
        assert sent(response) == 1


@pytest.mark.parametrize(("scheduled", "tracked"), [("untracked", 0), ("tracked", 1)])
def test_scheduled_sends_have_analytics_from_their_time_if_tracked(scheduled: str, tracked: int) -> None:
    clock = FakeClock(NOW)
    state = SandboxState("k-0123456789", clock=clock, behaviours={"data_series_scheduled_sends": scheduled})
    in_an_hour = datetime.fromtimestamp(NOW + 3_600, tz=timezone.utc).isoformat()
    with BrazeSandbox(state=state) as sandbox:
        assert create(sandbox, {"campaign_id": API, "send_id": "later"}).status_code == 200
        body = {
            "campaign_id": API,
            "send_id": "later",
            "external_user_ids": ["u1"],
            "messages": email_message(),
            "schedule": {"time": in_an_hour},
        }
        assert sandbox_call(sandbox, "/messages/schedule/create", body).status_code == 201
        assert sent(series(sandbox, API, "later")) == 0  # not yet due
        clock.now += 2 * 3_600
        assert sent(series(sandbox, API, "later")) == tracked
        assert state.scheduled(API, "later") == {"u1": 1}
        assert state.deliveries(API, "later") == {}


def test_the_cli_takes_every_setting() -> None:
    from airflow_provider_braze.sandbox.__main__ import build_parser

    args = build_parser().parse_args(
        [
            "--send-tracking",
            "broadcast_only",
            "--send-id-quota",
            "attempts",
            "--company-time-zone",
            "Asia/Tokyo",
        ]
    )
    assert (args.send_tracking, args.send_id_quota, args.company_time_zone) == (
        "broadcast_only",
        "attempts",
        "Asia/Tokyo",
    )
    defaults = build_parser().parse_args([])
    assert {name: getattr(defaults, name) for name in UNDOCUMENTED_BEHAVIOURS} == DEFAULT_BEHAVIOURS
