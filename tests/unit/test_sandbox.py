"""The Braze sandbox over real HTTP on loopback: Braze's behaviour, quota, faults, control API, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeRateLimitError,
)
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.sandbox import BrazeSandbox, Faults, SandboxState
from tests.conftest import sandbox_call

CREATE = "POST /sends/id/create"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def post(
    sandbox: BrazeSandbox, body: Any, key: str | None = None, path: str = "/sends/id/create"
) -> requests.Response:
    return sandbox_call(sandbox, path, body, key=key)


# ---------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}],
)
def test_unauthorized(braze_sandbox: BrazeSandbox, headers: dict[str, str]) -> None:
    response = requests.post(
        braze_sandbox.url + "/sends/id/create",
        json={"campaign_id": "sandbox-api-campaign"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}  # the errors page's name for 401
    assert braze_sandbox.ledger() == []


def test_missing_permission_is_403(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.state.add_key("list-only-key", permissions=["campaigns.list"])
    response = post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"}, key="list-only-key")
    assert response.status_code == 403
    assert response.json() == {
        "message": "Access Denied",
        "errors": ["this API key does not have the sends.id.create permission"],
    }


def test_hook_reports_the_missing_permission(
    braze_sandbox: BrazeSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    braze_sandbox.state.add_key("list-only-key", permissions=["campaigns.list"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_LIMITED",
        json.dumps({"conn_type": "braze", "host": braze_sandbox.url, "password": "list-only-key"}),
    )
    hook = BrazeHook(braze_conn_id="braze_limited")
    assert hook.test_connection()[0] is True
    with pytest.raises(BrazeAuthError, match=r"lacks the 'sends\.id\.create' permission"):
        hook.create_send_id("sandbox-api-campaign")


# ---------------------------------------------------------------------------- /sends/id/create


@pytest.mark.parametrize(
    ("body", "message", "error"),
    [
        ("{not json", "Bad Request", "the body is not valid JSON"),
        ("[1, 2]", "Bad Request", "the body must be a JSON object"),
        ({}, "Bad Request", "campaign_id is required, as a string"),
        ({"campaign_id": 5}, "Bad Request", "campaign_id is required, as a string"),
        (
            {"campaign_id": "unknown-campaign"},
            "Invalid Campaign ID",
            "no campaign with ID 'unknown-campaign'",
        ),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": "x" * 65},
            "Bad Request",
            "send_id must be at most 64 characters",
        ),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": "été"},
            "Bad Request",
            "send_id must contain only ASCII characters",
        ),
        (
            {"campaign_id": "sandbox-api-campaign", "send_id": 7},
            "Bad Request",
            "send_id must be a non-empty string",
        ),
    ],
)
def test_validation_errors(braze_sandbox: BrazeSandbox, body: Any, message: str, error: str) -> None:
    """Braze's wording in ``message`` (the errors page's names), the detail in ``errors``."""
    response = post(braze_sandbox, body)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert response.json()["errors"] == [error]
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert response.headers["X-RateLimit-Remaining"] == "100"  # a rejected call uses no quota
    assert braze_sandbox.ledger() == []


def test_generated_and_custom_send_ids(braze_sandbox: BrazeSandbox) -> None:
    generated = post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    assert generated.status_code == 200
    send_id = generated.json()["send_id"]
    assert generated.json() == {"message": "success", "send_id": send_id}
    assert len(send_id) == 32
    assert send_id.isascii()

    custom = post(braze_sandbox, {"campaign_id": "sandbox-api-campaign", "send_id": "spring"})
    assert custom.json() == {"message": "success", "send_id": "spring"}
    assert custom.headers["X-RateLimit-Remaining"] == "98"

    ledger = braze_sandbox.ledger(CREATE)
    assert [e["response"]["send_id"] for e in ledger] == [send_id, "spring"]
    assert ledger[1]["request"] == {"campaign_id": "sandbox-api-campaign", "send_id": "spring"}
    assert ledger[1]["workspace"] == "sandbox-workspace"


@pytest.mark.parametrize(
    ("mode", "status", "remaining"), [("count", 200, "98"), ("idempotent", 200, "99"), ("refuse", 400, "99")]
)
def test_re_creating_a_send_id_follows_the_chosen_behaviour(
    braze_sandbox: BrazeSandbox, mode: str, status: int, remaining: str
) -> None:
    """Braze does not document it: each plausible behaviour is a setting."""
    braze_sandbox.state.set_behaviours(send_id_recreate=mode)
    body = {"campaign_id": "sandbox-api-campaign", "send_id": "spring"}
    assert post(braze_sandbox, body).status_code == 200
    again = post(braze_sandbox, body)
    assert again.status_code == status
    assert again.headers["X-RateLimit-Remaining"] == remaining
    if mode == "refuse":
        assert "already exists" in again.json()["errors"][0]


@pytest.mark.parametrize(("mode", "status"), [("refuse", 400), ("accept", 201)])
def test_a_send_with_a_send_id_never_created_follows_the_chosen_behaviour(
    braze_sandbox: BrazeSandbox, mode: str, status: int
) -> None:
    from airflow_provider_braze.sandbox import email_message
    from tests.conftest import sandbox_call

    braze_sandbox.state.set_behaviours(unknown_send_id=mode)
    body = {
        "campaign_id": "sandbox-api-campaign",
        "send_id": "never-created",
        "external_user_ids": ["u1"],
        "messages": email_message(),
    }
    assert sandbox_call(braze_sandbox, "/messages/send", body).status_code == status


def test_behaviours_are_checked_and_reset(braze_sandbox: BrazeSandbox) -> None:
    with pytest.raises(ValueError, match="must be one of count, idempotent, refuse"):
        braze_sandbox.state.set_behaviours(send_id_recreate="sometimes")
    answer = requests.put(
        f"{braze_sandbox.url}/_sandbox/behaviours", json={"unknown_send_id": "accept"}, timeout=10
    )
    assert answer.json()["unknown_send_id"] == "accept"
    braze_sandbox.reset()
    assert braze_sandbox.state.behaviours == {
        "send_id_recreate": "count",
        "send_id_recreate_wording": "already_exists",
        "send_id_quota": "successes",
        "send_id_quota_day": "utc_midnight",
        "unknown_send_id": "refuse",
        "send_tracking": "all_sends",
        "local_time_passed": "all_zones",
        "analytics_series": "window",
        "analytics_variation_key": "variation_name",
        "data_series_unknown_send_id": "refuse",
        "data_series_triggered_campaign": "refuse",
        "data_series_scheduled_sends": "untracked",
        "scheduled_broadcast_pool": "shared",
        "alias_send_to_existing_only": "refused",
    }


def test_daily_quota_and_its_reset() -> None:
    clock = FakeClock(1_790_000_000.0)  # 2026-09-21 14:13:20 UTC
    midnight = 1_790_035_200  # 2026-09-22 00:00:00 UTC
    with BrazeSandbox(state=SandboxState("k-0123456789", clock=clock, send_id_daily_limit=3)) as sandbox:
        answers = [
            post(sandbox, {"campaign_id": "sandbox-api-campaign", "send_id": f"s{i}"}) for i in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert {a.headers["X-RateLimit-Reset"] for a in answers} == {str(midnight)}
        assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
        assert "at most 3 send identifiers per workspace per day" in answers[3].json()["message"]
        assert len(sandbox.ledger()) == 3

        clock.now = midnight + 1.0
        next_day = post(sandbox, {"campaign_id": "sandbox-api-campaign", "send_id": "s3"})
        assert next_day.status_code == 200
        assert next_day.headers["X-RateLimit-Remaining"] == "2"


def test_hook_fails_at_once_when_the_quota_is_used_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(braze_module, "_sleep", sleeps.append)
    with BrazeSandbox(state=SandboxState("k-0123456789", send_id_daily_limit=1)) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", sandbox.connection_json())
        hook = BrazeHook()
        hook.create_send_id("sandbox-api-campaign", "first")
        with pytest.raises(BrazeRateLimitError, match="0 of 1 left, resets at") as err:
            hook.create_send_id("sandbox-api-campaign", "second")
    assert sleeps == []
    assert err.value.reset_at is not None
    assert err.value.reset_at.hour == 0


def test_campaigns_list(braze_sandbox: BrazeSandbox) -> None:
    response = requests.get(
        braze_sandbox.url + "/campaigns/list",
        headers={"Authorization": f"Bearer {braze_sandbox.api_key}"},
        timeout=10,
    )
    assert response.status_code == 200
    ids = [c["id"] for c in response.json()["campaigns"]]
    assert ids == ["sandbox-api-campaign", "sandbox-api-triggered-campaign"]
    assert response.headers["X-RateLimit-Limit"] == "250000"


def test_unknown_campaign_through_the_hook(braze_sandbox: BrazeSandbox) -> None:
    with pytest.raises(BrazeBadRequestError, match="Invalid Campaign ID") as err:
        BrazeHook().create_send_id("nope")
    assert err.value.errors == ["no campaign with ID 'nope'"]


# ---------------------------------------------------------------------------- faults


def test_latency(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(latency_ms=150)
    start = time.monotonic()
    assert post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"}).status_code == 200
    assert time.monotonic() - start >= 0.15


def test_injected_429_has_a_near_reset(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(rate_limit=1.0, rate_limit_reset_seconds=2)
    response = post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    assert response.status_code == 429
    assert 0 < int(response.headers["x-ratelimit-reset"]) - time.time() <= 4
    assert braze_sandbox.ledger() == []


@pytest.mark.parametrize(
    ("status", "content_type"), [(500, "application/json"), (502, "text/html"), (504, "text/html")]
)
def test_injected_5xx(braze_sandbox: BrazeSandbox, status: int, content_type: str) -> None:
    braze_sandbox.set_faults(server_error=1.0, server_error_statuses=[status])
    response = post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert braze_sandbox.ledger() == []


def test_drop_before_processing(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(drop_before=1.0)
    with pytest.raises(requests.ConnectionError):
        post(braze_sandbox, {"campaign_id": "sandbox-api-campaign", "send_id": "x"})
    assert braze_sandbox.ledger() == []


def test_drop_after_processing(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(drop_after=1.0)
    with pytest.raises(requests.ConnectionError):
        post(braze_sandbox, {"campaign_id": "sandbox-api-campaign", "send_id": "x"})
    assert [e["response"]["send_id"] for e in braze_sandbox.ledger()] == ["x"]


def test_hook_reports_a_drop_after_processing_as_ambiguous(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(drop_after=1.0)
    with pytest.raises(BrazeAmbiguousRequestError, match="may or may not have processed it"):
        BrazeHook().create_send_id("sandbox-api-campaign")
    assert len(braze_sandbox.ledger()) == 1  # Braze did create one: exactly what the error warns of


def test_hook_retries_through_faults_without_duplicates(
    braze_sandbox: BrazeSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(braze_module, "_sleep", lambda s: None)
    braze_sandbox.state.rng.seed(7)
    # Faults that leave no doubt (Braze processed nothing): a create is never repeated after a
    # lost answer, and a dropped connection looks the same as one dropped after processing.
    braze_sandbox.set_faults(
        server_error=0.3, server_error_statuses=[500, 502, 503], rate_limit=0.1, rate_limit_reset_seconds=0
    )
    hook = BrazeHook(max_retries=30, retry_budget=1000)
    created = [hook.create_send_id("sandbox-api-campaign", f"id-{i}") for i in range(20)]
    assert created == [f"id-{i}" for i in range(20)]
    assert [e["response"]["send_id"] for e in braze_sandbox.ledger()] == created


def test_faults_are_checked() -> None:
    with pytest.raises(ValueError, match="not between 0 and 1"):
        Faults(server_error=1.5)
    with pytest.raises(ValueError, match="5xx"):
        Faults(server_error_statuses=(404,))
    with pytest.raises(ValueError, match="unknown fault setting"):
        Faults.from_dict({"explode": 1})


# ---------------------------------------------------------------------------- control API


def test_control_api(braze_sandbox: BrazeSandbox) -> None:
    url = braze_sandbox.url
    assert requests.get(url + "/_sandbox/health", timeout=10).json() == {"status": "ok"}

    bad = requests.put(url + "/_sandbox/faults", json={"server_error": 2}, timeout=10)
    assert bad.status_code == 422
    faults = requests.put(url + "/_sandbox/faults", json={"drop_before": 1.0}, timeout=10)
    assert faults.json()["drop_before"] == 1.0
    assert requests.get(url + "/_sandbox/health", timeout=10).status_code == 200  # control calls: no faults
    requests.put(url + "/_sandbox/faults", json={}, timeout=10)

    assert requests.post(url + "/_sandbox/campaigns", json={"campaign_id": "c-new"}, timeout=10).ok
    assert requests.post(
        url + "/_sandbox/keys",
        json={"key": "second-key-1234", "permissions": ["sends.id.create"]},
        timeout=10,
    ).json() == {"workspace": "sandbox-workspace", "permissions": ["sends.id.create"]}
    assert post(braze_sandbox, {"campaign_id": "c-new", "send_id": "z"}, key="second-key-1234").ok

    ledger = requests.get(url + "/_sandbox/ledger", params={"endpoint": CREATE}, timeout=10).json()
    assert [e["response"]["send_id"] for e in ledger] == ["z"]

    assert requests.post(url + "/_sandbox/reset", timeout=10).json() == {"status": "reset"}
    assert braze_sandbox.ledger() == []
    assert post(braze_sandbox, {"campaign_id": "c-new"}).status_code == 400  # added campaigns are gone


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_sandbox(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_braze.sandbox",
            "--port",
            "0",
            "--api-key",
            "cli-key-0123456789",
            "--campaign",
            "cli-campaign",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")},
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the sandbox did not start"
        time.sleep(0.05)
    yield process, json.loads(ready.read_text())
    if process.poll() is None:
        process.kill()
        process.wait()


def test_cli_serves_and_stops_on_sigterm(cli_sandbox: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    process, info = cli_sandbox
    assert info["api_key"] == "cli-key-0123456789"
    assert info["url"].startswith("http://127.0.0.1:")
    response = requests.post(
        info["url"] + "/sends/id/create",
        json={"campaign_id": "cli-campaign", "send_id": "from-cli"},
        headers={"Authorization": "Bearer cli-key-0123456789"},
        timeout=10,
    )
    assert response.json() == {"message": "success", "send_id": "from-cli"}
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert f"Braze sandbox listening on {info['url']}" in output
    assert "API key: cli-key-0123456789" in output
    assert "export AIRFLOW_CONN_BRAZE_DEFAULT=" in output


def test_faults_limited_to_paths_and_a_count(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(
        server_error=1.0, server_error_statuses=[503], paths=["/sends/id/create"], max_faults=2
    )
    list_campaigns = sandbox_call(braze_sandbox, "/campaigns/list", method="GET")
    assert list_campaigns.status_code == 200  # another path: no fault
    statuses = [post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"}).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert braze_sandbox.state.faults.to_dict()["paths"] == ["/sends/id/create"]


def test_status_counts(braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.set_faults(rate_limit=1.0, max_faults=1, paths=["/sends/id/create"])
    post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    post(braze_sandbox, {"campaign_id": "nope"})
    braze_sandbox.set_faults(drop_before=1.0, max_faults=1)
    with pytest.raises(requests.ConnectionError):
        post(braze_sandbox, {"campaign_id": "sandbox-api-campaign"})
    counts = sandbox_call(braze_sandbox, "/_sandbox/statuses", method="GET").json()
    assert counts == {"/sends/id/create": {"429": 1, "200": 1, "400": 1, "0": 1}}


def test_cli_rate_limits_and_faults_do_not_mix() -> None:
    from airflow_provider_braze.sandbox.__main__ import build_parser

    args = build_parser().parse_args(["--rate-limit", "shared=300/5", "--p-429", "0.1"])
    assert args.rate_limits == [("shared", (300, 5))]
    assert args.rate_limit == 0.1
