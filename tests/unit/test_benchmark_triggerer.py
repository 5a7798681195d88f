"""benchmarks/triggerer.py runs end to end in its quick mode (20 triggers, 0.2 s answers): both
triggers, the one in threads and the async one, give their figures. No figure is asserted: timings on a
shared machine are not a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_triggerer_benchmark_runs_both_triggers() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "triggerer.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 0.2 s answers |")]
    assert [row.split("|")[2].strip() for row in rows] == ["thread", "async"]
