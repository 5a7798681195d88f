"""The batch delivery engine: exactly once across tries, with a fake Braze (no HTTP).

Each test is named after the promise it protects.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.delivery import (
    Audience,
    BatchDelivery,
    BrazeDeliveryStoppedError,
    Checkpoint,
    MemoryCheckpointStore,
    ObjectStorageCheckpointStore,
    abandon_send,
    checkpoint_name,
    read_audience,
    task_prefix,
)
from airflow_provider_braze.delivery.checkpoint import (
    ERROR_CHARS,
    ERRORS_KEPT,
    CheckpointStore,
    Outcome,
    TryRecord,
    TryStats,
    checkpoint_store,
)
from airflow_provider_braze.delivery.summary import SendSummary
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAmbiguousResponseError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeCheckpointError,
    BrazeServerError,
    BrazeValidationError,
)

IDENTITY = {"endpoint": "POST /messages/send", "campaign_id": "c", "send_id": "s", "batch_size": 50}
NAME = checkpoint_name("dag", "send", "run", -1)
LOG = logging.getLogger("test-delivery")
SECRET = "canary-braze-key-5f1e9c3a7d"


class FakeBraze:
    """Records what it was sent; fails the batches it is told to, in the ways it is told to.

    :param failures: first recipient number -> outcomes, in order (an exception, or
        ``"deliver-then-lose-answer"``).
    :param always: an exception raised for every batch.
    :param delay: seconds each call takes.
    """

    def __init__(
        self,
        failures: dict[int, list[Exception | str]] | None = None,
        *,
        always: Exception | None = None,
        delay: float = 0.0,
    ) -> None:
        self.failures = failures or {}
        self.always = always
        self.delay = delay
        self.delivered: Counter[str] = Counter()
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.on_call: Any = None

    def __call__(self, batch: list[Any]) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            calls = self.calls
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call is not None:
                self.on_call(calls, batch)
            if self.delay:
                time.sleep(self.delay)
            if self.always is not None:
                raise self.always
            first = int(batch[0][1:]) if batch else -1
            with self.lock:
                planned = self.failures.get(first)
                outcome = planned.pop(0) if planned else None
            if outcome == "deliver-then-lose-answer":
                self.deliver(batch)
                raise BrazeAmbiguousRequestError("read timeout after sending")
            if isinstance(outcome, Exception):
                raise outcome
            self.deliver(batch)
            return {"message": "success", "dispatch_id": f"d{first}", "errors": []}
        finally:
            with self.lock:
                self.in_flight -= 1

    def deliver(self, batch: list[Any]) -> None:
        with self.lock:
            self.delivered.update(batch)


class CountingStore:
    """A store wrapper that counts what is written (and can be made to fail)."""

    def __init__(self, inner: CheckpointStore) -> None:
        self.inner = inner
        self.bytes_written = 0
        self.largest = 0
        self.writes = 0
        self.fail_reads = False
        self.fail_listing = False

    def keys(self, prefix: str) -> list[str]:
        if self.fail_listing:
            raise BrazeCheckpointError("listing failed")
        return self.inner.keys(prefix)

    def read(self, key: str) -> dict[str, Any] | None:
        if self.fail_reads:
            raise BrazeCheckpointError(f"cannot read {key}")
        return self.inner.read(key)

    def write(self, key: str, record: dict[str, Any]) -> int:
        size = self.inner.write(key, record)
        self.bytes_written += size
        self.largest = max(self.largest, size)
        self.writes += 1
        return size

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def describe(self, key: str | None = None) -> str:
        return self.inner.describe(key)

    def missing_location(self) -> str | None:
        return self.inner.missing_location()

    def remove_leftovers(self, prefix: str) -> None:
        self.inner.remove_leftovers(prefix)


_OPEN: list[Audience] = []


@pytest.fixture(autouse=True)
def _close_audiences() -> Any:
    yield
    while _OPEN:
        _OPEN.pop().close()


def users(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


def audience(recipients: Any, **kwargs: Any) -> Audience:
    result = read_audience(recipients, "users", **kwargs)
    _OPEN.append(result)
    return result


def checkpoint(store: CheckpointStore | None = None, name: str = NAME) -> Checkpoint:
    return Checkpoint(store or MemoryCheckpointStore(), name, prune_prefix=task_prefix("dag", "send"))


def engine(
    braze: Any, recipients: Any, cp: Checkpoint, *, deduplicate: bool = True, **kwargs: Any
) -> BatchDelivery:
    kwargs.setdefault("log", LOG)
    kwargs.setdefault("identity", IDENTITY)
    return BatchDelivery(
        send_batch=braze,
        audience=recipients
        if isinstance(recipients, Audience)
        else audience(recipients, deduplicate=deduplicate),
        checkpoint=cp,
        **kwargs,
    )


def own_keys(cp: Checkpoint) -> list[str]:
    return cp.own_keys()


def write_record(cp: Checkpoint, try_number: int, started: str, **fields: Any) -> TryRecord:
    """Store the record another try would have written (``started``: ``YYYYMMDDTHHMMSSffffff``)."""
    fields.setdefault("send", IDENTITY)
    fields.setdefault("audience", {})
    token = f"{try_number:08x}"
    key = cp.try_key(try_number, started, token)
    record = TryRecord(key=key, try_number=try_number, started=started, token=token, **fields)
    cp.store.write(record.key, record.to_json())
    return record


# ---------------------------------------------------------------------------- the basics


def test_everything_is_delivered_once() -> None:
    braze = FakeBraze()
    summary = engine(braze, users(10_001), checkpoint(), concurrency=8).run()
    assert braze.delivered == Counter(users(10_001))
    assert braze.max_in_flight <= 8
    assert summary["complete"] is True
    assert (summary["recipients"], summary["batches"], summary["accepted"]) == (10_001, 201, 10_001)
    assert summary["dispatch_count"] == 201
    assert len(summary["dispatch_ids"]) == 20  # bounded for XCom


def test_a_completed_send_is_not_repeated() -> None:
    cp = checkpoint()
    braze = FakeBraze()
    first = engine(braze, users(120), cp).run()
    again = engine(braze, users(120), cp, try_number=2).run()
    assert braze.calls == 3
    assert again["accepted"] == first["accepted"] == 120
    assert again["already_complete"] is True


def test_batches_not_sent_are_sent_by_the_next_try() -> None:
    cp = checkpoint()
    braze = FakeBraze({50: [BrazeServerError("503 after retries")], 150: [BrazeBadRequestError("400")]})
    first = engine(braze, users(200), cp).run()
    assert (first["complete"], first["not_sent"]) == (False, 100)
    assert {r["batch"] for r in first["not_sent_details"]} == {1, 3}
    assert first["not_sent_ranges"] == [[1, 2], [3, 4]]
    second = engine(braze, users(200), cp, try_number=2).run()
    assert second["complete"] is True
    assert second["skipped_already_sent"] == 100
    assert braze.delivered == Counter(users(200))


def test_unknown_outcomes_are_reported_and_never_resent() -> None:
    cp = checkpoint()
    braze = FakeBraze({100: ["deliver-then-lose-answer"], 200: [BrazeAmbiguousRequestError("dropped")]})
    summary = engine(braze, users(500), cp).run()
    assert summary["complete"] is False
    assert summary["in_doubt"] == 100
    assert [r["batch"] for r in summary["in_doubt_details"]] == [2, 4]
    assert summary["in_doubt_details"][0]["recipients"][:2] == ["u100", "u101"]
    assert summary["in_doubt_ranges"] == [[2, 3], [4, 5]]

    retry = engine(braze, users(500), cp, try_number=2).run()  # a task retry: nothing sent twice
    assert braze.calls == 10
    assert max(braze.delivered.values()) == 1
    assert retry["in_doubt"] == 100
    assert retry["skipped_already_sent"] == 400
    assert retry["in_doubt_details"][0]["recipients"][:2] == ["u100", "u101"]


def test_at_least_once_resends_batches_in_doubt_and_counts_them() -> None:
    cp = checkpoint()
    braze = FakeBraze({100: ["deliver-then-lose-answer"]})
    engine(braze, users(200), cp).run()
    summary = engine(braze, users(200), cp, at_least_once=True, try_number=2).run()
    assert summary["complete"] is True
    assert summary["resent_in_doubt"] == 50
    assert braze.delivered["u100"] == 2  # the price of at-least-once, and it is counted
    assert braze.delivered["u0"] == 1


def test_a_2xx_answer_that_cannot_be_read_is_an_unknown_outcome() -> None:
    unreadable = BrazeAmbiguousResponseError("201 but an empty body", status_code=201)
    cp = checkpoint()
    braze = FakeBraze({50: [unreadable]})
    summary = engine(braze, users(150), cp).run()
    assert (summary["in_doubt"], summary["not_sent"]) == (50, 0)
    engine(braze, users(150), cp, try_number=2).run()
    assert braze.calls == 3  # never resent


def test_an_auth_error_stops_the_send_and_keeps_progress(tmp_path: Path) -> None:
    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    braze = FakeBraze({500: [BrazeAuthError("401")]})
    delivery = engine(braze, users(2_000), cp, concurrency=1)
    with pytest.raises(BrazeAuthError):
        delivery.run()
    assert delivery.result is not None
    assert delivery.result["accepted"] == 500
    assert "BrazeAuthError: 401" in delivery.result["error"]
    resumed = engine(FakeBraze(), users(2_000), cp, try_number=2).run()
    assert resumed["skipped_already_sent"] == 500
    assert resumed["accepted"] == 2_000


def test_too_many_refused_batches_stop_the_send() -> None:
    braze = FakeBraze({i * 50: [BrazeBadRequestError("bad", status_code=400)] for i in range(20)})
    with pytest.raises(BrazeBadRequestError, match="refused more than 3 batches"):
        engine(braze, users(1_000), checkpoint(), concurrency=1, max_refused_batches=3).run()
    assert braze.calls == 4


def test_refused_counts_only_braze_refusals() -> None:
    refusal = BrazeBadRequestError("400 Invalid", status_code=400)
    braze = FakeBraze({0: [refusal], 50: [BrazeServerError("503", status_code=503)]})
    summary = engine(braze, users(150), checkpoint()).run()
    assert (summary["not_sent"], summary["refused"]) == (100, 50)


def test_a_broadcast_is_one_request() -> None:
    calls: list[list[Any]] = []
    broadcast = Audience.broadcast_audience()
    delivery = engine(lambda batch: calls.append(batch) or {"dispatch_id": "d"}, broadcast, checkpoint())
    assert delivery.run()["dispatch_count"] == 1
    assert calls == [[]]


def test_concurrency_is_checked() -> None:
    with pytest.raises(BrazeValidationError, match="concurrency must be a whole number between 1 and 32"):
        engine(FakeBraze(), users(1), checkpoint(), concurrency=0)


def test_stop_keeps_a_consistent_checkpoint() -> None:
    cp = checkpoint()
    braze = FakeBraze(delay=0.001)
    delivery = engine(braze, users(5_000), cp, concurrency=2)
    braze.on_call = lambda calls, batch: delivery.stop() if batch[0] == "u500" else None
    with pytest.raises(
        BrazeDeliveryStoppedError, match="a retry resumes after the last confirmed batch"
    ) as stopped:
        delivery.run()
    sent_first = sum(braze.delivered.values())
    assert stopped.value.summary["accepted"] == sent_first
    assert 500 <= sent_first < 5_000
    summary = engine(braze, users(5_000), cp, concurrency=2, try_number=2).run()
    assert summary["complete"] is True
    assert braze.delivered == Counter(users(5_000))


def test_batches_in_flight_when_a_try_died_are_in_doubt() -> None:
    """A SIGKILL leaves reserved batches without an outcome: the next try must not resend them."""
    cp = checkpoint()
    write_record(
        cp,
        1,
        "20261126T120000000000",
        send=IDENTITY | {"deduplicate": True},
        audience=audience(users(1_000)).fingerprint(),
        reserved_upto=10,
        outcomes=bytearray([Outcome.DONE] * 6 + [0] * 14),
    )
    braze = FakeBraze()
    summary = engine(
        braze, users(1_000), cp, concurrency=2, try_number=2, identity=IDENTITY | {"deduplicate": True}
    ).run()
    assert summary["in_doubt"] == 200
    assert [r["batch"] for r in summary["in_doubt_details"]] == [6, 7, 8, 9]
    assert (
        "try 1 was still running while this batch may have been in flight"
        in summary["in_doubt_details"][0]["reason"]
    )
    assert not set(braze.delivered) & {f"u{i}" for i in range(500)}
    assert summary["complete"] is False


# ---------------------------------------------------------------------------- an unreadable checkpoint


def test_a_retry_never_starts_over_when_its_checkpoint_cannot_be_read(tmp_path: Path) -> None:
    store = CountingStore(ObjectStorageCheckpointStore(tmp_path))
    cp = checkpoint(store)
    engine(FakeBraze({100: [BrazeServerError("503")]}), users(500), cp).run()
    store.fail_reads = True
    braze = FakeBraze()
    delivery = engine(braze, users(500), cp, try_number=2)
    with pytest.raises(BrazeCheckpointError, match="cannot read"):
        delivery.run()
    assert braze.calls == 0
    assert delivery.result is not None
    assert delivery.result["complete"] is False


def test_a_damaged_checkpoint_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    engine(FakeBraze({100: [BrazeServerError("503")]}), users(500), cp).run()
    (record,) = tmp_path.glob("*.json")
    record.write_text('{"format": 3, "kind": "try", "outco')
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError, match="is not valid JSON"):
        engine(braze, users(500), cp, try_number=2).run()
    assert braze.calls == 0


EDITS = {
    # Issue 16, break 3: still valid JSON, defaults used to be filled in (2,750 of 3,000 sent twice).
    "outcomes and reserved_upto removed": lambda r: {
        k: v for k, v in r.items() if k not in ("outcomes", "reserved_upto")
    },
    "a count changed": lambda r: {**r, "reserved_upto": r["reserved_upto"] + 7},
    "the digest removed": lambda r: {k: v for k, v in r.items() if k != "digest"},
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_record_edited_by_hand_is_refused_never_repaired(tmp_path: Path, edit: str) -> None:
    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    engine(FakeBraze(failing(range(2, 3))), users(3_000), cp).run()
    (record,) = tmp_path.glob("*.json")
    record.write_text(json.dumps(EDITS[edit](json.loads(record.read_text()))))
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError) as caught:
        engine(braze, users(3_000), cp, try_number=2).run()
    assert braze.calls == 0
    text = str(caught.value)
    assert "was edited or damaged" in text
    assert "delete" not in text  # deleting it would forget what was sent: never advised


def test_a_file_url_checkpoint_is_written_then_renamed(tmp_path: Path) -> None:
    """Issue 16, break 2: a file:// ObjectStoragePath used to be written in place, so a kill
    mid-write left half a record (and deleting it, as the error then advised, sent duplicates)."""
    store = checkpoint_store(f"file://{tmp_path}")
    cp = checkpoint(store)
    engine(FakeBraze({50: [BrazeServerError("503")]}), users(500), cp).run()
    (record,) = tmp_path.glob("*.json")
    before = record.read_text()

    class Killed(BaseException):
        pass

    def kill(*args: Any) -> None:
        raise Killed

    with mock.patch("os.replace", kill), pytest.raises(Killed):
        store.write(record.stem, {"format": 3, "kind": "try"})
    assert record.read_text() == before  # the record is whole: the kill hit the temporary file
    summary = engine(FakeBraze(), users(500), cp, try_number=2).run()
    assert summary["complete"] is True
    assert summary["accepted"] == 500
    assert not list(tmp_path.glob("*.tmp"))


def test_an_abandoned_send_is_never_sent_again_and_is_pruned_later() -> None:
    store = MemoryCheckpointStore()
    cp = run_checkpoint(store, "r1")
    engine(FakeBraze(failing(range(2, 4))), users(200), cp).run()
    with mock.patch("airflow_provider_braze.delivery.checkpoint.checkpoint_store", return_value=store):
        key = abandon_send("dag", "send", "r1", checkpoint="variable")
        assert abandon_send("dag", "send", "r1", checkpoint="variable") == key  # once
    braze = FakeBraze()
    with pytest.raises(
        BrazeCheckpointError, match=r"This send was abandoned on .*: nothing is sent any more"
    ):
        engine(braze, users(200), cp, try_number=2).run()
    assert braze.calls == 0
    later = datetime.now(timezone.utc).date() + timedelta(days=31)
    assert run_checkpoint(store, "r2").prune(timedelta(days=30), later) == [cp.name]
    assert set(store.records) == {cp.pruned_through_key}  # only how far pruning went
    # A completed send cannot be abandoned.
    done = run_checkpoint(store, "r3")
    engine(FakeBraze(), users(10), done).run()
    with (
        mock.patch("airflow_provider_braze.delivery.checkpoint.checkpoint_store", return_value=store),
        pytest.raises(BrazeCheckpointError, match=r"completed .*: there is nothing to abandon"),
    ):
        abandon_send("dag", "send", "r3")


def test_abandoning_in_a_folder_no_send_wrote_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """A mistyped folder would hold an abandonment no try reads, and the real run stays retryable."""
    missing = tmp_path / "typo"
    with pytest.raises(
        BrazeCheckpointError,
        match=r"Cannot abandon the send of dag\.send in run 'r1': the checkpoint folder .*typo does not",
    ):
        abandon_send("dag", "send", "r1", checkpoint=str(missing))
    assert not missing.exists()
    unmarked = tmp_path / "empty"
    unmarked.mkdir()
    with pytest.raises(BrazeCheckpointError, match=r"has no \.braze-checkpoints file"):
        abandon_send("dag", "send", "r1", checkpoint=str(unmarked))
    assert list(unmarked.iterdir()) == []


def test_abandoning_a_run_without_records_is_refused_naming_the_runs_that_have_some() -> None:
    """Adversarial pass 2, finding 5: a mistyped run ID or map index was "abandoned" (a record
    written for a send that never existed) while the real run stayed retryable."""
    store = MemoryCheckpointStore()
    engine(FakeBraze(failing(range(1, 2))), users(100), run_checkpoint(store, "runAB")).run()
    with mock.patch("airflow_provider_braze.delivery.checkpoint.checkpoint_store", return_value=store):
        for run_id, map_index in (("runAb", -1), ("runAB", 0)):
            with pytest.raises(
                BrazeCheckpointError,
                match=re.escape(
                    f"Cannot abandon the send of dag.send in run {run_id!r} (map index {map_index}): "
                    "memory (not kept across task retries) holds no record of it, so none of its tries "
                    "sent anything. Check dag_id, task_id, run_id and map_index; this task's runs with "
                    "records are runAB (map index -1)."
                ),
            ):
                abandon_send("dag", "send", run_id, map_index)
        assert not [k for k in store.records if "__abandoned_" in k]
        assert "__abandoned_" in abandon_send("dag", "send", "runAB")


def test_a_checkpoint_listing_that_fails_is_an_error() -> None:
    store = CountingStore(MemoryCheckpointStore())
    store.fail_listing = True
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError, match="listing failed"):
        engine(braze, users(100), checkpoint(store), try_number=2).run()
    assert braze.calls == 0


def test_a_variable_that_is_listed_but_reads_as_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3.3's task SDK answers the default when a Variable cannot be read; the listing
    (which fails loudly) tells that apart from a Variable that does not exist."""
    from airflow.sdk import Variable

    from airflow_provider_braze.delivery import VariableCheckpointStore

    stored = {f"{NAME}__try001_20261126T120000000000_0123abcd": "{}"}
    monkeypatch.setattr(
        Variable,
        "keys",
        classmethod(lambda cls, prefix=None: [k for k in stored if k.startswith(prefix or "")]),
    )
    monkeypatch.setattr(
        Variable, "get", classmethod(lambda cls, key, default=None, deserialize_json=False: default)
    )
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError, match="exists but could not be read"):
        engine(braze, users(100), checkpoint(VariableCheckpointStore()), try_number=2).run()
    assert braze.calls == 0


def test_a_retry_that_finds_no_checkpoint_proves_earlier_tries_sent_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    braze = FakeBraze()
    recent = datetime.now(timezone.utc) - timedelta(hours=3)
    summary = engine(braze, users(100), checkpoint(), try_number=2, run_after=recent).run()
    assert summary["complete"] is True
    assert "earlier tries sent nothing (each writes its checkpoint before its first request)" in caplog.text


def test_a_retry_of_an_old_run_without_its_checkpoint_is_refused() -> None:
    braze = FakeBraze()
    old = datetime.now(timezone.utc) - timedelta(days=40)
    with pytest.raises(
        BrazeCheckpointError,
        match=re.escape(
            "so this send completed or was abandoned (or its records were deleted by hand): earlier "
            "tries may have sent to every recipient. Nothing was sent. Check in Braze who received "
            "it, then mark the task as successful or failed."
        ),
    ):
        engine(braze, users(100), checkpoint(), try_number=2, run_after=old).run()
    assert braze.calls == 0
    # Keeping records forever means nothing was pruned: the missing record proves nothing was sent.
    engine(braze, users(100), checkpoint(), try_number=2, run_after=old, retention=None).run()
    assert braze.calls == 2


# ---------------------------------------------------------------------------- changed recipients


def _insert(rows: list[str]) -> list[str]:
    return rows[:100] + [f"new{i}" for i in range(10)] + rows[100:]


CHANGES = {
    "10 rows inserted after row 100": _insert,
    "10 rows deleted after row 100": lambda rows: rows[:100] + rows[110:],
    "two neighbours swapped at row 7000": lambda rows: [*rows[:7000], rows[7001], rows[7000], *rows[7002:]],
    "the last row edited": lambda rows: [*rows[:-1], "someone-else"],
    "a row appended": lambda rows: [*rows, "late-comer"],
    "the first row removed": lambda rows: rows[1:],
    "the whole list reversed": lambda rows: rows[::-1],
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_the_recipients_is_refused_before_the_retry_sends(change: str) -> None:
    rows = users(15_000)
    cp = checkpoint()
    # The first try leaves work to do (batches 2 and 250 fail before Braze processed them).
    first = FakeBraze({100: [BrazeServerError("503")], 12_500: [BrazeServerError("503")]})
    engine(first, rows, cp, concurrency=8).run()
    retry = FakeBraze()
    with pytest.raises(BrazeValidationError, match="The recipients changed since try 1") as err:
        engine(retry, CHANGES[change](rows), cp, concurrency=8, try_number=2).run()
    assert retry.calls == 0, "the retry sent before noticing"
    assert "nothing was sent" in str(err.value)
    assert max(first.delivered.values()) == 1


def test_the_change_is_located() -> None:
    rows = users(15_000)
    before = audience(rows)
    after = audience([*rows[:7000], rows[7001], rows[7000], *rows[7002:]])
    text = after.difference(before.fingerprint())
    assert text is not None
    assert "both read 15,000 recipients, but not the same ones in the same order" in text
    first_same = int(text.split("the first ")[1].split(" are the same")[0].replace(",", ""))
    change_before = int(text.split("before recipient ")[1].rstrip(")").replace(",", ""))
    assert first_same <= 7000 < change_before <= 7000 + 15_000 // 64 + 100
    assert before.difference(audience(rows).fingerprint()) is None
    # A change in the very first recipients claims no "same" prefix.
    first = audience([rows[1], rows[0], *rows[2:]]).difference(before.fingerprint())
    assert first is not None
    assert "are the same" not in first
    assert "(the first change is before recipient " in first
    # A completed send keeps no marks: the counts only, no made-up location.
    done = audience([*rows[:-1], "someone-else"]).difference(before.fingerprint(with_marks=False))
    assert done == "both read 15,000 recipients, but not the same ones in the same order"


def test_a_completed_send_rerun_with_other_recipients_fails_clearly() -> None:
    cp = checkpoint()
    braze = FakeBraze()
    engine(braze, users(700), cp).run()
    with pytest.raises(BrazeValidationError, match="This send already completed") as err:
        engine(braze, [f"other{i}" for i in range(700)], cp, try_number=2).run()
    assert "trigger a new DAG run" in str(err.value)
    assert braze.calls == 14


def test_a_changed_operator_argument_is_a_different_send() -> None:
    cp = checkpoint()
    engine(FakeBraze({0: [BrazeServerError("503")]}), users(100), cp).run()
    braze = FakeBraze()
    with pytest.raises(BrazeValidationError, match="belongs to a different send"):
        engine(braze, users(100), cp, identity={**IDENTITY, "send_id": "other"}, try_number=2).run()
    assert braze.calls == 0


# ---------------------------------------------------------------------------- overlapping tries


def test_a_newer_try_stops_an_older_one_within_its_reservation() -> None:
    """Try 1 is still sending when try 2 writes its record: try 1 stops at its next checkpoint
    write, having sent at most the batches it had reserved (at most 3 x concurrency)."""
    cp = checkpoint()
    concurrency = 4
    braze = FakeBraze(delay=0.002)
    takeover_at: list[int] = []

    def take_over(calls: int, batch: list[Any]) -> None:
        if calls == 40:
            write_record(cp, 2, "29991231T000000000000")
            takeover_at.append(calls)

    braze.on_call = take_over
    older = engine(braze, users(6_000), cp, concurrency=concurrency)
    with pytest.raises(
        BrazeDeliveryStoppedError, match="A newer try of this task took over the send"
    ) as stopped:
        older.run()
    assert takeover_at == [40]
    # The error carries what this try knows, as the summary pushed to XCom does.
    assert stopped.value.summary["accepted"] == sum(braze.delivered.values())
    assert stopped.value.summary["complete"] is False
    assert braze.calls - 40 <= 3 * concurrency
    (record,) = [r for r in cp.load().tries if r.try_number == 1]
    assert record.state == "superseded"
    assert record.reserved_upto <= braze.calls  # settled: nothing reserved beyond what went out
    assert record.outcomes.count(Outcome.DONE) == braze.calls


def test_an_older_try_that_starts_after_a_newer_one_sends_nothing() -> None:
    cp = checkpoint()
    engine(FakeBraze({0: [BrazeServerError("503")]}), users(100), cp, try_number=3).run()
    braze = FakeBraze()
    with pytest.raises(
        BrazeDeliveryStoppedError, match=r"A newer try of this task \(try 3\) already owns this send"
    ):
        engine(braze, users(100), cp, try_number=2).run()
    assert braze.calls == 0


@pytest.mark.parametrize("at_least_once", [False, True])
def test_overlapping_tries_send_nobody_twice_beyond_the_batches_in_flight(at_least_once: bool) -> None:
    """Two tries of one task instance run at once (a try Airflow lost track of, and its retry)."""
    cp = checkpoint()
    concurrency = 4
    braze = FakeBraze(delay=0.003)
    errors: list[BaseException] = []
    older = engine(braze, users(6_000), cp, concurrency=concurrency, try_number=1)

    def run_older() -> None:
        try:
            older.run()
        except BrazeDeliveryStoppedError as err:
            errors.append(err)

    thread = threading.Thread(target=run_older)
    thread.start()
    while braze.calls < 30:
        time.sleep(0.001)
    newer = engine(FakeBraze(delay=0.003), users(6_000), cp, concurrency=concurrency, try_number=2)
    newer_braze = newer._send_batch
    summary = (
        newer.run()
        if not at_least_once
        else engine(
            newer_braze, users(6_000), cp, concurrency=concurrency, try_number=2, at_least_once=True
        ).run()
    )
    thread.join(30)
    assert errors
    assert "took over" in str(errors[0])
    delivered = braze.delivered + newer_braze.delivered  # type: ignore[attr-defined]
    twice = {r for r, n in delivered.items() if n > 1}
    if at_least_once:
        assert len(twice) <= 3 * concurrency * 50
    else:
        assert twice == set()
    if summary["complete"]:
        assert set(delivered) == set(users(6_000))
    else:
        # Batches the older try had in flight when the newer one ended are reported as in doubt;
        # batches it only reserved, and released when it stopped, are not sent (never "in doubt").
        assert summary["in_doubt"] + summary["not_sent"] > 0
        assert summary["accepted"] + summary["in_doubt"] + summary["not_sent"] == 6_000
    # Once both have ended, the next try sees every fact: complete, nobody twice (or only those).
    final = engine(FakeBraze(), users(6_000), cp, concurrency=concurrency, try_number=3).run()
    assert final["accepted"] + final["in_doubt"] == 6_000
    assert final["complete"] is (final["in_doubt"] == 0)


def test_the_checkpoint_never_says_complete_while_a_batch_is_in_doubt() -> None:
    cp = checkpoint()
    write_record(
        cp,
        1,
        "20261126T120000000000",
        audience=audience(users(500)).fingerprint(),
        reserved_upto=4,
        outcomes=bytearray([Outcome.DONE, Outcome.DONE]),  # batches 2 and 3 still in flight
    )
    summary = engine(FakeBraze(), users(500), cp, try_number=2).run()
    assert summary["complete"] is False
    assert summary["in_doubt_ranges"] == [[2, 4]]
    assert not any("__done_" in key for key in own_keys(cp))


# ---------------------------------------------------------------------------- duplicates


def test_duplicate_recipients_are_sent_once_and_counted() -> None:
    rows = [*users(120), "u5", "u7", "u5", *users(10)]
    braze = FakeBraze()
    summary = engine(braze, rows, checkpoint()).run()
    assert braze.delivered == Counter(users(120))
    assert (summary["recipients_read"], summary["recipients"]) == (133, 120)
    assert summary["duplicates"] == summary["duplicates_skipped"] == 13


def test_duplicate_aliases_and_emails_are_found_too() -> None:
    recipients = [
        {"user_alias": {"alias_name": "a", "alias_label": "l"}},
        {"email": "x@example.com", "prioritization": ["unidentified"]},
        {"external_user_id": "u1", "trigger_properties": {"n": 1}},
        {"user_alias": {"alias_name": "a", "alias_label": "l"}, "trigger_properties": {"n": 2}},
        {"email": "x@example.com", "prioritization": ["identified"]},
        "u1",
        {"user_alias": {"alias_name": "a", "alias_label": "other"}},
    ]
    found = read_audience(recipients, "recipients")
    _OPEN.append(found)
    assert (found.read, found.unique) == (7, 4)
    (batch,) = list(found.batches())
    assert [r.get("external_user_id") or r.get("email") or r["user_alias"]["alias_label"] for r in batch] == [
        "l",
        "x@example.com",
        "u1",
        "other",
    ]


def test_duplicates_can_be_allowed() -> None:
    rows = [*users(60), "u1"]
    braze = FakeBraze()
    summary = engine(braze, rows, checkpoint(), deduplicate=False).run()
    assert braze.delivered["u1"] == 2
    assert (summary["recipients"], summary["duplicates"], summary["duplicates_skipped"]) == (61, 1, 0)


# ---------------------------------------------------------------------------- names


def test_checkpoint_names_are_unambiguous() -> None:
    assert checkpoint_name("newsletter__eu", "send", "r", -1) != checkpoint_name(
        "newsletter", "eu__send", "r", -1
    )
    assert checkpoint_name("d", "t", "run:1", -1) != checkpoint_name("d", "t", "run+1", -1)
    assert checkpoint_name("d", "t", "r", 1) != checkpoint_name("d", "t", "r", 2)
    name = checkpoint_name("newsletter", "send", "manual__2026-11-26T13:32:42+00:00", -1)
    assert name.startswith("braze_send__newsletter__send__")
    assert "manual__2026-11-26T13_32_42_00_00__-1__" in name
    longest = Checkpoint(MemoryCheckpointStore(), checkpoint_name("d" * 300, "t" * 300, "r" * 300, 99_999))
    assert len(longest.try_key(999, "29991231T235959999999", "ffffffff")) <= 250  # Airflow's key limit
    assert longest.name.startswith(task_prefix("d" * 300, "t" * 300))


def test_two_tasks_with_lookalike_names_keep_their_own_checkpoints() -> None:
    store = MemoryCheckpointStore()
    eu = Checkpoint(store, checkpoint_name("newsletter__eu", "send", "run", -1))
    other = Checkpoint(store, checkpoint_name("newsletter", "eu__send", "run", -1))
    engine(FakeBraze(), users(100), eu).run()
    braze = FakeBraze()
    summary = engine(braze, users(100), other).run()
    assert braze.calls == 2
    assert summary["already_complete"] is False


# ---------------------------------------------------------------------------- bounded checkpoints


def test_a_total_outage_stops_early_and_keeps_the_checkpoint_small() -> None:
    store = CountingStore(MemoryCheckpointStore())
    braze = FakeBraze(always=BrazeServerError("503 after retries", status_code=503))
    summary = engine(braze, users(100_000), checkpoint(store), concurrency=8).run()
    assert summary["stopped_early"]
    assert "in a row failed" in summary["stopped_early"]
    assert braze.calls <= 2 * 8 + 8  # the outage threshold plus what was in flight
    assert (summary["accepted"], summary["not_sent"]) == (0, 100_000)
    assert summary["not_sent_ranges"] == [[0, 2_000]]
    assert store.largest <= 64 * 1024
    assert store.bytes_written <= 20 * 1024 * 1024


def test_an_outage_lists_everything_not_sent_as_not_sent() -> None:
    braze = FakeBraze(always=BrazeServerError("503 after retries", status_code=503))
    summary = engine(braze, users(1_000), checkpoint(), concurrency=1).run()
    assert braze.calls == 4  # max(4, 2 x concurrency) failures in a row
    assert summary["not_sent"] == 1_000
    assert summary["not_sent_details"][0]["error"] == "503 after retries"
    assert summary["not_sent_details"][4]["error"].startswith("not attempted: 4 batches in a row failed")


def test_a_try_record_stays_small_whatever_the_outcomes() -> None:
    rng = random.Random(8)
    record = TryRecord(
        key="k",
        try_number=1,
        started="20261126T120000000000",
        token="0123abcd",
        send=IDENTITY,
        audience=audience(users(100)).fingerprint(),
        reserved_upto=20_000,
        outcomes=bytearray(
            rng.choice([Outcome.DONE, Outcome.NOT_SENT, Outcome.IN_DOUBT]) for _ in range(20_000)
        ),  # 1,000,000 recipients
        errors=[
            {"batch": i, "outcome": "in_doubt", "status_code": 504, "error": "x" * 300}
            for i in range(ERRORS_KEPT)
        ],
        stats=TryStats(
            non_fatal_errors=["y" * 300] * 20,
            dispatch_ids=["d" * 32] * 20,
            schedule_ids=["s" * 32] * 20,
        ),
    )
    assert len(json.dumps(record.to_json())) <= 64 * 1024


def test_non_fatal_errors_as_large_objects_keep_records_and_summaries_small() -> None:
    """Issue 16, break 7: errors returned as objects were kept whole: a 167 KB try record, a
    166 KB summary, and 166 MB written for 50,000 recipients."""
    store = CountingStore(MemoryCheckpointStore())
    big = {"type": "invalid", "detail": "x" * 8_000, "items": list(range(500))}

    def send(batch: list[Any]) -> dict[str, Any]:
        return {"message": "success", "errors": [big, "short text", {"small": 1}]}

    summary = engine(send, users(50_000), checkpoint(store), concurrency=8).run()
    assert summary["complete"] is True
    assert store.largest <= 64 * 1024
    assert store.bytes_written <= 20 * 1024 * 1024
    assert len(json.dumps(summary.to_json())) <= 64 * 1024
    kept = summary["non_fatal_errors"]
    assert kept[:3] == [kept[0], "short text", {"small": 1}]
    assert isinstance(kept[0], str)
    assert kept[0].startswith('{"detail": "xxx')
    assert len(kept[0]) <= ERROR_CHARS


def test_a_send_writes_within_the_budget_however_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """I5: reservations reach further and saves come less often as the writes grow, so a send
    stays within WRITE_BUDGET (made small here, so that 2,000 batches meet it)."""
    from airflow_provider_braze.delivery import engine as engine_module

    budget = 300 * 1024
    monkeypatch.setattr(engine_module, "WRITE_BUDGET", budget)
    store = CountingStore(MemoryCheckpointStore())
    rng = random.Random(5)
    last = {"failed": False}

    def send(batch: list[Any]) -> dict[str, Any]:
        time.sleep(0.0005)
        # Outcomes that compress badly (records of a few KB), never two failures in a row (an
        # outage would stop the send early).
        last["failed"] = not last["failed"] and rng.random() < 0.3
        if last["failed"]:
            raise BrazeServerError("503")
        return {"message": "success", "errors": []}

    summary = engine(send, users(100_000), checkpoint(store), concurrency=2, save_interval=0.01).run()
    assert summary["batches"] == 2_000
    assert store.writes > 50
    assert store.bytes_written <= budget


def test_a_rate_limit_used_up_beyond_the_budget_stops_the_send_early() -> None:
    reset = datetime(2026, 11, 26, 19, 0, tzinfo=timezone.utc)
    from airflow_provider_braze.exceptions import BrazeRateLimitError

    braze = FakeBraze({100: [BrazeRateLimitError("429", reset_at=reset, status_code=429)]})
    summary = engine(braze, users(10_000), checkpoint(), concurrency=1).run()
    assert "rate limit was still used up (it resets at 2026-11-26 19:00:00 UTC)" in summary["stopped_early"]
    assert summary["accepted"] == 100
    assert summary["not_sent"] == 9_900


# ---------------------------------------------------------------------------- lifecycle


def test_a_completed_send_leaves_one_small_record() -> None:
    store = MemoryCheckpointStore()
    engine(FakeBraze({0: [BrazeServerError("503")]}), users(5_000), checkpoint(store)).run()
    engine(FakeBraze(), users(5_000), checkpoint(store), try_number=2).run()
    (key,) = store.records
    assert "__done_" in key
    assert len(store.records[key]) <= 4 * 1024


def test_a_runs_records_are_pruned_together_only_when_it_is_over_and_older_than_the_retention(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryCheckpointStore()
    today = datetime.now(timezone.utc).date()

    def old(run: str, days: int, kind: str, try_number: int = 1) -> str:
        day = today - timedelta(days=days)
        name = checkpoint_name("dag", "send", run, -1)
        key = (
            f"{name}__{kind}_{day:%Y%m%d}"
            if kind in ("done", "abandoned")
            else f"{name}__try{try_number:03d}_{day:%Y%m%d}T000000000000_0123abcd"
        )
        store.write(key, {"kind": kind, "retention_seconds": timedelta(days=30).total_seconds()})
        return key

    expired = [
        old("a", 45, "done"),
        # A run that completed long ago, with a stray try record it left: all of it goes.
        old("b", 50, "try"),
        old("b", 49, "done"),
        # Abandoned on purpose, long ago.
        old("c", 40, "try"),
        old("c", 39, "abandoned"),
    ]
    kept = [
        old("d", 29, "done"),
        # Incomplete, however old: a retry of it must find what its tries sent.
        old("e", 400, "try"),
        # Completed recently, though its first try is old: the run goes together, later.
        old("f", 60, "try"),
        old("f", 3, "done"),
        # Abandoned recently.
        old("g", 45, "try"),
        old("g", 1, "abandoned"),
    ]
    elsewhere = f"{checkpoint_name('other_dag', 'send', 'a', -1)}__done_{today - timedelta(days=400):%Y%m%d}"
    store.records[elsewhere] = "{}"
    caplog.set_level("INFO")
    engine(FakeBraze(), users(100), checkpoint(store)).run()
    for key in expired:
        assert key not in store.records
    for key in [*kept, elsewhere]:
        assert key in store.records
    assert "Pruned the checkpoint records of 3 runs of this task" in caplog.text
    assert "1 run of this task has an incomplete send older than 30 days" in caplog.text
    assert "abandon_send(dag_id, task_id, run_id, map_index, checkpoint=..., checkpoint_retention=...)" in (
        caplog.text
    )


def run_checkpoint(store: CheckpointStore, run_id: str) -> Checkpoint:
    return checkpoint(store, checkpoint_name("dag", "send", run_id, -1))


def failing(batches: range) -> dict[int, list[Exception | str]]:
    """FakeBraze failures: each of these batches fails once with a 503 (not sent)."""
    return {50 * i: [BrazeServerError("503")] for i in batches}


def test_a_prune_cut_short_never_leaves_a_run_that_reads_as_incomplete() -> None:
    """Try records go first, the done record last: a run half pruned still reads as complete."""
    store = MemoryCheckpointStore()
    old = run_checkpoint(store, "old")
    engine(FakeBraze(), users(200), old).run()
    (done_key,) = old.own_keys()
    stray = f"{old.name}__try009_20000101T000000000000_0123abcd"
    store.records[stray] = "{}"  # a try that completed the send but died before cleaning up
    deleted: list[str] = []
    original = store.delete
    store.delete = lambda key: (deleted.append(key), original(key))[1]  # type: ignore[method-assign]
    later = datetime.now(timezone.utc).date() + timedelta(days=60)
    assert run_checkpoint(store, "new").prune(timedelta(days=30), later) == [old.name]
    assert deleted == [stray, done_key]


def test_pruning_never_splits_a_run_that_is_still_retrying() -> None:
    """Issue 16, break 1: try 1 of a run on day -(R+1), try 2 a day later, another run of the task
    completes today, then try 3: the older try's record used to be pruned by its own date, and
    try 3 merged the partial set as if whole, sending batches try 1 had sent again."""
    store = MemoryCheckpointStore()
    clock = {"now": datetime.now(timezone.utc) - timedelta(days=31)}
    recipients = users(2_000)
    first = run_checkpoint(store, "first")
    delivered: Counter[str] = Counter()
    with mock.patch("airflow_provider_braze.delivery.engine.utcnow", side_effect=lambda: clock["now"]):
        for try_number, failures in ((1, failing(range(20, 40))), (2, failing(range(30, 40)))):
            braze = FakeBraze(failures)
            summary = engine(braze, recipients, first, try_number=try_number).run()
            delivered.update(braze.delivered)
            assert summary["complete"] is False
            clock["now"] += timedelta(days=1)
        clock["now"] = datetime.now(timezone.utc)
        engine(FakeBraze(), users(10), run_checkpoint(store, "other")).run()
        braze = FakeBraze()
        summary = engine(braze, recipients, first, try_number=3).run()
        delivered.update(braze.delivered)
    assert summary["complete"] is True
    assert {r for r, n in delivered.items() if n > 1} == set()
    assert set(delivered) == set(recipients)
    assert braze.calls == 10


def test_retention_none_keeps_every_record() -> None:
    store = MemoryCheckpointStore()
    today = datetime.now(timezone.utc).date()
    key = f"{checkpoint_name('dag', 'send', 'a', -1)}__done_{today - timedelta(days=999):%Y%m%d}"
    store.records[key] = "{}"
    engine(FakeBraze(), users(100), checkpoint(store), retention=None).run()
    assert key in store.records


def test_retention_must_be_at_least_two_days() -> None:
    with pytest.raises(BrazeValidationError, match="at least 2 days"):
        engine(FakeBraze(), users(1), checkpoint(), retention=timedelta(hours=1))


# ---------------------------------------------------------------------------- redaction


def test_nothing_kept_or_reported_holds_the_key(tmp_path: Path) -> None:
    def redact(value: Any) -> Any:
        return value.replace(SECRET, "***") if isinstance(value, str) else value

    def answer(batch: list[Any]) -> dict[str, Any]:
        if batch[0] == "u50":
            raise BrazeServerError(f"proxy said: Authorization: Bearer {SECRET}")
        if batch[0] == "u100":
            raise BrazeAmbiguousRequestError(f"dropped; echo {SECRET}")
        return {"dispatch_id": "d", "errors": [f"header echo: {SECRET}"]}

    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    delivery = engine(answer, users(200), cp, redact=redact)
    summary = delivery.run()
    assert summary["non_fatal_errors"]
    texts = json.dumps(summary.to_json()) + "".join(p.read_text() for p in tmp_path.glob("*.json"))
    assert SECRET not in texts
    assert "***" in texts


# ---------------------------------------------------------------------------- found by an adversarial review


def test_every_recipient_in_doubt_is_named_in_the_log_however_many(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    lost = {i * 50: ["deliver-then-lose-answer"] for i in range(0, 1_200, 2)}  # 600 batches in doubt
    summary = engine(FakeBraze(lost), users(60_000), checkpoint(), concurrency=8).run()
    assert summary["in_doubt_batches"] == 600
    assert summary["in_doubt"] == 30_000
    assert len(summary["in_doubt_ranges"]) == 500  # the summary stays bounded, and says so
    assert summary["ranges_truncated"] is True
    logged = caplog.text
    assert all(f"u{i}," in logged or f"u{i}\n" in logged for i in range(0, 60_000, 100)), "not named"
    assert "600 batches (30000 recipients) in doubt, not resent" in logged


def test_at_least_once_resends_in_the_same_try() -> None:
    braze = FakeBraze({100: ["deliver-then-lose-answer"], 200: [BrazeAmbiguousRequestError("x")] * 5})
    summary = engine(braze, users(300), checkpoint(), at_least_once=True).run()
    assert braze.delivered["u100"] == 2  # resent at once, and counted
    assert summary["resent_in_doubt"] == 50 + 2 * 50  # batch 4 twice, then it stays in doubt
    assert (summary["complete"], summary["in_doubt"]) == (False, 50)
    assert summary["in_doubt_details"][0]["batch"] == 4


def test_a_refused_retry_does_not_claim_what_was_sent() -> None:
    cp = checkpoint()
    engine(FakeBraze({100: [BrazeServerError("503")]}), users(1_000), cp).run()
    delivery = engine(FakeBraze(), users(999), cp, try_number=2)
    with pytest.raises(BrazeValidationError):
        delivery.run()
    summary = delivery.result
    assert summary is not None
    assert summary["complete"] is False
    assert (summary["accepted"], summary["not_sent"], summary["in_doubt"], summary["tries"]) == (None,) * 4
    assert summary["recipients"] == 999
    assert summary["error"].startswith("BrazeValidationError: The recipients changed since try 1")


def test_a_send_stopped_by_refusals_says_why() -> None:
    braze = FakeBraze({i * 50: [BrazeBadRequestError("bad", status_code=400)] for i in range(20)})
    delivery = engine(braze, users(1_000), checkpoint(), concurrency=1, max_refused_batches=1)
    with pytest.raises(BrazeBadRequestError):
        delivery.run()
    assert delivery.result is not None
    assert delivery.result["stopped_early"].startswith("Braze refused more than 1 batches")


def test_a_broadcast_in_doubt_is_counted_as_a_request() -> None:
    def lose(batch: list[Any]) -> dict[str, Any]:
        raise BrazeAmbiguousRequestError("dropped")

    summary = engine(lose, Audience.broadcast_audience(), checkpoint()).run()
    assert (summary["in_doubt_batches"], summary["complete"]) == (1, False)


def test_emails_that_differ_only_in_case_are_one_recipient() -> None:
    emails = [{"email": e, "prioritization": ["identified"]} for e in ("a@x.com", "A@X.com", "b@x.com")]
    found = read_audience(emails, "recipients")
    _OPEN.append(found)
    assert (found.read, found.unique) == (3, 2)


@pytest.mark.parametrize(("argument", "value"), [("progress_interval", 0), ("max_refused_batches", -1)])
def test_nonsense_engine_settings_are_refused(argument: str, value: float) -> None:
    with pytest.raises(BrazeValidationError, match=argument):
        engine(FakeBraze(), users(1), checkpoint(), **{argument: value})


def test_a_record_of_another_kind_is_named_as_such(tmp_path: Path) -> None:
    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    record = write_record(cp, 1, "20261126T120000000000")
    data = record.to_json() | {"kind": "something-else"}
    cp.store.write(record.key, data)
    with pytest.raises(BrazeCheckpointError, match="holds kind 'something-else'"):
        engine(FakeBraze(), users(10), cp, try_number=2).run()


def test_leftovers_of_an_interrupted_write_are_removed(tmp_path: Path) -> None:
    cp = checkpoint(ObjectStorageCheckpointStore(tmp_path))
    leftover = tmp_path / f"{cp.name}__try001_20261126T120000000000_0123abcd.json.99-1.tmp"
    leftover.write_text("{half")
    engine(FakeBraze(), users(100), cp).run()
    assert not leftover.exists()
    assert [p.name for p in tmp_path.iterdir() if "__done_" not in p.name] == [".braze-checkpoints"]


def test_an_unexpected_error_from_a_send_puts_the_batch_in_doubt_and_stops() -> None:
    """Not one of the hook's errors: nothing says whether the request went out."""
    cp = checkpoint()
    braze = FakeBraze({100: [OverflowError("cannot convert float infinity to integer")]})
    delivery = engine(braze, users(1_000), cp, concurrency=1)
    with pytest.raises(OverflowError):
        delivery.run()
    assert delivery.result is not None
    assert (delivery.result["in_doubt"], delivery.result["accepted"]) == (50, 100)
    retry = FakeBraze()
    engine(retry, users(1_000), cp, concurrency=1, try_number=2).run()
    assert "u100" not in retry.delivered  # never resent


def test_a_resend_that_fails_leaves_the_batch_in_doubt() -> None:
    """at_least_once: the first request's outcome is unknown, its resend is refused or fails; the
    first may have gone through, so the batch stays in doubt and a plain retry does not resend it."""
    cp = checkpoint()
    braze = FakeBraze({0: ["deliver-then-lose-answer", BrazeBadRequestError("400", status_code=400)] * 2})
    summary = engine(braze, users(150), cp, at_least_once=True).run()
    assert (summary["in_doubt"], summary["not_sent"], summary["refused"]) == (50, 0, 0)
    assert summary["in_doubt_details"][0]["reason"] == "read timeout after sending"  # why it is in doubt
    retry = FakeBraze()
    engine(retry, users(150), cp, try_number=2).run()
    assert "u0" not in retry.delivered


def test_a_stopped_or_superseded_send_says_why() -> None:
    braze = FakeBraze(delay=0.001)
    delivery = engine(braze, users(5_000), checkpoint(), concurrency=2)
    braze.on_call = lambda calls, batch: delivery.stop() if calls == 5 else None
    with pytest.raises(BrazeDeliveryStoppedError):
        delivery.run()
    assert delivery.result is not None
    assert delivery.result["stopped_early"] == "the task was stopped (on_kill: killed or timed out)"


def test_success_and_failure_summaries_have_the_same_keys() -> None:
    good = engine(FakeBraze(), users(100), checkpoint()).run()
    bad = engine(FakeBraze({0: [BrazeServerError("503")]}), users(100), checkpoint(name="other")).run()
    assert set(good) == set(bad) == set(SendSummary.__dataclass_fields__)
    assert good["error"] is None
    # One type, the only home of the keys: no key can be added on the way to XCom.
    with pytest.raises(TypeError):
        good.but(no_such_key=1)
    assert json.loads(json.dumps(good.to_json())) == good.to_json()


def test_a_try_records_counts_are_one_typed_object_that_round_trips() -> None:
    stats = TryStats(
        accepted=150, dispatch_count=3, dispatch_ids=["a", "b", "c"], batches_with_non_fatal_errors=1
    )
    assert TryStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats
    whole = stats.to_json()
    assert TryStats.from_json({**whole, "something_new": 1}) == stats
    # Strict: a missing count is never filled in with a default.
    missing = {k: v for k, v in whole.items() if k != "accepted"}
    for damaged in (
        None,
        missing,
        {**whole, "accepted": "5"},
        {**whole, "dispatch_ids": "a"},
        {**whole, "accepted": True},
        ["accepted"],
    ):
        with pytest.raises(TypeError):
            TryStats.from_json(damaged)


def test_an_empty_mount_point_is_not_taken_for_the_checkpoint_folder(tmp_path: Path) -> None:
    """An unmounted volume's mount point is an empty folder that exists: a retry there must not
    read it as "no earlier try sent anything" (found by an adversarial pass: 950 of 1,000 twice)."""
    volume = tmp_path / "volume"
    cp = checkpoint(ObjectStorageCheckpointStore(volume))
    engine(FakeBraze(failing(range(5, 6))), users(1_000), cp).run()
    mount_point = tmp_path / "unmounted"
    mount_point.mkdir()
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError, match=r"has no \.braze-checkpoints file"):
        engine(braze, users(1_000), checkpoint(ObjectStorageCheckpointStore(mount_point)), try_number=2).run()
    assert braze.calls == 0
    summary = engine(braze, users(1_000), cp, try_number=2).run()
    assert summary["complete"] is True
    assert braze.calls == 1


def test_a_record_copied_or_renamed_under_another_name_is_refused(tmp_path: Path) -> None:
    """A record carries its own key: run A's done record copied under run C's name must not make
    C skip its recipients (found by an adversarial pass)."""
    store = ObjectStorageCheckpointStore(tmp_path)
    a, c = run_checkpoint(store, "A"), run_checkpoint(store, "C")
    engine(FakeBraze(), users(300), a).run()
    (done,) = tmp_path.glob(f"{a.name}__done_*.json")
    (tmp_path / done.name.replace(a.name, c.name)).write_text(done.read_text())
    braze = FakeBraze()
    with pytest.raises(BrazeCheckpointError, match="was written under another name"):
        engine(braze, users(300), c).run()
    assert braze.calls == 0


def test_a_shorter_retention_in_a_later_run_never_prunes_what_a_longer_one_protects() -> None:
    """Run A completes with 30 days; run B, with 2 days, completes 4 days later: A must be kept,
    or clearing A would find nothing and send everyone again (found by an adversarial pass)."""
    store = MemoryCheckpointStore()
    clock = {"now": datetime.now(timezone.utc)}
    with mock.patch("airflow_provider_braze.delivery.engine.utcnow", side_effect=lambda: clock["now"]):
        a = run_checkpoint(store, "A")
        engine(FakeBraze(), users(100), a).run()
        clock["now"] += timedelta(days=4)
        engine(FakeBraze(), users(10), run_checkpoint(store, "B"), retention=timedelta(days=2)).run()
        assert a.own_keys() != []
        braze = FakeBraze()
        assert engine(braze, users(100), a, try_number=2).run()["already_complete"] is True
        assert braze.calls == 0
        clock["now"] += timedelta(days=27)  # 31 days after A: past its own retention too
        engine(FakeBraze(), users(10), run_checkpoint(store, "C"), retention=timedelta(days=2)).run()
        assert a.own_keys() == []


def test_a_killed_rehearsals_probe_is_removed_by_the_runs_completion_and_by_pruning() -> None:
    """A rehearsal killed between writing and deleting its probe leaves it; it is not a record,
    so nothing else would ever remove it (one Variable for good)."""
    store = MemoryCheckpointStore()
    completed = run_checkpoint(store, "r1")
    store.write(completed.probe_key, {"kind": "rehearsal"})
    engine(FakeBraze(), users(100), completed).run()
    assert completed.probe_key not in store.records
    # A run whose rehearsal was killed after its send completed: its probe goes when it is pruned.
    store.write(completed.probe_key, {"kind": "rehearsal"})
    later = datetime.now(timezone.utc).date() + timedelta(days=31)
    assert run_checkpoint(store, "r2").prune(timedelta(days=30), later) == [completed.name]
    assert set(store.records) == {completed.pruned_through_key}  # only how far pruning went
    # An incomplete run keeps everything, its probe included.
    open_run = run_checkpoint(store, "r3")
    engine(FakeBraze(failing(range(1, 2))), users(100), open_run).run()
    store.write(open_run.probe_key, {"kind": "rehearsal"})
    assert run_checkpoint(store, "r4").prune(timedelta(days=30), later) == []
    assert open_run.probe_key in store.records


@pytest.mark.parametrize("retry_retention", [timedelta(days=45), None])
def test_a_pruned_run_retried_with_a_longer_retention_or_none_is_refused(
    retry_retention: timedelta | None,
) -> None:
    """Adversarial pass 2, finding 1: run A completed, a later run pruned it, then A was cleared
    with checkpoint_retention raised (or None): the retry found no record, judged the run within
    the new retention, and sent everyone again. The task's pruning record now says how far
    pruning went, whatever the retention says later."""
    store = MemoryCheckpointStore()
    first = run_checkpoint(store, "A")
    engine(FakeBraze(), users(200), first).run()
    later = datetime.now(timezone.utc).date() + timedelta(days=31)
    assert run_checkpoint(store, "B").prune(timedelta(days=30), later) == [first.name]
    assert first.pruned_through() == datetime.now(timezone.utc).date()
    braze = FakeBraze()
    with pytest.raises(
        BrazeCheckpointError, match=r"whose records were pruned \(whatever checkpoint_retention"
    ):
        engine(
            braze,
            users(200),
            run_checkpoint(store, "A"),
            try_number=2,
            run_after=datetime.now(timezone.utc) - timedelta(hours=3),
            retention=retry_retention,
        ).run()
    assert braze.calls == 0
    # A run due after the newest pruned day is not affected.
    fresh = engine(
        braze,
        users(200),
        run_checkpoint(store, "C"),
        try_number=2,
        run_after=datetime.now(timezone.utc) + timedelta(days=1),
        retention=retry_retention,
    ).run()
    assert fresh["complete"] is True


def test_the_pruning_record_only_moves_forward_and_is_read_strictly() -> None:
    store = MemoryCheckpointStore()
    today = datetime.now(timezone.utc).date()
    for run in ("A", "B"):
        engine(FakeBraze(), users(10), run_checkpoint(store, run)).run()
    pruner = run_checkpoint(store, "Z")
    assert pruner.pruned_through() is None
    assert pruner.prune(timedelta(days=30), today + timedelta(days=31), limit=1) == [
        run_checkpoint(store, "A").name
    ]
    assert pruner.pruned_through() == today
    pruner._raise_pruned_through(today - timedelta(days=5))  # an older day never lowers it
    assert pruner.pruned_through() == today
    key = pruner.pruned_through_key
    assert key is not None
    store.records[key] = store.records[key].replace(f"{today:%Y%m%d}", "20000101")
    with pytest.raises(BrazeCheckpointError, match="Sending was refused rather than guessed"):
        pruner.pruned_through()


def test_an_abandoned_run_is_kept_for_the_retention_it_was_abandoned_with() -> None:
    """Run A (30 days) is abandoned; run B, with 2 days, completes 4 days later: A must be kept,
    or Airflow's pending retry of A would find nothing and send everyone again (found by the
    simulation of fault histories)."""
    store = MemoryCheckpointStore()
    clock = {"now": datetime.now(timezone.utc)}
    with (
        mock.patch("airflow_provider_braze.delivery.engine.utcnow", side_effect=lambda: clock["now"]),
        mock.patch("airflow_provider_braze.delivery.checkpoint.utcnow", side_effect=lambda: clock["now"]),
        mock.patch("airflow_provider_braze.delivery.checkpoint.checkpoint_store", return_value=store),
    ):
        a = run_checkpoint(store, "A")
        engine(FakeBraze(failing(range(1, 2))), users(100), a).run()
        abandon_send("dag", "send", "A", checkpoint="variable", checkpoint_retention=timedelta(days=30))
        clock["now"] += timedelta(days=4)
        engine(FakeBraze(), users(10), run_checkpoint(store, "B"), retention=timedelta(days=2)).run()
        assert a.own_keys() != []
        braze = FakeBraze()
        with pytest.raises(BrazeCheckpointError, match="This send was abandoned on"):
            engine(braze, users(100), a, try_number=2).run()
        assert braze.calls == 0
        clock["now"] += timedelta(days=27)  # 31 days after A: past its own retention too
        engine(FakeBraze(), users(10), run_checkpoint(store, "C"), retention=timedelta(days=2)).run()
        assert a.own_keys() == []


def test_a_retry_of_an_abandoned_send_names_the_batches_not_delivered() -> None:
    """The last try may have been killed (naming nobody): the refusal names, from the records,
    the batches in doubt and not sent, in its message and its summary's ranges."""
    store = MemoryCheckpointStore()
    cp = run_checkpoint(store, "r1")
    lost = {100: ["deliver-then-lose-answer"]}  # batch 2: sent, its answer lost (in doubt)
    engine(FakeBraze({**failing(range(4, 6)), **lost}), users(300), cp).run()
    with mock.patch("airflow_provider_braze.delivery.checkpoint.checkpoint_store", return_value=store):
        abandon_send("dag", "send", "r1", checkpoint="variable")
    braze = FakeBraze()
    refused = engine(braze, users(300), cp, try_number=2)
    with pytest.raises(
        BrazeCheckpointError,
        match=r"abandoned on .*: nothing is sent any more\. Its tries left 1 batch in doubt \[2\] and "
        r"2 batches not sent \[4-5\]",
    ):
        refused.run()
    assert braze.calls == 0
    summary = refused.result
    assert summary is not None
    assert summary["in_doubt_ranges"] == [[2, 3]]
    assert summary["not_sent_ranges"] == [[4, 6]]
    assert summary["accepted"] == 150
    assert summary["complete"] is False
