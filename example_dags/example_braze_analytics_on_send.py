"""Data-aware scheduling on Braze sends: run after each send, load exactly that send's analytics.

Scheduled on the ``braze://`` asset that ``example_braze_send_asset.py`` announces its sends on.
which_sends reads the send IDs from the asset events that triggered the run (all of them: the
scheduler may put several sends into one run; in a manual run, the asset's latest event) ->
wait_for_analytics (mapped, deferrable) -> fetch_analytics (mapped): one per send.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

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
    params={
        "analytics_grace_seconds": Param(
            86_400,
            type="integer",
            minimum=0,
            description="How long past min_age a send to listed users may have no analytics "
            "before the sensor fails saying Braze may track only broadcasts.",
        ),
    },
) as dag:

    @task(inlets=[PICKS_SENDS])
    def which_sends(**context: Any) -> list[dict[str, Any]]:
        """The sends this run is about: every event that triggered it (the scheduler puts all
        events since the last run into one run), or, in a manual run, the asset's latest one.
        Rehearsals are left out: nothing was sent."""
        events = list(context["triggering_asset_events"].get(PICKS_SENDS, []))
        if not events:  # a manual run
            latest = list(context["inlet_events"][PICKS_SENDS])[-1:]
            events = latest
        sends = []
        for event in events:
            sent = dict(event.extra)
            if sent.get("dry_run") or not sent.get("send_id"):
                print(f"Skipping {sent.get('send_id')!r}: a rehearsal, nothing was sent.")
                continue
            print(f"Braze send {sent['send_id']} of {sent['campaign_id']}: {sent['accepted']} accepted.")
            sends.append(
                {
                    "campaign_id": sent["campaign_id"],
                    "send_id": sent["send_id"],
                    "min_sent": sent["accepted"],
                    # When and how it was sent: a send Braze does not track fails with the reason.
                    "sent_at": sent.get("finished_at"),
                    "broadcast": sent.get("broadcast"),
                }
            )
        return sends

    sends = which_sends()
    # One sensor and one load per send (none when there is none: the mapped tasks are skipped).
    wait_for_analytics = SendAnalyticsSensor.partial(
        task_id="wait_for_analytics",
        no_data_grace="{{ params.analytics_grace_seconds }}",
        deferrable=True,
        poke_interval=15 * 60,
        timeout=2 * 24 * 3600,
    ).expand_kwargs(sends)
    fetch_analytics = GetSendAnalyticsOperator.partial(task_id="fetch_analytics").expand_kwargs(
        sends.map(lambda send: {"campaign_id": send["campaign_id"], "send_id": send["send_id"]})
    )
    wait_for_analytics >> fetch_analytics
