"""Run the triggered-and-scheduled example with ``dag.test()`` against the Braze sandbox."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from tests.conftest import REPO_ROOT
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

DAG_ID = "braze_triggered_and_scheduled"
TRIGGERED = "sandbox-api-triggered-campaign"


def test_the_example_is_wired_as_documented() -> None:
    dag = load_dag(REPO_ROOT / "example_dags", DAG_ID)
    assert set(dag.task_ids) == {
        "create_trigger_send_id",
        "trigger",
        "create_send_id",
        "schedule",
        "schedule_trigger",
    }
    assert dag.get_task("trigger").upstream_task_ids == {"create_trigger_send_id"}
    assert dag.get_task("schedule").upstream_task_ids == {"create_send_id"}
    assert dag.get_task("schedule_trigger").upstream_task_ids == set()


@pytest.mark.parametrize(
    "logical_date", [None, datetime(2026, 12, 3, 9, tzinfo=timezone.utc)], ids=["no-date", "date"]
)
def test_the_example_triggers_now_and_schedules_for_later(
    airflow_db: None, braze_sandbox: BrazeSandbox, logical_date: datetime | None
) -> None:
    dag_run = load_dag(REPO_ROOT / "example_dags", DAG_ID).test(logical_date=logical_date)
    assert dag_run.state == "success"
    values = xcoms(dag_run.run_id, DAG_ID)
    trigger_send_id = values[("create_trigger_send_id", "return_value")]
    send_id = values[("create_send_id", "return_value")]
    assert trigger_send_id.startswith("winners-")
    assert send_id.startswith("tomorrow-only-")

    # The triggered campaign went to both winners under its send ID, each with their coupon and
    # the shared season.
    assert braze_sandbox.state.deliveries(TRIGGERED, trigger_send_id) == Counter(
        {"winner-1": 1, "winner-2": 1}
    )
    (request,) = [e["request"] for e in braze_sandbox.ledger("POST /campaigns/trigger/send")]
    assert request["send_id"] == trigger_send_id
    assert request["trigger_properties"] == {"season": "spring"}
    assert [(r["external_user_id"], r["trigger_properties"]) for r in request["recipients"]] == [
        ("winner-1", {"coupon": "SPRING-1A"}),
        ("winner-2", {"coupon": "SPRING-2B"}),
    ]

    # The email is scheduled for 09:00 tomorrow in each user's zone, for all 120 users, nothing
    # sent yet.
    assert braze_sandbox.state.scheduled("sandbox-api-campaign", send_id) == Counter(
        f"example-user-{n:03d}" for n in range(120)
    )
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", send_id) == Counter()
    tomorrow = (dag_run.run_after + timedelta(days=1)).strftime("%Y-%m-%dT09:00:00")
    schedules = [e["request"]["schedule"] for e in braze_sandbox.ledger("POST /messages/schedule/create")]
    assert schedules
    assert all(s == {"time": tomorrow, "in_local_time": True} for s in schedules)
    summary: dict[str, Any] = values[("schedule", "return_value")]
    assert summary["accepted"] == 120
    assert len(summary["schedule_ids"]) == len(schedules)

    # The triggered campaign to its segment a week ahead, in UTC: one request.
    (broadcast,) = [e["request"] for e in braze_sandbox.ledger("POST /campaigns/trigger/schedule/create")]
    assert broadcast["broadcast"] is True
    week = (dag_run.run_after + timedelta(days=7)).astimezone(timezone.utc)
    sent = datetime.fromisoformat(broadcast["schedule"]["time"].replace("Z", "+00:00"))
    assert abs(sent - week) < timedelta(seconds=1), (broadcast["schedule"], week)
    assert broadcast["schedule"]["time"].endswith("Z")
    assert len(values[("schedule_trigger", "return_value")]["schedule_ids"]) == 1
