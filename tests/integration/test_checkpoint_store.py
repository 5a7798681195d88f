"""The checkpoint in Airflow Variables, through real dag.test() runs: the task SDK's own client is
patched only at its transport, so Variables fail the way Airflow 3.3 makes them fail."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_braze.delivery import checkpoint_name
from airflow_provider_braze.sandbox import BrazeSandbox
from tests.integration.conftest import load_dag
from tests.integration.dags.braze_checkpoint_outage import SWITCH

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
USERS = [f"user-{i}" for i in range(3_000)]


class CheckpointReadFault(httpx.BaseTransport):
    """Answers reads of try 1's checkpoint record with ``fault`` while the switch is on; everything
    else (listings, writes, other records, other calls) reaches the in-process API server."""

    def __init__(self, inner: httpx.BaseTransport, fault: str) -> None:
        self.inner = inner
        self.fault = fault
        self.failed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if (
            os.environ.get(SWITCH)
            and request.method == "GET"
            and "/variables/braze_send__" in path
            and "__try001_" in path
        ):
            self.failed += 1
            if self.fault == "unreachable":
                raise httpx.ConnectError("API server unreachable", request=request)
            # 500: the server failed; 404: what the API server answers when it cannot decrypt a
            # value (its Variable.get logs the error and reports the key as missing).
            return httpx.Response(int(self.fault), json={"detail": "injected"}, request=request)
        return self.inner.handle_request(request)


@pytest.fixture
def faulty_variable_reads(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> list[Any]:
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    made: list[CheckpointReadFault] = []
    original = InProcessTestSupervisor._api_client

    def client_with_fault(dag: Any = None) -> Any:
        client = original(dag)
        transport = CheckpointReadFault(client._transport, request.param)
        client._transport = transport
        made.append(transport)
        return client

    monkeypatch.setattr(InProcessTestSupervisor, "_api_client", staticmethod(client_with_fault))
    monkeypatch.delenv(SWITCH, raising=False)
    return made


def task_states(dag_run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}


@pytest.mark.parametrize("faulty_variable_reads", ["500", "404", "unreachable"], indirect=True)
def test_a_retry_never_starts_over_because_its_checkpoint_could_not_be_read(
    airflow_db: None,
    braze_sandbox: BrazeSandbox,
    monkeypatch: pytest.MonkeyPatch,
    faulty_variable_reads: list[CheckpointReadFault],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_sandbox.connection_json(max_retries=0))
    # Try 1: the first 5 sends fail before Braze processes them, so it ends with work left.
    braze_sandbox.set_faults(
        server_error=1.0, server_error_statuses=[503], paths=["/messages/send"], max_faults=5
    )
    dag_run = load_dag(DAGS, "braze_checkpoint_outage").test()

    assert task_states(dag_run)["send"] == ("success", 3)
    assert sum(t.failed for t in faulty_variable_reads) > 0, "the fault never hit"
    delivered = braze_sandbox.state.deliveries("sandbox-api-campaign")
    assert delivered == Counter(USERS), "somebody got the message twice, or not at all"
    # 55 sends in try 1, none in try 2 (it could not read its checkpoint), 5 in try 3.
    assert len(braze_sandbox.ledger("POST /messages/send")) == 60
    text = "".join(capfd.readouterr()) + caplog.text
    assert "exists but could not be read" in text
    assert "Sending was refused: starting over could send every recipient again" in text


def test_completed_sends_leave_one_small_variable_and_old_ones_are_pruned(
    airflow_db: None, braze_sandbox: BrazeSandbox
) -> None:
    from airflow.models.variable import Variable

    today = datetime.now(timezone.utc).date()
    old_run = checkpoint_name("braze_checkpoint_outage", "send", "manual__2026-01-01", -1)
    recent_run = checkpoint_name("braze_checkpoint_outage", "send", "manual__2026-11-20", -1)
    expired = f"{old_run}__done_{today - timedelta(days=60):%Y%m%d}"
    kept = f"{recent_run}__done_{today - timedelta(days=3):%Y%m%d}"
    from airflow_provider_braze.delivery import MemoryCheckpointStore

    written = MemoryCheckpointStore()  # records as the provider writes them (digest, key)
    for key in (expired, kept):
        written.write(key, {"format": 3, "kind": "done", "retention_seconds": 30 * 86_400})
        Variable.set(key, written.records[key])

    dag_run = load_dag(DAGS, "braze_checkpoint_outage").test()
    assert dag_run.state == "success"

    from airflow.utils.session import create_session

    with create_session() as session:
        keys = [v.key for v in session.query(Variable).filter(Variable.key.like("braze_send__%"))]
    mine = [
        k
        for k in keys
        if k.startswith(checkpoint_name("braze_checkpoint_outage", "send", dag_run.run_id, -1))
    ]
    assert len(mine) == 1
    assert "__done_" in mine[0]
    assert len(Variable.get(mine[0])) <= 4 * 1024
    assert expired not in keys
    assert kept in keys
    for key in keys:
        Variable.delete(key)
