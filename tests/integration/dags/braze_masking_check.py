"""A DAG that logs the Braze API key by mistake: the integration tests check it is masked."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from airflow.sdk import DAG, task

with DAG("braze_masking_check", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:

    @task
    def careless() -> str:
        from airflow_provider_braze.hooks.braze import BrazeHook

        hook = BrazeHook()
        hook.create_send_id("sandbox-api-campaign", "masking-check")
        hook.log.info("logged key: %s", hook.settings.api_key)
        logging.getLogger("some.library").warning("stdlib logged key: %s", hook.settings.api_key)
        return "done"

    careless()
