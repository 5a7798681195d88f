"""The sandbox's send endpoints: Braze's validation, rate-limit buckets, dispatch IDs, deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_provider_braze.sandbox import BrazeSandbox, SandboxState, email_message
from tests.conftest import SOON
from tests.conftest import sandbox_call as call

EMAIL = email_message()
API = "sandbox-api-campaign"
TRIGGERED = "sandbox-api-triggered-campaign"


@pytest.fixture
def send_id(braze_sandbox: BrazeSandbox) -> str:
    response = call(braze_sandbox, "/sends/id/create", {"campaign_id": API, "send_id": "spring"})
    assert response.ok
    return "spring"


def test_send_records_each_recipient(braze_sandbox: BrazeSandbox, send_id: str) -> None:
    body = {
        "campaign_id": API,
        "send_id": send_id,
        "external_user_ids": ["u1", "u2"],
        "user_aliases": [{"alias_name": "n", "alias_label": "l"}],
        "messages": EMAIL,
    }
    response = call(braze_sandbox, "/messages/send", body)
    assert response.status_code == 201
    answer = response.json()
    assert answer == {"dispatch_id": answer["dispatch_id"], "message": "success", "send_id": "spring"}
    assert len(answer["dispatch_id"]) == 32
    assert response.headers["X-RateLimit-Limit"] == "250000"
    assert braze_sandbox.state.deliveries(API, send_id) == {"u1": 1, "u2": 1, "alias:l:n": 1}
    (entry,) = braze_sandbox.ledger("POST /messages/send")
    assert entry["request"] == body


def test_trigger_records_each_recipient(braze_sandbox: BrazeSandbox) -> None:
    body = {
        "campaign_id": TRIGGERED,
        "recipients": [
            {"external_user_id": "u1", "trigger_properties": {"a": 1}},
            {"email": "x@example.com", "prioritization": ["identified"]},
        ],
    }
    response = call(braze_sandbox, "/campaigns/trigger/send", body)
    assert response.status_code == 201
    assert braze_sandbox.state.deliveries(TRIGGERED) == {"u1": 1, "email:x@example.com": 1}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/messages/send",
            {"campaign_id": API, "external_user_ids": [f"u{i}" for i in range(51)], "messages": EMAIL},
            "The max number of external_ids and aliases per request was exceeded",
        ),
        (
            "/campaigns/trigger/send",
            {"campaign_id": TRIGGERED, "recipients": [{"external_user_id": f"u{i}"} for i in range(51)]},
            "The max number of external_ids and aliases per request was exceeded",
        ),
        (
            "/messages/send",
            {"campaign_id": API, "external_user_ids": ["u1"], "broadcast": True, "messages": EMAIL},
            "Bad Request",
        ),
        (
            "/campaigns/trigger/send",
            {"campaign_id": TRIGGERED, "recipients": [{"external_user_id": "u1"}], "broadcast": True},
            "Bad Request",
        ),
        ("/messages/send", {"campaign_id": API, "messages": EMAIL}, "No Recipients"),
        (
            "/messages/send",
            {"campaign_id": "nope", "external_user_ids": ["u1"], "messages": EMAIL},
            "Invalid Campaign ID",
        ),
        (
            "/messages/send",
            {"campaign_id": TRIGGERED, "external_user_ids": ["u1"], "messages": EMAIL},
            "Invalid Campaign ID",
        ),
        (
            "/campaigns/trigger/send",
            {"campaign_id": API, "recipients": [{"external_user_id": "u1"}]},
            "Invalid Campaign ID",
        ),
        ("/campaigns/trigger/send", {"recipients": [{"external_user_id": "u1"}]}, "Bad Request"),
        (
            "/messages/send",
            {"campaign_id": API, "send_id": "never-created", "external_user_ids": ["u1"], "messages": EMAIL},
            "Invalid send_id",
        ),
        ("/messages/send", {"campaign_id": API, "external_user_ids": ["u1"]}, "No message to send"),
        (
            "/campaigns/trigger/send",
            {"campaign_id": TRIGGERED, "recipients": [{"email": "a@b.c"}]},
            "Bad Request",
        ),
        (
            "/messages/schedule/create",
            {
                "campaign_id": API,
                "external_user_ids": ["u1"],
                "messages": EMAIL,
                "schedule": {"time": "soon"},
            },
            "Bad Request",
        ),
    ],
)
def test_braze_validation(braze_sandbox: BrazeSandbox, path: str, body: dict[str, Any], message: str) -> None:
    response = call(braze_sandbox, path, body)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert "X-RateLimit-Remaining" in response.headers
    assert braze_sandbox.state.deliveries() == {}


def test_send_id_of_another_campaign_is_refused(braze_sandbox: BrazeSandbox, send_id: str) -> None:
    braze_sandbox.state.add_campaign("other-campaign")
    body = {
        "campaign_id": "other-campaign",
        "send_id": send_id,
        "external_user_ids": ["u1"],
        "messages": EMAIL,
    }
    response = call(braze_sandbox, "/messages/send", body)
    assert response.status_code == 400
    assert response.json()["errors"] == ["send_id 'spring' was not created for campaign 'other-campaign'"]


def test_broadcast_uses_its_own_bucket_and_gets_a_send_id(braze_sandbox: BrazeSandbox) -> None:
    response = call(
        braze_sandbox,
        "/messages/send",
        {"campaign_id": API, "segment_id": "seg", "broadcast": True, "messages": EMAIL},
    )
    assert response.status_code == 201
    # Both broadcast limits count it; the headers show the tighter: 10 a minute per audience.
    assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("10", "9")
    assert len(response.json()["send_id"]) == 32  # Braze generates one for broadcasts


def test_broadcasts_are_limited_per_unique_audience_and_overall() -> None:
    """Braze: 250 a minute overall and 10 a minute per unique audience, whichever comes first."""
    state = SandboxState("k-0123456789", rate_limits={"broadcast": (25, 60)})
    with BrazeSandbox(state=state) as sandbox:

        def broadcast(segment: str, campaign: str = API) -> requests.Response:
            body = {"campaign_id": campaign, "segment_id": segment, "broadcast": True, "messages": EMAIL}
            if campaign != API:
                body = {"campaign_id": campaign, "broadcast": True}
                return call(sandbox, "/campaigns/trigger/send", body)
            return call(sandbox, "/messages/send", body)

        first = [broadcast("seg-a").status_code for _ in range(11)]
        assert first == [201] * 10 + [429]
        refused = broadcast("seg-a")
        assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"]) == ("10", "0")
        # Another segment, or the same segment of another campaign, is another audience...
        assert [broadcast("seg-b").status_code for _ in range(10)] == [201] * 10
        assert broadcast("seg-a", TRIGGERED).status_code == 201
        # ... until the overall limit (25 here) is reached.
        assert [broadcast(f"seg-{n}").status_code for n in range(5)] == [201, 201, 201, 201, 429]
        assert broadcast("seg-z").headers["X-RateLimit-Limit"] == "25"
        # Sends to listed users are in the shared hourly pool, not limited per audience.
        users = {"campaign_id": API, "external_user_ids": ["u1"], "messages": EMAIL}
        assert call(sandbox, "/messages/send", users).status_code == 201


def _wall_clock_in(days: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(days=days)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def test_schedules(braze_sandbox: BrazeSandbox) -> None:
    body = {
        "campaign_id": TRIGGERED,
        "recipients": [{"external_user_id": "u1"}],
        "schedule": {"time": _wall_clock_in(5), "in_local_time": True},
    }
    response = call(braze_sandbox, "/campaigns/trigger/schedule/create", body)
    assert response.status_code == 201
    assert set(response.json()) == {"dispatch_id", "schedule_id", "message"}
    assert braze_sandbox.state.scheduled(TRIGGERED) == {"u1": 1}
    assert braze_sandbox.state.deliveries() == {}


def test_shared_limit_is_configurable_and_enforced() -> None:
    state = SandboxState("k-0123456789", rate_limits={"shared": (3, 60)})
    with BrazeSandbox(state=state) as sandbox:
        body = {"campaign_id": API, "external_user_ids": ["u1"], "messages": EMAIL}
        answers = [call(sandbox, "/messages/send", body) for _ in range(4)]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert int(answers[0].headers["X-RateLimit-Reset"]) % 60 == 0  # windows align to the clock
        assert sandbox.state.deliveries() == {"u1": 3}
        assert requests.put(
            sandbox.url + "/_sandbox/rate_limits/shared", json={"limit": 10, "window_seconds": 60}, timeout=10
        ).ok
        assert call(sandbox, "/messages/send", body).status_code == 201


def test_unknown_rate_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rate limit"):
        SandboxState(rate_limits={"nope": (1, 1)})


def test_deliveries_control_endpoint(braze_sandbox: BrazeSandbox) -> None:
    call(
        braze_sandbox,
        "/messages/send",
        {"campaign_id": API, "external_user_ids": ["u1", "u2"], "messages": EMAIL},
    )
    counts = requests.get(
        braze_sandbox.url + "/_sandbox/deliveries", params={"campaign_id": API}, timeout=10
    ).json()
    assert counts == {"u1": 1, "u2": 1}


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ({"time": f"{SOON}T09:00:00Z", "in_local_time": True}, "do not provide time zone designators"),
        (
            {"time": f"{SOON}T09:00:00-05:00", "at_optimal_time": True},
            "do not provide time zone designators",
        ),
        # 13 hours ago here is still in the future nowhere: UTC-12 is at most 12 hours behind.
        ({"time": _wall_clock_in(-13 / 24), "in_local_time": True}, "has passed in all time zones"),
    ],
)
def test_local_and_optimal_time_follow_brazes_rules(
    braze_sandbox: BrazeSandbox, schedule: dict[str, Any], error: str
) -> None:
    body = {"campaign_id": TRIGGERED, "recipients": [{"external_user_id": "u1"}], "schedule": schedule}
    response = call(braze_sandbox, "/campaigns/trigger/schedule/create", body)
    assert response.status_code == 400
    assert response.json()["message"] == "Bad Request"
    assert error in response.json()["errors"][0]
    assert braze_sandbox.state.scheduled() == {}


def test_a_local_time_that_has_passed_here_but_not_everywhere_is_accepted(
    braze_sandbox: BrazeSandbox,
) -> None:
    body = {
        "campaign_id": TRIGGERED,
        "recipients": [{"external_user_id": "u1"}],
        "schedule": {"time": _wall_clock_in(-6 / 24), "in_local_time": True},
    }
    assert call(braze_sandbox, "/campaigns/trigger/schedule/create", body).status_code == 201


# ---------------------------------------------------------------------------- Braze's pools, headers, answers


def test_send_analytics_are_for_api_campaigns_only(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.state.send_ids[("sandbox-workspace", TRIGGERED, "t1")] = 0.0
    answer = call(
        braze_sandbox,
        "/sends/data_series",
        method="GET",
        params={"campaign_id": TRIGGERED, "send_id": "t1", "length": 3},
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "Invalid Campaign ID"
    assert "API campaigns only" in answer.json()["errors"][0]


def test_schedules_count_against_the_shared_pool_even_as_broadcasts() -> None:
    state = SandboxState("k-0123456789", rate_limits={"broadcast": (1, 60)})
    with BrazeSandbox(state=state) as sandbox:
        schedule = {"time": f"{SOON}T09:00:00Z"}
        body = {"campaign_id": TRIGGERED, "broadcast": True, "schedule": schedule}
        answers = [call(sandbox, "/campaigns/trigger/schedule/create", body) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 201]
        assert answers[-1].headers["X-RateLimit-Limit"] == "250000"
        # /messages/schedule/create needs a segment_id, users or an audience even as a broadcast.
        api_body = {
            "campaign_id": API,
            "segment_id": "seg",
            "broadcast": True,
            "schedule": schedule,
            "messages": EMAIL,
        }
        api_answers = [call(sandbox, "/messages/schedule/create", api_body) for _ in range(2)]
        assert [a.status_code for a in api_answers] == [201, 201]
        broadcast = {"campaign_id": TRIGGERED, "broadcast": True}
        assert [call(sandbox, "/campaigns/trigger/send", broadcast).status_code for _ in range(2)] == [
            201,
            429,
        ]


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/messages/send", "not-a-key", 401),
        ("/sends/data_series", "send-only", 403),
        ("/no/such/endpoint", None, 404),
    ],
)
def test_rate_limit_headers_are_on_every_answer(
    braze_sandbox: BrazeSandbox, path: str, key: str | None, status: int
) -> None:
    braze_sandbox.state.add_key("send-only", permissions=["messages.send"])
    method = "GET" if path == "/sends/data_series" else "POST"
    answer = call(braze_sandbox, path, {}, method=method, key=key)
    assert answer.status_code == status
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Date"):
        assert header in answer.headers


def test_campaigns_list_says_when_each_was_last_edited(braze_sandbox: BrazeSandbox) -> None:
    answer = call(braze_sandbox, "/campaigns/list", method="GET").json()
    edited = [c["last_edited"] for c in answer["campaigns"]]
    assert edited
    assert all(datetime.fromisoformat(text).tzinfo is not None for text in edited)


def test_successes_with_non_fatal_errors_are_braze_shaped(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(nonfatal_errors=1.0, paths=["/messages/send"], max_faults=1)
    body = {"campaign_id": API, "external_user_ids": ["u1"], "messages": EMAIL}
    first, second = call(braze_sandbox, "/messages/send", body), call(braze_sandbox, "/messages/send", body)
    assert (first.status_code, first.json()["message"], first.json()["errors"]) == (
        201,
        "success",
        ["u1 could not be messaged"],
    )
    assert "errors" not in second.json()
    assert braze_sandbox.state.deliveries() == {"u1": 2}


def test_scheduled_trigger_broadcasts_can_count_as_broadcasts() -> None:
    """Braze's pages disagree on /campaigns/trigger/schedule/create broadcasts: a setting."""
    state = SandboxState(
        "k-0123456789",
        rate_limits={"broadcast": (1, 60)},
        behaviours={"scheduled_broadcast_pool": "broadcast"},
    )
    with BrazeSandbox(state=state) as sandbox:
        body = {"campaign_id": TRIGGERED, "broadcast": True, "schedule": {"time": f"{SOON}T09:00:00Z"}}
        answers = [call(sandbox, "/campaigns/trigger/schedule/create", body) for _ in range(2)]
        assert [a.status_code for a in answers] == [201, 429]
        api_body = {
            "campaign_id": API,
            "segment_id": "seg",
            "broadcast": True,
            "schedule": body["schedule"],
            "messages": EMAIL,
        }
        assert call(sandbox, "/messages/schedule/create", api_body).status_code == 201  # always shared


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        (
            {"time": f"{SOON}T09:00:00", "in_local_time": "true"},
            "schedule.in_local_time must be true or false",
        ),
        (
            {"time": f"{SOON}T09:00:00Z", "in_local_time": 1},
            "schedule.in_local_time must be true or false",
        ),
        (
            {"time": f"{SOON}T09:00:00", "at_optimal_time": None},
            "schedule.at_optimal_time must be true or false",
        ),
        (
            {"time": f"{SOON}T09:00:00", "in_local_time": True, "at_optimal_time": True},
            "in_local_time and at_optimal_time cannot both be true",
        ),
        ({"time": f"{SOON}T09:00:00z", "in_local_time": True}, "do not provide time zone designators"),
        ({"time": f"{SOON}T09:00:00z", "at_optimal_time": True}, "do not provide time zone designators"),
    ],
)
def test_schedule_flags_are_booleans_and_exclusive(
    braze_sandbox: BrazeSandbox, schedule: dict[str, Any], error: str
) -> None:
    body = {"campaign_id": API, "external_user_ids": ["u1"], "messages": EMAIL, "schedule": schedule}
    answer = call(braze_sandbox, "/messages/schedule/create", body)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Bad Request"
    assert error in answer.json()["errors"][0]


def test_a_body_that_is_not_declared_json_is_refused(braze_sandbox: BrazeSandbox) -> None:
    """Braze documents ``Content-Type: application/json``; other types are refused (a stricter
    choice: the docs do not say how Braze answers them)."""
    import requests

    response = requests.post(
        braze_sandbox.url + "/messages/send",
        data='{"external_user_ids": ["u1"]}',
        headers={"Authorization": f"Bearer {braze_sandbox.api_key}", "Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "Bad Request",
        "errors": ["the Content-Type must be application/json"],
    }


def test_rate_limited_answers_use_the_errors_page_wording(braze_sandbox: BrazeSandbox) -> None:
    """errors.md names 429 "Rate Limited"."""
    braze_sandbox.state.set_rate_limit("shared", 1, 3600)
    body = {"external_user_ids": ["u1"], "messages": EMAIL}
    answers = [call(braze_sandbox, "/messages/send", body) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 429]
    assert answers[-1].json()["message"] == "Rate Limited"


def test_the_ledger_counts_one_inbox_once_however_its_address_is_written(braze_sandbox: BrazeSandbox) -> None:
    """The sandbox names recipients with the client's one identity: a second send to the same
    inbox in another case is a second delivery to the same person, which an exactly-once check
    on the ledger must see."""
    for address in ("Ada@Example.com", "ada@example.com "):
        recipient = {"email": address, "prioritization": ["identified"]}
        body = {"campaign_id": TRIGGERED, "recipients": [recipient]}
        assert call(braze_sandbox, "/campaigns/trigger/send", body).status_code == 201
    assert braze_sandbox.state.deliveries(TRIGGERED) == {"email:ada@example.com": 2}
