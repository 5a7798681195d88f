"""A very large send as mapped shards: one send ID, four shards sent in parallel on any workers.

build_audience (a JSON-lines file) -> shard_audience (4 shards by a stable hash)
create_send_id -> send_shard (mapped, one per shard, in the ``braze_workspace`` pool)

README.md, "Several senders, one workspace": every shard sends under the same send ID and keeps
its own exactly-once checkpoint in Airflow Variables (``checkpoint="variable"``), so a shard
whose worker dies retries on any worker and resumes where it stopped. The pool (create it:
``airflow pools set braze_workspace 4 "Braze workspace"``) bounds how many shards send at once.
``scripts/deployment-check --executor celery`` runs it with 200,000 recipients across two Celery
workers and kills one mid-send.

The audience is generated here into the machine's temporary folder, which every worker of a
one-machine deployment shares; across machines, write it and the shards to an object store
(``s3://...``) instead, as the README's snippet does.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_braze.operators.experiments import SplitAudienceOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.send_ids import MACROS

SHARDS = 4
CAMPAIGN_ID = "sandbox-api-campaign"

with DAG(
    dag_id="braze_sharded_send",
    description="One Braze send ID, the audience sent as mapped shards in a shared pool.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example", "shards"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    user_defined_macros=MACROS,  # run_send_id / run_key in templates: every run has them
    params={
        "audience_size": Param(2_000, type="integer", minimum=SHARDS, description="Generated recipients."),
        "output_path": Param(
            "file://" + os.path.join(tempfile.gettempdir(), "braze-example-shards"),
            type="string",
            description="Folder every worker reaches (local or ObjectStoragePath URL) for the shards.",
        ),
    },
) as dag:

    @task
    def build_audience(**context: Any) -> str:
        """Stand-in for an audience query: one external user ID per line (JSON lines)."""
        from airflow_provider_braze.send_ids import run_key

        folder = os.path.join(tempfile.gettempdir(), "braze-example-audiences")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{context['dag'].dag_id}-{run_key(context['dag_run'])}.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for number in range(context["params"]["audience_size"]):
                fh.write(json.dumps(f"shard-user-{number:07d}") + "\n")
        return path

    create_send_id = CreateSendIdOperator(
        task_id="create_send_id",
        campaign_id=CAMPAIGN_ID,
        send_id="{{ run_send_id('shards', dag_run) }}",
    )

    # [START howto_operator_sharded_send]
    shards = SplitAudienceOperator(
        task_id="shard_audience",
        recipients=build_audience(),
        experiment="shards-{{ run_id }}",  # any name: the split only balances the shards
        shares={f"shard{n}": 1 / SHARDS for n in range(SHARDS)},
        output_path="{{ params.output_path }}/{{ dag.dag_id }}/{{ run_key(dag_run) }}",
    )
    SendMessagesOperator.partial(
        task_id="send_shard",
        campaign_id=CAMPAIGN_ID,
        send_id=create_send_id.output,
        messages={
            "email": {
                "app_id": "sandbox-app",
                "from": "Sandbox News <news@example.com>",
                "subject": "This month's news",
                "body": "Everything new this month, in one email.",
                "message_variation_id": f"{CAMPAIGN_ID}-email",
            }
        },
        concurrency=4,  # per shard
        checkpoint="variable",  # Airflow Variables: every worker reaches them
        pool="braze_workspace",  # an Airflow pool: how many shards send at once
        retries=1,  # a shard whose worker died resumes from its checkpoint, on any worker
        retry_delay=timedelta(seconds=5),
    ).expand_kwargs(shards.output)
    # [END howto_operator_sharded_send]
