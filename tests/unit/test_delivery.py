"""The batch delivery engine: exactly once across tries, with a fake sender (no HTTP)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_braze.delivery import (
    AMBIGUOUS_DETAIL_LIMIT,
    BatchDelivery,
    DeliveryStopped,
    IndexSet,
    MemoryCheckpointStore,
    ObjectStorageCheckpointStore,
    checkpoint_name,
)
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeRateLimitError,
    BrazeServerError,
    BrazeValidationError,
)
from airflow_provider_braze.recipients import batched

IDENTITY = {"endpoint": "POST /messages/send", "campaign_id": "c", "send_id": "s", "batch_size": 50}
LOG = logging.getLogger("test-delivery")


class FakeBraze:
    """Records what it was sent; fails the batches it is told to, in the ways it is told to."""

    def __init__(self, failures: dict[int, list[Exception | str]] | None = None) -> None:
        self.failures = failures or {}  # first recipient number -> outcomes, in order
        self.delivered: Counter[str] = Counter()
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, batch: list[Any]) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            first = int(batch[0][1:]) if batch else -1
            planned = self.failures.get(first)
            outcome = planned.pop(0) if planned else None
            if outcome == "deliver-then-lose-answer":
                self.delivered.update(batch)
                raise BrazeAmbiguousRequestError("read timeout after sending")
            if isinstance(outcome, Exception):
                raise outcome
            self.delivered.update(batch)
            return {"message": "success", "dispatch_id": f"d{first}", "errors": []}
        finally:
            with self.lock:
                self.in_flight -= 1


def users(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


def engine(braze: FakeBraze, count: int, store: Any, **kwargs: Any) -> BatchDelivery:
    return BatchDelivery(
        send_batch=braze,
        batches=batched(users(count)),
        store=store,
        identity=IDENTITY,
        log=LOG,
        **kwargs,
    )


def test_everything_delivered_once() -> None:
    braze = FakeBraze()
    summary = engine(braze, 10_001, MemoryCheckpointStore(), concurrency=8).run()
    assert braze.delivered == Counter(users(10_001))
    assert braze.max_in_flight <= 8
    assert summary["complete"] is True
    assert (summary["recipients"], summary["batches"], summary["accepted"]) == (10_001, 201, 10_001)
    assert summary["dispatch_count"] == 201
    assert len(summary["dispatch_ids"]) == 20  # bounded for XCom


def test_completed_send_is_not_repeated() -> None:
    store = MemoryCheckpointStore()
    braze = FakeBraze()
    engine(braze, 120, store).run()
    again = engine(braze, 120, store).run()
    assert braze.calls == 3
    assert again["accepted"] == 120
    assert again["tries"] == 2


def test_ambiguous_batches_are_reported_not_resent() -> None:
    store = MemoryCheckpointStore()
    braze = FakeBraze({100: ["deliver-then-lose-answer"], 200: [BrazeAmbiguousRequestError("dropped")]})
    summary = engine(braze, 500, store).run()
    assert summary["complete"] is False
    assert summary["ambiguous"] == 100
    assert [r["batch"] for r in summary["ambiguous_batches"]] == [2, 4]
    assert summary["ambiguous_batches"][0]["recipients"][:2] == ["u100", "u101"]

    retry = engine(braze, 500, store).run()  # a task retry: nothing is sent twice, nothing resent
    assert braze.calls == 10
    assert max(braze.delivered.values()) == 1
    assert retry["ambiguous"] == 100
    assert retry["skipped_already_sent"] == 400


def test_at_least_once_resends_ambiguous_batches() -> None:
    store = MemoryCheckpointStore()
    braze = FakeBraze({100: ["deliver-then-lose-answer"]})
    engine(braze, 200, store).run()
    summary = engine(braze, 200, store, at_least_once=True).run()
    assert summary["complete"] is True
    assert summary["resent_ambiguous"] == 50
    assert braze.delivered["u100"] == 2  # the price of at-least-once, and it is counted
    assert braze.delivered["u0"] == 1


def test_batches_not_sent_are_sent_by_the_next_try() -> None:
    store = MemoryCheckpointStore()
    braze = FakeBraze({50: [BrazeServerError("503 after retries")], 150: [BrazeBadRequestError("400")]})
    first = engine(braze, 200, store).run()
    assert first["not_sent"] == 100
    assert first["rejected"] == 0  # FakeBraze's errors carry no status; see the next assertion
    assert {r["batch"] for r in first["not_sent_batches"]} == {1, 3}
    second = engine(braze, 200, store).run()
    assert second["complete"] is True
    assert braze.delivered == Counter(users(200))


def test_auth_error_stops_the_send_and_keeps_progress(tmp_path: Path) -> None:
    store = ObjectStorageCheckpointStore(tmp_path / "cp.json")
    braze = FakeBraze({500: [BrazeAuthError("401")]})
    with pytest.raises(BrazeAuthError):
        engine(braze, 2_000, store, concurrency=1).run()
    assert sum(braze.delivered.values()) == 500
    resumed = engine(FakeBraze(), 2_000, store).run()
    assert resumed["skipped_already_sent"] == 500
    assert resumed["accepted"] == 2_000


def test_too_many_refused_batches_stop_the_send() -> None:
    braze = FakeBraze({i * 50: [BrazeBadRequestError("bad")] for i in range(20)})
    with pytest.raises(BrazeBadRequestError, match="refused more than 3 batches"):
        engine(braze, 1_000, MemoryCheckpointStore(), concurrency=1, max_rejected_batches=3).run()
    assert braze.calls == 4


def test_batches_in_flight_when_a_try_died_are_ambiguous(tmp_path: Path) -> None:
    """A SIGKILL leaves reserved batches without an outcome: the next try must not resend them."""
    store = ObjectStorageCheckpointStore(tmp_path / "cp.json")
    braze = FakeBraze()
    engine(braze, 1_000, store, concurrency=2).run()
    state = store.load()
    assert state is not None
    # Rewind to "batches 0-5 confirmed, 6-9 reserved, then the process died".
    state.update(status="running", done=[[0, 6]], reserved_upto=10)
    store.save(state)
    braze2 = FakeBraze()
    summary = engine(braze2, 1_000, store, concurrency=2).run()
    assert summary["ambiguous"] == 200
    assert [r["batch"] for r in summary["ambiguous_batches"]] == [6, 7, 8, 9]
    assert "previous try ended" in summary["ambiguous_batches"][0]["reason"]
    assert not set(braze2.delivered) & {f"u{i}" for i in range(500)}


def test_changed_recipients_are_refused(tmp_path: Path) -> None:
    store = ObjectStorageCheckpointStore(tmp_path / "cp.json")
    engine(FakeBraze({50: [BrazeServerError("503")]}), 300, store).run()
    changed = BatchDelivery(
        send_batch=FakeBraze(),
        batches=batched(["someone-else", *users(299)]),
        store=store,
        identity=IDENTITY,
        log=LOG,
    )
    with pytest.raises(BrazeValidationError, match="recipients changed since the previous try"):
        changed.run()


def test_shrunk_recipients_are_refused() -> None:
    store = MemoryCheckpointStore()
    braze = FakeBraze({0: [BrazeAmbiguousRequestError("x")]})
    engine(braze, 500, store, concurrency=8).run()
    with pytest.raises(BrazeValidationError, match="read 10 batches but only 2 exist now"):
        engine(FakeBraze(), 100, store, concurrency=8).run()


def test_checkpoint_of_another_send_is_refused() -> None:
    store = MemoryCheckpointStore()
    engine(FakeBraze(), 10, store).run()
    other = BatchDelivery(
        send_batch=FakeBraze(), batches=[], store=store, identity={**IDENTITY, "send_id": "other"}, log=LOG
    )
    with pytest.raises(BrazeValidationError, match="belongs to a different send"):
        other.run()


def test_stop_keeps_a_consistent_checkpoint() -> None:
    store = MemoryCheckpointStore()
    gate = threading.Event()

    class SlowBraze(FakeBraze):
        def __call__(self, batch: list[Any]) -> dict[str, Any]:
            if batch[0] == "u500":
                delivery.stop()
            gate.wait(0.001)
            return super().__call__(batch)

    braze = SlowBraze()
    delivery = engine(braze, 5_000, store, concurrency=2)
    with pytest.raises(DeliveryStopped, match="a retry resumes after the last confirmed batch"):
        delivery.run()
    sent_first = sum(braze.delivered.values())
    assert 500 <= sent_first < 5_000
    summary = engine(braze, 5_000, store, concurrency=2).run()
    assert summary["complete"] is True
    assert braze.delivered == Counter(users(5_000))


def test_rate_limit_beyond_the_budget_waits_and_resends() -> None:
    braze = FakeBraze({0: [BrazeRateLimitError("429", reset_at=None)]})
    stop_waiting = BatchDelivery(
        send_batch=braze,
        batches=batched(users(60)),
        store=MemoryCheckpointStore(),
        identity=IDENTITY,
        log=LOG,
    )
    stop_waiting._stop.wait = lambda timeout=None: False  # type: ignore[method-assign]
    summary = stop_waiting.run()
    assert summary["complete"] is True
    assert braze.delivered == Counter(users(60))


def test_broadcast_is_one_request() -> None:
    calls: list[list[Any]] = []
    delivery = BatchDelivery(
        send_batch=lambda batch: calls.append(batch) or {"message": "success", "dispatch_id": "d"},
        batches=iter([[]]),
        store=MemoryCheckpointStore(),
        identity=IDENTITY,
        log=LOG,
    )
    assert delivery.run()["dispatch_count"] == 1
    assert calls == [[]]


def test_ambiguous_details_are_bounded() -> None:
    braze = FakeBraze({i * 50: [BrazeAmbiguousRequestError("x")] for i in range(AMBIGUOUS_DETAIL_LIMIT + 5)})
    summary = engine(braze, 50 * (AMBIGUOUS_DETAIL_LIMIT + 5), MemoryCheckpointStore()).run()
    assert summary["ambiguous"] == 50 * (AMBIGUOUS_DETAIL_LIMIT + 5)
    assert len(summary["ambiguous_batches"]) == 20


def test_concurrency_is_checked() -> None:
    with pytest.raises(BrazeValidationError, match="concurrency must be between 1 and 32"):
        engine(FakeBraze(), 1, MemoryCheckpointStore(), concurrency=0)


# ---------------------------------------------------------------------------- helpers


def test_index_set() -> None:
    s = IndexSet()
    for i in [0, 1, 2, 5, 3, 7, 6]:
        s.add(i)
    assert s.to_json() == [[0, 4], [5, 8]]
    assert s.prefix_end() == 4
    assert 4 not in s
    assert 6 in s
    assert len(s) == 7
    s.add(4)
    assert s.to_json() == [[0, 8]]
    s.discard(3)
    assert s.to_json() == [[0, 3], [4, 8]]
    assert list(IndexSet(s.to_json())) == [0, 1, 2, 4, 5, 6, 7]
    assert IndexSet([[2, 4]]).prefix_end() == 0


def test_checkpoint_names_are_safe_and_bounded() -> None:
    name = checkpoint_name("dag", "task", "manual__2026-11-26T13:32:42.203258+00:00", -1)
    assert name == "braze_send__dag__task__manual__2026-11-26T13_32_42.203258_00_00__-1"
    long = checkpoint_name("d" * 300, "t", "r", 3)
    assert len(long) <= 200
    assert long != checkpoint_name("d" * 299 + "x", "t", "r", 3)


def test_file_checkpoint_round_trip(tmp_path: Path) -> None:
    store = ObjectStorageCheckpointStore(str(tmp_path / "nested" / "cp.json"))
    assert store.load() is None
    store.save({"a": [1, 2]})
    assert store.load() == {"a": [1, 2]}
    assert not (tmp_path / "nested" / "cp.json.tmp").exists()
    url_store = ObjectStorageCheckpointStore(f"file://{tmp_path}/url/cp.json")
    url_store.save({"b": 1})
    assert url_store.load() == {"b": 1}


def test_an_earlier_reservation_survives_a_short_try(tmp_path: Path) -> None:
    """Try 1 dies with batches 1-9 reserved; try 2 stops at batch 1; try 3 must still know 2-9."""
    store = ObjectStorageCheckpointStore(tmp_path / "cp.json")
    engine(FakeBraze(), 1_000, store, concurrency=1).run()
    state = store.load()
    assert state is not None
    state.update(
        status="running",
        done=[[0, 1]],
        reserved_upto=10,
        not_sent={"1": {"batch": 1, "count": 50, "error": "503", "status_code": 503}},
    )
    store.save(state)
    with pytest.raises(BrazeAuthError):
        engine(FakeBraze({50: [BrazeAuthError("401")]}), 1_000, store, concurrency=1).run()
    third = FakeBraze()
    summary = engine(third, 1_000, store, concurrency=1).run()
    assert [r["batch"] for r in summary["ambiguous_batches"]] == list(range(2, 10))
    assert not set(third.delivered) & {f"u{i}" for i in range(100, 500)}
    assert third.delivered["u50"] == 1


def test_variable_checkpoint_outside_a_task_is_a_clear_error() -> None:
    from airflow_provider_braze.delivery import VariableCheckpointStore
    from airflow_provider_braze.exceptions import BrazeConfigurationError

    delivery = BatchDelivery(
        send_batch=FakeBraze(), batches=[], store=VariableCheckpointStore("k"), identity=IDENTITY, log=LOG
    )
    with pytest.raises(BrazeConfigurationError, match="Variables need a running Airflow task"):
        delivery.run()


def test_rejected_counts_only_braze_refusals() -> None:
    refusal = BrazeBadRequestError("400 Invalid", status_code=400)
    braze = FakeBraze({0: [refusal], 50: [BrazeServerError("503", status_code=503)]})
    summary = engine(braze, 150, MemoryCheckpointStore()).run()
    assert (summary["not_sent"], summary["rejected"]) == (100, 50)
