"""A content experiment over an API-triggered campaign, sent with ``.expand()`` over the files.

For the integration tests: recipients with trigger properties (duplicates included) are split
with ``recipient_kind="recipients"``, each variant's file is sent by a mapped
SendTriggeredCampaignOperator taking only ``recipients`` from the split's output.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_braze.operators.experiments import SplitAudienceOperator
from airflow_provider_braze.operators.messages import SendTriggeredCampaignOperator

with DAG(
    "braze_experiment_triggered", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)
) as dag:

    @task
    def audience(**context: Any) -> str:
        path = os.path.join(tempfile.gettempdir(), f"braze-triggered-{os.getpid()}.jsonl")
        with open(path, "w") as fh:
            for i in [*range(400), *range(50)]:  # the first 50 listed twice
                fh.write(json.dumps({"external_user_id": f"user-{i}", "trigger_properties": {"n": i}}) + "\n")
        return path

    split = SplitAudienceOperator(
        task_id="split",
        recipients=audience(),
        experiment="triggered",
        shares={"control": 0.5, "a": 0.5},
        output_path=os.path.join(tempfile.gettempdir(), "braze-triggered-{{ run_id | replace(':', '_') }}"),
        recipient_kind="recipients",
    )
    SendTriggeredCampaignOperator.partial(
        task_id="send", campaign_id="sandbox-api-triggered-campaign"
    ).expand(recipients=split.output.map(lambda variant: variant["recipients"]))
