"""Run the sharded-send example (example_dags/example_braze_sharded_send.py) with ``dag.test()``
against the Braze sandbox: one send ID, four mapped shards, every recipient exactly once.

Killing a worker mid-send and the retry that resumes from the checkpoint are checked in a real
deployment by ``scripts/deployment-check --executor celery``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from airflow_provider_braze.send_ids import run_send_id
from tests.conftest import REPO_ROOT
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

DAG_ID = "braze_sharded_send"


def test_the_sharded_send_is_four_mapped_shards_in_one_pool() -> None:
    dag = load_dag(REPO_ROOT / "example_dags", DAG_ID)
    assert set(dag.task_ids) == {"build_audience", "create_send_id", "shard_audience", "send_shard"}
    send = dag.get_task("send_shard")
    assert send.upstream_task_ids == {"create_send_id", "shard_audience"}
    assert send.partial_kwargs["pool"] == "braze_workspace"
    assert send.partial_kwargs["retries"] >= 1
    assert send.partial_kwargs["checkpoint"] == "variable"
    assert dag.params["audience_size"] == 2_000


def test_every_recipient_gets_it_once_under_one_send_id(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    dag = load_dag(REPO_ROOT / "example_dags", DAG_ID)
    dag_run = dag.test(
        logical_date=None, run_conf={"audience_size": 2_000, "output_path": f"file://{tmp_path}"}
    )
    assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}

    send_id = run_send_id("shards", dag_run)
    (created,) = braze_sandbox.ledger("POST /sends/id/create")
    assert created["response"]["send_id"] == send_id
    audience = {f"shard-user-{n:07d}" for n in range(2_000)}
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", send_id) == dict.fromkeys(audience, 1)
    assert {s["request"]["send_id"] for s in braze_sandbox.ledger("POST /messages/send")} == {send_id}

    values = xcoms(dag_run.run_id, DAG_ID)
    variants = values[("shard_audience", "variants")]
    assert [v["variant"] for v in variants] == ["shard0", "shard1", "shard2", "shard3"]
    assert sum(v["count"] for v in variants) == 2_000
    assert all(350 <= v["count"] <= 650 for v in variants)  # balanced by the hash
    shards = [ti for ti in dag_run.get_task_instances() if ti.task_id == "send_shard"]
    assert sorted(ti.map_index for ti in shards) == [0, 1, 2, 3]
    assert all(ti.state == "success" for ti in shards)
