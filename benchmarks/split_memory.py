"""Peak memory of an audience split: 1,000,000 recipients against 10,000.

Each split runs SplitAudienceOperator.execute() in a fresh interpreter, reading a JSON-lines
file and writing one file per variant (control 10 %, a 45 %, b 45 %). The script prints both
peak RSS figures, their ratio (target: under 1.2), the time each took, and the machine and date.

    python benchmarks/split_memory.py [--large 1000000] [--small 10000]
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
from _common import machine, write_audience

CHILD = r"""
import json, resource, sys, time
from unittest import mock
spec = json.loads(sys.argv[1])
from airflow_provider_braze.operators.experiments import SplitAudienceOperator
op = SplitAudienceOperator(
    task_id="split", recipients=spec["file"], experiment="bench", output_path=spec["out"],
    shares={"control": 0.1, "a": 0.45, "b": 0.45},
)
started = time.perf_counter()
result = op.execute({"ti": mock.MagicMock()})
elapsed = time.perf_counter() - started
counts = [sum(1 for _ in open(v["recipients"])) for v in result]
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"written": sum(counts), "seconds": elapsed, "peak_kib": peak_kib}))
"""


def run_split(audience: Path, workdir: Path, label: str) -> dict[str, float]:
    spec = {"file": str(audience), "out": str(workdir / f"out-{label}")}
    env = {**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW_HOME": str(workdir / "home")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the split failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="braze-bench-") as tmp:
        workdir = Path(tmp)
        results = {}
        for label, count in (("small", args.small), ("large", args.large)):
            audience = workdir / f"{label}.jsonl"
            write_audience(audience, count)
            results[label] = run_split(audience, workdir, label)
            assert results[label]["written"] == count, results[label]

    small, large = results["small"], results["large"]
    print(machine())
    for count, result in ((args.small, small), (args.large, large)):
        peak = result["peak_kib"] / 1024
        seconds = result["seconds"]
        print(f"{count:>9} recipients split from a file: peak RSS {peak:7.1f} MiB, {seconds:6.1f} s")
    ratio = large["peak_kib"] / small["peak_kib"]
    print(f"peak RSS ratio large/small: {ratio:.3f} (target < 1.2: {'met' if ratio < 1.2 else 'NOT met'})")


if __name__ == "__main__":
    main()
