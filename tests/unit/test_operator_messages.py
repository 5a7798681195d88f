"""The send operators against the real sandbox (in this process), called through execute()."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError, BrazeDeliveryStoppedError
from airflow_provider_braze.exceptions import BrazeCheckpointError, BrazeValidationError
from airflow_provider_braze.operators.messages import (
    ScheduleMessagesOperator,
    ScheduleTriggeredCampaignOperator,
    SendMessagesOperator,
    SendTriggeredCampaignOperator,
)
from airflow_provider_braze.sandbox import BrazeSandbox, email_message
from tests.conftest import SOON

API = "sandbox-api-campaign"
TRIGGERED = "sandbox-api-triggered-campaign"
EMAIL = email_message()


@pytest.fixture
def sandbox(braze_sandbox: BrazeSandbox) -> BrazeSandbox:
    for campaign in (API, TRIGGERED):
        braze_sandbox.state.send_ids[("sandbox-workspace", campaign, "sid")] = 0.0
    return braze_sandbox


def ti(run_id: str = "run-1") -> mock.MagicMock:
    return mock.MagicMock(dag_id="dag", task_id="send", run_id=run_id, map_index=-1)


def run(op: Any, task_instance: mock.MagicMock | None = None) -> dict[str, Any]:
    return op.execute({"ti": task_instance or ti()})  # type: ignore[no-any-return]


def send_op(tmp_path: Path, recipients: Any, **kwargs: Any) -> SendMessagesOperator:
    kwargs.setdefault("campaign_id", API)
    kwargs.setdefault("send_id", "sid")
    kwargs.setdefault("checkpoint", str(tmp_path))
    return SendMessagesOperator(
        task_id="send",
        recipients=recipients,
        messages=EMAIL,
        progress_interval=0.5,
        **kwargs,
    )


def users(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 50, 51, 10_001])
def test_every_recipient_exactly_once(sandbox: BrazeSandbox, tmp_path: Path, count: int) -> None:
    summary = run(send_op(tmp_path, users(count), concurrency=8))
    assert sandbox.state.deliveries(API, "sid") == Counter(users(count))
    requests = sandbox.ledger("POST /messages/send")
    assert len(requests) == math.ceil(count / 50)
    assert all(len(r["request"]["external_user_ids"]) <= 50 for r in requests)
    assert summary["accepted"] == count
    assert summary["complete"] is True
    assert summary["dispatch_count"] == len(requests)


def test_summary_goes_to_xcom_and_the_checkpoint_stops_a_rerun(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    task_instance = ti()
    op = send_op(tmp_path, users(120))
    summary = run(op, task_instance)
    task_instance.xcom_push.assert_called_once_with(key="summary", value=summary)
    assert summary["checkpoint"].startswith(f"checkpoint folder {tmp_path}, records starting with")
    rerun = run(send_op(tmp_path, users(120)))
    assert rerun["already_complete"] is True
    assert len(sandbox.ledger("POST /messages/send")) == 3


def test_csv_file_of_trigger_recipients(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    path.write_text(
        "external_user_id,trigger_properties.first_name\n" + "".join(f"u{i},N{i}\n" for i in range(75))
    )
    op = SendTriggeredCampaignOperator(
        task_id="send",
        campaign_id=TRIGGERED,
        send_id="sid",
        recipients=f"file://{path}",
        trigger_properties={"season": "spring"},
        checkpoint=str(tmp_path / "cp"),
    )
    summary = run(op)
    assert summary["recipients"] == 75
    # Batches travel concurrently, so the ledger's order is not the file's: find batch 0.
    (first,) = [
        e["request"]
        for e in sandbox.ledger("POST /campaigns/trigger/send")
        if e["request"]["recipients"][0]["external_user_id"] == "u0"
    ]
    assert first["recipients"][0] == {"external_user_id": "u0", "trigger_properties": {"first_name": "N0"}}
    assert first["trigger_properties"] == {"season": "spring"}
    assert first["send_id"] == "sid"
    assert sandbox.state.deliveries(TRIGGERED, "sid") == Counter(users(75))


def test_a_bad_row_fails_before_anything_is_sent(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    path = tmp_path / "audience.jsonl"
    path.write_text("".join(f'"u{i}"\n' for i in range(300)) + "{broken\n")
    with pytest.raises(BrazeValidationError, match=r"audience\.jsonl line 301 is not valid JSON"):
        run(send_op(tmp_path, str(path)))
    assert sandbox.ledger() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"send_id": "é"}, "non-ASCII"),
        ({"send_id": "x" * 65}, "at most 64"),
        ({"campaign_id": ""}, "campaign_id is empty"),
        ({"broadcast": True}, "broadcast=True cannot be combined"),
        ({"concurrency": 99}, "concurrency must be a whole number between 1 and 32"),
        # Options given as text (a template's output) are refused, never read as truthy.
        ({"concurrency": "4"}, "concurrency must be a whole number between 1 and 32, got '4'"),
        ({"concurrency": True}, "concurrency must be a whole number"),
        ({"max_refused_batches": -1}, "max_refused_batches must be a whole number, not negative"),
        ({"max_refused_batches": "10"}, "max_refused_batches must be a whole number"),
        ({"allow_duplicate_recipients": "false"}, "allow_duplicate_recipients must be True or False"),
        ({"at_least_once": "false"}, "at_least_once must be True or False, got 'false'"),
        ({"broadcast": "false"}, "broadcast must be True or False, got 'false'"),
        ({"override_frequency_capping": "false"}, "override_frequency_capping must be True or False"),
        # Options that cannot apply are refused, not dropped.
        ({"recipients_format": "csv"}, "recipients_format applies to a recipient file"),
        (
            {"checkpoint": None, "checkpoint_retention": 86_400 * 7},
            "checkpoint_retention has nothing to prune",
        ),
    ],
)
def test_bad_arguments_send_nothing(
    sandbox: BrazeSandbox, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        run(send_op(tmp_path, users(10), **kwargs))
    assert sandbox.ledger() == []


def test_no_recipients_and_no_broadcast(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    with pytest.raises(BrazeValidationError, match="pass broadcast=True"):
        run(send_op(tmp_path, None, segment_id="seg"))


def test_broadcast_is_one_request(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    summary = run(send_op(tmp_path, None, segment_id="seg", broadcast=True, send_id=None))
    (entry,) = sandbox.ledger("POST /messages/send")
    assert entry["request"]["segment_id"] == "seg"
    assert entry["request"]["broadcast"] is True
    assert summary["dispatch_count"] == 1


def test_batches_in_doubt_fail_the_task_with_a_report(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    # The first 2 send requests die before Braze processes them; the operator cannot tell.
    sandbox.set_faults(drop_before=1.0, paths=["/messages/send"], max_faults=2)
    task_instance = ti()
    with pytest.raises(BrazeDeliveryIncompleteError) as err:
        run(send_op(tmp_path, users(1_000)), task_instance)
    summary = err.value.summary
    assert summary["in_doubt"] == 100
    text = str(err.value)
    assert "are in doubt" in text
    assert "in doubt, batch" in text
    assert "set at_least_once=True to resend them" in text
    task_instance.xcom_push.assert_called_once_with(key="summary", value=summary)
    delivered = sandbox.state.deliveries(API, "sid")
    assert max(delivered.values()) == 1
    reported = {r for b in summary["in_doubt_details"] for r in b["recipients"]}
    assert set(users(1_000)) - set(delivered) == reported  # nobody lost silently

    sandbox.set_faults()
    with pytest.raises(BrazeDeliveryIncompleteError):  # a retry does not resend them
        run(send_op(tmp_path, users(1_000)))
    assert max(sandbox.state.deliveries(API, "sid").values()) == 1

    final = run(send_op(tmp_path, users(1_000), at_least_once=True))
    assert final["complete"] is True
    assert sandbox.state.deliveries(API, "sid") == Counter(users(1_000))  # they had not arrived
    assert final["resent_in_doubt"] == summary["in_doubt"]


def test_on_kill_stops_promptly_and_the_retry_finishes(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    sandbox.set_faults(latency_ms=20)
    op = send_op(tmp_path, users(20_000), concurrency=2)
    outcome: list[BaseException] = []

    def execute() -> None:
        try:
            run(op)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=execute)
    worker.start()
    while len(sandbox.ledger()) < 10:
        time.sleep(0.01)
    started = time.monotonic()
    op.on_kill()
    worker.join(10)
    assert time.monotonic() - started < 2
    assert isinstance(outcome[0], BrazeDeliveryStoppedError)
    sent = len(sandbox.ledger())
    assert sent < 400

    sandbox.set_faults()
    summary = run(send_op(tmp_path, users(20_000), concurrency=8))
    assert summary["complete"] is True
    assert sandbox.state.deliveries(API, "sid") == Counter(users(20_000))


def test_schedule_operators(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    summary = run(
        ScheduleMessagesOperator(
            task_id="send",
            campaign_id=API,
            send_id="sid",
            recipients=users(60),
            messages=EMAIL,
            schedule=f"{SOON}T18:00:00+01:00",
            checkpoint=str(tmp_path / "a"),
        )
    )
    assert len(summary["schedule_ids"]) == 2
    assert sandbox.ledger("POST /messages/schedule/create")[0]["request"]["schedule"] == {
        "time": f"{SOON}T17:00:00Z"
    }
    summary = run(
        ScheduleTriggeredCampaignOperator(
            task_id="send",
            campaign_id=TRIGGERED,
            broadcast=True,
            schedule={"time": f"{SOON}T17:00:00", "at_optimal_time": True},
            checkpoint=str(tmp_path / "b"),
        )
    )
    assert len(summary["schedule_ids"]) == 1
    assert sandbox.state.scheduled(API, "sid") == Counter(users(60))


def test_bad_schedule_fails_before_sending(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    op = ScheduleMessagesOperator(
        task_id="send",
        campaign_id=API,
        recipients=users(3),
        messages=EMAIL,
        schedule="tomorrow",
        checkpoint=None,
    )
    with pytest.raises(BrazeValidationError, match="not an ISO-8601"):
        run(op)
    assert sandbox.ledger() == []


@pytest.mark.parametrize("schedule", [None, "None", "  "])
@pytest.mark.parametrize("kind", ["messages", "triggered"])
def test_a_schedule_that_rendered_to_nothing_never_sends_now(
    sandbox: BrazeSandbox, tmp_path: Path, schedule: Any, kind: str
) -> None:
    """A schedule operator whose schedule is None (a template or XCom that gave nothing) would
    otherwise make its request a send now while saying it scheduled."""
    op: Any
    if kind == "messages":
        op = ScheduleMessagesOperator(
            task_id="send",
            campaign_id=API,
            recipients=users(3),
            messages=EMAIL,
            schedule=schedule,
            checkpoint=None,
        )
    else:
        op = ScheduleTriggeredCampaignOperator(
            task_id="send", campaign_id=TRIGGERED, recipients=users(3), schedule=schedule, checkpoint=None
        )
    with pytest.raises(BrazeValidationError, match="schedule is required"):
        run(op)
    assert sandbox.ledger() == []


def test_template_fields() -> None:
    assert set(SendMessagesOperator.template_fields) == {
        "campaign_id",
        "send_id",
        "recipients",
        "exclude_recipients",
        "messages",
        "segment_id",
        "audience",
    }
    assert set(SendTriggeredCampaignOperator.template_fields) == {
        "campaign_id",
        "send_id",
        "recipients",
        "exclude_recipients",
        "trigger_properties",
        "audience",
    }
    assert "schedule" in ScheduleMessagesOperator.template_fields
    assert "schedule" in ScheduleTriggeredCampaignOperator.template_fields


# ---------------------------------------------------------------------------- the summary on every path


def _kill_after(op: Any, sandbox: BrazeSandbox, sends: int) -> None:
    def watch() -> None:
        while len(sandbox.ledger("POST /messages/send")) < sends:
            time.sleep(0.005)
        op.on_kill()

    threading.Thread(target=watch, daemon=True).start()


def _leave_work_for_a_retry(
    sandbox: BrazeSandbox, folder: Path, monkeypatch: pytest.MonkeyPatch, task_instance: Any = None
) -> None:
    """A first try of 200 recipients whose first request fails (503, no retries): work is left."""
    sandbox.set_faults(server_error=1.0, server_error_statuses=[503], paths=["/messages/send"], max_faults=1)
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", sandbox.connection_json(max_retries=0))
    with pytest.raises(BrazeDeliveryIncompleteError):
        run(send_op(folder, users(200)), task_instance)


#: How each send ends, and the error it ends with.
ENDINGS = {
    "auth failure": "BrazeAuthError",
    "too many refusals": "BrazeBadRequestError",
    "killed": "BrazeDeliveryStoppedError",
    "bad row": "BrazeValidationError",
    "bad argument": "BrazeValidationError",
    "checkpoint unreadable": "BrazeCheckpointError",
    "changed recipients": "BrazeValidationError",
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_summary_is_pushed_on_every_way_a_send_ends(
    sandbox: BrazeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    recipients: Any = users(2_000)
    kwargs: dict[str, Any] = {}
    if ending == "auth failure":
        sandbox.state.add_key("send-only", permissions=[])
        monkeypatch.setenv(
            "AIRFLOW_CONN_BRAZE_DEFAULT",
            sandbox.connection_json().replace(sandbox.api_key, "send-only"),
        )
    elif ending == "too many refusals":
        recipients = users(1_000)  # Braze refuses every batch: the campaign does not exist
        kwargs["campaign_id"] = "no-such-campaign"
        kwargs["send_id"] = None
        kwargs["max_refused_batches"] = 2
    elif ending == "killed":
        sandbox.set_faults(latency_ms=20)
    elif ending == "bad row":
        path = tmp_path / "audience.jsonl"
        path.write_text('"u1"\n{broken\n')
        recipients = str(path)
    elif ending == "bad argument":
        kwargs["concurrency"] = 99
    elif ending == "checkpoint unreadable":
        _leave_work_for_a_retry(sandbox, tmp_path, monkeypatch)
        for record in tmp_path.glob("*.json"):
            record.write_text("{not json")
    elif ending == "changed recipients":
        _leave_work_for_a_retry(sandbox, tmp_path, monkeypatch)
        recipients = users(201)

    kwargs.setdefault("concurrency", 2)
    op = send_op(tmp_path, recipients, **kwargs)
    if ending == "killed":
        _kill_after(op, sandbox, 5)
    task_instance = ti()
    with pytest.raises(Exception) as err:  # noqa: PT011  (each ending has its own error)
        run(op, task_instance)
    assert type(err.value).__name__ == ENDINGS[ending]
    task_instance.xcom_push.assert_called_once()
    pushed = task_instance.xcom_push.call_args.kwargs
    assert pushed["key"] == "summary"
    summary = pushed["value"]
    assert summary["complete"] is False
    assert ENDINGS[ending] in summary["error"]
    assert summary["campaign_id"] == kwargs.get("campaign_id", API)
    if ending in ("killed", "auth failure", "too many refusals"):
        assert summary["accepted"] == len(sandbox.state.deliveries())


def test_a_success_answered_with_an_unreadable_body_is_reported_not_resent(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(unreadable_success=1.0, paths=["/messages/send"], max_faults=2)
    with pytest.raises(BrazeDeliveryIncompleteError, match="are in doubt") as err:
        run(send_op(tmp_path, users(500)))
    assert err.value.summary["in_doubt"] == 100
    assert sandbox.state.deliveries(API, "sid") == Counter(users(500))  # Braze did process them
    with pytest.raises(BrazeDeliveryIncompleteError):  # a retry does not resend them
        run(send_op(tmp_path, users(500)))
    assert sandbox.state.deliveries(API, "sid") == Counter(users(500))


def test_duplicate_recipients_in_a_file_are_sent_once(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    path.write_text("external_user_id\n" + "".join(f"u{i % 90}\n" for i in range(120)))
    summary = run(send_op(tmp_path, str(path)))
    assert sandbox.state.deliveries(API, "sid") == Counter(users(90))
    assert (summary["recipients_read"], summary["recipients"], summary["duplicates_skipped"]) == (120, 90, 30)


def test_duplicates_are_sent_when_allowed(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    # The second u1 falls in the second batch: Braze dedupes a user listed twice in one request
    # (recipient_object.md), and so does the sandbox.
    summary = run(send_op(tmp_path, [*users(50), "u1"], allow_duplicate_recipients=True))
    assert sandbox.state.deliveries(API, "sid")["u1"] == 2
    assert (summary["duplicates"], summary["duplicates_skipped"]) == (1, 0)


def test_duplicates_allowed_within_one_request_are_refused_before_sending(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    """Braze delivers a user listed twice in one request once: with allow_duplicate_recipients the
    second entry would be lost unreported. Refused before anything is sent, naming it."""
    recipients = [*users(10), "u3", *users(200)[10:], {"external_user_id": "u120"}]
    with pytest.raises(BrazeValidationError) as caught:
        run(send_op(tmp_path, recipients, allow_duplicate_recipients=True))
    assert str(caught.value) == (
        "allow_duplicate_recipients=True, but some recipients are listed twice within one request of "
        "50 (entries 1 to 50, then 51 to 100, and so on): u3 (entries 1 to 50). Braze delivers a user "
        "listed twice in one request once, so the second entry would be lost. Order the recipients so "
        "that a repeat falls in another request, or send the repeats in another task. Nothing was sent."
    )
    assert sandbox.state.deliveries() == {}


@pytest.mark.parametrize("retention", ["30d", timedelta(hours=2)])
def test_checkpoint_retention_is_checked(sandbox: BrazeSandbox, tmp_path: Path, retention: Any) -> None:
    with pytest.raises(BrazeValidationError, match="checkpoint_retention"):
        run(send_op(tmp_path, users(3), checkpoint_retention=retention))
    assert sandbox.ledger() == []


@pytest.mark.parametrize("location", ["Variable", "none", "relative/dir", "~/cp", "", 12345])
def test_a_checkpoint_no_other_worker_could_reach_is_refused(
    sandbox: BrazeSandbox, tmp_path: Path, location: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    op = SendMessagesOperator(
        task_id="send", campaign_id=API, recipients=users(3), messages=EMAIL, checkpoint=location
    )
    with pytest.raises(BrazeValidationError, match="checkpoint must be 'variable'"):
        run(op)
    assert sandbox.ledger() == []
    assert list(tmp_path.iterdir()) == []


def test_a_retry_whose_checkpoint_folder_is_gone_sends_nothing(
    sandbox: BrazeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mounted"
    first = ti()
    first.try_number = 1
    _leave_work_for_a_retry(sandbox, folder, monkeypatch, first)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()  # an unmounted volume, or a worker that does not share the folder
    retry = ti()
    retry.try_number = 2
    sent = len(sandbox.ledger("POST /messages/send"))
    with pytest.raises(BrazeCheckpointError, match="does not exist"):
        run(send_op(folder, users(200)), retry)
    assert len(sandbox.ledger("POST /messages/send")) == sent


def test_a_summary_pushed_for_bad_input_has_every_key(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    task_instance = ti()
    with pytest.raises(BrazeValidationError):
        run(send_op(tmp_path, users(3), concurrency=0), task_instance)
    good = ti()
    run(send_op(tmp_path, users(3)), good)
    failed = task_instance.xcom_push.call_args.kwargs["value"]
    succeeded = good.xcom_push.call_args.kwargs["value"]
    assert set(failed) >= set(succeeded) - {"already_complete"}
    assert failed["accepted"] is None


def test_the_summary_of_an_incomplete_send_has_its_error(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    sandbox.set_faults(drop_after=1.0, paths=["/messages/send"], max_faults=1)
    task_instance = ti()
    with pytest.raises(BrazeDeliveryIncompleteError):
        run(send_op(tmp_path, users(100), concurrency=1), task_instance)
    pushed = task_instance.xcom_push.call_args.kwargs["value"]
    assert pushed["error"].startswith(
        "BrazeDeliveryIncompleteError: 50 recipients accepted by Braze, but 50 (in 1 batch) are in doubt"
    )


def test_a_broadcast_in_doubt_says_so(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    sandbox.set_faults(drop_after=1.0, paths=["/messages/send"], max_faults=1)
    with pytest.raises(BrazeDeliveryIncompleteError, match="The broadcast request is in doubt"):
        run(send_op(tmp_path, None, segment_id="seg", broadcast=True, send_id=None))


def test_a_spreadsheet_csv_with_a_byte_order_mark_is_read(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    path.write_bytes(b"\xef\xbb\xbfexternal_user_id\r\nu1\r\nu2\r\n")
    summary = run(send_op(tmp_path, str(path)))
    assert summary["recipients"] == 2


@pytest.mark.parametrize("location", ["file://relative/folder", "memory://anywhere/cp"])
def test_urls_that_are_not_shared_folders_are_refused(sandbox: BrazeSandbox, location: str) -> None:
    op = SendMessagesOperator(
        task_id="send", campaign_id=API, recipients=users(3), messages=EMAIL, checkpoint=location
    )
    with pytest.raises(BrazeValidationError, match="checkpoint must be 'variable'"):
        run(op)
    assert sandbox.ledger() == []


def test_a_file_url_for_localhost_means_the_absolute_folder(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    summary = run(send_op(tmp_path, users(10), checkpoint=f"file://localhost{tmp_path}/cp"))
    # Written as a local folder: write then rename, never in place.
    assert summary["checkpoint"].startswith(f"checkpoint folder {tmp_path}/cp,")
    assert list((tmp_path / "cp").glob("*__done_*.json"))


def test_non_fatal_errors_reach_the_summary_and_the_send_completes(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(nonfatal_errors=1.0, paths=["/messages/send"], max_faults=3)
    summary = run(send_op(tmp_path, users(500), concurrency=1))
    assert summary["complete"] is True
    assert summary["batches_with_non_fatal_errors"] == 3
    assert summary["non_fatal_errors"] == [
        "u0 could not be messaged",
        "u50 could not be messaged",
        "u100 could not be messaged",
    ]
    assert sandbox.state.deliveries(API, "sid") == Counter(users(500))


def test_schedule_messages_refuses_an_argument_it_cannot_honour() -> None:
    """/messages/schedule/create calls it override_messaging_limits: the send endpoint's name is
    refused at once, never silently dropped."""
    from airflow_provider_braze.exceptions import BrazeValidationError
    from airflow_provider_braze.operators.messages import ScheduleMessagesOperator

    with pytest.raises(
        BrazeValidationError, match=r"takes override_messaging_limits .* not override_frequency"
    ):
        ScheduleMessagesOperator(
            task_id="s",
            campaign_id="c",
            messages={},
            schedule=f"{SOON}T00:00:00Z",
            override_frequency_capping=True,
        )
    op = ScheduleMessagesOperator(
        task_id="s",
        campaign_id="c",
        messages={},
        schedule=f"{SOON}T00:00:00Z",
        override_messaging_limits=True,
    )
    assert op.override_messaging_limits is True


@pytest.mark.parametrize("scheduled", [False, True])
def test_the_request_is_built_and_checked_once_per_send(
    sandbox: BrazeSandbox, tmp_path: Path, scheduled: bool
) -> None:
    """Messages and schedule are checked once, before the first batch; each batch only adds its
    recipients to the same body."""
    from airflow_provider_braze.hooks import braze as braze_module

    kwargs: dict[str, Any] = {"schedule": f"{SOON}T18:00:00Z"} if scheduled else {}
    operator = ScheduleMessagesOperator if scheduled else SendMessagesOperator
    op = operator(
        task_id="send",
        campaign_id=API,
        send_id="sid",
        recipients=users(170),
        messages=EMAIL,
        checkpoint=str(tmp_path),
        **kwargs,
    )
    with (
        mock.patch.object(
            braze_module, "validate_messages", wraps=braze_module.validate_messages
        ) as messages,
        mock.patch.object(
            braze_module, "normalize_schedule", wraps=braze_module.normalize_schedule
        ) as schedule,
    ):
        summary = run(op)
    assert summary["accepted"] == 170
    assert messages.call_count == 1
    assert schedule.call_count == (1 if scheduled else 0)
    requests = [e["request"] for e in sandbox.ledger()]
    assert len(requests) == 4
    shared = [{k: v for k, v in r.items() if k != "external_user_ids"} for r in requests]
    assert all(body == shared[0] for body in shared)
    assert sorted(u for r in requests for u in r["external_user_ids"]) == sorted(users(170))


def test_a_duplicate_with_a_text_flag_is_not_sent_twice(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    op = send_op(tmp_path, ["u3", "u3"], allow_duplicate_recipients="false")
    with pytest.raises(BrazeValidationError, match="allow_duplicate_recipients must be True or False"):
        run(op)
    assert sandbox.state.deliveries() == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((4, "15", 10), "progress_interval must be a positive number of seconds, got '15'"),
        ((4, float("nan"), 10), "progress_interval must be a positive number"),
        ((4, True, 10), "progress_interval must be a positive number"),
        ((4.0, 15, 10), "concurrency must be a whole number"),
        ((4, 15, 2.5), "max_refused_batches must be a whole number"),
    ],
)
def test_delivery_options_are_checked_with_their_types(options: tuple[Any, Any, Any], message: str) -> None:
    from airflow_provider_braze.delivery.engine import check_delivery_options

    with pytest.raises(BrazeValidationError, match=message):
        check_delivery_options(*options)


def test_a_batch_refused_for_one_recipient_is_sent_without_it_exactly_once(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    """Issue 16, break 9: one batch refused with 400 left its 49 other people unsent on every
    retry, removing the bad row was refused, and the advised new DAG run sent everyone twice.
    The error's advice now is exclude_recipients, and following it sends the rest once."""
    from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError
    from airflow_provider_braze.exceptions import BrazeBadRequestError

    original = SendMessagesOperator._send_batch

    def refuse_u75(self: SendMessagesOperator, batch: list[Any]) -> dict[str, Any]:
        if "u75" in batch:
            raise BrazeBadRequestError("Braze answered 400: invalid user", status_code=400)
        return original(self, batch)

    with mock.patch.object(SendMessagesOperator, "_send_batch", refuse_u75):
        with pytest.raises(BrazeDeliveryIncompleteError) as caught:
            run(send_op(tmp_path, users(3_000)))
        text = str(caught.value)
        assert "leave them out with exclude_recipients (keep recipients as it is)" in text
        assert caught.value.summary["not_sent"] == 50
        # Retried as is: refused again, nobody else is sent twice.
        retry = ti()
        retry.try_number = 2
        with pytest.raises(BrazeDeliveryIncompleteError):
            run(send_op(tmp_path, users(3_000)), retry)
        retry.try_number = 3
        summary = run(send_op(tmp_path, users(3_000), exclude_recipients=["u75", "u2999"]), retry)
    assert summary["complete"] is True
    assert summary["excluded"] == 1  # u2999's batch was sent before it was excluded
    assert summary["accepted"] == 2_999
    delivered = sandbox.state.deliveries(API, "sid")
    assert delivered == Counter(u for u in users(3_000) if u != "u75")


@pytest.mark.parametrize(
    ("exclude", "message"),
    [
        (
            "{tmp}/left-out.txt",
            r"Cannot tell the format of exclude_recipients file .*left-out\.txt: name it "
            r"\.csv, \.jsonl or \.ndjson\.$",
        ),
        ("{tmp}/missing.csv", r"Cannot open exclude_recipients file .*missing\.csv"),
        ({"u1": 1}, r"exclude_recipients must be a list, an iterable or a file path, got dict\."),
        (["u1", "  "], r"exclude_recipients item 1 is an empty external user ID\."),
    ],
)
def test_exclude_recipients_errors_name_that_argument(
    sandbox: BrazeSandbox, tmp_path: Path, exclude: Any, message: str
) -> None:
    """An error in exclude_recipients names exclude_recipients, not recipients, and never advises
    recipients_format (which does not apply to it); nothing is sent."""
    if isinstance(exclude, str):
        exclude = exclude.format(tmp=tmp_path)
    with pytest.raises(BrazeValidationError, match=message):
        run(send_op(tmp_path, users(100), exclude_recipients=exclude))
    assert sandbox.state.deliveries() == {}


def test_the_exclusion_log_counts_distinct_listed_recipients_and_the_summary_those_found(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    """Adversarial pass 2: "Leaving out 3 recipients" for u2, u2 and nobody, when one was left out."""
    op = send_op(tmp_path, users(100), exclude_recipients=["u2", "u2", "nobody"])
    log = mock.MagicMock()
    with mock.patch.object(SendMessagesOperator, "log", new_callable=mock.PropertyMock, return_value=log):
        summary = run(op)
    (call,) = [c for c in log.warning.call_args_list if "exclude_recipients" in c.args[0]]
    assert call.args[0] % call.args[1:] == (
        "exclude_recipients lists 2 recipients (strings are external user IDs), each left out of every "
        "batch still to send: u2, nobody. The summary's 'excluded' counts those found in a batch."
    )
    assert summary["excluded"] == 1
    assert summary["accepted"] == 99
    assert sandbox.state.deliveries(API, "sid")["u2"] == 0
