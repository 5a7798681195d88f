"""OpenLineage: the datasets each operator reports (get_openlineage_facets_on_complete), and
that nothing changes without the OpenLineage provider."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze.assets import campaign_asset_uri, campaign_dataset_name
from airflow_provider_braze.lineage import location_dataset
from airflow_provider_braze.operators.analytics import CompareSendsOperator, GetSendAnalyticsOperator
from airflow_provider_braze.operators.messages import (
    ScheduleMessagesOperator,
    ScheduleTriggeredCampaignOperator,
    SendMessagesOperator,
    SendTriggeredCampaignOperator,
)
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import BrazeSandbox, email_message
from tests.conftest import API_KEY, REPO_ROOT, REST_ENDPOINT, SOON
from tests.unit.test_analytics import ANSWER
from tests.unit.test_comparison import SENDS, mock_sends

API = "sandbox-api-campaign"
TRIGGERED = "sandbox-api-triggered-campaign"
#: The campaigns' datasets on the sandbox (a loopback endpoint is the instance "sandbox").
API_DATASET = ("braze://sandbox", f"campaigns/{API}")
TRIGGERED_DATASET = ("braze://sandbox", f"campaigns/{TRIGGERED}")
SERIES_URL = f"{REST_ENDPOINT}/sends/data_series"

needs_openlineage = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("airflow.providers.openlineage"),
    reason="apache-airflow-providers-openlineage is not installed (the [test] extra has it)",
)


def datasets(found: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in found]


def send_id_facet(lineage: Any) -> tuple[str, str] | None:
    facet = lineage.run_facets.get("externalQuery")
    return None if facet is None else (facet.externalQueryId, facet.source)


def ti() -> mock.MagicMock:
    return mock.MagicMock(dag_id="dag", task_id="send", run_id="run-1", map_index=-1, try_number=1)


def context(**params: Any) -> dict[str, Any]:
    return {"ti": ti(), "params": params, "dag_run": mock.MagicMock(conf={})}


def recipient_file(tmp_path: Path, count: int = 3) -> Path:
    path = tmp_path / "audience.csv"
    path.write_text("external_user_id\n" + "".join(f"u{n}\n" for n in range(count)))
    return path


@pytest.fixture
def sandbox(braze_sandbox: BrazeSandbox) -> BrazeSandbox:
    for campaign in (API, TRIGGERED):
        braze_sandbox.state.send_ids[("sandbox-workspace", campaign, "sid")] = 0.0
    return braze_sandbox


# ------------------------------------------------------------------------------ naming


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/data/audience.csv", ("file", "/data/audience.csv")),
        ("file:///data/audience.csv", ("file", "/data/audience.csv")),
        ("s3://braze-audiences/2026/11/26.csv", ("s3://braze-audiences", "2026/11/26.csv")),
        # The connection ID is how Airflow reaches the bucket, not part of the dataset's name.
        ("s3://aws_default@braze-audiences/a.jsonl", ("s3://braze-audiences", "a.jsonl")),
        ("gs://bucket/x/y.csv", ("gs://bucket", "x/y.csv")),
        (Path("/data/audience.csv"), ("file", "/data/audience.csv")),
        (["u1", "u2"], None),
        ({"external_user_id": "u1"}, None),
        (None, None),
    ],
    ids=["path", "file-url", "s3-url", "s3-url-with-conn-id", "gs-url", "pathlib", "list", "object", "none"],
)
def test_location_datasets_follow_the_naming_spec(location: Any, expected: tuple[str, str] | None) -> None:
    assert location_dataset(location) == expected


def test_a_relative_path_is_named_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert location_dataset("audience.csv") == ("file", str(tmp_path / "audience.csv"))


def test_an_object_storage_path_is_named_as_the_common_io_provider_names_it() -> None:
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath("s3://braze-audiences/2026/11/26.csv", conn_id="aws_marketing")
    assert location_dataset(path) == (path.namespace, path.key) == ("s3://braze-audiences", "2026/11/26.csv")


@pytest.mark.parametrize("instance", ["US-03", "us-03", "rest.iad-03.braze.com", "sandbox"])
def test_a_campaign_dataset_joined_back_is_its_asset_uri(instance: str) -> None:
    uri = campaign_asset_uri("c-1", instance=instance)
    namespace, name = campaign_dataset_name(uri)
    assert f"{namespace}/{name}" == uri
    assert namespace == f"braze://{'sandbox' if instance == 'sandbox' else 'us-03'}"
    assert name == "campaigns/c-1"


@needs_openlineage
def test_the_openlineage_provider_translates_a_braze_asset_to_the_same_dataset() -> None:
    """The provider registers its converter for braze://, so an asset in inlets or outlets is
    the dataset the operators report."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    from airflow_provider_braze.assets import braze_campaign_asset

    dataset = translate_airflow_asset(braze_campaign_asset("c-1", instance="rest.iad-03.braze.com"), None)
    assert dataset is not None
    assert (dataset.namespace, dataset.name) == ("braze://us-03", "campaigns/c-1")


# ------------------------------------------------------------------------------ sends

SEND_OPERATORS = {
    "send-messages": (SendMessagesOperator, {"campaign_id": API, "messages": email_message()}, API_DATASET),
    "schedule-messages": (
        ScheduleMessagesOperator,
        {"campaign_id": API, "messages": email_message(), "schedule": f"{SOON}T18:00:00+01:00"},
        API_DATASET,
    ),
    "send-triggered": (SendTriggeredCampaignOperator, {"campaign_id": TRIGGERED}, TRIGGERED_DATASET),
    "schedule-triggered": (
        ScheduleTriggeredCampaignOperator,
        {"campaign_id": TRIGGERED, "schedule": f"{SOON}T18:00:00+01:00"},
        TRIGGERED_DATASET,
    ),
}


def send_op(name: str, tmp_path: Path, recipients: Any, **kwargs: Any) -> Any:
    cls, arguments, _ = SEND_OPERATORS[name]
    kwargs.setdefault("checkpoint", str(tmp_path / "cp"))
    return cls(task_id="send", send_id="sid", recipients=recipients, **arguments, **kwargs)


@needs_openlineage
@pytest.mark.parametrize("name", list(SEND_OPERATORS))
def test_a_send_from_a_file_reads_the_file_and_writes_the_campaign(
    sandbox: BrazeSandbox, tmp_path: Path, name: str
) -> None:
    path = recipient_file(tmp_path)
    op = send_op(name, tmp_path, str(path))
    assert op.execute(context())["accepted"] == 3
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [("file", str(path))]
    assert datasets(lineage.outputs) == [SEND_OPERATORS[name][2]]
    assert send_id_facet(lineage) == ("sid", "braze://sandbox")
    assert set(lineage.run_facets) == {"externalQuery"}


@needs_openlineage
def test_a_send_from_an_object_storage_url_reads_that_object(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    from airflow_provider_braze import recipients

    url = "s3://aws_marketing@braze-audiences/2026/11/26.csv"
    opened = []

    def open_text(source: Any) -> io.StringIO:  # the object's content, without S3
        opened.append(str(source))
        return io.StringIO("external_user_id\nu1\nu2\n")

    op = send_op("send-messages", tmp_path, url)
    with mock.patch.object(recipients, "_open_text", open_text):
        assert op.execute(context())["accepted"] == 2
    assert opened == [url]
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [("s3://braze-audiences", "2026/11/26.csv")]
    assert datasets(lineage.outputs) == [API_DATASET]


@needs_openlineage
@pytest.mark.parametrize("name", list(SEND_OPERATORS))
def test_a_send_to_a_list_has_no_input_dataset(sandbox: BrazeSandbox, tmp_path: Path, name: str) -> None:
    op = send_op(name, tmp_path, ["u1", "u2"])
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert lineage.inputs == []
    assert datasets(lineage.outputs) == [SEND_OPERATORS[name][2]]


@needs_openlineage
def test_an_exclusion_file_is_an_input_too_and_a_broadcast_reads_nothing(
    sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    path = recipient_file(tmp_path, 5)
    excluded = tmp_path / "excluded.jsonl"
    excluded.write_text('"u1"\n')
    op = send_op("send-messages", tmp_path, str(path), exclude_recipients=str(excluded))
    assert op.execute(context())["accepted"] == 4
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [("file", str(path)), ("file", str(excluded))]

    op = send_op("send-triggered", tmp_path, None, broadcast=True, checkpoint=str(tmp_path / "b"))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (lineage.inputs, datasets(lineage.outputs)) == ([], [TRIGGERED_DATASET])


@needs_openlineage
def test_a_send_without_a_campaign_has_no_output(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    op = SendMessagesOperator(
        task_id="send", recipients=["u1"], messages=email_message(campaign_id=None), checkpoint=None
    )
    assert op.execute(context())["accepted"] == 1
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


@needs_openlineage
@pytest.mark.parametrize("how", ["dry_run", "braze_dry_run"])
def test_a_rehearsal_reads_the_file_and_writes_nothing(
    sandbox: BrazeSandbox, tmp_path: Path, how: str
) -> None:
    path = recipient_file(tmp_path)
    op = send_op("send-messages", tmp_path, str(path), dry_run=how == "dry_run")
    summary = op.execute(context(braze_dry_run=how == "braze_dry_run"))
    assert summary["dry_run"] is True
    assert sandbox.ledger("POST /messages/send") == []
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [("file", str(path))]
    assert lineage.outputs == []
    assert lineage.run_facets == {}


@needs_openlineage
def test_a_send_refused_before_sending_has_no_output(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    from airflow_provider_braze.exceptions import BrazeValidationError

    op = send_op("send-messages", tmp_path, ["u1"], concurrency=0)
    with pytest.raises(BrazeValidationError):
        op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


@needs_openlineage
def test_no_facet_carries_a_recipient_or_the_key(sandbox: BrazeSandbox, tmp_path: Path) -> None:
    from openlineage.client.serde import Serde

    op = send_op("send-triggered", tmp_path, [{"external_user_id": "person-7a1", "trigger_properties": {}}])
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    text = json.dumps(
        [Serde.to_dict(d) for d in [*lineage.inputs, *lineage.outputs, *lineage.run_facets.values()]]
    )
    assert "person-7a1" not in text
    assert sandbox.api_key not in text
    assert API_KEY not in text


# ------------------------------------------------------------------------------ send IDs


@needs_openlineage
def test_a_created_send_id_is_in_the_campaign(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{REST_ENDPOINT}/sends/id/create", json={"message": "success", "send_id": "spring"})
    op = CreateSendIdOperator(task_id="create", campaign_id="c-1", send_id="spring", checkpoint=None)
    assert op.execute(context()) == "spring"
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert lineage.inputs == []
    # rest.iad-01.braze.com is instance US-01.
    assert datasets(lineage.outputs) == [("braze://us-01", "campaigns/c-1")]
    assert send_id_facet(lineage) == ("spring", "braze://us-01")


@needs_openlineage
@pytest.mark.parametrize("how", ["dry_run", "braze_dry_run"])
def test_a_rehearsed_send_id_reports_nothing(braze_conn: str, requests_mock: rm.Mocker, how: str) -> None:
    op = CreateSendIdOperator(task_id="create", campaign_id="c-1", checkpoint=None, dry_run=how == "dry_run")
    op.execute(context(braze_dry_run=how == "braze_dry_run"))
    assert requests_mock.request_history == []
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


@needs_openlineage
def test_an_endpoint_no_braze_uri_can_name_reports_no_campaign(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_DEFAULT",
        json.dumps({"conn_type": "braze", "host": "https://braze-proxy.example.com", "password": API_KEY}),
    )
    requests_mock.post(
        "https://braze-proxy.example.com/sends/id/create", json={"message": "success", "send_id": "s"}
    )
    op = CreateSendIdOperator(task_id="create", campaign_id="c-1", send_id="s", checkpoint=None)
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (lineage.outputs, lineage.run_facets) == ([], {})


# ------------------------------------------------------------------------------ analytics


@needs_openlineage
@pytest.mark.parametrize("where", ["path", "file-url"])
def test_analytics_read_the_campaign_and_write_the_file(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path, where: str
) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    target = tmp_path / "out" / "stats.csv"
    op = GetSendAnalyticsOperator(
        task_id="a",
        campaign_id="c-1",
        send_id="spring",
        output_path=str(target) if where == "path" else f"file://{target}",
    )
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [("braze://us-01", "campaigns/c-1")]
    assert datasets(lineage.outputs) == [("file", str(target))]
    assert send_id_facet(lineage) == ("spring", "braze://us-01")


@needs_openlineage
def test_analytics_written_to_object_storage(braze_conn: str, requests_mock: rm.Mocker) -> None:
    from airflow_provider_braze import storage

    requests_mock.get(SERIES_URL, json=ANSWER)
    written: dict[str, str] = {}

    class Capture(io.StringIO):
        def __init__(self, location: Any) -> None:
            super().__init__()
            self.location = str(location)

        def close(self) -> None:
            written[self.location] = self.getvalue()
            super().close()

    op = GetSendAnalyticsOperator(
        task_id="a",
        campaign_id="c-1",
        send_id="spring",
        output_path="s3://stats-bucket/braze/2026-11-26.jsonl",
    )
    with mock.patch.object(storage, "open_for_writing", lambda location, binary=False: Capture(location)):
        op.execute(context())
    assert list(written) == ["s3://stats-bucket/braze/2026-11-26.jsonl"]
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.outputs) == [("s3://stats-bucket", "braze/2026-11-26.jsonl")]


@needs_openlineage
def test_analytics_kept_in_xcom_have_no_output(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(SERIES_URL, json=ANSWER)
    op = GetSendAnalyticsOperator(task_id="a", campaign_id="c-1", send_id="spring")
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (datasets(lineage.inputs), lineage.outputs) == ([("braze://us-01", "campaigns/c-1")], [])


@needs_openlineage
def test_a_comparison_reads_each_campaign_and_writes_its_table_and_chart(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    sends = {
        "control": {"send_id": "send-control", "campaign_id": "c-1"},
        "a": {"send_id": "send-a", "campaign_id": "c-2"},
        "b": {"send_id": "send-b", "campaign_id": "c-1"},
    }
    op = CompareSendsOperator(
        task_id="compare",
        sends=sends,
        allow_mixed_campaigns=True,
        output_path=f"{tmp_path}/cmp.csv",
        checkpoint=None,
    )
    summary = op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert datasets(lineage.inputs) == [
        ("braze://us-01", "campaigns/c-1"),
        ("braze://us-01", "campaigns/c-2"),
    ]
    assert datasets(lineage.outputs) == [
        ("file", f"{tmp_path}/cmp.csv"),
        ("file", f"{tmp_path}/cmp.jsonl"),
        ("file", f"{tmp_path}/cmp.svg"),
    ]
    assert summary["chart"] == f"{tmp_path}/cmp.svg"
    assert lineage.run_facets == {}


@needs_openlineage
def test_a_comparison_without_output_path_writes_nothing(braze_conn: str, requests_mock: rm.Mocker) -> None:
    mock_sends(requests_mock, {f"send-{n}": a for n, a in SENDS.items()})
    op = CompareSendsOperator(
        task_id="c", campaign_id="c-1", sends={"control": "send-control", "a": "send-a"}, checkpoint=None
    )
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
    assert (datasets(lineage.inputs), lineage.outputs) == ([("braze://us-01", "campaigns/c-1")], [])


@needs_openlineage
def test_analytics_skipped_in_a_rehearsal_report_nothing() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    for op in (
        GetSendAnalyticsOperator(task_id="a", campaign_id="c-1", send_id="s", output_path="/tmp/x.csv"),
        CompareSendsOperator(
            task_id="c", campaign_id="c-1", sends={"control": "s", "a": "t"}, output_path="/tmp/x.csv"
        ),
    ):
        with pytest.raises(AirflowSkipException):
            op.execute(context(braze_dry_run=True))
        lineage = op.get_openlineage_facets_on_complete(mock.MagicMock())
        assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


# ------------------------------------------------------------------------------ without it

WITHOUT_OPENLINEAGE = """
import json, os, sys
from unittest import mock

# As if the provider were not installed. Airflow starts first: it imports every installed
# provider's get_provider_info while reading its configuration, and would fail on the block
# (a provider that is not installed has no entry point to load). Then what it loaded goes.
import airflow.sdk
for name in [m for m in sys.modules if m.startswith(("airflow.providers.openlineage", "openlineage"))]:
    del sys.modules[name]
sys.modules["airflow.providers.openlineage"] = None

from airflow_provider_braze.operators.analytics import CompareSendsOperator, GetSendAnalyticsOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator, SendTriggeredCampaignOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import email_message

folder = sys.argv[1]
recipients = os.path.join(folder, "audience.csv")
with open(recipients, "w") as handle:
    handle.write("external_user_id\\n" + "".join(f"u{n}\\n" for n in range(40)))

def context():
    ti = mock.MagicMock(dag_id="dag", task_id="t", run_id="r", map_index=-1, try_number=1)
    return {"ti": ti, "params": {}, "dag_run": mock.MagicMock(conf={})}

ops, results = [], []
def run(op):
    results.append(op.execute(context()))
    ops.append(op)

campaign = "sandbox-api-campaign"
for send_id in ("control", "b"):
    run(CreateSendIdOperator(task_id="id", campaign_id=campaign, send_id=send_id, checkpoint=None))
    run(SendMessagesOperator(
        task_id="send", campaign_id=campaign, send_id=send_id, recipients=recipients,
        messages=email_message(), checkpoint=os.path.join(folder, "cp-" + send_id),
    ))
run(SendTriggeredCampaignOperator(
    task_id="trigger", campaign_id="sandbox-api-triggered-campaign", recipients=["u1"], checkpoint=None,
))
run(GetSendAnalyticsOperator(
    task_id="stats", campaign_id=campaign, send_id="b", output_path=os.path.join(folder, "stats.csv"),
))
run(CompareSendsOperator(
    task_id="compare", campaign_id=campaign, sends={"control": "control", "b": "b"},
    output_path=os.path.join(folder, "cmp.csv"), chart_format=None, checkpoint=None,
))
lineage = [op.get_openlineage_facets_on_complete(mock.MagicMock()) for op in ops]
print("RESULT:" + json.dumps({
    "lineage": lineage,
    "accepted": [r["accepted"] for r in results if isinstance(r, dict) and "accepted" in r],
    "stats": os.path.exists(os.path.join(folder, "stats.csv")),
    "compare": sorted(results[-1]["variants"]),
    "openlineage_imported": sorted(m for m in sys.modules if m.startswith("openlineage")),
}))
"""


def test_nothing_changes_without_the_openlineage_provider(
    braze_sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    """The import blocked: every operator imports and runs, and reports None without raising."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENLINEAGE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("RESULT:")]
    found = json.loads(line[len("RESULT:") :])
    assert found == {
        "lineage": [None] * 7,
        "accepted": [40, 40, 1],
        "stats": True,
        "compare": ["b", "control"],
        "openlineage_imported": [],
    }


def test_importing_the_operators_imports_no_openlineage() -> None:
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_braze.operators.messages, airflow_provider_braze.operators.send_id\n"
        "import airflow_provider_braze.operators.analytics, airflow_provider_braze.lineage\n"
        "print('OL:' + ','.join(sorted(m for m in set(sys.modules) - before if 'openlineage' in m)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("OL:")] == ["OL:"]
