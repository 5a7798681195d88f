"""scripts/deployment-check's own logic: each of its checks can fail, and says why."""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deployment_check", REPO / "scripts" / "deployment_check.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deployment_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


dc = load()


def send(send_id: str, users: list[str], endpoint: str = "POST /messages/send") -> dict[str, Any]:
    return {"endpoint": endpoint, "request": {"send_id": send_id, "external_user_ids": users}}


# ---------------------------------------------------------------------------- exactly once


def test_the_ledger_counts_each_recipient_of_the_runs_send_ids_only() -> None:
    ledger = [
        send("s1", ["a", "b"]),
        send("s2", ["c"]),
        send("other-run", ["a"]),
        send("s1", ["a"], endpoint="POST /campaigns/trigger/send"),
        {
            "endpoint": "POST /messages/send",
            "request": {"send_id": "s1", "user_aliases": [{"alias_label": "crm", "alias_name": "x"}]},
        },
    ]
    counts = dc.ledger_counts(ledger, ["s1", "s2"])
    assert counts == {"a": 1, "b": 1, "c": 1, "alias:crm:x": 1}


def test_exactly_once_passes_when_everyone_got_it_once() -> None:
    delivery = dc.check_delivery({"a": 1, "b": 1}, ["a", "b"])
    assert delivery.ok
    assert delivery.delivered_once == 2
    assert delivery.describe() == "2 delivered exactly once"


@pytest.mark.parametrize(
    ("counts", "expected", "in_doubt", "says"),
    [
        ({"a": 2, "b": 1}, ["a", "b"], [], "1 delivered more than once (e.g. a)"),
        ({"a": 1}, ["a", "b"], [], "1 never delivered and not reported in doubt (e.g. b)"),
        ({"a": 1, "z": 1}, ["a"], [], "1 delivered but not in the audience (e.g. z)"),
        # In doubt never excuses a duplicate.
        ({"a": 2, "b": 1}, ["a", "b"], ["a"], "1 delivered more than once (e.g. a)"),
    ],
)
def test_exactly_once_fails_and_names_who(
    counts: dict[str, int], expected: list[str], in_doubt: list[str], says: str
) -> None:
    delivery = dc.check_delivery(counts, expected, in_doubt)
    assert not delivery.ok
    assert says in delivery.describe()


def test_a_recipient_reported_in_doubt_may_be_missing_or_delivered_once() -> None:
    delivery = dc.check_delivery({"a": 1, "b": 1}, ["a", "b", "c"], in_doubt=["b", "c"])
    assert delivery.ok
    assert "2 reported in doubt (1 of them delivered once, 1 not)" in delivery.describe()


def test_in_doubt_ranges_are_batches_of_fifty_in_the_order_read() -> None:
    recipients = [f"u{n}" for n in range(230)]
    assert dc.batch_recipients(recipients, [[1, 2], [4, 5]]) == {
        f"u{n}" for n in [*range(50, 100), *range(200, 230)]
    }
    assert dc.batch_recipients(recipients, []) == set()


# ---------------------------------------------------------------------------- logs


def test_the_key_is_found_in_every_form_it_may_leak_in() -> None:
    key = "deploycheck-0123456789abcdef"
    forms = dc.secret_forms(key)
    for text in (
        f"password={key}",
        base64.b64encode(f":{key}".encode()).decode(),
        base64.b64encode(key.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(f"Bearer {key}".encode()).decode(),
    ):
        assert dc.leaks(f"log line {text} end", forms), text
    assert "a%20b%2Fc" in dc.secret_forms("a b/c")
    assert dc.leaks("nothing here, not even deploycheck-0123", forms) == []


def test_only_the_sandboxs_announcement_of_its_key_is_left_out() -> None:
    text = "Braze sandbox listening on http://x\nAPI key: k\nAirflow connection: export X='k'\nGET /x k\n"
    assert dc.without_announcement(text) == "Braze sandbox listening on http://x\nGET /x k"


def test_the_triggerers_blocked_loop_warning_is_found() -> None:
    # Airflow 3.3.2's words (airflow/jobs/triggerer_job_runner.py).
    line = (
        "2026-12-04T06:35:03.378134Z [info     ] Triggerer's async thread was blocked for 0.20 seconds, "
        "exceeding the configured warning threshold of 0.20 seconds. This is likely caused by a "
        "badly-written trigger. Set PYTHONASYNCIODEBUG=1 to get more information on overrunning coroutines."
    )
    assert dc.blocked_loop_lines(f"ok\n{line}\nok") == [line]
    assert dc.blocked_loop_lines("Trigger fired event\nChecking again in 16 s.") == []


# ---------------------------------------------------------------------------- figures


def test_throughput_against_the_limit_with_and_without_pauses() -> None:
    times = [float(t) for t in range(11)]  # 11 requests, one a second, over 10 s
    figures = dc.throughput(times, 20, 10)  # the limit: 2 a second
    assert figures["ratio"] == pytest.approx(0.5)
    paused = [*times, *(t + 30 for t in range(11, 21))]  # a 30 s pause (a killed worker)
    figures = dc.throughput(paused, 20, 10)
    assert figures["ratio"] < 0.5
    assert figures["active_ratio"] == pytest.approx(0.5)
    assert dc.throughput([1.0], 20, 10)["ratio"] == 0.0


def test_429s_are_counted_between_two_readings() -> None:
    before = {"/messages/send": {"201": 100, "429": 2}}
    after = {"/messages/send": {"201": 1100, "429": 7}, "/sends/id/create": {"429": 50}}
    assert dc.share_429(after, before, "/messages/send") == (5, 1005)


# ---------------------------------------------------------------------------- processes


def test_a_process_group_is_stopped_with_its_children_and_ports_are_seen() -> None:
    port = dc.free_port()
    child = (
        "import socket, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
    deadline = time.monotonic() + 10
    while not dc.port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = dc.descendants(process.pid)
    assert len(kids) == 1
    assert dc.listeners_of([process.pid]) == [(process.pid, "127.0.0.1", port)]
    dc._stop_group(process, 15, timeout=5)
    assert not dc.port_in_use(port)
    assert not any(dc._alive(pid) for pid in [process.pid, *kids])


def test_the_script_says_what_it_takes_and_refuses_the_rest() -> None:
    script = REPO / "scripts" / "deployment-check"
    env = {**os.environ, "VENV": "/nonexistent-venv-not-created"}
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, check=False)
    assert shown.returncode == 0
    assert "--executor celery" in shown.stdout
    refused = subprocess.run(
        [script, "--executor", "kubernetes"], capture_output=True, text=True, env=env, check=False
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert not Path("/nonexistent-venv-not-created").exists()


def test_every_option_the_docs_mention_is_one_it_takes() -> None:
    import re

    mentioned = set()
    docs = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), REPO / ".ci" / "run"]
    for path in [*docs, *(REPO / "example_dags").glob("*.py")]:
        mentioned |= set(re.findall(r"scripts/deployment-check (--[a-z-]+(?: [a-z]+)?)", path.read_text()))
    assert mentioned == {"--executor celery"}
    assert dc.parse_arguments(["--executor", "celery"]).executor == "celery"
    assert dc.parse_arguments([]).executor == "local"


def test_every_summary_key_the_check_reads_is_one_a_send_summary_has() -> None:
    """The check judges the sharded send by the shards' XCom summaries: a key renamed in
    SendSummary must not silently read as None there (it once did, for in_doubt)."""
    import re

    from airflow_provider_braze.delivery.summary import SendSummary

    source = (REPO / "scripts" / "deployment_check.py").read_text()
    read = set(re.findall(r"""summar(?:y|ies\[index\] or \{\}\))\.get\(["'](\w+)["']""", source))
    assert {"in_doubt", "in_doubt_ranges", "not_sent", "accepted", "skipped_already_sent"} <= read
    assert read <= set(SendSummary())


def test_only_a_block_during_the_first_triggers_start_up_is_set_aside() -> None:
    """A blocked-loop warning fails the check unless it falls in the first Braze trigger's
    start-up (from its "starting" line to its first check's line, plus half a second)."""
    first = (
        '{"timestamp":"2026-12-04T08:34:29.393167Z","event":"trigger a (ID 1) starting"}\n'
        '{"timestamp":"2026-12-04T08:34:30.009425Z","event":"Send s: waiting"}\n'
    )
    later = (
        '{"timestamp":"2026-12-04T08:34:35.404359Z","event":"trigger b (ID 2) starting"}\n'
        '{"timestamp":"2026-12-04T08:34:35.438783Z","event":"Send t: waiting"}\n'
    )
    window = dc.first_start_window([later, first])
    assert window is not None
    assert window[0].isoformat() == "2026-12-04T08:34:29.393167"

    def warning(at: str) -> str:
        return f"triggerer.log: {at}Z [info ] Triggerer's async thread was blocked for 0.37 seconds"

    assert dc.blocks_outside_first_start([warning("2026-12-04T08:34:30.018883")], window) == []
    outside = [warning("2026-12-04T08:34:35.420000"), warning("2026-12-04T08:34:29.100000")]
    assert dc.blocks_outside_first_start(outside, window) == outside
    assert dc.blocks_outside_first_start(outside, None) == outside
    assert dc.blocks_outside_first_start(["no timestamp at all: blocked"], window) == [
        "no timestamp at all: blocked"
    ]
