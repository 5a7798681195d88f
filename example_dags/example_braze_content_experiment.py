"""A content experiment: which generated email works better? Each variant under its own send ID.

generate_variants -> create_send_ids (mapped, one send ID per variant)
build_audience -> split_audience (control 10 %, a 45 %, b 45 %, by a stable hash of each user)
-> send_variant (mapped: each variant's file, content and send ID) -> wait_for_analytics (mapped,
deferrable) -> compare (clicks decide, unsubscribes, bounces and spam reports are guardrails, the
recipients are checked against the planned shares; CSV + chart)

Runs against the local Braze sandbox (``scripts/demo --experiment``), whose made-up
engagement depends on each variant's content, deterministically: variant ``b`` gets clearly
more clicks than the control, variant ``a`` barely differs, so the comparison shows both a clear
verdict and "no significant difference yet" with the effects the data rule out. Against real
Braze, pass your API campaign, its email variation, app ID and sender as in
``example_braze_send_id_pipeline.py``, and your own audience.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Param, XComArg, task

from airflow_provider_braze.operators.analytics import CompareSendsOperator
from airflow_provider_braze.operators.experiments import SplitAudienceOperator
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.send_ids import MACROS, run_key, run_send_id
from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

#: Who gets what: the control keeps today's email; a and b try new subject lines and bodies.
SHARES = {"control": 0.1, "a": 0.45, "b": 0.45}
CONTENT = {
    "control": ("Your weekly picks are here", "Three new arrivals we think you will like."),
    "a": ("This week's picks are here", "Here are three new arrivals we think you will like."),
    "b": ("Hand-picked for you: 3 new arrivals", "We saved three new arrivals for you until Sunday."),
}

with DAG(
    dag_id="braze_content_experiment",
    description="Generate email variants, send each under its own send ID to a split audience, compare.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["braze", "example", "experiment"],
    default_args={"braze_conn_id": "braze_default", "retries": 0},
    user_defined_macros=MACROS,  # run_key(dag_run) in templates: every run has one
    params={
        "campaign_id": Param("sandbox-api-campaign", type="string", minLength=1),
        "email_variation_id": Param("sandbox-api-campaign-email", type="string", minLength=1),
        "email_app_id": Param("sandbox-app", type="string"),
        "email_from": Param("Sandbox Picks <picks@example.com>", type="string"),
        "experiment": Param(
            "weekly-picks-subject-line",
            type="string",
            minLength=1,
            description="Salts the split: the same name always puts a user in the same variant.",
        ),
        "audience_size": Param(20_000, type="integer", minimum=0),
        "analytics_wait_seconds": Param(0, type="integer", minimum=0),
        "analytics_grace_seconds": Param(
            86_400,
            type="integer",
            minimum=0,
            description="How long past analytics_wait_seconds a send to listed users may have no analytics "
            "before the sensor fails saying Braze may track only broadcasts.",
        ),
        "output_path": Param(
            "file://" + os.path.join(tempfile.gettempdir(), "braze-example-experiments"),
            type="string",
            description="Folder (local or ObjectStoragePath URL) for the variants' files and the comparison.",
        ),
    },
) as dag:

    @task
    def generate_variants(**context: Any) -> dict[str, dict[str, Any]]:
        """Stand-in for content generation: each variant's email and its own send ID."""
        params = context["params"]
        variants = {}
        for name, (subject, body) in CONTENT.items():
            variants[name] = {
                # picks-a-20261203-3f9a1c2b: the variant, the day the run was due and a digest of
                # its run ID; a retry re-creates the same ID, another run gets its own.
                "send_id": run_send_id(f"picks-{name}", context),
                "messages": {
                    "email": {
                        "app_id": params["email_app_id"],
                        "from": params["email_from"],
                        "subject": subject,
                        "body": body,
                        "message_variation_id": params["email_variation_id"],
                    }
                },
            }
        return variants

    @task
    def send_ids(variants: dict[str, dict[str, Any]]) -> list[str]:
        return [v["send_id"] for v in variants.values()]

    @task
    def build_audience(**context: Any) -> str:
        """Stand-in for an audience query: one external user ID per line."""
        folder = os.path.join(tempfile.gettempdir(), "braze-example-audiences")
        os.makedirs(folder, exist_ok=True)
        # One file per run: two runs at once must not rewrite each other's audience.
        path = os.path.join(folder, f"{context['dag'].dag_id}-{run_key(context)}.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for number in range(context["params"]["audience_size"]):
                fh.write(json.dumps(f"example-user-{number:06d}") + "\n")
        return path

    # An XComArg standing for the variants' dict: tasks below take it as their argument.
    variants: Any = generate_variants()

    # [START howto_operator_create_send_ids_mapped]
    create_send_ids = CreateSendIdOperator.partial(
        task_id="create_send_ids", campaign_id="{{ params.campaign_id }}"
    ).expand(send_id=send_ids(variants))
    # [END howto_operator_create_send_ids_mapped]

    # [START howto_operator_split_audience]
    split = SplitAudienceOperator(
        task_id="split_audience",
        recipients=build_audience(),
        experiment="{{ params.experiment }}",
        shares=SHARES,
        control="control",
        output_path="{{ params.output_path }}/{{ dag.dag_id }}/{{ run_key(dag_run) }}",
        variant_kwargs=variants,  # each variant's send_id and messages, next to its file
    )
    # [END howto_operator_split_audience]

    # [START howto_operator_send_variants]
    send = SendMessagesOperator.partial(
        task_id="send_variant", campaign_id="{{ params.campaign_id }}", concurrency=4
    ).expand_kwargs(split.output)
    # [END howto_operator_send_variants]
    create_send_ids >> send

    @task
    def analytics_waits(summaries: Any) -> list[dict[str, Any]]:
        """What each variant's sensor waits for: its send ID, and a message per recipient Braze
        accepted (a recipient listed twice in the audience is sent, and counted, once); when and
        how it was sent, so a send Braze does not track fails with the reason instead of waiting."""
        # By index: iterating a mapped task's output probes one past its end (logged as an error).
        return [
            {
                "send_id": summaries[i]["send_id"],
                "min_sent": summaries[i]["accepted"],
                "sent_at": summaries[i]["finished_at"],
                "broadcast": summaries[i]["broadcast"],
            }
            for i in range(len(summaries))
        ]

    waits = analytics_waits(send.output)

    wait_for_analytics = SendAnalyticsSensor.partial(
        task_id="wait_for_analytics",
        campaign_id="{{ params.campaign_id }}",
        min_age="{{ params.analytics_wait_seconds }}",
        no_data_grace="{{ params.analytics_grace_seconds }}",
        deferrable=True,
        poke_interval=15 * 60,
        timeout=2 * 24 * 3600,
    ).expand_kwargs(waits)

    @task
    def sends(variants: dict[str, dict[str, Any]]) -> dict[str, str]:
        return {name: v["send_id"] for name, v in variants.items()}

    @task
    def last_sent_at(summaries: Any) -> str:
        """When the last variant's send finished: the experiment's age is measured from it."""
        return str(max(summaries[i]["finished_at"] for i in range(len(summaries))))

    # [START howto_operator_compare_sends]
    compare = CompareSendsOperator(
        task_id="compare",
        campaign_id="{{ params.campaign_id }}",
        sends=sends(variants),
        control="control",
        # Clicks decide (opens are inflated by Apple Mail Privacy Protection); no variant may
        # raise unsubscribes, bounces or spam reports.
        primary_metric="clicks",
        guardrails=["unsubscribes", "bounces", "reported_spam"],
        # The split's planned shares: the recipients each variant got are checked against them.
        planned_shares=XComArg(split, key="planned_shares"),
        # The planned analysis time: a comparison of younger sends says it is provisional.
        min_age="{{ params.analytics_wait_seconds }}",
        sent_at=last_sent_at(send.output),
        output_path="{{ params.output_path }}/{{ dag.dag_id }}/{{ run_key(dag_run) }}/comparison.csv",
    )
    # [END howto_operator_compare_sends]
    wait_for_analytics >> compare
