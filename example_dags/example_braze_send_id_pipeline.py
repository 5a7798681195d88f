"""Generate content, create a Braze send ID, send tagged with it, then load that send's analytics.

generate_content -> create_send_id -> build_audience (a JSON-lines file) -> send -> log_summary
                                                    -> wait_for_analytics -> fetch_analytics
                                                    -> log_channel_summary

Runs against the local Braze sandbox by default (``scripts/demo``). Against real
Braze, point the ``braze_default`` connection at your REST endpoint, replace ``build_audience``
with your own audience (a query result written to a file, or an ``s3://`` URL) and pass one of
your API campaign, its email message variation, your email app ID and sender:

.. code-block:: bash

    airflow dags test braze_send_id_pipeline --conf '{"campaign_id": "<API campaign ID>",
        "email_variation_id": "<the campaign's email variation ID>", "email_app_id": "<app ID>",
        "email_from": "Your Brand <news@your-domain.com>"}'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_braze.operators.analytics import GetSendAnalyticsOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.send_ids import MACROS, run_send_id
from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

with DAG(
    dag_id="braze_send_id_pipeline",
    description="Generate content -> create a Braze send ID -> send it to an audience -> log the summary.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    # run_send_id / run_key in templates: what every run has (a run triggered from the CLI or
    # the REST API has no logical date, so no ds or ts_nodash).
    user_defined_macros=MACROS,
    params={
        "campaign_id": Param(
            "sandbox-api-campaign",
            type="string",
            minLength=1,
            description="API identifier of the Braze API campaign to create the send ID for.",
        ),
        "email_variation_id": Param(
            "sandbox-api-campaign-email",
            type="string",
            minLength=1,
            description="The campaign's email message variation: Braze tracks the send under it.",
        ),
        "email_app_id": Param("sandbox-app", type="string", description="The app_id of your email channel."),
        "email_from": Param(
            "Sandbox Picks <picks@example.com>",
            type="string",
            description='The sender, as Braze wants it: "Display Name <address>".',
        ),
        "audience_size": Param(3_000, type="integer", minimum=0, description="Generated recipients."),
        "analytics_wait_seconds": Param(
            0,
            type="integer",
            minimum=0,
            description="How old the send must be before its analytics are loaded (a day is typical).",
        ),
        "analytics_grace_seconds": Param(
            86_400,
            type="integer",
            minimum=0,
            description="How long past analytics_wait_seconds a send to listed users may have no analytics "
            "before the sensor fails saying Braze may track only broadcasts.",
        ),
        "analytics_path": Param(
            "file://" + os.path.join(tempfile.gettempdir(), "braze-example-analytics"),
            type="string",
            description="Folder (local or ObjectStoragePath URL such as s3://...) for the analytics rows.",
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def generate_content(**context: Any) -> dict[str, str]:
        """Stand-in for real content generation (an LLM call, a query, a template render...)."""
        # A run triggered from the CLI or the REST API has no logical date: fall back to when
        # the run was due, which every run has.
        day = context.get("logical_date") or context["dag_run"].run_after
        title = f"Your picks for {day:%A %d %B}"
        body = "Three new arrivals we think you will like."
        # A send ID of this run (picks-20261203-3f9a1c2b: the day it was due and a digest of its
        # run ID): a retried task re-creates the same ID, another run, even the same day, gets
        # its own; ASCII and well under Braze's 64 characters.
        return {"title": title, "body": body, "send_id": run_send_id("picks", context)}

    content = generate_content()

    # [START howto_operator_create_send_id]
    create_send_id = CreateSendIdOperator(
        task_id="create_send_id",
        campaign_id="{{ params.campaign_id }}",
        send_id=content["send_id"],
    )
    # [END howto_operator_create_send_id]

    @task
    def build_audience(**context: Any) -> str:
        """Stand-in for an audience query: write one external user ID per line (JSON lines).

        The send operator streams the file in batches of 50, so it can hold millions of users.
        """
        folder = os.path.join(tempfile.gettempdir(), "braze-example-audiences")
        os.makedirs(folder, exist_ok=True)
        run_key = hashlib.sha256(context["run_id"].encode()).hexdigest()[:12]
        path = os.path.join(folder, f"{context['dag'].dag_id}-{run_key}.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for number in range(context["params"]["audience_size"]):
                fh.write(json.dumps(f"example-user-{number:06d}") + "\n")
        return path

    # [START howto_operator_send_messages]
    send = SendMessagesOperator(
        task_id="send",
        campaign_id="{{ params.campaign_id }}",
        send_id=create_send_id.output,
        recipients=build_audience(),
        messages={
            "email": {
                "app_id": "{{ params.email_app_id }}",
                "from": "{{ params.email_from }}",
                "subject": "{{ ti.xcom_pull(task_ids='generate_content', key='title') }}",
                "body": "{{ ti.xcom_pull(task_ids='generate_content', key='body') }}",
                "message_variation_id": "{{ params.email_variation_id }}",
            }
        },
        concurrency=8,
    )
    # [END howto_operator_send_messages]

    @task
    def log_summary(summary: dict[str, Any]) -> str:
        line = (
            f"Braze send ID {summary['send_id']}: {summary['accepted']} of {summary['recipients']} "
            f"recipients accepted in {summary['dispatch_count']} requests "
            f"(in doubt: {summary['in_doubt']}, not sent: {summary['not_sent']})."
        )
        print(line)
        return line

    log_summary(send.output)

    # [START howto_sensor_send_analytics]
    wait_for_analytics = SendAnalyticsSensor(
        task_id="wait_for_analytics",
        campaign_id="{{ params.campaign_id }}",
        send_id=create_send_id.output,
        sent_at="{{ ti.xcom_pull(task_ids='send', key='summary')['finished_at'] }}",
        min_age="{{ params.analytics_wait_seconds }}",
        # A send to listed users (not a broadcast) that still has no analytics this long after
        # min_age fails with the reason: Braze may keep send analytics only for broadcasts.
        broadcast="{{ ti.xcom_pull(task_ids='send', key='summary')['broadcast'] }}",
        no_data_grace="{{ params.analytics_grace_seconds }}",
        deferrable=True,  # no worker slot is held while waiting
        poke_interval=15 * 60,
        timeout=2 * 24 * 3600,
    )
    # [END howto_sensor_send_analytics]

    # [START howto_operator_get_send_analytics]
    fetch_analytics = GetSendAnalyticsOperator(
        task_id="fetch_analytics",
        campaign_id="{{ params.campaign_id }}",
        send_id=create_send_id.output,
        output_path="{{ params.analytics_path }}/{{ dag.dag_id }}-{{ run_key(dag_run) }}.csv",
    )
    # [END howto_operator_get_send_analytics]

    @task
    def log_channel_summary(send_id: str, path: str, **context: Any) -> list[str]:
        from airflow_provider_braze.analytics import describe_totals

        totals = context["ti"].xcom_pull(task_ids="fetch_analytics", key="channel_totals")
        lines = [f"Braze analytics for send ID {send_id} ({path}):"]
        lines += [f"  {line}" for line in describe_totals(totals)]
        print("\n".join(lines))
        return lines

    send >> wait_for_analytics >> fetch_analytics
    log_channel_summary(create_send_id.output, fetch_analytics.output)
