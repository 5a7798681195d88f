"""Bulk sends through real DAG runs: exactly once, through faults and Airflow task retries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

USERS = [f"user-{i}" for i in range(10_000)]


def run_bulk_send(**conf: Any) -> Any:
    dag = load_dag(Path(__file__).parent / "dags", "braze_bulk_send")
    return dag.test(run_conf=conf or None)


def task_states(dag_run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}


def test_ten_thousand_recipients_exactly_once(airflow_db: None, braze_sandbox: BrazeSandbox) -> None:
    dag_run = run_bulk_send()
    assert dag_run.state == "success"
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", "bulk") == Counter(USERS)
    assert len(braze_sandbox.ledger("POST /messages/send")) == 200


def test_exactly_once_through_429_and_5xx_faults(airflow_db: None, braze_sandbox: BrazeSandbox) -> None:
    braze_sandbox.state.rng.seed(5)
    braze_sandbox.set_faults(
        server_error=0.05, server_error_statuses=[500, 502, 503], rate_limit=0.05, rate_limit_reset_seconds=0
    )
    dag_run = run_bulk_send()
    assert dag_run.state == "success"
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", "bulk") == Counter(USERS)


def test_a_retried_task_resumes_after_the_confirmed_batches(
    airflow_db: None, braze_sandbox: BrazeSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no retries in the hook, 5xx answers leave batches unsent; Airflow's task retry
    sends exactly those, and nothing twice."""
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_sandbox.connection_json(max_retries=0))
    # Exactly the first 5 send requests fail with 503, so the first try leaves 5 batches unsent.
    braze_sandbox.set_faults(
        server_error=1.0, server_error_statuses=[503], paths=["/messages/send"], max_faults=5
    )
    dag_run = run_bulk_send(recipients=3_000)
    assert task_states(dag_run)["send"] == ("success", 2)
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", "bulk") == Counter(USERS[:3_000])
    assert len(braze_sandbox.ledger("POST /messages/send")) == 60  # 55 in the first try, 5 in the retry


def test_batches_in_doubt_are_reported_not_resent(airflow_db: None, braze_sandbox: BrazeSandbox) -> None:
    # The first 2 send requests are processed, then their connections dropped: Braze sent them,
    # but the operator cannot know.
    braze_sandbox.set_faults(drop_after=1.0, paths=["/messages/send"], max_faults=2)
    dag_run = run_bulk_send(recipients=2_000)
    states = task_states(dag_run)
    assert states["send"] == ("failed", 3)  # every try reports the batches in doubt; none resends them
    delivered = braze_sandbox.state.deliveries("sandbox-api-campaign", "bulk")
    assert max(delivered.values()) == 1
    summary = xcoms(dag_run.run_id, "braze_bulk_send")[("send", "summary")]
    reported = {r for batch in summary["in_doubt_details"] for r in batch["recipients"]}
    assert summary["in_doubt"] == len(reported) == 100
    assert set(delivered) == set(USERS[:2_000])  # the doubtful batches had in fact arrived, once
    assert summary["accepted"] + summary["in_doubt"] == 2_000


def test_deferrable_sensor_defers_and_resumes(
    airflow_db: None,
    braze_sandbox: BrazeSandbox,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dag = load_dag(Path(__file__).parent / "dags", "braze_analytics_wait")
    dag_run = dag.test()
    assert dag_run.state == "success"
    assert task_states(dag_run)["wait"] == ("success", 1)  # waiting used no retries
    # Log lines may reach a stream an earlier test captured; pytest's log capture sees them all.
    text = "".join(capfd.readouterr()) + caplog.text
    assert "Deferred: the triggerer checks Braze every 1 s until" in text
    assert "running trigger in line" in text
    # The waiting and the checking happen in the trigger, not on a worker.
    trigger_lines = [line for line in text.splitlines() if "SendAnalyticsTrigger" in line]
    assert any("Checking again in 1 s." in line for line in trigger_lines)
    assert any("waiting for the send to be 0:00:03 old" in line for line in trigger_lines)
    assert any("20 sent over 1 day; the condition is met." in line for line in trigger_lines)
    summary = xcoms(dag_run.run_id, "braze_analytics_wait")[("wait", "return_value")]
    assert summary["sent"] == 20
