"""SIGKILL the process running a send at random points, retry: nothing is ever sent twice, and
every recipient is either delivered or reported in doubt."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.sandbox import BrazeSandbox

pytestmark = pytest.mark.integration

RUNNER = Path(__file__).parent / "send_runner.py"
RECIPIENTS = 6_000
CONCURRENCY = 4


def start(
    sandbox: BrazeSandbox, workdir: Path, *, temp: Path | None = None, **options: Any
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a send in its own process (``temp``: its temporary folder, where the spool goes)."""
    summary = workdir / f"summary-{time.monotonic_ns()}.json"
    spec = {
        "connection": sandbox.connection_json(),
        "checkpoint": str(workdir / "checkpoints"),
        "recipients": RECIPIENTS,
        "concurrency": CONCURRENCY,
        "summary": str(summary),
        **options,
    }
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), json.dumps(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parents[2]),
            **({"TMPDIR": str(temp)} if temp is not None else {}),
        },
    )
    return process, summary


def finish(process: subprocess.Popen[bytes], summary: Path) -> tuple[int, dict[str, Any]]:
    code = process.wait(timeout=300)
    assert code in (0, 3), f"the runner failed with exit code {code}"
    return code, json.loads(summary.read_text())


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_sigkill_then_retry_is_exactly_once(braze_sandbox: BrazeSandbox, tmp_path: Path, seed: int) -> None:
    braze_sandbox.state.send_ids[("sandbox-workspace", "sandbox-api-campaign", "kill-test")] = 0.0
    braze_sandbox.set_faults(latency_ms=20)
    kill_after = random.Random(seed).randint(200, RECIPIENTS - 1_000)

    process, _ = start(braze_sandbox, tmp_path)
    deadline = time.monotonic() + 120
    while sum(braze_sandbox.state.deliveries().values()) < kill_after:
        assert process.poll() is None, "the send finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    delivered_before = sum(braze_sandbox.state.deliveries().values())
    assert delivered_before < RECIPIENTS

    code, summary = finish(*start(braze_sandbox, tmp_path))
    delivered = braze_sandbox.state.deliveries("sandbox-api-campaign", "kill-test")
    assert max(delivered.values()) == 1, "a recipient got the message twice"
    reported = {r for batch in summary["in_doubt_details"] for r in batch["recipients"]}
    everyone = {f"user-{i}" for i in range(RECIPIENTS)}
    assert everyone - set(delivered) <= reported, "a recipient was lost without being reported"
    # Only batches that could have been in flight at the kill are in doubt.
    assert summary["in_doubt"] <= 3 * CONCURRENCY * 50
    assert summary["skipped_already_sent"] > 0
    assert code == (3 if reported else 0)

    # Choosing at-least-once for the retry delivers the doubtful batches; any duplicates are
    # exactly among the reported recipients.
    code, summary = finish(*start(braze_sandbox, tmp_path, at_least_once=True))
    assert code == 0
    assert summary["complete"] is True
    delivered = braze_sandbox.state.deliveries("sandbox-api-campaign", "kill-test")
    assert set(delivered) == everyone
    assert {r for r, n in delivered.items() if n > 1} <= reported


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_no_spool_file_is_left_behind(braze_sandbox: BrazeSandbox, tmp_path: Path) -> None:
    braze_sandbox.state.send_ids[("sandbox-workspace", "sandbox-api-campaign", "kill-test")] = 0.0
    temp = tmp_path / "tmp"
    temp.mkdir()
    root = temp / f"braze-spool-{os.getuid()}"

    # A send that completes removes its spool.
    (tmp_path / "full").mkdir()
    code, summary = finish(*start(braze_sandbox, tmp_path / "full", temp=temp))
    assert (code, summary["complete"], summary["accepted"]) == (0, True, RECIPIENTS)
    assert root.is_dir()  # the spool went there
    assert files_under(temp) == []

    # A killed send leaves its spool; the retry of the same task instance removes it.
    (tmp_path / "killed").mkdir()
    braze_sandbox.set_faults(latency_ms=20)
    before = sum(braze_sandbox.state.deliveries().values())
    process, _ = start(braze_sandbox, tmp_path / "killed", temp=temp)
    deadline = time.monotonic() + 120
    while sum(braze_sandbox.state.deliveries().values()) < before + 1_000:
        assert process.poll() is None, "the send finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = files_under(temp)
    assert [p.name for p in left if p.name == "spool.jsonl"] == ["spool.jsonl"], left

    braze_sandbox.set_faults()
    code, summary = finish(*start(braze_sandbox, tmp_path / "killed", temp=temp))
    assert code in (0, 3)
    assert summary["skipped_already_sent"] > 0  # a retry, not a new send
    assert files_under(temp) == []
    assert list(root.iterdir()) == []
