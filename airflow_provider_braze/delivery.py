"""Batched, concurrent, checkpointed delivery for the send operators.

Braze has no idempotency key, so the only way to avoid sending a batch twice across task retries
is to remember, durably and before sending, which batches may have gone out. The engine keeps
this record in a :class:`CheckpointStore` (an Airflow Variable by default, or a file at an
``ObjectStoragePath``; XCom cannot hold it, since Airflow clears a task's XComs at the start of
each try):

- before batch ``i`` is sent, ``reserved_upto > i`` is saved (reservations are made a few
  batches at a time, so saving costs one write per ``2 x concurrency`` batches);
- batches Braze confirmed are saved as ``done`` (at least every ``save_interval`` seconds);
- a batch whose outcome is unknown (read timeout, dropped connection, 504) is saved as
  ``ambiguous`` and, by default, never resent;
- a batch Braze refused or that failed before being processed (4xx, 5xx after retries,
  connection refused) is saved as ``not_sent`` and is sent again by the next try.

A retried try skips ``done`` batches, reports ``ambiguous`` ones, and treats reserved batches
with no outcome (the previous try died while they were in flight) as ambiguous too. With
``at_least_once=True`` ambiguous batches are resent instead, and counted as such.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeConfigurationError,
    BrazeError,
    BrazeNotFoundError,
    BrazeRateLimitError,
    BrazeValidationError,
)
from airflow_provider_braze.recipients import recipient_key

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable

CHECKPOINT_VERSION = 1
#: How many items of each list the summary keeps (it travels through XCom).
SUMMARY_LIST_LIMIT = 20
#: Ambiguous batches whose recipients are listed in the checkpoint and the summary.
AMBIGUOUS_DETAIL_LIMIT = 100
#: Batches whose content hash is kept to check that a retried try reads the same recipients.
_FINGERPRINT_EVERY = 256


class DeliveryStopped(BrazeError):
    """The send was stopped (task killed or timed out); the checkpoint says where it stopped."""


class DeliveryIncomplete(BrazeError):
    """Some batches were not delivered, or their outcome is unknown; the message lists them.

    :param summary: The delivery summary (also pushed to XCom under ``summary``).
    """

    def __init__(self, text: str, *, summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.summary = summary or {}


# ------------------------------------------------------------------------------------ checkpoints


class CheckpointStore(Protocol):
    """Where a send's progress survives a task retry, possibly on another worker."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def describe(self) -> str: ...


class VariableCheckpointStore:
    """Keeps the checkpoint in an Airflow Variable (JSON), reachable from every worker."""

    def __init__(self, key: str) -> None:
        self.key = key

    def load(self) -> dict[str, Any] | None:
        from airflow.sdk import Variable

        try:
            value = Variable.get(self.key, default=None, deserialize_json=True)
        except Exception as err:
            raise self._unreachable("read", err) from err
        return value if isinstance(value, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        try:
            Variable.set(
                self.key,
                state,
                description="Braze send checkpoint (airflow-provider-braze)",
                serialize_json=True,
            )
        except Exception as err:
            raise self._unreachable("write", err) from err

    def _unreachable(self, action: str, err: Exception) -> BrazeConfigurationError:
        return BrazeConfigurationError(
            f"Cannot {action} the checkpoint Variable {self.key!r} ({type(err).__name__}: {err}). Variables "
            "need a running Airflow task; outside one, pass checkpoint=<a folder or ObjectStoragePath URL>."
        )

    def describe(self) -> str:
        return f"Airflow Variable {self.key!r}"


class ObjectStorageCheckpointStore:
    """Keeps the checkpoint in a JSON file: a local path or any ObjectStoragePath URL (``s3://``...)."""

    def __init__(self, path: Any) -> None:
        if isinstance(path, str) and "://" in path:
            from airflow.sdk import ObjectStoragePath

            path = ObjectStoragePath(path)
        self.path = path

    def _is_local(self) -> bool:
        return isinstance(self.path, (str, os.PathLike)) or getattr(self.path, "protocol", "") in (
            "file",
            "local",
        )

    def load(self) -> dict[str, Any] | None:
        if isinstance(self.path, (str, os.PathLike)):
            if not os.path.exists(self.path):
                return None
            with open(self.path, encoding="utf-8") as fh:
                value = json.load(fh)
        else:
            if not self.path.exists():
                return None
            value = json.loads(self.path.read_text(encoding="utf-8"))
        return value if isinstance(value, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, separators=(",", ":"))
        if isinstance(self.path, (str, os.PathLike)):
            # Write then rename, so a kill mid-write never leaves half a checkpoint.
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            temporary = f"{self.path}.tmp"
            with open(temporary, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(temporary, self.path)
        else:
            # Object stores replace an object in one step; a local ObjectStoragePath is small enough.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text, encoding="utf-8")

    def describe(self) -> str:
        return f"checkpoint file {self.path}"


class MemoryCheckpointStore:
    """Keeps the checkpoint in memory only: no protection across task retries."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.state)) if self.state is not None else None

    def save(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))

    def describe(self) -> str:
        return "memory (not kept across task retries)"


def checkpoint_name(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """A Variable key / file name that identifies one task instance's send, whatever its try."""
    raw = f"braze_send__{dag_id}__{task_id}__{run_id}__{map_index}"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)
    if len(safe) <= 200:
        return safe
    return f"{safe[:150]}__{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


# ------------------------------------------------------------------------------------ index sets


class IndexSet:
    """A set of batch numbers stored as sorted ``[start, end)`` ranges (compact in JSON)."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in (tuple(r) for r in ranges):
            for index in range(start, end):
                self.add(index)

    def add(self, index: int) -> None:
        pos = bisect.bisect_right(self._starts, index)
        if pos and self._ends[pos - 1] > index:
            return  # already in
        joins_left = pos > 0 and self._ends[pos - 1] == index
        joins_right = pos < len(self._starts) and self._starts[pos] == index + 1
        if joins_left and joins_right:
            self._ends[pos - 1] = self._ends[pos]
            del self._starts[pos], self._ends[pos]
        elif joins_left:
            self._ends[pos - 1] = index + 1
        elif joins_right:
            self._starts[pos] = index
        else:
            self._starts.insert(pos, index)
            self._ends.insert(pos, index + 1)

    def discard(self, index: int) -> None:
        pos = bisect.bisect_right(self._starts, index)
        if not pos or self._ends[pos - 1] <= index:
            return
        start, end = self._starts[pos - 1], self._ends[pos - 1]
        del self._starts[pos - 1], self._ends[pos - 1]
        for s, e in ((start, index), (index + 1, end)):
            if e > s:
                i = bisect.bisect_left(self._starts, s)
                self._starts.insert(i, s)
                self._ends.insert(i, e)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        pos = bisect.bisect_right(self._starts, index)
        return bool(pos) and self._ends[pos - 1] > index

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=False))

    def __iter__(self) -> Any:
        for s, e in zip(self._starts, self._ends, strict=False):
            yield from range(s, e)

    def end(self) -> int:
        """One past the highest batch number in the set (0 when empty)."""
        return self._ends[-1] if self._ends else 0

    def prefix_end(self) -> int:
        """The first batch number not in the set."""
        return self._ends[0] if self._starts and self._starts[0] == 0 else 0

    def to_json(self) -> list[list[int]]:
        return [[s, e] for s, e in zip(self._starts, self._ends, strict=False)]


# ------------------------------------------------------------------------------------ engine


def _batch_hash(batch: list[Any]) -> str:
    return hashlib.sha256(json.dumps(batch, sort_keys=True, default=str).encode()).hexdigest()[:16]


class BatchDelivery:
    """Send batches concurrently, exactly once across task tries (see the module docstring).

    :param send_batch: Sends one batch (a list of recipients, empty for a broadcast) and
        returns Braze's answer; raises the hook's errors.
    :param batches: The batches, in an order that is the same on every try.
    :param store: Where progress is kept between tries.
    :param identity: What the checkpoint must match on a later try (endpoint, campaign, ...).
    :param log: The task's logger.
    :param concurrency: Batches in flight at once.
    :param at_least_once: Resend batches whose outcome is unknown instead of reporting them.
    :param total_recipients: The number of recipients when known, for progress and ETA.
    :param progress_interval: Seconds between progress lines in the log.
    :param max_rejected_batches: Stop sending after this many batches refused by Braze (4xx).
    :param rate_limit_status: Returns a text on the rate-limit headroom, for progress lines.
    """

    def __init__(
        self,
        *,
        send_batch: Callable[[list[Any]], dict[str, Any]],
        batches: Iterable[list[Any]],
        store: CheckpointStore,
        identity: dict[str, Any],
        log: logging.Logger | Any,
        concurrency: int = 4,
        at_least_once: bool = False,
        total_recipients: int | None = None,
        progress_interval: float = 30.0,
        save_interval: float = 2.0,
        max_rejected_batches: int = 10,
        max_rate_limit_wait: float = 3600.0,
        rate_limit_status: Callable[[], str] | None = None,
    ) -> None:
        if not 1 <= concurrency <= 32:
            raise BrazeValidationError(f"concurrency must be between 1 and 32, got {concurrency}.")
        self._send_batch = send_batch
        self._batches = batches
        self._store = store
        self._identity = identity
        self.log = log
        self._concurrency = concurrency
        self._at_least_once = at_least_once
        self._total_recipients = total_recipients
        self._progress_interval = progress_interval
        self._save_interval = save_interval
        self._max_rejected = max_rejected_batches
        self._max_rate_limit_wait = max_rate_limit_wait
        self._rate_limit_status = rate_limit_status
        self._stop = threading.Event()
        #: The error that stopped the send (auth, too many refusals...); set by the coordinator.
        self._abort: BaseException | None = None

    def stop(self) -> None:
        """Stop dispatching batches (from ``on_kill``); in-flight batches finish and are recorded."""
        self._stop.set()

    # ------------------------------------------------------------------ state

    def _load(self) -> dict[str, Any]:
        state = self._store.load()
        if state is None:
            return {
                "version": CHECKPOINT_VERSION,
                "identity": self._identity,
                "status": "running",
                "tries": 1,
                "reserved_upto": 0,
                "batches_seen": 0,
                "done": [],
                "not_sent": {},
                "ambiguous": {},
                "fingerprints": {},
                "stats": {
                    "accepted": 0,
                    "accepted_batches": 0,
                    "resent_ambiguous": 0,
                    "dispatch_ids": [],
                    "dispatch_count": 0,
                    "schedule_ids": [],
                    "non_fatal_errors": [],
                    "batches_with_non_fatal_errors": 0,
                },
            }
        if state.get("version") != CHECKPOINT_VERSION or state.get("identity") != self._identity:
            raise BrazeValidationError(
                f"The {self._store.describe()} belongs to a different send "
                f"({state.get('identity')!r}, this task sends {self._identity!r}). Delete it to start "
                "over, knowing that recipients it records as sent would be sent again."
            )
        state["tries"] = int(state.get("tries", 0)) + 1
        return state

    def run(self) -> dict[str, Any]:
        state = self._load()
        if state["status"] == "complete":
            self.log.info(
                "This send already completed in an earlier try (%s); nothing is sent again.",
                self._store.describe(),
            )
            return dict(state["summary"], tries=state["tries"])
        if state["tries"] > 1:
            self.log.info(
                "Resuming the send from %s: %d batches done, %d with unknown outcome, %d to send again.",
                self._store.describe(),
                len(IndexSet(state["done"])),
                len(state["ambiguous"]),
                len(state["not_sent"]),
            )
        self._state = state
        self._done = IndexSet(state["done"])
        self._not_sent: dict[str, dict[str, Any]] = dict(state["not_sent"])
        self._ambiguous: dict[str, dict[str, Any]] = dict(state["ambiguous"])
        self._stats = state["stats"]
        self._reserved_upto = int(state["reserved_upto"])
        self._fingerprints: dict[str, str] = dict(state["fingerprints"])
        self._counts = {"batches_seen": 0, "recipients_seen": 0, "skipped": 0, "rejected_now": 0}
        self._last_save = time.monotonic()
        self._dirty = False
        self._started = time.monotonic()
        self._sent_this_try = 0
        self._last_progress = self._started
        self._next_unsent = 0  # one past the highest batch number dispatched so far
        previous_reserved = self._reserved_floor = self._reserved_upto
        previous_seen = int(state.get("batches_seen", 0))

        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="braze-send")
        in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]] = {}
        try:
            for index, batch in enumerate(self._batches):
                self._counts["batches_seen"] += 1
                self._counts["recipients_seen"] += len(batch)
                self._check_fingerprint(index, batch)
                if not self._should_send(index, batch, previous_reserved):
                    continue
                while len(in_flight) >= self._concurrency and not self._halted():
                    self._collect(in_flight, block=True)
                if self._halted():
                    break
                if index >= self._reserved_upto:
                    self._reserved_upto = index + 2 * self._concurrency
                    self._save()
                in_flight[pool.submit(self._attempt, batch)] = (index, batch)
                self._next_unsent = index + 1
                self._sent_this_try += 1
                self._collect(in_flight, block=False)
            else:
                if self._counts["batches_seen"] < previous_seen:
                    raise BrazeValidationError(
                        f"The recipients changed since the previous try: it read {previous_seen} "
                        f"batches but only {self._counts['batches_seen']} exist now."
                    )
            while in_flight:
                self._collect(in_flight, block=True)
        except BaseException as err:
            self._stop.set()
            while in_flight:
                self._collect(in_flight, block=True)
            try:
                self._save(settled=True)
            except Exception as save_error:  # keep the original error; say what could not be kept
                self.log.error("Could not save the send's progress after %r: %s", err, save_error)
            raise
        finally:
            pool.shutdown(wait=True)

        complete = not self._halted()
        summary = self.summary(complete=complete)
        if self._abort is not None:
            self._save(settled=True)
            raise self._abort
        if self._stop.is_set():
            self._save(settled=True)
            raise DeliveryStopped(
                f"The send was stopped; progress is kept in {self._store.describe()} and a retry "
                "resumes after the last confirmed batch."
            )
        if not self._ambiguous and not self._not_sent:
            self._state["status"] = "complete"
            self._state["summary"] = summary
        self._save(settled=True)
        self._log_progress(final=True)
        return summary

    # ------------------------------------------------------------------ per batch

    def _should_send(self, index: int, batch: list[Any], previous_reserved: int) -> bool:
        key = str(index)
        if index in self._done:
            self._counts["skipped"] += len(batch)
            return False
        if key not in self._ambiguous and key not in self._not_sent and index < previous_reserved:
            # Reserved by a try that ended before the batch's outcome was recorded.
            self._record_ambiguous(
                index, batch, "the previous try ended while this batch may have been in flight"
            )
        if key in self._ambiguous:
            record = self._ambiguous[key]
            if "recipients" not in record and len(self._ambiguous) <= AMBIGUOUS_DETAIL_LIMIT:
                record["recipients"] = [recipient_key(r) for r in batch]
            if not self._at_least_once:
                return False
            self._stats["resent_ambiguous"] += len(batch)
            del self._ambiguous[key]
            self.log.warning("Resending batch %d, whose outcome was unknown (at_least_once=True).", index)
        self._not_sent.pop(key, None)
        return True

    def _attempt(self, batch: list[Any]) -> tuple[str, Any]:
        """Runs in a worker thread: send one batch, classify the outcome."""
        waited = 0.0
        while True:
            try:
                return "done", self._send_batch(batch)
            except BrazeAmbiguousRequestError as err:
                return "ambiguous", err
            except BrazeRateLimitError as err:
                # 429 means Braze did not process the batch, so waiting and resending is safe.
                wait_for = max(1.0, err.reset_at.timestamp() - time.time()) if err.reset_at else 60.0
                if waited + wait_for > self._max_rate_limit_wait or self._stop.is_set():
                    return "not_sent", err
                self.log.warning("Braze rate limit reached; waiting %.0f s for it to reset.", wait_for)
                if self._stop.wait(wait_for):
                    return "not_sent", err
                waited += wait_for
            except (BrazeAuthError, BrazeNotFoundError, BrazeValidationError, BrazeConfigurationError) as err:
                return "abort", err
            except BrazeBadRequestError as err:
                return "rejected", err
            except BrazeError as err:  # 5xx after retries, connection failures before sending
                return "not_sent", err
            except Exception as err:
                return "abort", err

    def _collect(
        self, in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]], *, block: bool
    ) -> None:
        if block:
            done, _ = wait(in_flight, timeout=self._progress_interval, return_when=FIRST_COMPLETED)
        else:
            done = {f for f in in_flight if f.done()}
        for future in done:
            index, batch = in_flight.pop(future)
            outcome, value = future.result()
            self._record(index, batch, outcome, value)
        now = time.monotonic()
        if now - self._last_save >= self._save_interval and self._dirty:
            self._save()
        if now - self._last_progress >= self._progress_interval:
            self._log_progress()

    def _record(self, index: int, batch: list[Any], outcome: str, value: Any) -> None:
        key = str(index)
        self._dirty = True
        if outcome == "done":
            self._done.add(index)
            self._stats["accepted"] += len(batch)
            self._stats["accepted_batches"] += 1
            self._note_answer(value)
            return
        if outcome == "ambiguous":
            self._record_ambiguous(index, batch, str(value))
            self.log.error("Batch %d: outcome unknown, not resent: %s", index, value)
            return
        detail = {
            "batch": index,
            "count": len(batch),
            "error": str(value),
            "status_code": getattr(value, "status_code", None),
        }
        self._not_sent[key] = detail
        if outcome == "rejected":
            self._counts["rejected_now"] += 1
            self.log.error("Batch %d was refused by Braze: %s", index, value)
            if self._counts["rejected_now"] > self._max_rejected:
                self._abort = BrazeBadRequestError(
                    f"Braze refused more than {self._max_rejected} batches; stopped sending. Last: {value}"
                )
        elif outcome == "abort":
            self._abort = value if isinstance(value, BaseException) else BrazeError(str(value))
            self.log.error("Stopping the send: %s", value)
        else:
            self.log.error("Batch %d was not sent (a retry of the task sends it): %s", index, value)

    def _record_ambiguous(self, index: int, batch: list[Any], reason: str) -> None:
        record: dict[str, Any] = {"batch": index, "count": len(batch), "reason": reason}
        if len(self._ambiguous) < AMBIGUOUS_DETAIL_LIMIT:
            record["recipients"] = [recipient_key(r) for r in batch]
        self._ambiguous[str(index)] = record
        self._dirty = True

    def _note_answer(self, answer: dict[str, Any]) -> None:
        # Only the coordinating thread records outcomes, so no lock is needed.
        stats = self._stats
        if answer.get("dispatch_id"):
            stats["dispatch_count"] += 1
            if len(stats["dispatch_ids"]) < SUMMARY_LIST_LIMIT:
                stats["dispatch_ids"].append(answer["dispatch_id"])
        if answer.get("schedule_id") and len(stats["schedule_ids"]) < SUMMARY_LIST_LIMIT:
            stats["schedule_ids"].append(answer["schedule_id"])
        if answer.get("errors"):
            stats["batches_with_non_fatal_errors"] += 1
            for error in answer["errors"]:
                if len(stats["non_fatal_errors"]) < SUMMARY_LIST_LIMIT:
                    stats["non_fatal_errors"].append(error)

    def _check_fingerprint(self, index: int, batch: list[Any]) -> None:
        if index % _FINGERPRINT_EVERY:
            return
        digest = _batch_hash(batch)
        known = self._fingerprints.get(str(index))
        if known is None:
            self._fingerprints[str(index)] = digest
        elif known != digest:
            raise BrazeValidationError(
                f"The recipients changed since the previous try (batch {index} differs), so resuming "
                f"could send to the wrong people. Restore the original recipients, or delete "
                f"{self._store.describe()} to start over."
            )

    def _halted(self) -> bool:
        return self._abort is not None or self._stop.is_set()

    # ------------------------------------------------------------------ saving and reporting

    def _save(self, *, settled: bool = False) -> None:
        """Write the checkpoint. ``settled``: nothing is in flight, so every batch that was
        dispatched has an outcome and the reservation can shrink to what was really sent."""
        state = self._state
        if settled:
            recorded = [int(k) for k in (*self._ambiguous, *self._not_sent)]
            # Never below an earlier try's reservation: batches it may have sent and this try
            # has not reached yet must stay "possibly sent".
            self._reserved_upto = max(
                [self._reserved_floor, self._next_unsent, self._done.end(), *(i + 1 for i in recorded)]
            )
        state["reserved_upto"] = self._reserved_upto
        state["batches_seen"] = max(int(state.get("batches_seen", 0)), self._counts["batches_seen"])
        state["done"] = self._done.to_json()
        state["not_sent"] = self._not_sent
        state["ambiguous"] = self._ambiguous
        state["fingerprints"] = self._fingerprints
        state["stats"] = self._stats
        self._store.save(state)
        self._last_save = time.monotonic()
        self._dirty = False

    def summary(self, *, complete: bool = True) -> dict[str, Any]:
        """What happened, small enough for XCom."""
        stats = self._stats
        ambiguous = sorted(self._ambiguous.values(), key=lambda r: r["batch"])
        not_sent = sorted(self._not_sent.values(), key=lambda r: r["batch"])
        return {
            **{k: v for k, v in self._identity.items() if k != "batch_size"},
            "complete": complete and not ambiguous and not not_sent,
            "recipients": self._counts["recipients_seen"],
            "batches": self._counts["batches_seen"],
            "accepted": stats["accepted"],
            "accepted_batches": stats["accepted_batches"],
            "ambiguous": sum(r["count"] for r in ambiguous),
            "ambiguous_batches": ambiguous[:SUMMARY_LIST_LIMIT],
            "not_sent": sum(r["count"] for r in not_sent),
            # Of those, the ones Braze refused outright (4xx), as opposed to failures to reach it.
            "rejected": sum(r["count"] for r in not_sent if 400 <= (r.get("status_code") or 0) < 500),
            "not_sent_batches": not_sent[:SUMMARY_LIST_LIMIT],
            "resent_ambiguous": stats["resent_ambiguous"],
            "skipped_already_sent": self._counts["skipped"],
            "non_fatal_errors": stats["non_fatal_errors"],
            "batches_with_non_fatal_errors": stats["batches_with_non_fatal_errors"],
            "dispatch_ids": stats["dispatch_ids"],
            "dispatch_count": stats["dispatch_count"],
            "schedule_ids": stats["schedule_ids"],
            "tries": self._state["tries"],
            "checkpoint": self._store.describe(),
            # When this try stopped sending: a send's time for SendAnalyticsSensor(sent_at=...).
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def _log_progress(self, *, final: bool = False) -> None:
        self._last_progress = now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        stats = self._stats
        rate = self._sent_this_try / elapsed
        total = self._total_recipients
        done_recipients = stats["accepted"]
        parts = [
            f"{stats['accepted_batches']} batches / {done_recipients}"
            + (f" of {total} recipients ({100 * done_recipients / total:.0f}%)" if total else " recipients")
            + " accepted",
            f"{rate:.1f} requests/s",
        ]
        if total and rate > 0 and not final:
            remaining = max(0, total - done_recipients - self._counts["skipped"])
            batch_size = int(self._identity.get("batch_size") or 50)
            parts.append(f"ETA {remaining / (rate * batch_size):.0f} s")
        if self._ambiguous:
            parts.append(f"{len(self._ambiguous)} batches with unknown outcome")
        if self._not_sent:
            parts.append(f"{len(self._not_sent)} batches not sent")
        if self._rate_limit_status is not None:
            parts.append(f"rate limit: {self._rate_limit_status()}")
        self.log.info("Braze send %s: %s.", "finished" if final else "progress", "; ".join(parts))
