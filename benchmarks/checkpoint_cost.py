"""What the send checkpoint costs, in time and in bytes.

1. Time: the same send (50,000 recipients from a file, 50 ms latency per request, concurrency 8,
   no rate limit) run through ``dag.test()`` with the checkpoint in Airflow Variables (the
   default), in files, and with none, after a warm-up, over three rounds in rotating order; the
   send task's duration from the metadata DB, median. Target: under 1.1x for each store.
   (Under ``dag.test()`` the Airflow API server runs in this process, so each Variable write
   also costs this process's CPU, which a deployed worker does not pay.)
2. Bytes: a 100,000-recipient send whose every request fails (the sandbox answers 5xx to all),
   with a file checkpoint: how many bytes it writes in all, and its largest record (the Variable
   store writes the same JSON text). Targets: at most 20 MB in all, 64 KB per record.

    python benchmarks/checkpoint_cost.py [--recipients 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
from _common import connection, machine, sandbox

DAG_FILE = textwrap.dedent(
    """
    import os
    from datetime import datetime, timezone
    from airflow.sdk import DAG
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from airflow_provider_braze.sandbox import email_message

    STORES = {"variable": "variable", "file": os.environ["BENCH_CHECKPOINTS"], "none": None}
    START = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for label, store in STORES.items():
        with DAG(f"bench_checkpoint_{label}", schedule=None, start_date=START):
            SendMessagesOperator(
                task_id="send",
                campaign_id="sandbox-api-campaign",
                recipients=os.environ["BENCH_AUDIENCE"],
                messages=email_message(),
                concurrency=8,
                checkpoint=store,
                progress_interval=3600,
            )
    """
)


def prepare_airflow(home: Path, recipients: int) -> Path:
    """A throwaway AIRFLOW_HOME with a migrated SQLite DB and the benchmark's DAGs as a bundle."""
    dags = home / "dags"
    dags.mkdir(parents=True)
    audience = home / "audience.jsonl"  # a file, as large sends use (a list would be rendered item by item)
    with audience.open("w") as fh:
        for number in range(recipients):
            fh.write(f'"bench-user-{number:07d}"\n')
    (dags / "bench_checkpoint.py").write_text(DAG_FILE)
    bundle = {"name": "bench", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [{**bundle, "kwargs": {"path": str(dags)}}]
            ),
            "BENCH_AUDIENCE": str(audience),
            "BENCH_CHECKPOINTS": str(home / "checkpoints"),
        }
    )
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=600)
    return dags


def timed_send(dags: Path, label: str) -> float:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dags)).dags[f"bench_checkpoint_{label}"]
    dag_run = dag.test()
    (ti,) = [t for t in dag_run.get_task_instances() if t.task_id == "send"]
    assert ti.state == "success", (label, ti.state)
    return (ti.end_date - ti.start_date).total_seconds()  # type: ignore[no-any-return]


def outage(recipients: int, workdir: Path) -> dict[str, Any]:
    from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from airflow_provider_braze.sandbox import email_message

    with sandbox("--p-5xx", "1.0") as info:
        os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = connection(info, max_retries=0)
        op = SendMessagesOperator(
            task_id="send",
            campaign_id="sandbox-api-campaign",
            recipients=[f"bench-user-{n:07d}" for n in range(recipients)],
            messages=email_message(),
            concurrency=8,
            checkpoint=str(workdir / "outage"),
            progress_interval=3600,
        )
        ti = mock.MagicMock(dag_id="bench", task_id="send", run_id="outage", map_index=-1)
        started = time.perf_counter()
        try:
            op.execute({"ti": ti})
        except BrazeDeliveryIncompleteError as err:
            summary = err.summary
        else:
            raise SystemExit("the send succeeded although every request failed")
        seconds = time.perf_counter() - started
        with urllib.request.urlopen(f"{info['url']}/_sandbox/statuses") as answer:  # noqa: S310 - loopback
            requests_made = sum(json.load(answer).get("/messages/send", {}).values())
    delivery = op._delivery
    assert delivery is not None
    records = list((workdir / "outage").glob("*.json"))
    return {
        "seconds": seconds,
        "bytes": delivery.bytes_written,
        "largest": max(p.stat().st_size for p in records),
        "requests": requests_made,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage-recipients", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="braze-bench-") as tmp:
        home = Path(tmp)
        dags = prepare_airflow(home / "airflow", args.recipients)
        durations: dict[str, list[float]] = {"variable": [], "file": [], "none": []}
        with sandbox("--latency-ms", "50") as info:
            os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = connection(info, retry_budget=600)
            timed_send(dags, "none")  # warm-up: the first dag.test() of a process is slower
            labels = list(durations)
            for round_number in range(args.rounds):
                for label in labels[round_number % 3 :] + labels[: round_number % 3]:  # rotate the order
                    durations[label].append(timed_send(dags, label))
        down = outage(args.outage_recipients, home)

    print(machine())
    without = statistics.median(durations["none"])
    print(
        f"checkpoint cost: {args.recipients:,} recipients through dag.test(), 50 ms latency, concurrency 8 "
        f"(send task's duration, median of {args.rounds}):"
    )
    for label, name in (("variable", "Airflow Variables"), ("file", "files")):
        seconds = statistics.median(durations[label])
        ratio = seconds / without
        print(
            f"  {name}: {seconds:.2f} s against {without:.2f} s without a checkpoint; ratio {ratio:.3f} "
            f"(target < 1.1: {'met' if ratio < 1.1 else 'NOT met'})"
        )
    summary = down["summary"]
    verdict = "met" if down["bytes"] <= 20 * 2**20 and down["largest"] <= 64 * 2**10 else "NOT met"
    print(
        f"total outage: {args.outage_recipients:,} recipients, every request answered 5xx: "
        f"stopped early after {down['requests']} requests in {down['seconds']:.1f} s; "
        f"checkpoint {down['bytes']:,} bytes written in all, largest record {down['largest']:,} bytes "
        f"(targets <= 20 MB and <= 64 KB: {verdict}); {summary['not_sent']:,} listed as not sent"
    )


if __name__ == "__main__":
    main()
