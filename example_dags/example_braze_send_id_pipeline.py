"""Generate content, create a Braze send ID for it, and hand the ID to downstream tasks.

Runs against the local Braze sandbox by default (see README.md) and against real Braze when the
``braze_default`` connection points at your REST endpoint and ``campaign_id`` is one of your API
campaigns:

.. code-block:: bash

    airflow dags test braze_send_id_pipeline --conf '{"campaign_id": "<your API campaign ID>"}'
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_braze.operators.send_id import CreateSendIdOperator

with DAG(
    dag_id="braze_send_id_pipeline",
    description="Generate content -> create a Braze send ID -> prepare a send tagged with it.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    params={
        "campaign_id": Param(
            "sandbox-api-campaign",
            type="string",
            minLength=1,
            description="API identifier of the Braze API campaign to create the send ID for.",
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def generate_content(**context: Any) -> dict[str, str]:
        """Stand-in for real content generation (an LLM call, a query, a template render...)."""
        day = context["logical_date"] or context["dag_run"].run_after
        title = f"Your picks for {day:%A %d %B}"
        body = "Three new arrivals we think you will like."
        digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:12]
        # A send ID derived from the run and the content: a retried task re-creates the same ID
        # instead of a new one, and it stays ASCII and well under Braze's 64 characters.
        return {"title": title, "body": body, "send_id": f"picks-{day:%Y%m%d}-{digest}"}

    content = generate_content()

    # [START howto_operator_create_send_id]
    create_send_id = CreateSendIdOperator(
        task_id="create_send_id",
        campaign_id="{{ params.campaign_id }}",
        send_id=content["send_id"],
    )
    # [END howto_operator_create_send_id]

    @task
    def prepare_send(send_id: str, campaign_id: str, title: str, body: str) -> dict[str, Any]:
        """Receives the send ID through XCom; a later release sends the message here."""
        return {
            "campaign_id": campaign_id,
            "send_id": send_id,
            "messages": {"email": {"subject": title, "body": body}},
        }

    @task
    def log_send_id(prepared: dict[str, Any]) -> str:
        print(f"Braze send ID {prepared['send_id']} is ready for campaign {prepared['campaign_id']}.")
        return str(prepared["send_id"])

    prepared = prepare_send(
        send_id=create_send_id.output,
        campaign_id=create_send_id.output["campaign_id"],
        title=content["title"],
        body=content["body"],
    )
    log_send_id(prepared)
