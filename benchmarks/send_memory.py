"""Peak memory of a send streamed from a file: 1,000,000 recipients against 10,000.

Each send runs SendMessagesOperator.execute() in a fresh interpreter against a Braze sandbox in
its own process (so the sandbox's ledger is not counted), with a file checkpoint. The script
prints both peak RSS figures, their ratio (target: under 1.2) and the machine and date.

    python benchmarks/send_memory.py [--large 1000000] [--small 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import connection, machine, sandbox, write_audience

CHILD = r"""
import json, os, resource, sys, time
from unittest import mock
spec = json.loads(sys.argv[1])
os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = spec["connection"]
from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.sandbox import email_message
op = SendMessagesOperator(
    task_id="send", campaign_id="sandbox-api-campaign", recipients=spec["file"],
    messages=email_message(),
    checkpoint=spec["checkpoint"], concurrency=8, progress_interval=3600,
)
started = time.perf_counter()
summary = op.execute({"ti": mock.MagicMock(dag_id="bench", task_id="send", run_id=spec["run"], map_index=-1)})
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"accepted": summary["accepted"], "seconds": elapsed, "peak_kib": peak_kib}))
"""


def run_send(connection: str, audience: Path, workdir: Path, run: str) -> dict[str, float]:
    spec = {"connection": connection, "file": str(audience), "checkpoint": str(workdir / "cp"), "run": run}
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW_HOME": str(workdir / "home")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the send failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="braze-bench-") as tmp, sandbox() as info:
        workdir = Path(tmp)
        results = {}
        for label, count in (("small", args.small), ("large", args.large)):
            audience = workdir / f"{label}.jsonl"
            write_audience(audience, count)
            results[label] = run_send(connection(info), audience, workdir, run=label)
            assert results[label]["accepted"] == count, results[label]

    small, large = results["small"], results["large"]
    print(machine())
    for count, result in ((args.small, small), (args.large, large)):
        peak = result["peak_kib"] / 1024
        print(f"{count:>9} recipients from a file: peak RSS {peak:7.1f} MiB, {result['seconds']:6.1f} s")
    ratio = large["peak_kib"] / small["peak_kib"]
    print(f"peak RSS ratio large/small: {ratio:.3f} (target < 1.2: {'met' if ratio < 1.2 else 'NOT met'})")


if __name__ == "__main__":
    main()
