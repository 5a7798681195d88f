"""Send an API-triggered campaign now, and schedule messages and a triggered campaign for later.

create_trigger_send_id -> trigger (the dashboard's content, personalised per recipient)
create_send_id -> schedule (an email at 09:00 tomorrow in each user's own time zone)
schedule_trigger (the triggered campaign to its own segment, a week ahead, in UTC)

Runs against the local Braze sandbox by default. Against real Braze, pass your API campaign and
its email variation, an API-triggered campaign, your email app ID and sender:

.. code-block:: bash

    airflow dags test braze_triggered_and_scheduled --conf '{"campaign_id": "<API campaign ID>",
        "email_variation_id": "<its email variation ID>", "triggered_campaign_id": "<API-triggered
        campaign ID>", "email_app_id": "<app ID>", "email_from": "Shop <offers@your-domain.com>"}'
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, Param

from airflow_provider_braze.operators.messages import (
    ScheduleMessagesOperator,
    ScheduleTriggeredCampaignOperator,
    SendTriggeredCampaignOperator,
)
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.send_ids import MACROS

with DAG(
    dag_id="braze_triggered_and_scheduled",
    description="Trigger an API-triggered campaign now; schedule messages and a triggered campaign later.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    user_defined_macros=MACROS,  # run_send_id(...) in templates: what every run has
    params={
        "campaign_id": Param("sandbox-api-campaign", type="string", minLength=1),
        "email_variation_id": Param("sandbox-api-campaign-email", type="string", minLength=1),
        "triggered_campaign_id": Param("sandbox-api-triggered-campaign", type="string", minLength=1),
        "email_app_id": Param("sandbox-app", type="string"),
        "email_from": Param("Sandbox Picks <picks@example.com>", type="string"),
    },
) as dag:
    # [START howto_operator_send_triggered_campaign]
    create_trigger_send_id = CreateSendIdOperator(
        task_id="create_trigger_send_id",
        campaign_id="{{ params.triggered_campaign_id }}",
        send_id="{{ run_send_id('winners', dag_run) }}",
    )
    trigger = SendTriggeredCampaignOperator(
        task_id="trigger",
        campaign_id="{{ params.triggered_campaign_id }}",
        send_id=create_trigger_send_id.output,
        # Recipient objects; each may carry its own trigger properties (or a CSV / JSON-lines
        # file with trigger_properties.<name> columns).
        recipients=[
            {"external_user_id": "winner-1", "trigger_properties": {"coupon": "SPRING-1A"}},
            {"external_user_id": "winner-2", "trigger_properties": {"coupon": "SPRING-2B"}},
        ],
        trigger_properties={"season": "spring"},  # for every recipient
    )
    # [END howto_operator_send_triggered_campaign]

    # [START howto_operator_schedule_messages]
    create_send_id = CreateSendIdOperator(
        task_id="create_send_id",
        campaign_id="{{ params.campaign_id }}",
        send_id="{{ run_send_id('tomorrow-only', dag_run) }}",
    )
    schedule = ScheduleMessagesOperator(
        task_id="schedule",
        campaign_id="{{ params.campaign_id }}",
        send_id=create_send_id.output,
        recipients=[f"example-user-{n:03d}" for n in range(120)],
        messages={
            "email": {
                "app_id": "{{ params.email_app_id }}",
                "from": "{{ params.email_from }}",
                "subject": "Tomorrow only",
                "body": "<p>Our picks, for one day.</p>",
                "message_variation_id": "{{ params.email_variation_id }}",
            }
        },
        schedule={  # 09:00 tomorrow in each user's time zone: a wall-clock time, no zone
            "time": "{{ (dag_run.run_after + macros.timedelta(days=1)).strftime('%Y-%m-%dT09:00:00') }}",
            "in_local_time": True,
        },
    )
    # [END howto_operator_schedule_messages]

    # [START howto_operator_schedule_triggered_campaign]
    schedule_trigger = ScheduleTriggeredCampaignOperator(
        task_id="schedule_trigger",
        campaign_id="{{ params.triggered_campaign_id }}",
        broadcast=True,  # the campaign's own segment: one request
        schedule="{{ (dag_run.run_after + macros.timedelta(days=7)).isoformat() }}",  # in UTC
    )
    # [END howto_operator_schedule_triggered_campaign]
