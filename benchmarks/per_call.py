"""Per-call cost: create_send_id through BrazeHook against a bare requests.Session loop and
HttpHook.run, interleaved, against a loopback keep-alive server in its own process.

Prints client CPU time and wall time per call, and the ratios. Targets: BrazeHook within 1.15x
of the bare session in CPU, and never slower than HttpHook.

    python benchmarks/per_call.py [--calls 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from typing import TYPE_CHECKING

from _common import echo_server, machine, quiet_airflow

if TYPE_CHECKING:
    from collections.abc import Callable

KEY = "bench-key-0123456789abcdef"
BODY = {"campaign_id": "bench-campaign", "send_id": "bench-send"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    quiet_airflow(tempfile.mkdtemp(prefix="braze-bench-home-"))

    with echo_server() as url:
        host, port = url.removeprefix("http://").split(":")
        os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = json.dumps(
            {"conn_type": "braze", "host": url, "password": KEY}
        )
        os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        )
        import requests
        from airflow.providers.http.hooks.http import HttpHook

        from airflow_provider_braze.hooks.braze import BrazeHook

        braze = BrazeHook()
        session = requests.Session()
        http = HttpHook(method="POST", http_conn_id="bench_http")
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

        def bare() -> None:
            response = session.post(f"{url}/sends/id/create", json=BODY, headers=headers, timeout=(10, 30))
            response.raise_for_status()
            response.json()

        def braze_hook() -> None:
            braze.create_send_id(BODY["campaign_id"], BODY["send_id"])

        def http_hook() -> None:
            http.run("/sends/id/create", data=json.dumps(BODY), headers=headers).json()

        clients: dict[str, Callable[[], None]] = {
            "bare requests.Session": bare,
            "BrazeHook.create_send_id": braze_hook,
            "HttpHook.run": http_hook,
        }
        for call in clients.values():  # warm up: connections, imports, connection lookups
            for _ in range(20):
                call()
        cpu = dict.fromkeys(clients, 0.0)
        wall = dict.fromkeys(clients, 0.0)
        # Per-round CPU ratios: this machine's speed drifts by tens of percent over seconds, so
        # the clients take turns in short rounds and the median of the rounds' ratios is reported.
        round_ratios: dict[str, list[float]] = {"bare": [], "http": []}
        per_round = max(1, args.calls // args.rounds)
        for number in range(args.rounds):
            order = list(clients.items())
            if number % 2:
                order.reverse()  # no client always runs right after another
            spent = {}
            for name, call in order:
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                for _ in range(per_round):
                    call()
                spent[name] = time.process_time() - cpu_start
                cpu[name] += spent[name]
                wall[name] += time.perf_counter() - wall_start
            round_ratios["bare"].append(spent["BrazeHook.create_send_id"] / spent["bare requests.Session"])
            round_ratios["http"].append(spent["BrazeHook.create_send_id"] / spent["HttpHook.run"])
        calls = per_round * args.rounds

    print(machine())
    print(
        f"{calls} sequential calls per client, interleaved in {args.rounds} rounds, "
        "loopback keep-alive server"
    )
    for name in clients:
        print(
            f"  {name:<26} CPU {1e6 * cpu[name] / calls:7.1f} us/call   "
            f"wall {1e6 * wall[name] / calls:7.1f} us/call"
        )
    to_bare = statistics.median(round_ratios["bare"])
    to_http = statistics.median(round_ratios["http"])
    base, ours, http_cost = cpu["bare requests.Session"], cpu["BrazeHook.create_send_id"], cpu["HttpHook.run"]
    print(
        f"  CPU ratio BrazeHook / bare session: median of rounds {to_bare:.3f}, of totals {ours / base:.3f}"
        f" (target <= 1.15: {'met' if to_bare <= 1.15 else 'NOT met'})"
    )
    print(
        f"  CPU ratio BrazeHook / HttpHook:     median of rounds {to_http:.3f}, "
        f"of totals {ours / http_cost:.3f}"
        f" (target <= 1.0: {'met' if to_http <= 1.0 else 'NOT met'})"
    )
    wall_ratio = wall["BrazeHook.create_send_id"] / wall["HttpHook.run"]
    print(f"  wall ratio BrazeHook / HttpHook:    {wall_ratio:.3f}")


if __name__ == "__main__":
    main()
