"""A send whose retry meets an Airflow API that cannot read Variables (integration tests).

Try 1 leaves batches unsent (the test makes the sandbox fail some sends); its retry callback
makes the test's transport fail the checkpoint reads of try 2 (the switch is an environment
variable the transport reads); try 2's retry callback restores them for try 3.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG

from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.sandbox import email_message

#: While set, the test's transport fails every read of a checkpoint Variable's value.
SWITCH = "BRAZE_TEST_FAIL_CHECKPOINT_READS"


def _toggle_checkpoint_reads(context: Any) -> None:
    os.environ[SWITCH] = "1" if context["ti"].try_number == 1 else ""


with DAG(
    "braze_checkpoint_outage",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
) as dag:
    SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        recipients=[f"user-{i}" for i in range(3_000)],
        messages=email_message(),
        concurrency=8,
        progress_interval=1,
        on_retry_callback=_toggle_checkpoint_reads,
    )
