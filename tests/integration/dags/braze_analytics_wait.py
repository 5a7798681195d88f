"""A deferrable SendAnalyticsSensor that must wait: the integration tests check it defers and resumes."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, task

from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

with DAG("braze_analytics_wait", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:

    @task
    def send() -> str:
        from airflow_provider_braze.hooks.braze import BrazeHook
        from airflow_provider_braze.sandbox import email_message

        hook = BrazeHook()
        hook.create_send_id("sandbox-api-campaign", "wait-test")
        hook.send_messages(
            "sandbox-api-campaign",
            send_id="wait-test",
            external_user_ids=[f"u{i}" for i in range(20)],
            messages=email_message(),
        )
        return datetime.now(timezone.utc).isoformat()

    sent_at = send()
    SendAnalyticsSensor(
        task_id="wait",
        campaign_id="sandbox-api-campaign",
        send_id="wait-test",
        sent_at=sent_at,
        min_age=3,
        min_sent=20,
        deferrable=True,
        poke_interval=1,
        timeout=60,
    )
