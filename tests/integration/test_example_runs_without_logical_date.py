"""Every example DAG runs with and without a logical date, and each run gets its own send IDs.

A run triggered with ``airflow dags trigger`` or the REST API (no ``--logical-date``) has no
``logical_date``, ``ds``, ``ds_nodash`` or ``ts_nodash`` in its context, and no data interval.
``dag.test(logical_date=None)`` creates exactly such a run (``run_after`` is now); with a date it
creates a run as the UI, ``airflow dags test`` or the scheduler would (with a data interval).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from airflow_provider_braze.send_ids import run_key, run_send_id
from tests.conftest import REPO_ROOT
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "example_dags"
LOGICAL_DATE = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
WITH_AND_WITHOUT = pytest.mark.parametrize(
    "logical_date", [None, LOGICAL_DATE], ids=["no-logical-date", "logical-date"]
)


def run(dag_id: str, logical_date: datetime | None, **conf: Any) -> tuple[Any, dict[Any, Any]]:
    """One successful run and its XComs (read at once: ``dag.test(logical_date=None)`` clears
    the task instances of every earlier run of the DAG, their XComs with them)."""
    dag_run = load_dag(EXAMPLES, dag_id).test(logical_date=logical_date, run_conf=conf)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    assert dag_run.logical_date == logical_date
    if logical_date is None:
        assert dag_run.data_interval_start is None
        assert dag_run.data_interval_end is None
    return dag_run, xcoms(dag_run.run_id, dag_id)


def created(sandbox: BrazeSandbox) -> set[str]:
    """Every send ID the sandbox created, whatever the campaign."""
    return {send_id for (_, _, send_id) in sandbox.state.send_ids}


@WITH_AND_WITHOUT
def test_pipeline_runs_twice_the_same_day_under_two_send_ids(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path, logical_date: datetime | None
) -> None:
    conf = {"audience_size": 120, "analytics_path": f"file://{tmp_path}"}
    runs = [run("braze_send_id_pipeline", logical_date, **conf) for _ in range(2)]

    ids = []
    for dag_run, values in runs:
        send_id = values[("create_send_id", "return_value")]
        assert send_id == run_send_id("picks", dag_run)  # picks-<run_after's day>-<run ID digest>
        assert values[("send", "summary")]["accepted"] == 120
        day = logical_date or dag_run.run_after
        assert values[("generate_content", "title")] == f"Your picks for {day:%A %d %B}"
        path = f"file://{tmp_path}/braze_send_id_pipeline-{run_key(dag_run)}.csv"
        assert values[("fetch_analytics", "return_value")] == path
        ids.append(send_id)
    assert ids[0] != ids[1]
    assert ids[0].split("-")[1] == ids[1].split("-")[1] == f"{runs[1][0].run_after:%Y%m%d}"
    assert created(braze_sandbox) == set(ids)
    assert len(list(tmp_path.glob("*.csv"))) == 2  # neither run overwrote the other's analytics


@WITH_AND_WITHOUT
def test_experiment_runs_twice_the_same_day_under_distinct_send_ids(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path, logical_date: datetime | None
) -> None:
    conf = {"audience_size": 400, "output_path": f"file://{tmp_path}"}
    runs = [run("braze_content_experiment", logical_date, **conf) for _ in range(2)]

    ids: list[str] = []
    for dag_run, values in runs:
        variants = values[("generate_variants", "return_value")]
        assert {n: v["send_id"] for n, v in variants.items()} == {
            n: run_send_id(f"picks-{n}", dag_run) for n in ("control", "a", "b")
        }
        table = values[("compare", "return_value")]["table"]
        assert table == f"file://{tmp_path}/braze_content_experiment/{run_key(dag_run)}/comparison.csv"
        ids += [v["send_id"] for v in variants.values()]
    assert len(set(ids)) == 6
    assert created(braze_sandbox) == set(ids)


@WITH_AND_WITHOUT
def test_asset_pair_runs_twice_the_same_day_under_two_send_ids(
    airflow_db: None, braze_sandbox: BrazeSandbox, logical_date: datetime | None
) -> None:
    sends = [run("braze_send_with_asset", logical_date) for _ in range(2)]
    ids = [values[("create_send_id", "return_value")] for _, values in sends]
    assert ids == [run_send_id("digest", dag_run) for dag_run, _ in sends]
    assert ids[0] != ids[1]
    assert created(braze_sandbox) == set(ids)

    # The analytics DAG (scheduled on the asset; run here by hand) loads the latest send's.
    _, values = run("braze_analytics_on_send", logical_date, analytics_grace_seconds=86_400)
    (which,) = values[("which_sends", "return_value")]
    assert which["send_id"] == ids[1]


@WITH_AND_WITHOUT
def test_sharded_send_runs_twice_the_same_day_under_two_send_ids(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path, logical_date: datetime | None
) -> None:
    conf = {"audience_size": 200, "output_path": f"file://{tmp_path}"}
    runs = [run("braze_sharded_send", logical_date, **conf) for _ in range(2)]

    ids = []
    for dag_run, values in runs:
        send_id = values[("create_send_id", "return_value")]
        assert send_id == run_send_id("shards", dag_run)
        # Each run's shards under their own folder: neither run overwrote the other's.
        files = [v["recipients"] for v in values[("shard_audience", "variants")]]
        assert all(f.startswith(f"file://{tmp_path}/braze_sharded_send/{run_key(dag_run)}/") for f in files)
        delivered = braze_sandbox.state.deliveries("sandbox-api-campaign", send_id)
        assert delivered == dict.fromkeys((f"shard-user-{n:07d}" for n in range(200)), 1)
        ids.append(send_id)
    assert ids[0] != ids[1]
    assert created(braze_sandbox) == set(ids)
