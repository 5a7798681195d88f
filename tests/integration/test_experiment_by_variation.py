"""A content experiment within one send ID, sent mapped with faults: each variant exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.experiments import Assigner
from airflow_provider_braze.sandbox import BrazeSandbox
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
CAMPAIGN = "sandbox-api-campaign"
VARIATIONS = {"control": f"{CAMPAIGN}-email", "b": f"{CAMPAIGN}-email-2", "c": f"{CAMPAIGN}-email-3"}
USERS = [f"user-{i}" for i in range(3_000)]


def sends_for(sandbox: BrazeSandbox, by_api_id: bool) -> dict[str, Any]:
    if by_api_id:
        return {n: {"send_id": "one-send", "message_variation_id": v} for n, v in VARIATIONS.items()}
    names = {n: sandbox.state.variation_name(CAMPAIGN, v) for n, v in VARIATIONS.items()}
    return {n: {"send_id": "one-send", "variation_name": name} for n, name in names.items()}


@pytest.mark.parametrize("variation_key", ["variation_name", "variation_api_id"])
def test_mapped_variant_sends_retry_exactly_once_and_compare_by_variation(
    airflow_db: None, braze_sandbox: BrazeSandbox, monkeypatch: pytest.MonkeyPatch, variation_key: str
) -> None:
    braze_sandbox.state.set_behaviours(analytics_variation_key=variation_key)
    # No retries in the hook, and the first 5 send requests fail with 503: some mapped sends
    # fail their first try; Airflow retries them, each resuming from its own checkpoint.
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_sandbox.connection_json(max_retries=0))
    braze_sandbox.set_faults(
        server_error=1.0, server_error_statuses=[503], paths=["/messages/send"], max_faults=5
    )
    dag = load_dag(DAGS, "braze_experiment_by_variation")
    sends = sends_for(braze_sandbox, variation_key == "variation_api_id")
    dag_run = dag.test(run_conf={"sends": sends})
    assert dag_run.state == "success"

    tries = {(t.task_id, t.map_index): t.try_number for t in dag_run.get_task_instances()}
    assert max(tries[("send", i)] for i in range(3)) == 2  # at least one variant was retried
    assigner = Assigner("variation-test", {"control": 0.34, "b": 0.33, "c": 0.33})
    assert braze_sandbox.state.deliveries(CAMPAIGN, "one-send") == Counter(USERS)
    variation_of_user = {}
    for entry in braze_sandbox.ledger("POST /messages/send"):
        variation = entry["request"]["messages"]["email"]["message_variation_id"]
        for user in entry["request"]["external_user_ids"]:
            variation_of_user[user] = variation
    assert variation_of_user == {u: VARIATIONS[assigner.variant_of(u)] for u in USERS}

    summary = xcoms(dag_run.run_id, "braze_experiment_by_variation")[("compare", "return_value")]
    counts = Counter(assigner.variant_of(u) for u in USERS)
    assert {n: v["recipients"] for n, v in summary["variants"].items()} == dict(counts)
    assert summary["verdicts"]["b"].startswith("b beats control on opens")


def test_a_triggered_campaign_experiment_sent_with_expand_over_the_files(
    airflow_db: None, braze_sandbox: BrazeSandbox
) -> None:
    dag = load_dag(DAGS, "braze_experiment_triggered")
    dag_run = dag.test()
    assert dag_run.state == "success"
    # Each person once (duplicates in the audience sent once), with their trigger properties.
    assert braze_sandbox.state.deliveries("sandbox-api-triggered-campaign") == Counter(
        f"user-{i}" for i in range(400)
    )
    sent = [
        r for e in braze_sandbox.ledger("POST /campaigns/trigger/send") for r in e["request"]["recipients"]
    ]
    assert all(r["trigger_properties"] == {"n": int(r["external_user_id"].split("-")[1])} for r in sent)
    split = xcoms(dag_run.run_id, "braze_experiment_triggered")[("split", "variants")]
    assert sum(v["count"] for v in split) == 450  # entries as read
