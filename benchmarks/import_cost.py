"""DAG-parse cost: extra import time of each operator module, median of fresh interpreters.

Two baselines, both measured in the same fresh interpreter before the module is imported:
``import airflow.sdk`` alone (a lazy package), and that plus ``from airflow.sdk import
BaseOperator, BaseHook, BaseSensorOperator`` (what any DAG file with an operator already pays).
apache-airflow-providers-http's hook module is measured beside ours. Target: under 10 ms.

    python benchmarks/import_cost.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine

MODULES = (
    "airflow_provider_braze.operators.send_id",
    "airflow_provider_braze.operators.messages",
    "airflow_provider_braze.operators.analytics",
    "airflow_provider_braze.sensors.send_analytics",
    "airflow.providers.http.hooks.http",
)
BASELINES = {
    "after `import airflow.sdk`": "import airflow.sdk",
    "after the SDK base classes": (
        "import airflow.sdk\nfrom airflow.sdk import BaseOperator, BaseHook, BaseSensorOperator"
    ),
}
PROBE = """
import time
{baseline}
start = time.perf_counter()
import {module}
print("ELAPSED", time.perf_counter() - start)
"""


def measure(module: str, baseline: str, env: dict[str, str]) -> float:
    code = PROBE.format(baseline=baseline, module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    return float(next(line for line in out.splitlines() if line.startswith("ELAPSED")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Byte-code caches as in a deployment (this machine's environment may turn them off).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="braze-bench-home-"))
    for module in MODULES:
        measure(module, "", env)  # warm up and write .pyc files

    print(machine())
    print(f"extra import time, median of {args.runs} fresh interpreters each")
    for label, baseline in BASELINES.items():
        print(f"  {label}:")
        for module in MODULES:
            samples = [measure(module, baseline, env) for _ in range(args.runs)]
            median_ms = 1000 * statistics.median(samples)
            ours = module.startswith("airflow_provider_braze")
            verdict = f"  (target < 10 ms: {'met' if median_ms < 10 else 'NOT met'})" if ours else ""
            print(f"    {module:<48} {median_ms:7.1f} ms{verdict}")


if __name__ == "__main__":
    main()
