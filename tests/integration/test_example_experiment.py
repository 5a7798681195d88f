"""Run the content-experiment example with ``dag.test()`` against the Braze sandbox."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.experiments import Assigner
from airflow_provider_braze.sandbox import BrazeSandbox
from airflow_provider_braze.send_ids import run_key
from tests.conftest import REPO_ROOT
from tests.integration.conftest import load_dag, xcoms
from tests.integration.test_example_pipeline import BEHAVIOUR_RUNS, runs_id, untracked_failure

pytestmark = pytest.mark.integration

DAG_ID = "braze_content_experiment"
SHARES = {"control": 0.1, "a": 0.45, "b": 0.45}


def load_example_dag() -> Any:
    return load_dag(REPO_ROOT / "example_dags", DAG_ID)


def test_experiment_dag_is_wired_as_documented() -> None:
    dag = load_example_dag()
    assert dag.get_task("send_variant").upstream_task_ids == {"split_audience", "create_send_ids"}
    assert dag.get_task("wait_for_analytics").partial_kwargs["deferrable"] is True
    assert dag.get_task("compare").upstream_task_ids == {
        "wait_for_analytics",
        "sends",
        "split_audience",
        "last_sent_at",
    }
    assert dag.get_task("split_audience").shares == SHARES


def run_experiment(sandbox: BrazeSandbox, tmp_path: Path, **conf: Any) -> tuple[Any, dict[Any, Any]]:
    dag = load_example_dag()
    dag_run = dag.test(
        logical_date=datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc),
        run_conf={"output_path": f"file://{tmp_path}", **conf},
    )
    assert dag_run.state == "success"
    return dag_run, xcoms(dag_run.run_id, DAG_ID)


def test_experiment_splits_sends_each_variant_once_and_compares(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    dag_run, values = run_experiment(braze_sandbox, tmp_path)
    variants = values[("generate_variants", "return_value")]
    assert list(variants) == ["control", "a", "b"]

    # One send ID per variant, created once each.
    created = [e["request"]["send_id"] for e in braze_sandbox.ledger("POST /sends/id/create")]
    assert sorted(created) == sorted(v["send_id"] for v in variants.values())

    # Every user got exactly one message: their variant's content under their variant's send ID.
    assigner = Assigner("weekly-picks-subject-line", SHARES)
    audience = [f"example-user-{n:06d}" for n in range(20_000)]
    for name, variant in variants.items():
        expected = {user for user in audience if assigner.variant_of(user) == name}
        got = braze_sandbox.state.deliveries("sandbox-api-campaign", variant["send_id"])
        assert got == dict.fromkeys(expected, 1), name
    subjects = {
        s["request"]["send_id"]: s["request"]["messages"]["email"]["subject"]
        for s in braze_sandbox.ledger("POST /messages/send")
    }
    assert {variants[n]["send_id"]: variants[n]["messages"]["email"]["subject"] for n in variants} == subjects

    split = values[("split_audience", "variants")]
    assert [v["variant"] for v in split] == ["control", "a", "b"]
    assert sum(v["count"] for v in split) == 20_000

    # The comparison (the sandbox's content effects, by seed).
    summary = values[("compare", "return_value")]
    assert summary["channel"] == "email"
    # b's content effect is large; a's is small, so whether one run's draws make it significant
    # depends on the send IDs (unique per run) and the day: the test checks that a's verdict
    # agrees with its rows, not which way it went (the statistics have their own unit tests).
    # Clicks decide; opens are a diagnostic (Apple Mail Privacy Protection), said in a note.
    assert summary["primary_metric"] == "clicks"
    assert summary["guardrails"] == ["unsubscribes", "bounces", "reported_spam"]
    assert any("Apple Mail Privacy Protection" in note for note in summary["notes"])
    # The split's planned shares came along, and the recipients match them.
    assert summary["sample_ratio"]["planned"] == {"control": 0.1, "a": 0.45, "b": 0.45}
    assert summary["sample_ratio"]["mismatch"] is False
    # analytics_wait_seconds is 0: the comparison is at (after) its planned time, and the first.
    assert summary["provisional"] is None
    a_clicks = next(r for r in rows_of(summary) if (r["variant"], r["metric"]) == ("a", "clicks"))
    # a's effect is small, so whether one run's draws make it significant depends on the send
    # IDs (unique per run): the verdict must agree with its row either way.
    if a_clicks["significant"] == "True":
        assert summary["verdicts"]["a"].startswith("a beats control on clicks: ") or summary["verdicts"][
            "a"
        ].startswith("a trails control on clicks: ")
    else:
        assert summary["verdicts"]["a"].startswith(
            "a shows no significant difference from control on clicks yet at this sample size (p = "
        )
        assert "the data rule out changes below " in summary["verdicts"]["a"]
    assert summary["verdicts"]["b"].startswith("b beats control on clicks: +")
    assert "(p < 0.001, holm-adjusted)" in summary["verdicts"]["b"]
    # A guardrail is named in the verdict exactly when it was harmed (the sandbox's unsubscribes,
    # bounces and spam do not depend on the content, so harm is rare and only by chance).
    for name in ("a", "b"):
        for metric in summary["guardrails"]:
            harmed = metric in summary["harmed"][name]
            assert (f"{name} harms the guardrail {metric}:" in summary["verdicts"][name]) == harmed
    table = Path(summary["table"].removeprefix("file://"))
    assert table.parent == tmp_path / DAG_ID / run_key(dag_run)
    rows = list(csv.DictReader(table.open()))
    assert {(r["variant"], r["metric"]) for r in rows} == {
        (v, m)
        for v in variants
        for m in ("delivered", "opens", "clicks", "conversions", "unsubscribes", "bounces", "reported_spam")
    }
    lines = [json.loads(line) for line in table.with_suffix(".jsonl").read_text().splitlines()]
    assert [(r["variant"], r["metric"]) for r in lines] == [(r["variant"], r["metric"]) for r in rows]
    assert summary["chart"] == f"file://{table.with_suffix('.svg')}"
    assert table.with_suffix(".svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("behaviours", BEHAVIOUR_RUNS, ids=runs_id)
def test_experiment_under_each_behaviour_braze_leaves_undocumented(
    airflow_db: None,
    braze_sandbox: BrazeSandbox,
    tmp_path: Path,
    behaviours: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    braze_sandbox.state.set_behaviours(**behaviours)
    dag = load_example_dag()
    conf = {"output_path": f"file://{tmp_path}", "audience_size": 2_000, "analytics_grace_seconds": 0}
    dag_run = dag.test(logical_date=datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc), run_conf=conf)
    values = xcoms(dag_run.run_id, DAG_ID)
    if behaviours.get("send_tracking") == "broadcast_only":
        # Each variant went to a list of users: no analytics, and every sensor says why.
        assert dag_run.state == "failed"
        sensors = [t for t in dag_run.get_task_instances() if t.task_id == "wait_for_analytics"]
        assert [t.state for t in sensors] == ["failed"] * 3
        tis = dag_run.get_task_instances()
        assert {t.state for t in tis if t.task_id in ("create_send_ids", "send_variant")} == {"success"}
        assert [t.state for t in tis if t.task_id == "compare"] == ["upstream_failed"]
        output = capfd.readouterr()
        text = output.out + output.err + caplog.text
        for variant in values[("generate_variants", "return_value")].values():
            for part in untracked_failure(variant["send_id"]):
                assert part in text
        return
    assert dag_run.state == "success"
    summary = values[("compare", "return_value")]
    assert {n: v["recipients"] for n, v in summary["variants"].items()} == {
        v["variant"]: v["count"] for v in values[("split_audience", "variants")]
    }


def rows_of(summary: dict[str, Any]) -> list[dict[str, str]]:
    return list(csv.DictReader(Path(summary["table"].removeprefix("file://")).open()))
