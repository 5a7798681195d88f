"""The asset example pair: a send announces itself on its braze:// asset; the analytics DAG,
scheduled on that asset, loads exactly that send's analytics."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from tests.conftest import REPO_ROOT
from tests.integration.conftest import load_dag, xcoms

pytestmark = pytest.mark.integration

URI = "braze://sandbox/campaigns/sandbox-api-campaign"


def asset_events() -> list[Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetEvent.source_run_id)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == URI)
            .order_by(AssetEvent.id)
        ).all()
        return [(dict(extra), run_id) for extra, run_id in rows]


def queued_for(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.count()).select_from(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id)
        )


def test_a_send_announces_itself_and_the_analytics_dag_loads_exactly_it(
    airflow_db: None, braze_sandbox: BrazeSandbox
) -> None:
    folder = REPO_ROOT / "example_dags"
    consumer = load_dag(folder, "braze_analytics_on_send")
    assert [a.uri for a in consumer.timetable.asset_condition.objects] == [URI]

    before = len(asset_events())
    send_run = load_dag(folder, "braze_send_with_asset").test()
    assert send_run.state == "success"
    summary = xcoms(send_run.run_id, "braze_send_with_asset")[("send", "summary")]
    events = asset_events()[before:]
    assert len(events) == 1
    extra, source_run = events[0]
    assert source_run == send_run.run_id
    assert extra["send_id"] == summary["send_id"]
    assert (extra["campaign_id"], extra["accepted"], extra["complete"], extra["dry_run"]) == (
        "sandbox-api-campaign",
        250,
        True,
        False,
    )
    assert extra["finished_at"] == summary["finished_at"]
    assert queued_for("braze_analytics_on_send") >= 1  # the scheduler would start the analytics DAG

    analytics_run = consumer.test()
    assert analytics_run.state == "success"
    values = xcoms(analytics_run.run_id, "braze_analytics_on_send")
    assert values[("which_sends", "return_value")] == [
        {
            "campaign_id": "sandbox-api-campaign",
            "send_id": summary["send_id"],
            "min_sent": 250,
            "sent_at": summary["finished_at"],
            "broadcast": False,
        }
    ]
    rows = values[("fetch_analytics", "return_value")]
    assert {r["send_id"] for r in rows} == {summary["send_id"]}
    assert sum(r["sent"] or 0 for r in rows) == 250


def test_a_run_triggered_by_several_sends_loads_each_of_them() -> None:
    """The scheduler puts every event since the last run into one run: each send is loaded."""
    from types import SimpleNamespace

    dag = load_dag(REPO_ROOT / "example_dags", "braze_analytics_on_send")
    task = dag.get_task("which_sends")
    (asset,) = dag.timetable.asset_condition.objects
    events = [
        SimpleNamespace(extra={"campaign_id": "c", "send_id": "first", "accepted": 10, "dry_run": False}),
        SimpleNamespace(extra={"campaign_id": "c", "send_id": "rehearsed", "accepted": 0, "dry_run": True}),
        SimpleNamespace(extra={"campaign_id": "c", "send_id": "second", "accepted": 20, "dry_run": False}),
    ]
    sends = task.python_callable(triggering_asset_events={asset: events}, inlet_events={})
    # Events without finished_at or broadcast (older ones): the sensor does not know them.
    assert sends == [
        {"campaign_id": "c", "send_id": "first", "min_sent": 10, "sent_at": None, "broadcast": None},
        {"campaign_id": "c", "send_id": "second", "min_sent": 20, "sent_at": None, "broadcast": None},
    ]


def test_where_braze_tracks_only_broadcasts_the_analytics_dag_says_why(
    airflow_db: None,
    braze_sandbox: BrazeSandbox,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The send went to a list of users; under send_tracking=broadcast_only it has no analytics,
    and the asset-scheduled DAG's sensor fails at once saying why (no grace in this run)."""
    from tests.integration.test_example_pipeline import untracked_failure

    braze_sandbox.state.set_behaviours(send_tracking="broadcast_only")
    folder = REPO_ROOT / "example_dags"
    send_run = load_dag(folder, "braze_send_with_asset").test()
    assert send_run.state == "success"
    send_id = xcoms(send_run.run_id, "braze_send_with_asset")[("send", "summary")]["send_id"]
    analytics_run = load_dag(folder, "braze_analytics_on_send").test(run_conf={"analytics_grace_seconds": 0})
    assert analytics_run.state == "failed"
    states = {(t.task_id, t.map_index): t.state for t in analytics_run.get_task_instances()}
    assert states == {
        ("which_sends", -1): "success",
        ("wait_for_analytics", 0): "failed",
        ("fetch_analytics", -1): "upstream_failed",  # never expanded: its upstream failed
    }
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    for part in untracked_failure(send_id):
        assert part in text


def test_an_outlet_of_another_campaign_stops_the_send(airflow_db: None, braze_sandbox: BrazeSandbox) -> None:
    from unittest import mock

    from airflow_provider_braze.assets import braze_campaign_asset
    from airflow_provider_braze.exceptions import BrazeValidationError
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from tests.conftest import messages_for

    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        recipients=["u1"],
        messages=messages_for("email"),
        checkpoint=None,
        outlets=[braze_campaign_asset("another-campaign", instance="sandbox")],
    )
    with pytest.raises(
        BrazeValidationError, match="is the asset of campaign 'another-campaign', but this task sends"
    ):
        op.execute({"ti": mock.MagicMock(dag_id="d", task_id="send", run_id="r", map_index=-1)})
    assert braze_sandbox.ledger() == []


def test_a_whole_run_rehearses_with_the_run_level_switch(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Any
) -> None:
    """`airflow dags test ... --conf '{"braze_dry_run": true}'`: the send ID is not created,
    nothing is sent, the analytics tasks are skipped, and the run succeeds."""
    dag = load_dag(REPO_ROOT / "example_dags", "braze_send_id_pipeline")
    run = dag.test(
        run_conf={"braze_dry_run": True, "audience_size": 120, "analytics_path": f"file://{tmp_path}"}
    )
    assert run.state == "success"
    assert [e for e in braze_sandbox.ledger() if e["endpoint"].startswith("POST")] == []
    states = {t.task_id: t.state for t in run.get_task_instances()}
    assert states["send"] == "success"
    assert states["wait_for_analytics"] == "skipped"
    assert states["fetch_analytics"] == "skipped"
    summary = xcoms(run.run_id, "braze_send_id_pipeline")[("send", "summary")]
    assert (summary["dry_run"], summary["batches_to_send"], summary["recipients"]) == (True, 3, 120)


def test_an_outlet_on_another_instance_stops_the_send(airflow_db: None, braze_sandbox: BrazeSandbox) -> None:
    from unittest import mock

    from airflow_provider_braze.assets import braze_campaign_asset
    from airflow_provider_braze.exceptions import BrazeValidationError
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from tests.conftest import messages_for

    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        recipients=["u1"],
        messages=messages_for("email"),
        checkpoint=None,
        outlets=[braze_campaign_asset("sandbox-api-campaign", instance="US-03")],
    )
    with pytest.raises(BrazeValidationError, match="is on instance 'us-03', but this task's connection"):
        op.execute({"ti": mock.MagicMock(dag_id="d", task_id="send", run_id="r", map_index=-1)})
    assert braze_sandbox.ledger() == []
