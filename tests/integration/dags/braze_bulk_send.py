"""A bulk send for the integration tests: create a send ID, write N users to a file, send."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import email_message

with DAG(
    "braze_bulk_send",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    params={"recipients": Param(10_000, type="integer")},
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
) as dag:

    @task
    def write_users(**context: Any) -> str:
        path = os.path.join(tempfile.gettempdir(), f"braze-bulk-{os.getpid()}-{context['run_id']}.jsonl")
        path = path.replace(":", "_").replace("+", "_")
        with open(path, "w") as fh:
            for i in range(context["params"]["recipients"]):
                fh.write(json.dumps(f"user-{i}") + "\n")
        return path

    send_id = CreateSendIdOperator(
        task_id="create_send_id", campaign_id="sandbox-api-campaign", send_id="bulk"
    )
    SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        send_id=send_id.output,
        recipients=write_users(),
        messages=email_message(),
        concurrency=8,
        progress_interval=1,
    )
