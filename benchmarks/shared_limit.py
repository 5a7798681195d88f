"""Several senders, one workspace: K send processes (and another client) against one rate limit.

The sandbox runs in its own process with a tight shared limit (300 requests per 5 s) and 50 ms
added latency. Each sender is SendMessagesOperator.execute() in its own process (concurrency 8,
no checkpoint), all starting together; each records when Braze accepted each of its requests.
Measured side by side in one run:

- K = 1, 2 and 4 senders: together, requests accepted per second as a fraction of the limit
  (target: at least 0.9), the share of answers that were 429 (target: under 1 %), and the
  slowest sender's rate while all were sending, as a fraction of its fair share (target: at
  least 0.5);
- one sender while another client (no pacing) spends half the limit: the sender's rate as a
  fraction of what the other client leaves, and its share of 429 answers (target: under 1 %).

    python benchmarks/shared_limit.py [--requests 1200] [--window 5] [--limit 300] [--senders 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import connection, machine, sandbox

CHILD = r"""
import json, os, sys, time
from unittest import mock
spec = json.loads(sys.argv[1])
os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = spec["connection"]
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.sandbox import email_message

accepted = []
original = BrazeHook.send_prepared


def recording(self, prepared, recipients=None):
    answer = original(self, prepared, recipients)
    accepted.append(time.time())
    return answer


BrazeHook.send_prepared = recording
op = SendMessagesOperator(
    task_id="send", campaign_id="sandbox-api-campaign",
    recipients=[f"{spec['name']}-user-{n:07d}" for n in range(spec["recipients"])],
    messages=email_message(),
    checkpoint=None, concurrency=8, progress_interval=3600,
)
while time.time() < spec["start_at"]:
    time.sleep(0.001)
ti = mock.MagicMock(dag_id="bench", task_id="send", run_id=spec["name"], map_index=-1)
summary = op.execute({"ti": ti})
print(json.dumps({"accepted": summary["accepted"], "times": accepted}))
"""

OTHER_CLIENT = r"""
import json, sys, threading, time, urllib.error, urllib.request
spec = json.loads(sys.argv[1])
body = json.dumps({"campaign_id": "sandbox-api-triggered-campaign",
                   "recipients": [{"external_user_id": "other-client"}]}).encode()
THREADS = 4
accepted = []


def run(offset):
    # Each thread sends at rate / THREADS, so the client as a whole keeps its rate despite latency.
    period = THREADS / spec["rate"]
    next_at = spec["start_at"] + offset * period / THREADS
    while time.time() < spec["stop_at"]:
        if time.time() < next_at:
            time.sleep(min(0.002, next_at - time.time()))
            continue
        next_at += period
        request = urllib.request.Request(spec["url"] + "/campaigns/trigger/send", data=body, method="POST",
            headers={"Authorization": "Bearer " + spec["key"], "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request):
                accepted.append(time.time())
        except urllib.error.HTTPError:
            pass


threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"times": accepted}))
"""


def window_use(times: list[float], window: float, limit: int) -> float:
    """The mean share of the limit used in the windows (aligned to the clock, as Braze's and the
    sandbox's are) that lie wholly between the first and the last request."""
    first, last = min(times), max(times)
    start = (first // window + 1) * window
    full = int((last - start) // window)
    if full < 1:
        return len(times) / (last - first) / (limit / window)
    inside = sum(start <= t < start + full * window for t in times)
    return inside / (full * limit)


def statuses(info: dict[str, Any], path: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{info['url']}/_sandbox/statuses") as answer:  # noqa: S310 - loopback
        counts: dict[str, int] = json.load(answer).get(path, {})
    return counts


def reset(info: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{info['url']}/_sandbox/reset", data=b"{}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request):  # noqa: S310 - loopback
        pass


def start_sender(
    info: dict[str, Any], name: str, requests: int, start_at: float, home: str
) -> subprocess.Popen[str]:
    spec = {
        "connection": connection(info, retry_budget=600),
        "name": name,
        "recipients": requests * 50,
        "start_at": start_at,
    }
    env = {
        **os.environ,
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW_HOME": home,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=900)
    if process.returncode != 0:
        raise SystemExit(f"a sender failed:\n{out[-2000:]}\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def senders(info: dict[str, Any], k: int, requests: int, home: str) -> list[dict[str, Any]]:
    start_at = time.time() + 8  # every process imported and waiting
    processes = [start_sender(info, f"s{i}", requests // k, start_at, home) for i in range(k)]
    return [finish(p) for p in processes]


def k_senders(info: dict[str, Any], k: int, requests: int, window: float, limit: int, home: str) -> str:
    reset(info)
    results = senders(info, k, requests, home)
    times = sorted(t for r in results for t in r["times"])
    together = window_use(times, window, limit)
    counts = statuses(info, "/messages/send")
    answers = sum(counts.values())
    limited = counts.get("429", 0) / answers if answers else 0.0
    # While all were sending: from the last first acceptance to the first last one.
    start = max(min(r["times"]) for r in results)
    end = min(max(r["times"]) for r in results)
    total_during = sum(start <= t <= end for t in times)
    shares = (
        [sum(start <= t <= end for t in r["times"]) / (total_during / k) for r in results]
        if total_during
        else [1.0]
    )
    return (
        f"K={k}: {len(times)} requests in {times[-1] - times[0]:5.1f} s; together {together:.3f} of the "
        f"limit per window (target >= 0.9); 429 answers {100 * limited:.2f} % (target < 1 %); slowest "
        f"sender {min(shares):.2f} of its fair share (target >= 0.5)"
    )


def with_another_client(info: dict[str, Any], requests: int, window: float, limit: int, home: str) -> str:
    reset(info)
    start_at = time.time() + 8
    sender = start_sender(info, "main", requests, start_at, home)
    other_spec = {
        "url": info["url"],
        "key": info["api_key"],
        "rate": limit / window / 2,
        "start_at": start_at - 3,  # already spending when the send starts
        "stop_at": start_at + 3600,
    }
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_CLIENT, json.dumps(other_spec)], stdout=subprocess.PIPE, text=True
    )
    result = finish(sender)
    other_spec_stop = time.time()
    other.terminate()
    other.wait(timeout=30)
    times = sorted(result["times"])
    counts = statuses(info, "/messages/send")
    answers = sum(counts.values())
    limited = counts.get("429", 0) / answers if answers else 0.0
    other_ok = statuses(info, "/campaigns/trigger/send").get("201", 0)
    other_rate = other_ok / (other_spec_stop - other_spec["start_at"])
    mine = window_use(times, window, limit)
    left = 1 - other_rate / (limit / window)
    return (
        f"1 sender beside a client spending {1 - left:.2f} of the limit: the sender used {mine:.3f} of "
        f"the limit per window, {mine / left:.3f} of what the other left (target >= 0.9); its 429 "
        f"answers {100 * limited:.2f} % (target < 1 %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=1200, help="requests per scenario, shared by its senders"
    )
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--senders", default="1,2,4", help="the numbers of senders to measure")
    parser.add_argument("--skip-other-client", action="store_true")
    args = parser.parse_args()
    limit_rate = args.limit / args.window
    with (
        tempfile.TemporaryDirectory(prefix="braze-bench-") as home,
        sandbox("--rate-limit", f"shared={args.limit}/{args.window}", "--latency-ms", "50") as info,
    ):
        print(machine())
        print(
            f"limit {args.limit} per {args.window} s ({limit_rate:.0f}/s), 50 ms latency, "
            "concurrency 8 per sender"
        )
        for k in (int(n) for n in args.senders.split(",")):
            print(k_senders(info, k, args.requests, args.window, args.limit, home), flush=True)
        if not args.skip_other_client:
            print(with_another_client(info, args.requests // 2, args.window, args.limit, home), flush=True)


if __name__ == "__main__":
    main()
