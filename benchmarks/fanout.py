"""Fan-out throughput of SendMessagesOperator against the Braze sandbox.

50,000 recipients (1,000 requests) with 50 ms added latency per request and a rate limit set
here; achieved requests/s as a fraction of min(rate limit, concurrency / latency), and the share
of requests answered 429; beside it, a naive sequential loop. Target: at least 0.9 of the bound
with under 1 % 429s. (The checkpoint's cost is measured by checkpoint_cost.py.)

    python benchmarks/fanout.py [--recipients 50000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
from _common import connection, machine, quiet_airflow, sandbox

LATENCY_S = 0.05


def statuses(info: dict[str, Any]) -> dict[str, int]:
    with urllib.request.urlopen(f"{info['url']}/_sandbox/statuses") as answer:  # noqa: S310 - loopback
        counts: dict[str, int] = json.load(answer).get("/messages/send", {})
    return counts


def send(info: dict[str, Any], recipients: int, concurrency: int, checkpoint: Any, run: str) -> float:
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from airflow_provider_braze.sandbox import email_message

    os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = connection(info, retry_budget=600)
    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        recipients=[f"bench-user-{n:07d}" for n in range(recipients)],
        messages=email_message(),
        concurrency=concurrency,
        checkpoint=checkpoint,
        progress_interval=3600,
    )
    ti = mock.MagicMock(dag_id="bench", task_id="send", run_id=run, map_index=-1)
    start = time.perf_counter()
    summary = op.execute({"ti": ti})
    elapsed = time.perf_counter() - start
    assert summary["accepted"] == recipients, summary
    return elapsed


def naive_loop(info: dict[str, Any], requests_count: int) -> float:
    """What a hand-written loop does: one request at a time, no pacing."""
    import requests

    from airflow_provider_braze.sandbox import email_message

    session = requests.Session()
    headers = {"Authorization": f"Bearer {info['api_key']}"}
    start = time.perf_counter()
    for n in range(requests_count):
        ids = [f"naive-{n}-{i}" for i in range(50)]
        body = {"campaign_id": "sandbox-api-campaign", "external_user_ids": ids, "messages": email_message()}
        session.post(
            f"{info['url']}/messages/send", json=body, headers=headers, timeout=30
        ).raise_for_status()
    return requests_count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=300, help="rate limit: requests per window")
    parser.add_argument("--window", type=int, default=5, help="rate-limit window, seconds")
    args = parser.parse_args()
    quiet_airflow(tempfile.mkdtemp(prefix="braze-bench-home-"))
    requests_count = -(-args.recipients // 50)
    checkpoints = tempfile.mkdtemp(prefix="braze-bench-cp-")

    rate_bound = args.limit / args.window
    concurrency_bound = args.concurrency / LATENCY_S
    bound = min(rate_bound, concurrency_bound)
    with sandbox(
        "--latency-ms", str(LATENCY_S * 1000), "--rate-limit", f"shared={args.limit}/{args.window}"
    ) as info:
        # Windows align to the clock, as Braze's do: start at a window's start, so that a partial
        # first window does not flatter the result.
        time.sleep(args.window - time.time() % args.window + 0.05)
        elapsed = send(info, args.recipients, args.concurrency, checkpoints, run="throughput")
        counts = statuses(info)
        naive = naive_loop(info, 40)
    answered = sum(counts.values())
    too_many = counts.get("429", 0)
    achieved = requests_count / elapsed

    print(machine())
    print(
        f"fan-out: {args.recipients} recipients = {requests_count} requests, concurrency {args.concurrency}, "
        f"{LATENCY_S * 1000:.0f} ms latency, rate limit {args.limit} per {args.window} s"
    )
    print(
        f"  bound = min(rate limit {rate_bound:.1f}/s, concurrency/latency {concurrency_bound:.1f}/s) "
        f"= {bound:.1f} requests/s"
    )
    verdict = "met" if achieved / bound >= 0.9 and too_many / answered < 0.01 else "NOT met"
    print(
        f"  SendMessagesOperator: {achieved:.1f} requests/s = {achieved / bound:.3f} of the bound; "
        f"{too_many} of {answered} answers were 429 ({100 * too_many / answered:.2f} %) "
        f"(target >= 0.9 with < 1 %: {verdict})"
    )
    print(f"  naive sequential loop: {naive:.1f} requests/s = {naive / bound:.3f} of the bound")


if __name__ == "__main__":
    main()
