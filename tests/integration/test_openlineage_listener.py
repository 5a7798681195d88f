"""The OpenLineage listener picks up the operators' datasets in a real DAG run (dag.test(), the
events written by OpenLineage's file transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox
from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not __import__("importlib").util.find_spec("airflow.providers.openlineage"),
        reason="apache-airflow-providers-openlineage is not installed (the [test] extra has it)",
    ),
]

CAMPAIGN = ("braze://sandbox", "campaigns/sandbox-api-campaign")

# In a process of its own: the listener is set up from the configuration when Airflow starts.
# (Not through tests.conftest, which would drop the sandbox's connection from the environment.)
RUN = """
import sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[2])
assert bag.import_errors == {}, bag.import_errors
run = bag.dags["braze_openlineage"].test(run_conf={"folder": sys.argv[1]})
print("STATE:" + str(run.state))
"""


def test_the_listener_reports_each_tasks_datasets(
    airflow_db: None, braze_sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    (tmp_path / "audience.csv").write_text("external_user_id\n" + "".join(f"person-{n}\n" for n in range(30)))
    events_file = tmp_path / "events.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            str(tmp_path),
            str(REPO_ROOT / "tests" / "integration" / "dags" / "braze_openlineage.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert "STATE:success" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    text = events_file.read_text()
    complete = {
        event["job"]["name"].rpartition(".")[2]: event
        for event in map(json.loads, text.splitlines())
        if event["eventType"] == "COMPLETE"
    }

    def found(task: str, kind: str) -> list[tuple[str, str]]:
        return [(d["namespace"], d["name"]) for d in complete[task].get(kind, [])]

    assert (found("create_send_id", "inputs"), found("create_send_id", "outputs")) == ([], [CAMPAIGN])
    assert found("send", "inputs") == [("file", str(tmp_path / "audience.csv"))]
    assert found("send", "outputs") == [CAMPAIGN]
    assert found("stats", "inputs") == [CAMPAIGN]
    assert found("stats", "outputs") == [("file", str(tmp_path / "stats.csv"))]
    facet = complete["send"]["run"]["facets"]["externalQuery"]
    assert (facet["externalQueryId"], facet["source"]) == ("lineage", "braze://sandbox")
    assert "person-" not in text
    assert braze_sandbox.api_key not in text
