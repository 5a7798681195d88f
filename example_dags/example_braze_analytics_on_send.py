"""Data-aware scheduling on Braze sends: run after each send, load exactly that send's analytics.

Scheduled on the ``braze://`` asset that ``example_braze_send_asset.py`` announces its sends on.
which_send reads the send ID from the asset event that triggered the run (in a manual run: the
latest event of the asset) -> wait_for_analytics (deferrable) -> fetch_analytics.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_braze.assets import braze_campaign_asset
from airflow_provider_braze.operators.analytics import GetSendAnalyticsOperator
from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

PICKS_SENDS = braze_campaign_asset("sandbox-api-campaign", instance="sandbox")

with DAG(
    dag_id="braze_analytics_on_send",
    description="After each Braze send announced on the campaign's asset, load that send's analytics.",
    # [START howto_schedule_on_braze_asset]
    schedule=[PICKS_SENDS],
    # [END howto_schedule_on_braze_asset]
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example", "assets"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
) as dag:

    @task(inlets=[PICKS_SENDS])
    def which_send(**context: Any) -> dict[str, Any]:
        """The send this run is about: the triggering event's summary (or the latest one)."""
        from airflow.sdk.exceptions import AirflowSkipException

        events = list(context["triggering_asset_events"].get(PICKS_SENDS, []))
        if not events:  # a manual run: the asset's latest event
            events = list(context["inlet_events"][PICKS_SENDS])
        if not events:
            raise AirflowSkipException("No send has been announced on the asset yet.")
        sent = dict(events[-1].extra)
        if sent.get("dry_run"):
            raise AirflowSkipException(f"Send {sent.get('send_id')!r} was a rehearsal: nothing to load.")
        print(f"Braze send {sent['send_id']} of campaign {sent['campaign_id']}: {sent['accepted']} accepted.")
        return sent

    sent = which_send()
    wait_for_analytics = SendAnalyticsSensor(
        task_id="wait_for_analytics",
        campaign_id="{{ ti.xcom_pull(task_ids='which_send')['campaign_id'] }}",
        send_id="{{ ti.xcom_pull(task_ids='which_send')['send_id'] }}",
        min_sent="{{ ti.xcom_pull(task_ids='which_send')['accepted'] }}",
        deferrable=True,
        poke_interval=15 * 60,
        timeout=2 * 24 * 3600,
    )
    fetch_analytics = GetSendAnalyticsOperator(
        task_id="fetch_analytics",
        campaign_id="{{ ti.xcom_pull(task_ids='which_send')['campaign_id'] }}",
        send_id="{{ ti.xcom_pull(task_ids='which_send')['send_id'] }}",
    )
    sent >> wait_for_analytics >> fetch_analytics
