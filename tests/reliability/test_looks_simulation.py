"""A simulation of histories of comparisons of the same sends: the promise that one look decides.

The README and docs/experiments.md promise: a comparison before the planned ``min_age``, or after
an earlier final look at the same sends, says its verdicts are provisional; a retry of the same
task instance is the same look; a listing of the looks that fails is an error, never "no
earlier look". A seeded ``random.Random`` draws each history's steps: comparisons by new task
instances (other runs, other map indexes, the same sends named differently), retries of earlier
task instances, tries killed after their look was recorded, time passing across ``min_age``,
and the store failing to list or to write. Each step drives the **real** ``CompareSendsOperator``
(its answers from Braze mocked at the transport) against a checkpoint store that records every
call; after every step the invariants are checked:

- L1: final (not provisional) verdicts come from one task instance at most, per set of sends;
- L2: a comparison of sends younger than ``min_age`` is never final;
- L3: once a task instance's comparison returned final verdicts, every comparison of the same
  sends by another task instance is provisional;
- L4: a failing listing or write fails the comparison (nothing returned), never a final verdict;
- L5: a comparison is final when the sends are old enough and no other task instance recorded a
  final look before it (looks that do not decide do not spoil the planned one).

Found by it before the fix (seed 3 of block 0): a task instance that compared too early, then
retried once the sends were old enough, returned final verdicts but kept its "provisional"
record, so another run's comparison also returned final verdicts (L1). A retry that decides now
records that it decided.
"""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze.delivery import checkpoint as checkpoint_module
from airflow_provider_braze.delivery.checkpoint import MemoryCheckpointStore
from airflow_provider_braze.exceptions import BrazeCheckpointError
from airflow_provider_braze.operators.analytics import CompareSendsOperator
from tests.unit.test_comparison import answer, day, email_stats, mock_sends

SENT_AT = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
MIN_AGE = timedelta(hours=24)
#: The same two sends, named in different ways: one experiment.
NAMINGS = (
    {"control": "send-control", "b": "send-b"},
    {"ctl": "send-control", "new": "send-b"},
)


class FaultyStore(MemoryCheckpointStore):
    """Memory records; the simulation decides whether the next listing or write fails."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next: str | None = None

    def keys(self, prefix: str) -> list[str]:
        if self.fail_next == "list":
            self.fail_next = None
            raise BrazeCheckpointError("Cannot list the checkpoint Variables: the API server did not answer")
        return super().keys(prefix)

    def write(self, key: str, record: dict[str, Any]) -> int:
        if self.fail_next == "write":
            self.fail_next = None
            raise BrazeCheckpointError(f"Cannot write the checkpoint Variable {key!r}")
        return super().write(key, record)


class Killed(BaseException):
    """A try killed after its look was recorded (before the comparison returned)."""


def ti(run_id: str, map_index: int) -> mock.MagicMock:
    instance = mock.MagicMock()
    instance.dag_id, instance.task_id, instance.run_id, instance.map_index = (
        "exp",
        "compare",
        run_id,
        map_index,
    )
    return instance


def history(seed: int, store: FaultyStore) -> list[str]:
    """One history; returns its steps (for the failure message) after checking every invariant."""
    rng = random.Random(seed)
    now = SENT_AT + timedelta(hours=rng.choice([1, 12, 23]))
    instances: list[tuple[str, int]] = []
    naming_of: dict[tuple[str, int], dict[str, str]] = {}
    finals: set[tuple[str, int]] = set()  # task instances that returned final verdicts
    steps: list[str] = []
    for _ in range(rng.randint(3, 12)):
        action = rng.choices(["new", "retry", "time", "fault"], weights=[4, 3, 2, 1])[0]
        if action == "time":
            now += timedelta(hours=rng.choice([1, 6, 13, 30]))
            steps.append(f"time -> {now:%d %H:%M}")
            continue
        if action == "fault":
            store.fail_next = rng.choice(["list", "write"])
            steps.append(f"next {store.fail_next} fails")
            continue
        if action == "retry" and instances:
            instance = rng.choice(instances)
        else:
            instance = (f"run-{len(instances)}", rng.choice([-1, 0, 1]))
            instances.append(instance)
            naming_of[instance] = rng.choice(NAMINGS)
        kill = rng.random() < 0.15
        steps.append(f"try {instance} kill={kill}")
        others_final = any(
            "__final__" in key and not key.startswith(own_prefix(instance)) for key in store.records
        )
        old_enough = now - SENT_AT >= MIN_AGE
        op = CompareSendsOperator(
            task_id="compare",
            campaign_id="camp",
            sends=naming_of[instance],
            control=next(iter(naming_of[instance])),
            min_age=MIN_AGE,
            sent_at=SENT_AT.isoformat(),
        )
        fault = store.fail_next
        listed_before = set(store.records)
        killing = (
            # After the comparison and its recorded look, before the task returns.
            mock.patch("airflow_provider_braze.comparison.describe_table", side_effect=Killed)
            if kill
            else contextlib.nullcontext()
        )
        try:
            with mock.patch("airflow_provider_braze.analytics_check._utcnow", return_value=now), killing:
                summary = op.execute({"ti": ti(*instance)})
        except BrazeCheckpointError:
            # L4: a failing store fails the comparison.
            assert fault in ("list", "write"), steps
            steps.append("  failed: the store failed")
            continue
        except Killed:
            steps.append(f"  killed; recorded {sorted(set(store.records) - listed_before)}")
            continue
        assert fault is None or (fault == "write" and store.fail_next == "write"), (
            f"L4: the store's {fault} failed but the comparison returned: {steps}"
        )
        final = summary["provisional"] is None
        steps.append(f"  -> {'final' if final else summary['provisional']}")
        if not old_enough:
            assert not final, f"L2: sends {now - SENT_AT} old judged final: {steps}"
        if final:
            assert not finals - {instance}, (
                f"L1/L3: final verdicts from {sorted(finals | {instance})}: {steps}"
            )
            finals.add(instance)
        elif old_enough and not others_final:
            pytest.fail(f"L5: {instance} was provisional with no other final look recorded: {steps}")
    return steps


def own_prefix(instance: tuple[str, int]) -> str:
    """The record-name prefix of ``instance``'s looks (one experiment: every naming is the same)."""
    import hashlib

    from airflow_provider_braze.comparison import looks_prefix

    # One pair (the control and one variant): every naming compares the same two sends.
    specs = [{"campaign_id": "camp", "send_id": s} for s in NAMINGS[0].values()]
    task = ("exp", "compare", instance[0], instance[1])
    own = hashlib.sha256(repr(tuple(str(part) for part in task)).encode()).hexdigest()[:16]
    return f"{looks_prefix(specs)}{own}"


@pytest.mark.parametrize("block", range(6))
def test_one_look_decides_in_every_history(
    block: int, braze_conn: str, requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_sends(
        requests_mock,
        {
            f"send-{n}": answer(day({"email": [email_stats(4000, 1000, 120 + 40 * (n == "b"), 20)]}))
            for n in ("control", "b")
        },
    )
    for seed in range(block * 50, (block + 1) * 50):
        store = FaultyStore()
        monkeypatch.setattr(checkpoint_module, "VariableCheckpointStore", lambda store=store: store)
        history(seed, store)
