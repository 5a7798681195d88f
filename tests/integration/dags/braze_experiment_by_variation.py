"""A content experiment within one send ID: each variant is its own message variation.

For the integration tests: split, send the variants mapped (each with its own checkpoint),
compare the variations. ``params.sends`` says how the comparison finds each variation (by API ID
or by dashboard name, as the sandbox is set to report them).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_braze.operators.analytics import CompareSendsOperator
from airflow_provider_braze.operators.experiments import SplitAudienceOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import email_message

CAMPAIGN = "sandbox-api-campaign"
VARIATIONS = {"control": f"{CAMPAIGN}-email", "b": f"{CAMPAIGN}-email-2", "c": f"{CAMPAIGN}-email-3"}
SUBJECTS = {"control": "Hello", "b": "Your picks are in", "c": "Hello again"}

with DAG(
    "braze_experiment_by_variation",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    params={"recipients": Param(3_000, type="integer"), "sends": Param({}, type="object")},
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
    render_template_as_native_obj=True,
) as dag:

    @task
    def write_users(**context: Any) -> str:
        path = os.path.join(tempfile.gettempdir(), f"braze-variation-{os.getpid()}.jsonl")
        with open(path, "w") as fh:
            for i in range(context["params"]["recipients"]):
                fh.write(json.dumps(f"user-{i}") + "\n")
        return path

    send_id = CreateSendIdOperator(task_id="create_send_id", campaign_id=CAMPAIGN, send_id="one-send")
    split = SplitAudienceOperator(
        task_id="split",
        recipients=write_users(),
        experiment="variation-test",
        shares={"control": 0.34, "b": 0.33, "c": 0.33},
        output_path=os.path.join(tempfile.gettempdir(), "braze-variation-{{ run_id | replace(':', '_') }}"),
        variant_kwargs={
            name: {
                "messages": email_message(subject=SUBJECTS[name], body="Hi", message_variation_id=variation)
            }
            for name, variation in VARIATIONS.items()
        },
    )
    send = SendMessagesOperator.partial(
        task_id="send", campaign_id=CAMPAIGN, send_id="one-send", concurrency=4
    ).expand_kwargs(split.output)
    send_id >> send
    # Opens decide here: the test is that each variation is found and told apart.
    compare = CompareSendsOperator(
        task_id="compare", campaign_id=CAMPAIGN, sends="{{ params.sends }}", primary_metric="opens"
    )
    send >> compare
