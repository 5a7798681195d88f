"""Rehearsals: every check a send makes, the first request as it would go out, nothing sent."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.exceptions import BrazeCheckpointError, BrazeValidationError
from airflow_provider_braze.operators.messages import (
    ScheduleMessagesOperator,
    ScheduleTriggeredCampaignOperator,
    SendMessagesOperator,
    SendTriggeredCampaignOperator,
)
from airflow_provider_braze.operators.send_id import REHEARSAL_SEND_ID, CreateSendIdOperator
from airflow_provider_braze.rate_limit import RateLimitStatus, estimate_send_seconds
from airflow_provider_braze.sandbox import BrazeSandbox, email_message
from tests.conftest import SOON

API = "sandbox-api-campaign"
TRIGGERED = "sandbox-api-triggered-campaign"
CANARY = "canary-rehearsal-key-5e1f0c"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    with BrazeSandbox(api_key=CANARY) as running:
        monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", running.connection_json())
        running.state.send_ids[("sandbox-workspace", API, "sid")] = 0.0
        yield running


def context(params: dict[str, Any] | None = None, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    ti = mock.MagicMock(dag_id="dag", task_id="send", run_id="run-1", map_index=-1, try_number=1)
    return {"ti": ti, "params": params or {}, "dag_run": mock.MagicMock(conf=conf or {})}


def logged(log: mock.MagicMock) -> str:
    return "\n".join(c.args[0] % c.args[1:] for c in log.method_calls if c.args)


def execute(op: Any, ctx: dict[str, Any]) -> tuple[Any, str]:
    log = mock.MagicMock()
    with mock.patch.object(type(op), "log", new_callable=mock.PropertyMock, return_value=log):
        result = op.execute(ctx)
    return result, logged(log)


def send_op(tmp_path: Path, recipients: Any = None, **kwargs: Any) -> SendMessagesOperator:
    kwargs.setdefault("campaign_id", API)
    kwargs.setdefault("send_id", "sid")
    kwargs.setdefault("checkpoint", str(tmp_path / "checkpoints"))
    kwargs.setdefault("messages", email_message())
    return SendMessagesOperator(
        task_id="send",
        recipients=[f"u{i}" for i in range(120)] if recipients is None else recipients,
        **kwargs,
    )


def sends(sandbox: BrazeSandbox) -> list[Any]:
    return [e for e in sandbox.ledger() if e["endpoint"] != "GET /campaigns/list"]


def test_a_rehearsal_checks_everything_logs_the_first_request_and_sends_nothing(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    (tmp_path / "checkpoints").mkdir()
    summary, log = execute(send_op(tmp_path, dry_run=True), context())
    assert sends(sandbox) == []
    assert sandbox.state.deliveries() == {}
    assert summary["dry_run"] is True
    assert (summary["recipients"], summary["batches_to_send"], summary["accepted"], summary["complete"]) == (
        120,
        3,
        0,
        False,
    )
    # The first request exactly as a real run sends it.
    real, _ = execute(send_op(tmp_path / "real"), context())
    first_sent = sandbox.ledger("POST /messages/send")[0]["request"]
    assert summary["first_request"] == first_sent
    assert real["dry_run"] is False
    assert f"POST /messages/send {json.dumps(first_sent, ensure_ascii=False)}" in log
    assert "Rehearsal (dry run): nothing is sent to Braze." in log
    assert (
        "It would send POST /messages/send to 120 recipients in 3 requests, 4 at a time; estimated at least"
        in log
    )
    assert "Rate limit from one GET /campaigns/list: " in log
    assert "readable and writable, no earlier tries" in log
    assert "Authorization: Bearer ***" in log
    assert CANARY not in log
    assert CANARY not in json.dumps(summary)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [".braze-checkpoints"]  # no probe


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (context(params={"braze_dry_run": True}), True),
        (context(conf={"braze_dry_run": True}), True),
        (context(params={"braze_dry_run": False}), False),
        (context(), False),
    ],
)
def test_the_run_level_switch_rehearses_every_send(
    sandbox: BrazeSandbox, tmp_path: Path, ctx: dict[str, Any], expected: bool
) -> None:
    summary, _ = execute(send_op(tmp_path), ctx)
    assert summary["dry_run"] is expected
    assert bool(sends(sandbox)) is not expected


def test_a_run_level_rehearsal_wins_over_dry_run_false(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    summary, _ = execute(send_op(tmp_path, dry_run=False), context(conf={"braze_dry_run": True}))
    assert summary["dry_run"] is True
    assert sends(sandbox) == []


@pytest.mark.parametrize("value", ["true", 1, "yes", None])
def test_a_run_level_switch_that_is_not_a_boolean_sends_nothing(
    sandbox: BrazeSandbox, tmp_path: Path, value: Any
) -> None:
    op = send_op(tmp_path)
    with pytest.raises(BrazeValidationError, match="The run's braze_dry_run must be true or false"):
        op.execute(context(conf={"braze_dry_run": value}))
    assert sends(sandbox) == []
    pushed = op_summary(context_with_push := context(conf={"braze_dry_run": value}), op)
    assert pushed["dry_run"] is None
    del context_with_push


def op_summary(ctx: dict[str, Any], op: Any) -> dict[str, Any]:
    with pytest.raises(BrazeValidationError):
        op.execute(ctx)
    return ctx["ti"].xcom_push.call_args.kwargs["value"]  # type: ignore[no-any-return]


def test_dry_run_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="dry_run must be True or False, got 'true'"):
        SendMessagesOperator(task_id="s", campaign_id=API, recipients=["u"], messages={}, dry_run="true")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipients": ["ok", 42]}, "recipient 1 must be an external user ID string or an object"),
        ({"send_id": "é"}, "non-ASCII"),
        ({"messages": {"email": {"app_id": "a"}}}, "email"),
        ({"concurrency": "4"}, "concurrency must be a whole number"),
    ],
)
def test_a_rehearsal_fails_where_the_real_send_would(
    sandbox: BrazeSandbox, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        execute(send_op(tmp_path, dry_run=True, **kwargs), context())
    assert sends(sandbox) == []


def test_a_checkpoint_store_that_cannot_be_written_fails_the_rehearsal(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BrazeCheckpointError):
        execute(send_op(tmp_path, dry_run=True, checkpoint=str(blocker / "checkpoints")), context())
    assert sends(sandbox) == []


def test_a_rehearsal_after_a_completed_send_says_a_real_run_sends_nothing(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    execute(send_op(tmp_path), context())
    before = len(sends(sandbox))
    _, log = execute(send_op(tmp_path, dry_run=True), context())
    assert "this send is already complete, a real run would send nothing" in log
    assert len(sends(sandbox)) == before


def test_a_key_without_campaigns_list_still_rehearses(
    sandbox: BrazeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.state.add_key("send-only-key-77", permissions=["messages.send", "sends.id.create"])
    conn = {**json.loads(sandbox.connection_json()), "password": "send-only-key-77"}
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", json.dumps(conn))
    summary, log = execute(send_op(tmp_path, dry_run=True), context())
    assert summary["dry_run"] is True
    assert summary["rate_limit"].endswith("UTC")  # Braze's refusal carried the headers
    assert "Rate limit from the headers of a refused GET /campaigns/list: " in log
    assert "send-only-key-77" not in log


def test_without_any_headers_the_rate_limit_is_unknown(
    braze_conn: str, requests_mock: Any, tmp_path: Path
) -> None:
    from tests.conftest import REST_ENDPOINT

    requests_mock.get(f"{REST_ENDPOINT}/campaigns/list", status_code=403, json={"message": "no"})
    summary, log = execute(send_op(tmp_path, dry_run=True), context())
    assert summary["rate_limit"] is None
    assert "Rate limit from unknown: GET /campaigns/list failed" in log
    assert "the rate limit is unknown" in log
    assert [r.method for r in requests_mock.request_history] == ["GET"]


@pytest.mark.parametrize(
    ("cls", "kwargs", "endpoint"),
    [
        (
            SendTriggeredCampaignOperator,
            {"campaign_id": TRIGGERED, "recipients": ["u1"]},
            "POST /campaigns/trigger/send",
        ),
        (
            ScheduleMessagesOperator,
            {
                "campaign_id": API,
                "recipients": ["u1"],
                "messages": email_message(),
                "schedule": f"{SOON}T00:00:00Z",
            },
            "POST /messages/schedule/create",
        ),
        (
            ScheduleTriggeredCampaignOperator,
            {"campaign_id": TRIGGERED, "recipients": ["u1"], "schedule": f"{SOON}T00:00:00Z"},
            "POST /campaigns/trigger/schedule/create",
        ),
        (
            SendMessagesOperator,
            {"campaign_id": API, "segment_id": "seg", "broadcast": True, "messages": email_message()},
            "POST /messages/send",
        ),
    ],
)
def test_every_send_operator_rehearses(
    sandbox: BrazeSandbox, tmp_path: Path, cls: Any, kwargs: dict[str, Any], endpoint: str
) -> None:
    op = cls(task_id="send", checkpoint=str(tmp_path), dry_run=True, **kwargs)
    summary, log = execute(op, context())
    assert sends(sandbox) == []
    assert summary["dry_run"] is True
    assert summary["endpoint"] == endpoint
    assert summary["batches_to_send"] == 1
    assert f"The first request, as it would go out (Authorization: Bearer ***): {endpoint} " in log


def test_create_send_id_rehearses_without_using_the_quota(sandbox: BrazeSandbox) -> None:
    ctx = context(conf={"braze_dry_run": True})
    op = CreateSendIdOperator(task_id="create", campaign_id=API, send_id="picks-1")
    created, log = execute(op, ctx)
    # Always the placeholder, which a real send refuses (issue 16, break 5).
    assert created == REHEARSAL_SEND_ID
    assert sandbox.ledger() == []
    assert (
        "Rehearsal (dry run): send ID 'picks-1' for campaign 'sandbox-api-campaign' is not created; "
        "downstream tasks get the placeholder 'dry-run-send-id'." in log
    )
    generated, _ = execute(CreateSendIdOperator(task_id="create", campaign_id=API, dry_run=True), context())
    assert generated == REHEARSAL_SEND_ID
    with pytest.raises(BrazeValidationError, match="non-ASCII"):
        execute(CreateSendIdOperator(task_id="create", campaign_id=API, send_id="é", dry_run=True), context())


def test_analytics_tasks_skip_in_a_rehearsal_run() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_provider_braze.operators.analytics import CompareSendsOperator, GetSendAnalyticsOperator
    from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

    ctx = context(params={"braze_dry_run": True})
    for op in (
        GetSendAnalyticsOperator(task_id="a", campaign_id=API, send_id="s"),
        SendAnalyticsSensor(task_id="w", campaign_id=API, send_id="s"),
        CompareSendsOperator(task_id="c", campaign_id=API, sends={"control": "s", "a": "t"}),
    ):
        with pytest.raises(AirflowSkipException, match="Rehearsal \\(braze_dry_run\\): nothing was sent"):
            op.execute(ctx)


# --------------------------------------------------------------------------- the estimate

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc).timestamp()


def status(remaining: int, limit: int, reset_in: float) -> RateLimitStatus:
    return RateLimitStatus(limit, remaining, datetime.fromtimestamp(NOW + reset_in, tz=timezone.utc))


def test_the_estimate_is_the_larger_of_round_trips_and_the_rate_limit() -> None:
    # Round trips: 100 requests x 0.2 s / 4 at a time = 5 s; the limit allows them sooner.
    seconds, how = estimate_send_seconds(
        100, concurrency=4, status=status(250_000, 250_000, 3600), now=NOW, latency=0.2
    )
    assert seconds == pytest.approx(5.0)
    assert "250000 of the window's requests left" in how
    # 1,000 left for 1,800 s: spread evenly, 500 requests take 900 s.
    seconds, _ = estimate_send_seconds(
        500, concurrency=8, status=status(1_000, 250_000, 1_800), now=NOW, latency=0.1
    )
    assert seconds == pytest.approx(900.0)
    # More than is left, at Braze's size of limit: this window, then whole hourly windows.
    seconds, how = estimate_send_seconds(
        625_000, concurrency=8, status=status(0, 250_000, 600), now=NOW, latency=0.1
    )
    assert seconds == pytest.approx(600 + 3600 * 2 + 0.5 * 3600)
    assert "then 250000 per 3600 s window" in how
    # A small limit (a sandbox, 5 per 2 s): windows taken as long as the time to the reset, so
    # the figure stays a lower bound (it used to assume an hour and say 3.2 h for a 9 s send).
    seconds, how = estimate_send_seconds(20, concurrency=8, status=status(0, 5, 2), now=NOW, latency=0.01)
    assert seconds == pytest.approx(2 + 4 * 2)
    assert "then 5 per 2 s window" in how
    seconds, how = estimate_send_seconds(30, concurrency=2, status=None, now=NOW)
    assert seconds == pytest.approx(3.0)
    assert how.endswith("(assumed); the rate limit is unknown")


def test_a_resumed_send_is_rehearsed_as_it_would_resume(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """A rehearsal plans with the delivery engine itself: what the checkpoint says is done is
    not in the rehearsed requests, and the first request is the one a real retry sends first."""
    from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError
    from airflow_provider_braze.exceptions import BrazeServerError
    from airflow_provider_braze.hooks.braze import BrazeHook

    users = [f"u{i}" for i in range(150)]
    original = BrazeHook.send_prepared
    calls = []

    def first_batch_only(self: Any, prepared: Any, recipients: Any = None) -> Any:
        calls.append(1)
        if len(calls) > 1:  # Braze refuses the rest with a 503: nothing processed, not sent
            raise BrazeServerError("Braze answered 503", status_code=503, endpoint="POST /messages/send")
        return original(self, prepared, recipients)

    with (
        mock.patch.object(BrazeHook, "send_prepared", first_batch_only),
        pytest.raises(BrazeDeliveryIncompleteError),
    ):
        execute(send_op(tmp_path, users, concurrency=1), context())
    assert len(sandbox.ledger("POST /messages/send")) == 1

    retry = context()
    retry["ti"].try_number = 2
    rehearsal, log = execute(send_op(tmp_path, users, dry_run=True), retry)
    assert (rehearsal["batches_to_send"], rehearsal["recipients_to_send"]) == (2, 100)
    assert "a real run resumes from 1 earlier try: 1 batch done, 0 in doubt (not resent), 2 to send" in log
    execute(send_op(tmp_path, users), retry)
    sent_by_the_retry = sandbox.ledger("POST /messages/send")[1:]
    assert rehearsal["first_request"] == sent_by_the_retry[0]["request"]
    assert rehearsal["first_request"]["external_user_ids"][0] == "u50"
    assert len(sent_by_the_retry) == rehearsal["batches_to_send"]


def test_a_rehearsal_refuses_what_the_checkpoint_refuses(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """A completed send rehearsed with other recipients fails as the real run would."""
    execute(send_op(tmp_path, [f"u{i}" for i in range(60)]), context())
    before = len(sends(sandbox))
    changed = send_op(tmp_path, [f"u{i}" for i in range(59)] + ["someone-new"], dry_run=True)
    with pytest.raises(BrazeValidationError, match="recipients differ from the ones it sent to"):
        execute(changed, context())
    other_send = send_op(tmp_path, [f"u{i}" for i in range(60)], send_id="sid-2", dry_run=True)
    sandbox.state.send_ids[("sandbox-workspace", API, "sid-2")] = 0.0
    with pytest.raises(BrazeValidationError, match="belongs to a different send"):
        execute(other_send, context())
    assert len(sends(sandbox)) == before
    summary, log = execute(send_op(tmp_path, [f"u{i}" for i in range(60)], dry_run=True), context())
    assert (summary["batches_to_send"], summary["already_complete"], summary["first_request"]) == (
        0,
        True,
        None,
    )
    assert "It would send nothing: the send is complete." in log


def test_a_key_braze_refuses_fails_the_rehearsal(braze_conn: str, requests_mock: Any, tmp_path: Path) -> None:
    from airflow_provider_braze.exceptions import BrazeAuthError
    from tests.conftest import REST_ENDPOINT

    requests_mock.get(f"{REST_ENDPOINT}/campaigns/list", status_code=401, json={"message": "Invalid API key"})
    with pytest.raises(BrazeAuthError, match="401"):
        execute(send_op(tmp_path, dry_run=True), context())
    assert [r.method for r in requests_mock.request_history] == ["GET"]


def test_an_unreachable_braze_fails_the_rehearsal(
    braze_conn: str, requests_mock: Any, tmp_path: Path
) -> None:
    import requests

    from airflow_provider_braze.exceptions import BrazeTransportError
    from tests.conftest import REST_ENDPOINT

    requests_mock.get(f"{REST_ENDPOINT}/campaigns/list", exc=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(BrazeTransportError):
        execute(send_op(tmp_path, dry_run=True), context())


def test_a_rehearsal_never_creates_a_missing_checkpoint_folder(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """A retry that finds its folder missing (unmounted?) refuses to start; a rehearsal must
    not create the folder and so let the real retry send everything again."""
    folder = tmp_path / "mnt" / "checkpoints"
    retry = context()
    retry["ti"].try_number = 2
    with pytest.raises(BrazeCheckpointError, match="does not exist"):
        execute(send_op(tmp_path, checkpoint=str(folder), dry_run=True), retry)
    assert not folder.exists()
    with pytest.raises(BrazeCheckpointError, match="does not exist"):
        execute(send_op(tmp_path, checkpoint=str(folder)), retry)
    assert sends(sandbox) == []
    # A first try creates it, rehearsal or not (there is nothing earlier for it to hide), so a
    # real try 2 after a rehearsal as try 1 is not refused for ever (issue 16, break 5).
    summary, log = execute(send_op(tmp_path, checkpoint=str(folder), dry_run=True), context())
    assert summary["batches_to_send"] == 3
    assert "readable and writable" in log
    assert folder.is_dir()
    assert [p.name for p in folder.iterdir()] == [".braze-checkpoints"]
    summary, _ = execute(send_op(tmp_path, checkpoint=str(folder)), retry)
    assert summary["complete"] is True
    assert len(sends(sandbox)) == 3


def test_a_rehearsal_then_a_real_try_sends_everyone_once(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """Issue 16, break 5: a rehearsal as try 1, then real tries with a checkpoint folder that did
    not exist yet: every later try used to be refused (1,000 never sent)."""
    folder = tmp_path / "new" / "checkpoints"
    execute(send_op(tmp_path, checkpoint=str(folder), dry_run=True), context())
    retry = context()
    retry["ti"].try_number = 2
    summary, _ = execute(send_op(tmp_path, checkpoint=str(folder)), retry)
    assert summary["complete"] is True
    assert summary["accepted"] == summary["recipients"] > 0


def test_a_real_send_refuses_a_rehearsals_placeholder_send_id(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """Issue 16, break 5: CreateSendIdOperator(dry_run=True) upstream of a real send handed its
    placeholder on, and the real send went out under it."""
    op = send_op(tmp_path, send_id="dry-run-send-id")
    with pytest.raises(BrazeValidationError, match="'dry-run-send-id', the placeholder a rehearsing"):
        execute(op, context())
    assert sends(sandbox) == []
    # In a rehearsal it is what is expected.
    summary, _ = execute(send_op(tmp_path, send_id="dry-run-send-id", dry_run=True), context())
    assert summary["dry_run"] is True
