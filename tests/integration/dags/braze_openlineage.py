"""A send ID, a send from a recipient file and its analytics to a file: the OpenLineage test
checks what the OpenLineage listener reports for each task."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG

from airflow_provider_braze.operators.analytics import GetSendAnalyticsOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import email_message

CAMPAIGN = "sandbox-api-campaign"

with DAG(
    "braze_openlineage",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    params={"folder": "/tmp"},
) as dag:
    create = CreateSendIdOperator(task_id="create_send_id", campaign_id=CAMPAIGN, send_id="lineage")
    send = SendMessagesOperator(
        task_id="send",
        campaign_id=CAMPAIGN,
        send_id=create.output,
        recipients="{{ params.folder }}/audience.csv",
        messages=email_message(),
    )
    stats = GetSendAnalyticsOperator(
        task_id="stats",
        campaign_id=CAMPAIGN,
        send_id=create.output,
        length=1,
        output_path="{{ params.folder }}/stats.csv",
    )
    send >> stats
