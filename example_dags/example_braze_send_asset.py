"""Announce a send as an Airflow asset: a send DAG with a ``braze://`` outlet.

create_send_id -> send (outlets=[the campaign's asset]): each successful send adds an asset
event carrying its summary (send ID, counts, finished_at). ``example_braze_analytics_on_send.py``
is scheduled on that asset and loads the analytics of exactly the send that triggered it.

Runs on the local Braze sandbox (instance ``sandbox``); against real Braze, set ``INSTANCE`` to
your instance code (``US-03``...) and the campaign to your API campaign, in both DAG files.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG

from airflow_provider_braze.assets import braze_campaign_asset
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.send_ids import MACROS

INSTANCE = "sandbox"
CAMPAIGN_ID = "sandbox-api-campaign"
# [START howto_asset_braze_campaign]
PICKS_SENDS = braze_campaign_asset(CAMPAIGN_ID, instance=INSTANCE)  # braze://sandbox/campaigns/...
# [END howto_asset_braze_campaign]

with DAG(
    dag_id="braze_send_with_asset",
    description="Send tagged with a send ID; announce each send on the campaign's braze:// asset.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example", "assets"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    user_defined_macros=MACROS,  # run_send_id in templates
) as dag:
    create_send_id = CreateSendIdOperator(
        task_id="create_send_id",
        campaign_id=CAMPAIGN_ID,
        # digest-20261203-3f9a1c2b: unique to the run, with or without a logical date.
        send_id="{{ run_send_id('digest', dag_run) }}",
    )
    # [START howto_operator_send_with_outlet]
    SendMessagesOperator(
        task_id="send",
        campaign_id=CAMPAIGN_ID,
        send_id=create_send_id.output,
        recipients=[f"example-user-{n:04d}" for n in range(250)],
        messages={
            "email": {
                "app_id": "sandbox-app",
                "from": "Sandbox Digest <digest@example.com>",
                "subject": "Your digest",
                "body": "This week's highlights.",
                "message_variation_id": f"{CAMPAIGN_ID}-email",
            }
        },
        outlets=[PICKS_SENDS],  # the asset event carries the send's summary
    )
    # [END howto_operator_send_with_outlet]
