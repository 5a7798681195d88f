"""Run every benchmark, one after the other, and print their reports.

    python benchmarks/run_all.py        (or scripts/bench, which installs what they need)

Each benchmark measures its comparisons side by side in one run and prints the ratios with the
machine and the date; none of them is a timed test, and none fails the run for a missed target.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T")  # Airflow's log lines, not the report
BENCHMARKS = (
    "per_call.py",
    "import_cost.py",
    "fanout.py",
    "send_memory.py",
    "split_memory.py",
    "shared_limit.py",
    "validation_pass.py",
    "duplicate_memory.py",
    "checkpoint_cost.py",
    "triggerer.py",
    "peeking.py",
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name}", flush=True)
        command = [sys.executable, str(HERE / name)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        report = [line for line in result.stdout.splitlines() if not LOG_LINE.match(line)]
        print("\n".join(report), flush=True)
        if result.returncode != 0:
            failed.append(name)
            print(result.stderr[-3000:], file=sys.stderr)
    if failed:
        print(f"\nbenchmarks that could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
