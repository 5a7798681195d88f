"""Run the example pipeline with ``dag.test()`` against the Braze sandbox on loopback."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from airflow_provider_braze.send_ids import run_key, run_send_id
from tests.conftest import AIRFLOW_HOME, REPO_ROOT
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

DAG_ID = "braze_send_id_pipeline"
CANARY_KEY = "canary-pipeline-key-9b4d2e7f1a"


@pytest.fixture
def canary_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[BrazeSandbox]:
    """A sandbox whose key is distinctive enough to search for in every output."""
    with BrazeSandbox(api_key=CANARY_KEY) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", sandbox.connection_json())
        yield sandbox


def load_example_dag() -> Any:
    return load_dag(REPO_ROOT / "example_dags", DAG_ID)


def rendered_fields(run_id: str) -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(RTIF.rendered_fields).where(RTIF.run_id == run_id)).all())


def all_log_files() -> str:
    return "\n".join(p.read_text(errors="replace") for p in (AIRFLOW_HOME / "logs").rglob("*") if p.is_file())


def test_example_dag_imports_cleanly() -> None:
    dag = load_example_dag()
    assert set(dag.task_ids) == {
        "generate_content",
        "create_send_id",
        "build_audience",
        "send",
        "log_summary",
        "wait_for_analytics",
        "fetch_analytics",
        "log_channel_summary",
    }
    assert dag.get_task("send").upstream_task_ids == {"create_send_id", "build_audience"}
    assert dag.get_task("log_summary").upstream_task_ids == {"send"}
    assert dag.get_task("wait_for_analytics").upstream_task_ids == {"send", "create_send_id"}
    assert dag.get_task("fetch_analytics").upstream_task_ids == {"wait_for_analytics", "create_send_id"}
    assert dag.get_task("wait_for_analytics").deferrable is True
    assert dag.get_task("create_send_id").braze_conn_id == "braze_default"


def test_pipeline_creates_sends_waits_and_stores_analytics(
    airflow_db: None,
    canary_sandbox: BrazeSandbox,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    dag = load_example_dag()
    logical_date = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)

    dag_run = dag.test(logical_date=logical_date, run_conf={"analytics_path": f"file://{tmp_path}"})

    assert dag_run.state == "success"
    (entry,) = canary_sandbox.ledger("POST /sends/id/create")
    send_id = entry["response"]["send_id"]
    assert entry["request"] == {"campaign_id": "sandbox-api-campaign", "send_id": send_id}
    # Of this run (the day it was due, a digest of its run ID), whatever its logical date.
    assert send_id == run_send_id("picks", dag_run)

    # Every generated recipient got the message exactly once, tagged with that send ID.
    audience = {f"example-user-{n:06d}" for n in range(3_000)}
    assert canary_sandbox.state.deliveries("sandbox-api-campaign", send_id) == dict.fromkeys(audience, 1)
    sends = canary_sandbox.ledger("POST /messages/send")
    assert len(sends) == 60
    assert sends[0]["request"]["messages"]["email"] == {
        "app_id": "sandbox-app",
        "from": "Sandbox Picks <picks@example.com>",
        "subject": "Your picks for Monday 02 November",
        "body": "Three new arrivals we think you will like.",
        "message_variation_id": "sandbox-api-campaign-email",
    }
    assert {s["request"]["send_id"] for s in sends} == {send_id}

    values = xcoms(dag_run.run_id, DAG_ID)
    assert values[("generate_content", "send_id")] == send_id
    assert values[("create_send_id", "return_value")] == send_id
    assert values[("create_send_id", "send_id")] == send_id
    assert values[("create_send_id", "campaign_id")] == "sandbox-api-campaign"
    summary = values[("send", "return_value")]
    assert values[("send", "summary")] == summary
    assert (summary["send_id"], summary["accepted"], summary["dispatch_count"]) == (send_id, 3_000, 60)
    assert summary["complete"] is True
    line = (
        f"Braze send ID {send_id}: 3000 of 3000 recipients accepted in 60 requests "
        "(in doubt: 0, not sent: 0)."
    )
    assert values[("log_summary", "return_value")] == line

    # The analytics of exactly that send, stored as CSV, and a per-channel summary.
    assert values[("wait_for_analytics", "return_value")]["sent"] == 3_000
    path = values[("fetch_analytics", "return_value")]
    assert path == f"file://{tmp_path}/{DAG_ID}-{run_key(dag_run)}.csv"
    rows = list(csv.DictReader((tmp_path / f"{DAG_ID}-{run_key(dag_run)}.csv").open()))
    # The sandbox's default series covers the whole window, zeros on the days before the send.
    assert len(rows) == 14
    sent_rows = [
        (r["send_id"], r["channel"], r["variation_name"], r["sent"]) for r in rows if r["sent"] != "0"
    ]
    email_variant = canary_sandbox.state.variation_name("sandbox-api-campaign", "sandbox-api-campaign-email")
    assert sent_rows == [(send_id, "email", email_variant, "3000")]
    assert rows[-1]["direct_opens"] == ""  # email has opens, not direct opens
    assert int(rows[-1]["unique_opens"]) <= int(rows[-1]["delivered"]) <= 3_000
    assert values[("fetch_analytics", "channel_totals")]["email"]["sent"] == 3_000
    channel_lines = values[("log_channel_summary", "return_value")]
    assert channel_lines[0] == f"Braze analytics for send ID {send_id} ({path}):"
    assert channel_lines[1].startswith("  email: 3000 sent, ")
    assert " unique opens, " in channel_lines[1]

    output = capfd.readouterr()
    # Log lines may reach a stream an earlier test captured; pytest's log capture sees them all.
    text = output.out + output.err + caplog.text
    assert line in text
    assert channel_lines[1] in text
    assert "Daily send ID quota: 99 of 100 left" in text
    assert "Braze send finished: 60 batches / 3000 of 3000 recipients (100%) accepted" in text
    # The secret canary: the key is nowhere a user or another task could see it.
    assert CANARY_KEY not in text
    assert CANARY_KEY not in all_log_files()
    assert CANARY_KEY not in repr(values)
    assert CANARY_KEY not in json.dumps(rendered_fields(dag_run.run_id), default=str)


def test_pipeline_fails_clearly_for_an_unknown_campaign(
    airflow_db: None,
    canary_sandbox: BrazeSandbox,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dag = load_example_dag()
    dag_run = dag.test(run_conf={"campaign_id": "no-such-campaign"})

    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {
        "generate_content": "success",
        "build_audience": "success",
        "create_send_id": "failed",
        "send": "upstream_failed",
        "log_summary": "upstream_failed",
        "wait_for_analytics": "upstream_failed",
        "fetch_analytics": "upstream_failed",
        "log_channel_summary": "upstream_failed",
    }
    assert canary_sandbox.ledger() == []
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    assert "BrazeBadRequestError" in text
    assert "Braze answered 400 Bad Request to POST /sends/id/create: Invalid Campaign ID." in text
    assert CANARY_KEY not in text


def test_key_is_masked_in_task_logs_under_dag_test(
    airflow_db: None,
    canary_sandbox: BrazeSandbox,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even a task that logs the key by mistake does not leak it: the hook registered it as a secret."""
    dag = load_dag(Path(__file__).parent / "dags", "braze_masking_check")

    assert dag.test().state == "success"
    output = capfd.readouterr()
    # stdlib records may reach a stream an earlier test captured; pytest's log capture sees them all.
    text = output.out + output.err + caplog.text
    assert "logged key: ***" in text
    assert "stdlib logged key: ***" in text
    assert CANARY_KEY not in text
    assert CANARY_KEY not in all_log_files()


def test_airflow_dags_test_cli(airflow_db: None, canary_sandbox: BrazeSandbox) -> None:
    """The same pipeline through `airflow dags test`, as a user would run it."""
    airflow_cli = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow_cli), "dags", "test", DAG_ID],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "False"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (entry,) = canary_sandbox.ledger("POST /sends/id/create")
    send_id = entry["response"]["send_id"]
    assert f"Braze send ID {send_id}: 3000 of 3000 recipients accepted" in result.stdout + result.stderr
    assert CANARY_KEY not in result.stdout + result.stderr


#: Every value of every undocumented behaviour, each in at least one run (not every combination:
#: the settings are independent where the pipeline meets them). Every refusal wording meets the
#: send ID task's retry (its first answer is lost in every run).
BEHAVIOUR_RUNS = [
    {
        "send_id_recreate": "count",
        "unknown_send_id": "refuse",
        "analytics_series": "send_days",
        "send_id_quota": "attempts",
        "local_time_passed": "company_zone",
        "data_series_triggered_campaign": "empty",
    },
    {
        "send_id_recreate": "idempotent",
        "analytics_variation_key": "variation_api_id",
        "send_id_quota_day": "rolling",
        "data_series_unknown_send_id": "empty",
        "data_series_triggered_campaign": "tracked",
        "alias_send_to_existing_only": "false_only",
    },
    {
        "send_id_recreate": "refuse",
        "send_id_recreate_wording": "already_exists",
        "analytics_series": "window",
        "scheduled_broadcast_pool": "broadcast",
        "data_series_scheduled_sends": "tracked",
    },
    {
        "send_id_recreate": "refuse",
        "send_id_recreate_wording": "bad_request",
        "unknown_send_id": "accept",
        "analytics_series": "send_days",
        "analytics_variation_key": "variation_api_id",
        "send_id_quota": "attempts",
    },
    {
        "send_id_recreate": "refuse",
        "send_id_recreate_wording": "invalid_send_id",
        "send_id_quota_day": "rolling",
    },
    # Braze keeps send analytics only for broadcasts: the pipeline's send to listed users never
    # has any, and its sensor fails saying so (the README says what to do).
    {
        "send_tracking": "broadcast_only",
        "send_id_recreate": "refuse",
        "send_id_recreate_wording": "bad_request",
    },
]


def runs_id(behaviours: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in behaviours.items())


def test_the_behaviour_runs_cover_every_value() -> None:
    from airflow_provider_braze.sandbox.state import DEFAULT_BEHAVIOURS, UNDOCUMENTED_BEHAVIOURS

    for name, values in UNDOCUMENTED_BEHAVIOURS.items():
        assert {run.get(name, DEFAULT_BEHAVIOURS[name]) for run in BEHAVIOUR_RUNS} == set(values), name


def untracked_failure(send_id: str) -> tuple[str, str]:
    """The two ends of the sensor's failure under ``broadcast_only`` (the age between them varies)."""
    from airflow_provider_braze.sensors.send_analytics import MAYBE_UNTRACKED

    return (
        f"Braze has no analytics for send {send_id!r} of campaign 'sandbox-api-campaign', sent to a list "
        "of users ",
        f"(past min_age 0:00:00 plus no_data_grace 0:00:00). {MAYBE_UNTRACKED}",
    )


@pytest.mark.parametrize("behaviours", BEHAVIOUR_RUNS, ids=runs_id)
def test_pipeline_under_each_behaviour_braze_leaves_undocumented(
    airflow_db: None,
    braze_sandbox: BrazeSandbox,
    tmp_path: Path,
    behaviours: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Re-creating a send ID (and the words of a refusal), which requests count toward the quota,
    sending with an ID never created, what is tracked and the shape of the analytics series are
    not documented: the sandbox offers each plausible behaviour, and the pipeline works under
    every one (its send ID task's first answer is lost, so its retry meets the behaviour; its
    sensor and analytics meet the series' shape), or, where Braze tracks only broadcasts, fails
    at its sensor saying why, at once. No grace for missing analytics: under all_sends the
    sensor's first check sees them (no false alarm)."""
    braze_sandbox.state.set_behaviours(**behaviours)
    braze_sandbox.set_faults(drop_after=1.0, paths=["/sends/id/create"], max_faults=1)
    dag = load_example_dag()
    for task in dag.tasks:
        task.retries, task.retry_delay = 2, datetime.resolution  # the retry meets the behaviour
    dag_run = dag.test(
        run_conf={"audience_size": 200, "analytics_path": f"file://{tmp_path}", "analytics_grace_seconds": 0}
    )
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    (task,) = [t for t in dag_run.get_task_instances() if t.task_id == "create_send_id"]
    assert task.try_number == 2
    values = xcoms(dag_run.run_id, DAG_ID)
    send_id = values[("create_send_id", "return_value")]
    audience = {f"example-user-{n:06d}" for n in range(200)}
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", send_id) == dict.fromkeys(audience, 1)
    if behaviours.get("send_tracking") == "broadcast_only":
        assert dag_run.state == "failed"
        assert states == {
            "generate_content": "success",
            "create_send_id": "success",
            "build_audience": "success",
            "send": "success",
            "log_summary": "success",
            "wait_for_analytics": "failed",
            "fetch_analytics": "upstream_failed",
            "log_channel_summary": "upstream_failed",
        }
        (sensor_try,) = [t for t in dag_run.get_task_instances() if t.task_id == "wait_for_analytics"]
        assert sensor_try.try_number == 1  # failed at once: no retries, no waiting out the timeout
        output = capfd.readouterr()
        text = output.out + output.err + caplog.text
        assert "BrazeAnalyticsUntrackedError" in text
        for part in untracked_failure(send_id):
            assert part in text
        return
    assert dag_run.state == "success", states
    # The sensor and the analytics read the send's own day, whatever the series looks like.
    assert (
        values[("wait_for_analytics", "return_value")]["sent"],
        values[("wait_for_analytics", "return_value")]["days"],
    ) == (200, 1)
    path = values[("fetch_analytics", "return_value")].removeprefix("file://")
    with open(path, encoding="utf-8") as stored:
        rows = [r for r in csv.DictReader(stored) if r["sent"] != "0"]
    by_api_id = behaviours.get("analytics_variation_key") == "variation_api_id"
    expected = (
        "sandbox-api-campaign-email"
        if by_api_id
        else braze_sandbox.state.variation_name("sandbox-api-campaign", "sandbox-api-campaign-email")
    )
    assert [
        (r["channel"], r["variation_api_id" if by_api_id else "variation_name"], r["sent"]) for r in rows
    ] == [("email", expected, "200")]
