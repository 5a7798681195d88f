"""The batch delivery engine: send an audience's batches concurrently, exactly once across tries.

Braze has no idempotency key, so the only way not to send a batch twice across task retries is
to remember, durably and *before* sending, which batches may go out. The order of one try:

1. The audience was read once already (:mod:`.audience`): checked, de-duplicated, spooled and
   fingerprinted.
2. Every record of the send is read (:mod:`.checkpoint`). A record that exists but cannot be read
   stops the try. A completed send is returned as it is, if the audience is the same; a changed
   audience stops the try before anything is sent.
3. The try writes its own record (taking the send over from any older try still running), reads
   the others again, and merges them: a batch is *done* if any try confirmed it, *in doubt* if a
   try sent it without learning the outcome or reserved it without recording one, *not sent*
   otherwise.
4. Batches not done and not in doubt are sent, ``concurrency`` at a time. Before batch ``i`` goes
   out, this try's record says ``reserved_upto > i``; reservations are written ahead, by a
   writer thread, at most ``2 x concurrency`` batches past what was dispatched, so writing costs
   no waiting. After each write the writer lists the records: a newer try's record, or a done
   record, means this try was superseded, and it stops dispatching.
5. Outcomes: 2xx confirmed is *done*; 4xx refused, or 5xx / connection failures / 429 before
   Braze processed it, is *not sent* (the next try sends it); read timeouts, dropped
   connections, 504 and unreadable 2xx answers are *in doubt* and, unless ``at_least_once``,
   never resent. Many failures in a row (an outage longer than the retry budget) or a rate limit
   used up beyond the budget stop the send early; what was not sent is listed as not sent.
6. When every batch is done, a small done record replaces the try records, and the task's other
   runs that completed or were abandoned longer ago than the retention are pruned, each run's
   records together (see :mod:`airflow_provider_braze.delivery`, "The model").
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_braze._words import clip, plural
from airflow_provider_braze.delivery.checkpoint import (
    CHECKPOINT_FORMAT,
    DEFAULT_RETENTION,
    ERROR_CHARS,
    ERRORS_KEPT,
    Checkpoint,
    Loaded,
    Outcome,
    TryRecord,
    TryStats,
    utcnow,
)
from airflow_provider_braze.delivery.summary import SendSummary
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeCheckpointError,
    BrazeConfigurationError,
    BrazeDeliveryStoppedError,
    BrazeError,
    BrazeNotFoundError,
    BrazeRateLimitError,
    BrazeValidationError,
)
from airflow_provider_braze.identity import recipient_identity, recipient_key

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection, Hashable

    from airflow_provider_braze.delivery.audience import Audience

#: How many items of each list the summary keeps (it travels through XCom).
SUMMARY_LIST_LIMIT = 20
#: In-doubt batches whose recipients are listed in the summary (the task log names them all).
IN_DOUBT_DETAIL_LIMIT = SUMMARY_LIST_LIMIT
#: Index ranges kept in the summary's ``in_doubt_ranges`` and ``not_sent_ranges`` (the rest are
#: in the task log, and ``ranges_truncated`` says so).
RANGES_KEPT = 500
#: Most bytes one send writes to its checkpoint in all (invariant I5): reservations reach further
#: and saves come less often as a send's writes grow (see BatchDelivery._reach).
WRITE_BUDGET = 20 * 1024 * 1024
#: The states of a batch Braze may or may not have processed.
_IN_DOUBT = (Outcome.IN_DOUBT, Outcome.RESERVED)
#: Longest dispatch or schedule ID kept.
ID_CHARS = 100
#: How many times one try sends a batch whose outcome was unknown, with ``at_least_once=True``.
RESENDS_PER_TRY = 2
_RECIPIENTS_PER_DETAIL = 50
_RANK: dict[int, int] = {
    Outcome.NOT_TRIED: 0,
    Outcome.NOT_SENT: 1,
    Outcome.REFUSED: 1,
    Outcome.IN_DOUBT: 2,
    Outcome.RESERVED: 2,
    Outcome.DONE: 3,
}


def merge_outcomes(records: list[TryRecord], batch_count: int) -> bytearray:
    """One status per batch from every try's facts (see the module docstring, step 3): the most
    advanced outcome any try recorded; a batch a try reserved without recording an outcome (nor
    skipping it) is :attr:`Outcome.RESERVED`, in doubt."""
    view = bytearray(batch_count)
    for record in sorted(records, key=lambda r: r.order):
        outcomes = record.outcomes
        reserved = min(record.reserved_upto, batch_count)
        for index in range(batch_count):
            outcome = outcomes[index] if index < len(outcomes) else Outcome.NOT_TRIED
            if outcome == Outcome.SKIPPED:
                continue  # that try left it alone: its reservation says nothing of it
            if outcome == Outcome.NOT_TRIED:
                if index >= reserved:
                    continue
                outcome = Outcome.RESERVED  # reserved, and the try recorded nothing: it may have gone out
            if _RANK[outcome] >= _RANK[view[index]]:
                view[index] = outcome
    return view


class _CheckpointWriter:
    """Writes this try's record in the background and confirms reservations.

    A reservation counts only once the record holding it was written and a listing taken after
    the write showed no newer try and no done record: an older try cannot then send beyond what
    a newer try reads as reserved (the newer one writes its own record before reading others).
    """

    def __init__(self, checkpoint: Checkpoint, key: str, order: tuple[int, str, str]) -> None:
        self._checkpoint = checkpoint
        self._key = key
        self._order = order
        self._cond = threading.Condition()
        self._pending: tuple[int, dict[str, Any], int] | None = None
        self._closing = False
        self.confirmed_reservation = 0
        self.written_seq = 0
        self.error: BaseException | None = None
        self.superseded_by: str | None = None
        self.writes = 0
        self.bytes_written = 0
        #: How long a write (with its listing) takes, smoothed: how far ahead to reserve.
        self.write_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="braze-checkpoint", daemon=True)
        self._thread.start()

    def submit(self, seq: int, record: dict[str, Any], reservation: int) -> None:
        with self._cond:
            self._pending = (seq, record, reservation)
            self._cond.notify_all()

    def wait_written(self, seq: int, timeout: float | None = None) -> bool:
        """Wait until the record ``seq`` (or a later one) is written; False on error or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.written_seq < seq and self.error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self.written_seq >= seq

    def wait_change(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        first = True
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                seq, record, reservation = self._pending
                self._pending = None
            try:
                started = time.monotonic()
                size = self._checkpoint.store.write(self._key, record)
                newer: list[str] = []
                # A new reservation counts only after a listing shows no newer try; a save that
                # reserves nothing new needs no listing.
                finished: list[str] = []
                if first or reservation > self.confirmed_reservation:
                    keys = self._checkpoint.own_keys()
                    newer = [
                        k
                        for k in keys
                        if k != self._key
                        and ((order := Checkpoint.order_of(k)) is None or order > self._order)
                    ]
                    # A done or abandoned record: a newer try finished the send (and may have
                    # deleted this record since): superseded, not a store to distrust.
                    finished = [k for k in newer if Checkpoint.order_of(k) is None]
                    if self._key not in keys and not finished:
                        raise BrazeCheckpointError(
                            f"The {self._checkpoint.describe(self._key)} was written but a listing right "
                            "after does not show it, so the store cannot be trusted with this send."
                        )
                if first:
                    back = self._checkpoint.store.read(self._key)
                    if (back is None and not finished) or (back is not None and back.get("seq") != seq):
                        raise BrazeCheckpointError(
                            f"The {self._checkpoint.describe(self._key)} was written but reads back "
                            "differently, so the store cannot be trusted with this send."
                        )
                    first = False
                elapsed = time.monotonic() - started
            except BaseException as err:
                with self._cond:
                    self.error = err
                    self._cond.notify_all()
                return
            with self._cond:
                self.writes += 1
                self.bytes_written += size
                self.write_seconds = elapsed if self.writes == 1 else 0.7 * self.write_seconds + 0.3 * elapsed
                self.written_seq = max(self.written_seq, seq)
                if newer and self.superseded_by is None:
                    self.superseded_by = newer[0]
                if self.superseded_by is None:
                    self.confirmed_reservation = max(self.confirmed_reservation, reservation)
                self._cond.notify_all()


class BatchDelivery:
    """Send an audience's batches concurrently, exactly once across task tries (see the module).

    :param send_batch: Sends one batch (a list of recipients, empty for a broadcast) and returns
        Braze's answer; raises the hook's errors.
    :param audience: The recipients, read and checked (:func:`~.audience.read_audience`).
    :param checkpoint: Where this send's records are kept.
    :param identity: What every record of this send must agree on (endpoint, campaign, ...).
    :param log: The task's logger.
    :param concurrency: Batches in flight at once (1 to 32).
    :param at_least_once: Resend batches in doubt (Braze may or may not have processed them)
        instead of reporting them.
    :param try_number: This try's number (Airflow's ``ti.try_number``); newer tries own the send.
    :param run_after: When the DAG run was due; with ``retention``, decides whether a retry that
        finds no checkpoint can prove that earlier tries sent nothing.
    :param retention: How long records are kept (None: forever); older ones of the task's other
        runs are pruned when a send completes.
    :param progress_interval: Seconds between progress lines in the log.
    :param save_interval: Most seconds between checkpoint writes while outcomes come in.
    :param max_refused_batches: Stop sending after Braze refuses (4xx) more than this many batches.
    :param outage_batches: Stop sending after this many batches in a row failed or ended in doubt
        (default ``max(4, 2 x concurrency)``): Braze or the network is down beyond the retry budget.
    :param rate_limit_status: Returns a text on the rate-limit headroom, for progress lines.
    :param redact: Applied to every text this engine keeps or shows (error messages, Braze's
        non-fatal errors): removes the API key.
    :param excluded: Identities (:func:`~airflow_provider_braze.identity.recipient_identity`)
        left out of every batch this try sends: the recovery for recipients Braze refuses,
        without changing the send's recipients (a batch Braze refused sent nothing, so the rest
        of it is then sent once).
    """

    def __init__(
        self,
        *,
        send_batch: Callable[[list[Any]], dict[str, Any]],
        audience: Audience,
        checkpoint: Checkpoint,
        identity: dict[str, Any],
        log: logging.Logger | Any,
        concurrency: int = 4,
        at_least_once: bool = False,
        try_number: int = 1,
        run_after: datetime | None = None,
        retention: timedelta | None = DEFAULT_RETENTION,
        progress_interval: float = 30.0,
        save_interval: float = 2.0,
        max_refused_batches: int = 10,
        outage_batches: int | None = None,
        rate_limit_status: Callable[[], str] | None = None,
        redact: Callable[[Any], Any] | None = None,
        excluded: Collection[Hashable] = frozenset(),
    ) -> None:
        check_delivery_options(concurrency, progress_interval, max_refused_batches)
        if retention is not None and retention < timedelta(days=2):
            raise BrazeValidationError(
                "checkpoint_retention must be at least 2 days, or None to keep forever."
            )
        self._send_batch = send_batch
        self.audience = audience
        self.checkpoint = checkpoint
        self._identity = identity
        self.log = log
        self._concurrency = concurrency
        self._at_least_once = at_least_once
        self._try_number = max(1, int(try_number))
        self._run_after = run_after
        self._retention = retention
        self._progress_interval = progress_interval
        self._save_interval = save_interval
        self._max_refused = max_refused_batches
        self._outage_batches = outage_batches or max(4, 2 * concurrency)
        self._rate_limit_status = rate_limit_status
        self._redact = redact or (lambda value: value)
        self._excluded = frozenset(excluded)
        #: Recipients left out of each batch this try dispatched.
        self._left_out: dict[int, int] = {}
        self._stop = threading.Event()
        #: The error that stopped the send (auth, too many refusals...); set by the coordinator.
        self._abort: BaseException | None = None
        #: Why the send stopped early without an error of its own (outage, rate limit).
        self._stopped_early: str | None = None
        self._writer: _CheckpointWriter | None = None
        self._own: TryRecord | None = None
        self._others: list[TryRecord] = []
        self._view = bytearray()
        self._done_summary: SendSummary | None = None
        self._counts = {
            "skipped": 0,
            "skipped_batches": 0,
            "sent_batches": 0,
            "refused_now": 0,
            "failures_in_a_row": 0,
        }
        self._doubt_recipients: dict[int, list[str]] = {}
        self._doubt_logged: set[int] = set()
        self._doubt_reasons: dict[int, str] = {}
        #: Batches whose outcome was unknown, to send again in this try (``at_least_once``).
        self._resend: deque[tuple[int, list[Any]]] = deque()
        self._resends: Counter[int] = Counter()
        self._dispatched_upto = 0
        self._started = time.monotonic()
        self._last_progress = self._started
        self._last_submit = self._started
        self._dirty = False
        #: The summary of the last run, whatever way it ended (the operator pushes it to XCom).
        self.result: SendSummary | None = None

    def stop(self) -> None:
        """Stop dispatching batches (from ``on_kill``); in-flight batches finish and are recorded."""
        self._stop.set()

    @property
    def bytes_written(self) -> int:
        """Bytes this try wrote to its checkpoint record (for benchmarks and tests)."""
        return self._writer.bytes_written if self._writer else 0

    # ------------------------------------------------------------------ the run

    def run(self) -> SendSummary:
        """Send what is left to send; return the summary (also kept as :attr:`result`).

        :raises BrazeCheckpointError: the checkpoint cannot be read or written, or cannot prove a
            retry safe; nothing more was sent.
        :raises BrazeValidationError: the recipients or the send changed since an earlier try.
        :raises BrazeDeliveryStoppedError: stopped by ``on_kill`` or superseded by a newer try.
        """
        try:
            summary = self._run()
        except BaseException as err:
            self.result = self._safe_summary(error=err)
            raise
        self.result = summary
        return summary

    def plan(self) -> dict[str, Any]:
        """What :meth:`run` would do now, found the way it finds it, with nothing written and
        nothing sent: the same checks of the checkpoint against this send (the arguments, the
        recipients, a safe fresh start), then the batches it would send.

        :return: ``already_complete``, ``earlier_tries``, ``to_send`` (batch indexes, in order),
            ``done`` (batches confirmed earlier) and ``in_doubt`` (batches an earlier try may have
            sent, which are not resent unless ``at_least_once``).
        :raises BrazeValidationError: or :class:`BrazeCheckpointError`, as :meth:`run` would.
        """
        loaded = self._load_checked()
        batch_count = self.audience.batch_count
        if loaded.done is not None:
            return {
                "already_complete": True,
                "earlier_tries": len(loaded.tries),
                "to_send": [],
                "done": batch_count,
                "in_doubt": 0,
            }
        view = merge_outcomes(loaded.tries, batch_count)
        doubtful = [i for i in range(batch_count) if view[i] in _IN_DOUBT]
        to_send = [
            i
            for i in range(batch_count)
            if view[i] != Outcome.DONE and (self._at_least_once or i not in set(doubtful))
        ]
        return {
            "already_complete": False,
            "earlier_tries": len(loaded.tries),
            "to_send": to_send,
            "done": view.count(Outcome.DONE),
            "in_doubt": 0 if self._at_least_once else len(doubtful),
        }

    def _load_checked(self) -> Loaded:
        """This send's records, checked against it before anything is sent: the same arguments,
        and (a completed send aside) the same recipients, or a fresh start that is safe."""
        loaded = self.checkpoint.load()
        if loaded.abandoned is not None:
            raise self._abandoned(loaded)
        for record in loaded.tries:
            self._check_same_send(record.send, record.key)
        if loaded.done is not None:
            self._check_done_matches(loaded.done, loaded.done_key or "")
            return loaded
        for record in loaded.tries:
            self._check_same_audience(record)
        if not loaded.tries:
            self._check_fresh_start_is_safe()
        return loaded

    def _abandoned(self, loaded: Loaded) -> BrazeCheckpointError:
        """The refusal of a try of an abandoned send. It names, from the records of the send's
        tries, the batches not delivered (the last try may have been killed and named nobody);
        its summary counts them too, unless a record belongs to other arguments or recipients."""
        assert loaded.abandoned is not None
        text = (
            f"This send was abandoned on {loaded.abandoned.get('at')} "
            f"({self.checkpoint.describe(loaded.abandoned_key)}): nothing is sent any more."
        )
        try:
            for record in loaded.tries:
                self._check_same_send(record.send, record.key)
                self._check_same_audience(record)
        except BrazeValidationError as err:
            text += f" What its tries sent cannot be told for these recipients: {err}"
        else:
            if loaded.tries:
                self._others = list(loaded.tries)
                self._view = merge_outcomes(self._others, self.audience.batch_count)
                doubt = [i for i, s in enumerate(self._view) if s in _IN_DOUBT]
                failed = [i for i, s in enumerate(self._view) if s not in _IN_DOUBT and s != Outcome.DONE]
                text += (
                    f" Its tries left {plural(len(doubt), 'batch', 'batches')} in doubt "
                    f"{_shown_ranges(doubt)} and {plural(len(failed), 'batch', 'batches')} not sent "
                    f"{_shown_ranges(failed)} (batch i holds recipients 50 i + 1 to 50 (i + 1), in the "
                    "order read; the summary has the ranges)."
                )
        return BrazeCheckpointError(f"{text} Mark the task as successful or failed.")

    def _run(self) -> SendSummary:
        loaded = self._load_checked()
        if loaded.done is not None:
            return self._already_complete(loaded.done, loaded.done_key or "", loaded.try_keys)
        started = utcnow()
        stamp = started.strftime("%Y%m%dT%H%M%S%f")
        token = secrets.token_hex(4)
        batch_count = self.audience.batch_count
        self._own = own = TryRecord(
            key=self.checkpoint.try_key(self._try_number, stamp, token),
            try_number=self._try_number,
            started=stamp,
            token=token,
            send=self._identity,
            audience=self.audience.fingerprint(),
            outcomes=bytearray(batch_count),
        )
        newer = [r for r in loaded.tries if r.order > own.order]
        if newer:
            raise BrazeDeliveryStoppedError(
                f"A newer try of this task (try {newer[-1].try_number}) already owns this send "
                f"({self.checkpoint.describe(newer[-1].key)}); this try sends nothing."
            )
        self._writer = _CheckpointWriter(self.checkpoint, own.key, own.order)
        try:
            # Take the send over, then read the others again: whatever an older try reserved
            # before it could see this record is in what we read now.
            self._submit()
            if not self._writer.wait_written(own.seq):
                raise self._writer.error or BrazeCheckpointError("The checkpoint could not be written.")
            again = self.checkpoint.load()
            if again.done is not None:  # another try completed the send meanwhile
                self._delete_quietly(own.key)
                self._check_done_matches(again.done, again.done_key or "")
                return self._already_complete(again.done, again.done_key or "", [])
            self._others = [r for r in again.tries if r.key != own.key]
            for record in self._others:
                self._check_same_send(record.send, record.key)
                self._check_same_audience(record)
            self._view = merge_outcomes(self._others, batch_count)
            if self._others:
                self._log_resume()
            self._send_all()
            return self._finish()
        finally:
            self._writer.close()

    # ------------------------------------------------------------------ before sending

    def _check_same_send(self, send: dict[str, Any], key: str) -> None:
        if send != self._identity:
            raise BrazeValidationError(
                f"The {self.checkpoint.describe(key)} belongs to a different send ({send!r}; this task "
                f"sends {self._identity!r}): the operator's arguments changed since an earlier try. "
                "Nothing was sent. Restore them and clear the task. (A new DAG run would be a new "
                "send, to everyone in it, including those this run already reached.)"
            )

    def _check_same_audience(self, record: TryRecord) -> None:
        difference = self.audience.difference(record.audience)
        if difference is not None:
            raise BrazeValidationError(
                f"The recipients changed since try {record.try_number} of this send: {difference}. "
                "Resuming would send to the wrong people, so nothing was sent. Restore the "
                "recipients that try read and clear the task; to leave some of them out, keep them "
                "in recipients and pass them in exclude_recipients. (A new DAG run would be a new "
                "send, to everyone in it, including those this run already reached.)"
            )

    def _check_done_matches(self, done: dict[str, Any], key: str) -> None:
        self._check_same_send(done.get("send") or {}, key)
        difference = self.audience.difference(done.get("audience") or {})
        if difference is not None:
            raise BrazeValidationError(
                f"This send already completed ({self.checkpoint.describe(key)}, "
                f"{done.get('completed_at')}), and the recipients differ from the ones it sent to: "
                f"{difference}. Nothing was sent. To message other people, trigger a new DAG run "
                "whose recipients are only those people (everyone in a new run gets the message)."
            )

    def _already_complete(self, done: dict[str, Any], key: str, stray_tries: list[str]) -> SendSummary:
        """A completed send, already checked against this one (:meth:`_check_done_matches`)."""
        for stray in stray_tries:  # left by a try that completed but died before cleaning up
            self._delete_quietly(stray)
        self.log.info(
            "This send already completed (%s); nothing is sent again.", self.checkpoint.describe(key)
        )
        self._done_summary = SendSummary.from_json(done.get("summary") or {}).but(already_complete=True)
        return self._done_summary

    def _check_fresh_start_is_safe(self) -> None:
        """No record at all. Every try writes its record before its first request, so earlier
        tries of this run sent nothing, unless the records were pruned, which happens only to
        records older than the retention."""
        if self._try_number <= 1:
            return
        missing = self.checkpoint.store.missing_location()
        if missing is not None:
            raise BrazeCheckpointError(
                f"Try {self._try_number} found no checkpoint because {missing}. Earlier tries wrote "
                "their records there before sending, so it may be unmounted, or this worker may not "
                "reach the folder they used: nothing was sent. Make that folder, with its records, "
                "reachable at the same path on every worker and clear the task. (Pointing checkpoint "
                "elsewhere for this run would forget what its earlier tries sent.)"
            )
        if self._run_after is not None:
            run_after = (
                self._run_after if self._run_after.tzinfo else self._run_after.replace(tzinfo=timezone.utc)
            )
            self._refuse_if_pruned(run_after)
        self.log.info(
            "Try %d found no checkpoint for this send in %s: earlier tries sent nothing (each writes "
            "its checkpoint before its first request).",
            self._try_number,
            self.checkpoint.describe(),
        )

    def _refuse_if_pruned(self, run_after: datetime) -> None:
        """A run that may be one whose records were pruned is refused: one older than the
        retention, or due on or before the newest day this task pruned (whatever the retention
        is now: raised, or None, since)."""
        why = None
        if self._retention is not None and run_after < utcnow() - self._retention + timedelta(days=1):
            why = f"older than the checkpoint_retention ({self._retention.days} days)"
        else:
            pruned_through = self.checkpoint.pruned_through()
            if pruned_through is not None and run_after.date() <= pruned_through:
                why = (
                    f"due on or before {pruned_through:%Y-%m-%d}, the newest day of a run of this task "
                    "whose records were pruned (whatever checkpoint_retention says now)"
                )
        if why is None:
            return
        raise BrazeCheckpointError(
            f"Try {self._try_number} of a DAG run due {run_after:%Y-%m-%d} found no checkpoint "
            f"for this send in {self.checkpoint.describe()}. A send's records are pruned only "
            f"once it completed or was abandoned, and this run is {why}, so this send completed or "
            "was abandoned (or its records were deleted by hand): earlier tries may have sent to "
            "every recipient. Nothing was sent. Check in Braze who received it, then mark the task "
            "as successful or failed."
        )

    def _log_resume(self) -> None:
        view = self._view
        self.log.info(
            "Resuming the send from %d earlier tr%s: %d batches done, %d in doubt, %d to send.",
            len(self._others),
            "y" if len(self._others) == 1 else "ies",
            view.count(Outcome.DONE),
            sum(view.count(state) for state in _IN_DOUBT),
            len(view) - view.count(Outcome.DONE) - sum(view.count(state) for state in _IN_DOUBT),
        )

    # ------------------------------------------------------------------ sending

    def _halted(self) -> bool:
        writer = self._writer
        return (
            self._abort is not None
            or self._stop.is_set()
            or self._stopped_early is not None
            or (writer is not None and (writer.error is not None or writer.superseded_by is not None))
        )

    def _send_all(self) -> None:
        own = self._own
        assert own is not None
        batch_count = len(self._view)
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="braze-send")
        in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]] = {}
        batches = self.audience.batches()
        try:
            for index, batch in enumerate(batches):
                if index >= batch_count:  # the spool cannot change; this would be a bug
                    raise BrazeError(f"The audience yielded more batches than its {batch_count}.")
                status = self._view[index]
                if status == Outcome.DONE:
                    own.outcomes[index] = Outcome.SKIPPED
                    self._counts["skipped"] += len(batch)
                    self._counts["skipped_batches"] += 1
                    continue
                if status in _IN_DOUBT and not self._at_least_once:
                    # Recorded as skipped, so this try's reservation never puts it in doubt.
                    own.outcomes[index] = Outcome.SKIPPED
                    self._note_doubt(index, batch, "an earlier try sent it, or may have; not resent")
                    continue
                self._drain_resends(pool, in_flight)
                if not self._dispatch(pool, in_flight, index, batch, resend=status in _IN_DOUBT):
                    break
            while in_flight or (self._resend and not self._halted()):
                self._drain_resends(pool, in_flight)
                self._collect(in_flight, block=True)
            for index, batch in self._resend:  # halted before they could be sent again
                self._note_doubt(index, batch, "in doubt, and the send stopped before resending it")
        except BaseException:
            self._stop.set()
            while in_flight:
                self._collect(in_flight, block=True)
            self._settle_quietly()
            raise
        finally:
            batches.close()  # the spool file, when the loop stopped early
            pool.shutdown(wait=True)

    def _dispatch(
        self,
        pool: ThreadPoolExecutor,
        in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]],
        index: int,
        batch: list[Any],
        *,
        resend: bool,
    ) -> bool:
        """Send one batch once a slot is free and its reservation is written; False if halted."""
        own = self._own
        assert own is not None
        if self._excluded and batch:
            kept = [r for r in batch if recipient_identity(r) not in self._excluded]
            if len(kept) < len(batch):
                self._left_out[index] = len(batch) - len(kept)
                batch = kept
                if not batch:  # everyone in it is left out: nothing to send, nothing in doubt
                    own.outcomes[index] = Outcome.DONE
                    own.stats.excluded += self._left_out[index]
                    self._dirty = True
                    return True
        while len(in_flight) >= self._concurrency and not self._halted():
            self._collect(in_flight, block=True)
        if self._halted():
            return False
        self._reserve(index, in_flight)
        if self._halted():
            return False
        if resend:
            own.stats.resent_in_doubt += len(batch)
            self.log.warning("Resending batch %d, whose outcome was unknown (at_least_once=True).", index)
        in_flight[pool.submit(self._attempt, batch)] = (index, batch)
        self._dispatched_upto = max(self._dispatched_upto, index + 1)
        self._counts["sent_batches"] += 1
        self._collect(in_flight, block=False)
        return True

    def _drain_resends(
        self, pool: ThreadPoolExecutor, in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]]
    ) -> None:
        while self._resend and not self._halted():
            index, batch = self._resend.popleft()
            if not self._dispatch(pool, in_flight, index, batch, resend=True):
                return

    def _reserve(self, index: int, in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]]) -> None:
        """Make sure batch ``index`` is covered by a written reservation; extend it ahead of time.

        A reservation reaches ``2 x concurrency`` batches past the one being dispatched (more for
        a send so large that its writes would otherwise pass half of :data:`WRITE_BUDGET`, see
        :meth:`_reach`). It is extended early enough for the write to finish before it is needed
        (``lead`` batches before its end, from the measured write time and dispatch rate), and no
        earlier, so each write covers as many batches as it can.
        """
        own = self._own
        writer = self._writer
        assert own is not None
        assert writer is not None
        batch_count = len(self._view)
        elapsed = max(time.monotonic() - self._started, 1e-3)
        rate = self._counts["sent_batches"] / elapsed
        lead = self._concurrency
        if writer.writes >= 2 and rate > 0:
            lead = min(self._concurrency, max(1, math.ceil(writer.write_seconds * rate * 1.5) + 1))
        if own.reserved_upto - index <= lead and own.reserved_upto < batch_count:
            own.reserved_upto = min(batch_count, index + self._reach())
            self._submit()
        while writer.confirmed_reservation <= index and not self._halted():
            self._collect(in_flight, block=False)
            writer.wait_change(0.05)

    def _reach(self) -> int:
        """How far past the batch being dispatched a reservation reaches: ``2 x concurrency``, or
        far enough that the reservation writes of the whole send stay under half of
        :data:`WRITE_BUDGET` at the size records have (a few KB: only sends of millions reach
        further). A kill puts at most this many batches, plus those in flight, in doubt."""
        writer = self._writer
        assert writer is not None
        size = writer.bytes_written / writer.writes if writer.writes else 0
        step = math.ceil(len(self._view) * size / (WRITE_BUDGET / 2))
        return max(2 * self._concurrency, self._concurrency + step)

    def _attempt(self, batch: list[Any]) -> tuple[str, Any]:
        """Runs in a worker thread: send one batch, classify the outcome."""
        try:
            return "done", self._send_batch(batch)
        except BrazeAmbiguousRequestError as err:  # includes a 2xx whose body cannot be read
            return "in_doubt", err
        except BrazeRateLimitError as err:  # 429: Braze processed nothing; the hook waited what it could
            return "rate_limited", err
        except (BrazeAuthError, BrazeNotFoundError, BrazeValidationError, BrazeConfigurationError) as err:
            return "abort", err
        except BrazeBadRequestError as err:
            return "refused", err
        except BrazeError as err:  # 5xx after retries, connection failures before sending
            return "not_sent", err
        except Exception as err:
            # Not one of the hook's errors: nothing says whether the request went out, so the
            # batch is in doubt (never resent by a retry), and the send stops.
            return "in_doubt_abort", err

    def _collect(
        self, in_flight: dict[Future[tuple[str, Any]], tuple[int, list[Any]]], *, block: bool
    ) -> None:
        if block and in_flight:
            done, _ = wait(in_flight, timeout=min(self._progress_interval, 1.0), return_when=FIRST_COMPLETED)
        else:
            done = {f for f in in_flight if f.done()}
        for future in done:
            index, batch = in_flight.pop(future)
            outcome, value = future.result()
            self._record(index, batch, outcome, value)
        now = time.monotonic()
        # Saves slow down as the send's writes grow, so that they stay within WRITE_BUDGET.
        interval = self._save_interval * (1 + 4 * self.bytes_written // WRITE_BUDGET)
        if self._dirty and now - self._last_submit >= interval:
            self._submit()
        if now - self._last_progress >= self._progress_interval:
            self._log_progress()

    def _record(self, index: int, batch: list[Any], outcome: str, value: Any) -> None:
        own = self._own
        assert own is not None
        self._dirty = True
        was_unknown = own.outcomes[index] == Outcome.IN_DOUBT
        if outcome == "done":
            own.outcomes[index] = Outcome.DONE
            own.stats.accepted += len(batch)
            own.stats.excluded += self._left_out.get(index, 0)
            self._counts["failures_in_a_row"] = 0
            self._note_answer(value)
            return
        text = str(self._redact(str(value)))
        status_code = getattr(value, "status_code", None)
        if outcome == "in_doubt_abort":
            own.outcomes[index] = Outcome.IN_DOUBT
            self._note_doubt(index, batch, f"{type(value).__name__}: {clip(text, 200)}")
            if self._abort is None:
                self._abort = value if isinstance(value, BaseException) else BrazeError(text)
                self._stopped_early = f"{type(value).__name__}: {clip(text, 300)}"
            self.log.error("Stopping the send: batch %d ended in an unexpected error: %s", index, text)
        elif outcome == "in_doubt":
            own.outcomes[index] = Outcome.IN_DOUBT
            if self._at_least_once and self._resends[index] < RESENDS_PER_TRY:
                self._resends[index] += 1
                self._resend.append((index, batch))
                self.log.error("Batch %d: in doubt; sending it again (at_least_once=True): %s", index, text)
            else:
                self.log.error("Batch %d: in doubt, not resent: %s", index, text)
                self._note_doubt(index, batch, clip(text, 200))
        elif outcome == "refused":
            own.outcomes[index] = Outcome.REFUSED
            self._counts["refused_now"] += 1
            self.log.error("Batch %d was refused by Braze: %s", index, text)
            if self._counts["refused_now"] > self._max_refused and self._abort is None:
                self._abort = BrazeBadRequestError(
                    f"Braze refused more than {self._max_refused} batches; stopped sending. Last: {text}"
                )
                self._stopped_early = (
                    f"Braze refused more than {self._max_refused} batches (last: {clip(text, 200)})"
                )
        elif outcome == "abort":
            own.outcomes[index] = Outcome.NOT_SENT
            if self._abort is None:
                self._abort = value if isinstance(value, BaseException) else BrazeError(text)
                self._stopped_early = f"{type(value).__name__}: {clip(text, 300)}"
            self.log.error("Stopping the send: %s", text)
        else:  # not_sent, rate_limited
            own.outcomes[index] = Outcome.NOT_SENT
            self.log.error("Batch %d was not sent (a retry of the task sends it): %s", index, text)
            if outcome == "rate_limited" and self._stopped_early is None:
                reset = getattr(value, "reset_at", None)
                self._stopped_early = (
                    "Braze's rate limit was still used up"
                    + (f" (it resets at {reset:%Y-%m-%d %H:%M:%S} UTC)" if reset else "")
                    + " when the connection's retries (max_retries, retry_budget) ran out, so the send "
                    "stopped early"
                )
        if was_unknown and own.outcomes[index] != Outcome.IN_DOUBT:
            # A resend (at_least_once) that failed says nothing about the first request, which
            # may have gone through: the batch stays in doubt, never resent by a plain retry.
            own.outcomes[index] = Outcome.IN_DOUBT
            self._note_doubt(index, batch, f"in doubt; sending it again failed too: {clip(text, 200)}")
        if outcome != "refused":
            self._counts["failures_in_a_row"] += 1
            if self._counts["failures_in_a_row"] >= self._outage_batches and self._stopped_early is None:
                self._stopped_early = (
                    f"{self._counts['failures_in_a_row']} batches in a row failed or ended in doubt "
                    f"(last: {clip(text, 200)}); Braze or the network seems down for longer than the retry "
                    "budget, so the send stopped early"
                )
        if len(own.errors) < ERRORS_KEPT:
            own.errors.append(
                {"batch": index, "outcome": outcome, "status_code": status_code, "error": text[:ERROR_CHARS]}
            )

    def _note_answer(self, answer: dict[str, Any]) -> None:
        if self._own is None:
            return
        stats = self._own.stats
        if answer.get("dispatch_id"):
            stats.dispatch_count += 1
            if len(stats.dispatch_ids) < SUMMARY_LIST_LIMIT:
                stats.dispatch_ids.append(clip(str(self._redact(str(answer["dispatch_id"]))), ID_CHARS))
        if answer.get("schedule_id") and len(stats.schedule_ids) < SUMMARY_LIST_LIMIT:
            stats.schedule_ids.append(clip(str(self._redact(str(answer["schedule_id"]))), ID_CHARS))
        errors = answer.get("errors")
        if errors:
            stats.batches_with_non_fatal_errors += 1
            for error in errors if isinstance(errors, list) else [errors]:
                if len(stats.non_fatal_errors) < SUMMARY_LIST_LIMIT:
                    stats.non_fatal_errors.append(bounded_error(self._redact(error)))

    def _note_doubt(self, index: int, batch: list[Any], reason: str | None = None) -> None:
        """Name the recipients of a batch in doubt: in the log always, in the summary for 20."""
        keys = [str(self._redact(recipient_key(r))) for r in batch]
        if index not in self._doubt_recipients and len(self._doubt_recipients) < SUMMARY_LIST_LIMIT:
            # Cut in the summary (the log names them whole): IDs of any length keep it small.
            self._doubt_recipients[index] = [clip(key, ID_CHARS) for key in keys]
        if reason and index in self._doubt_recipients:
            self._doubt_reasons.setdefault(index, reason)
        if index in self._doubt_logged:
            return
        self._doubt_logged.add(index)
        if self.audience.broadcast:
            self.log.error("In doubt: the broadcast request%s.", f" ({reason})" if reason else "")
        else:
            self.log.error(
                "In doubt: batch %d%s: %s", index, f" ({reason})" if reason else "", ", ".join(keys)
            )

    # ------------------------------------------------------------------ the checkpoint

    def _submit(self) -> None:
        own = self._own
        assert own is not None
        assert self._writer is not None
        own.seq += 1
        own.updated_at = utcnow().isoformat(timespec="seconds")
        self._writer.submit(own.seq, own.to_json(), own.reserved_upto)
        self._last_submit = time.monotonic()
        self._dirty = False

    def _settle(self, state: str) -> None:
        """Nothing is in flight: shrink the reservation to what was dispatched and write it."""
        own = self._own
        assert own is not None
        assert self._writer is not None
        own.reserved_upto = min(own.reserved_upto, self._dispatched_upto)
        own.state = state
        self._submit()
        if not self._writer.wait_written(own.seq):
            raise self._writer.error or BrazeCheckpointError("The checkpoint could not be written.")

    def _settle_quietly(self) -> None:
        try:
            self._settle("stopped")
        except Exception as err:  # keep the original error; say what could not be kept
            self.log.error(
                "Could not save the send's progress (%s); batches sent since the last save are "
                "treated as in doubt by the next try.",
                self._redact(str(err)),
            )

    def _finish(self) -> SendSummary:
        own = self._own
        writer = self._writer
        assert own is not None
        assert writer is not None
        if writer.error is not None:
            # The writer stopped at its first failure; one last direct attempt keeps the outcomes
            # of the batches that were in flight, if the store is back.
            try:
                own.reserved_upto = min(own.reserved_upto, self._dispatched_upto)  # nothing in flight
                own.state = "stopped"
                self.checkpoint.store.write(own.key, own.to_json())
            except BrazeError:
                self.log.error(
                    "Could not save the send's progress; batches sent since the last save are "
                    "treated as in doubt by the next try."
                )
            raise writer.error
        superseded = writer.superseded_by
        self._settle(
            "superseded" if superseded else "stopped" if self._stop.is_set() or self._abort else "ended"
        )
        if superseded is None:
            # Older tries may have recorded outcomes since we read them.
            loaded = self.checkpoint.load()
            newer = [r.key for r in loaded.tries if r.order > own.order]
            if loaded.done is not None or newer:
                superseded = loaded.done_key or newer[0]
            self._others = [r for r in loaded.tries if r.key != own.key]
        view = merge_outcomes([*self._others, own], len(self._view))
        self._view = view
        summary = self.summary()
        self._log_progress(final=True)
        self._log_doubt(view)
        if self._abort is not None:
            raise self._abort
        if superseded is not None:
            self._stopped_early = self._stopped_early or "a newer try of this task took over the send"
            raise BrazeDeliveryStoppedError(
                f"A newer try of this task took over the send ({self.checkpoint.describe(superseded)}); "
                "this try stopped dispatching. Batches it had in flight are recorded in its own record.",
                summary=summary.to_json(),
            )
        if self._stop.is_set():
            self._stopped_early = self._stopped_early or "the task was stopped (on_kill: killed or timed out)"
            raise BrazeDeliveryStoppedError(
                f"The send was stopped; progress is kept in {self.checkpoint.describe()} and a retry "
                "resumes after the last confirmed batch.",
                summary=summary.to_json(),
            )
        if summary["complete"]:
            self._complete(summary)
        return summary

    def _complete(self, summary: SendSummary) -> None:
        own = self._own
        assert own is not None
        now = utcnow()
        done_key = self.checkpoint.done_key(now.date())
        self.checkpoint.store.write(
            done_key,
            {
                "format": CHECKPOINT_FORMAT,
                "kind": "done",
                "send": self._identity,
                "audience": self.audience.fingerprint(with_marks=False),
                "completed_at": now.isoformat(timespec="seconds"),
                # A later run with a shorter retention still keeps this one as long as this says.
                "retention_seconds": None if self._retention is None else self._retention.total_seconds(),
                "summary": summary.to_json(),
            },
        )
        for key in {own.key, *(r.key for r in self._others)}:
            self._delete_quietly(key)
        self._remove_probe()
        self.checkpoint.store.remove_leftovers(f"{self.checkpoint.name}__")
        if self._retention is not None:
            try:
                pruned = self.checkpoint.prune(self._retention, now.date())
            except BrazeError as err:
                self.log.warning("Could not prune old send checkpoints: %s", err)
            else:
                if pruned:
                    self.log.info(
                        "Pruned the checkpoint records of %s of this task that completed or were "
                        "abandoned more than %d days ago.",
                        plural(len(pruned), "run", "runs"),
                        self._retention.days,
                    )
                self._warn_stale_incomplete(now)

    def _warn_stale_incomplete(self, now: datetime) -> None:
        """Incomplete sends are never pruned (a retry must find what was sent): say so when some
        are older than the retention, so that they are completed or abandoned on purpose."""
        assert self._retention is not None
        try:
            stale = self.checkpoint.stale_incomplete_runs(self._retention, now.date())
        except BrazeError:
            return
        if stale:
            self.log.warning(
                "%s of this task %s an incomplete send older than %d days (%s); their checkpoint "
                "records are kept until the send completes or is abandoned with "
                "airflow_provider_braze.delivery.abandon_send(dag_id, task_id, run_id, map_index, "
                "checkpoint=..., checkpoint_retention=...), given this task's own two arguments.",
                plural(len(stale), "run", "runs"),
                "has" if len(stale) == 1 else "have",
                self._retention.days,
                ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else ""),
            )

    def _remove_probe(self) -> None:
        """Remove the probe a rehearsal of this run left when it was killed mid-check, so that no
        key of a completed run outlives its pruning."""
        probe = self.checkpoint.probe_key
        try:
            left = probe in self.checkpoint.store.keys(probe)
        except BrazeError as err:
            self.log.warning("Could not look for %s: %s", self.checkpoint.describe(probe), err)
            return
        if left:
            self._delete_quietly(probe)

    def _delete_quietly(self, key: str) -> None:
        try:
            self.checkpoint.store.delete(key)
        except BrazeError as err:
            self.log.warning("Could not delete %s: %s", self.checkpoint.describe(key), err)

    # ------------------------------------------------------------------ reporting

    def _all_stats(self) -> list[TryStats]:
        return [r.stats for r in self._records()]

    def summary(self) -> SendSummary:
        """What happened, small enough for XCom (from every try's records)."""
        if self._done_summary is not None:
            return self._done_summary
        audience = self.audience
        view = self._view if self._view else bytearray(audience.batch_count)
        own = self._own
        if own is not None:
            view = merge_outcomes([*self._others, own], audience.batch_count)
        doubt = [i for i, s in enumerate(view) if s in _IN_DOUBT]
        failed = [
            i for i, s in enumerate(view) if s in (Outcome.NOT_SENT, Outcome.REFUSED, Outcome.NOT_TRIED)
        ]
        refused = [i for i, s in enumerate(view) if s == Outcome.REFUSED]
        done = [i for i, s in enumerate(view) if s == Outcome.DONE]
        stats = self._all_stats()

        def gathered(name: str) -> list[Any]:
            return [item for s in stats for item in getattr(s, name)][:SUMMARY_LIST_LIMIT]

        def total(name: str) -> int:
            return sum(int(getattr(s, name)) for s in stats)

        return SendSummary.unknown(
            self._identity, error=None, try_number=self._try_number, checkpoint=self.checkpoint.describe()
        ).but(
            **audience_counts(audience),
            complete=(bool(view) and not doubt and not failed) or (not view and own is not None),
            duplicates_skipped=audience.duplicates if audience.deduplicate else 0,
            accepted=audience.recipients_in(done) - total("excluded"),
            accepted_batches=len(done),
            excluded=total("excluded"),
            in_doubt=audience.recipients_in(doubt),
            in_doubt_batches=len(doubt),
            in_doubt_details=[self._doubt_detail(i) for i in doubt[:SUMMARY_LIST_LIMIT]],
            # Every batch in doubt or not sent, as [first, last + 1) ranges of batch numbers;
            # batch i holds recipients 50 i + 1 to 50 (i + 1) of the send, in the order read.
            in_doubt_ranges=_ranges(doubt),
            not_sent=audience.recipients_in(failed),
            refused=audience.recipients_in(refused),
            not_sent_details=[self._failure_detail(i, view[i]) for i in failed[:SUMMARY_LIST_LIMIT]],
            not_sent_ranges=_ranges(failed),
            not_sent_batches=len(failed),
            ranges_truncated=len(_ranges(doubt)) == RANGES_KEPT or len(_ranges(failed)) == RANGES_KEPT,
            resent_in_doubt=total("resent_in_doubt"),
            skipped_already_sent=self._counts["skipped"],
            non_fatal_errors=gathered("non_fatal_errors"),
            batches_with_non_fatal_errors=total("batches_with_non_fatal_errors"),
            dispatch_ids=gathered("dispatch_ids"),
            dispatch_count=total("dispatch_count"),
            schedule_ids=gathered("schedule_ids"),
            stopped_early=self._stopped_early,
            tries=len(stats),
        )

    def _safe_summary(self, *, error: BaseException) -> SendSummary:
        """The summary after a failure, with the error; never raises.

        A try that stopped before it took the send over (bad or changed input, a checkpoint it
        could not read or trust) knows nothing reliable about what earlier tries did: its counts
        are None, and the earlier tries' own summaries and logs say what they did.
        """
        text = clip(str(self._redact(f"{type(error).__name__}: {error}")), 1000)
        if self._done_summary is not None:
            return self._done_summary
        unknown = SendSummary.unknown(
            self._identity, error=text, try_number=self._try_number, checkpoint=self.checkpoint.describe()
        )
        if self._own is None and not self._others:
            return unknown.but(**audience_counts(self.audience))
        try:
            return self.summary().but(complete=False, error=text)
        except Exception:
            return unknown

    def _records(self) -> list[TryRecord]:
        """Every try's record known to this try (its own included), oldest first."""
        return sorted([*self._others, *([self._own] if self._own else [])], key=lambda r: r.order)

    def _error_for(self, index: int) -> dict[str, Any] | None:
        for record in reversed(self._records()):
            for error in record.errors:
                if error.get("batch") == index:
                    return {**error, "try": record.try_number}
        return None

    def _doubt_detail(self, index: int) -> dict[str, Any]:
        error = self._error_for(index)
        if error is not None and error.get("outcome") in ("in_doubt", "in_doubt_abort"):
            reason = error["error"]
        elif (
            index in self._doubt_reasons
            and self._own is not None
            and self._own.outcome(index) == Outcome.IN_DOUBT
        ):
            reason = self._doubt_reasons[index]
        else:
            # This try's own reservation also covers batches it skipped as in doubt; only the
            # other tries may have sent them.
            holders = [
                r for r in self._others if index < r.reserved_upto and r.outcome(index) == Outcome.NOT_TRIED
            ]
            if holders:
                holder = holders[-1]
                reason = (
                    f"try {holder.try_number} "
                    + ("was still running" if holder.state == "running" else "ended")
                    + " while this batch may have been in flight"
                )
            else:
                tries = [r.try_number for r in self._records() if r.outcome(index) == Outcome.IN_DOUBT]
                where = f"try {tries[-1]}" if tries else "an earlier try"
                reason = f"sent, and in doubt (the error is in the log of {where})"
        detail: dict[str, Any] = {"batch": index, "count": self.audience.batch_size(index), "reason": reason}
        if index in self._doubt_recipients:
            detail["recipients"] = self._doubt_recipients[index][:_RECIPIENTS_PER_DETAIL]
        return detail

    def _failure_detail(self, index: int, status: int) -> dict[str, Any]:
        error = self._error_for(index)
        detail: dict[str, Any] = {"batch": index, "count": self.audience.batch_size(index)}
        if status == Outcome.NOT_TRIED:
            detail["error"] = "not attempted" + (f": {self._stopped_early}" if self._stopped_early else "")
            detail["status_code"] = None
        elif error is not None:
            detail["error"], detail["status_code"] = error["error"], error.get("status_code")
        else:
            tries = [
                r.try_number
                for r in self._records()
                if r.outcome(index) in (Outcome.NOT_SENT, Outcome.REFUSED)
            ]
            where = f"try {tries[-1]}" if tries else "an earlier try"
            detail["error"], detail["status_code"] = (
                f"not sent (the error is in the log of {where})",
                None,
            )
        return detail

    def _log_doubt(self, view: bytearray) -> None:
        """One line with every batch in doubt (each one's recipients were logged when met)."""
        doubt = [i for i, s in enumerate(view) if s in _IN_DOUBT]
        if not doubt:
            return
        self.log.error(
            "%d batch%s (%d recipients) in doubt, not resent: batches %s.",
            len(doubt),
            "" if len(doubt) == 1 else "es",
            self.audience.recipients_in(doubt),
            ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in _ranges(doubt, limit=None)),
        )

    def _log_progress(self, *, final: bool = False) -> None:
        self._last_progress = now = time.monotonic()
        own = self._own
        if own is None:
            return
        elapsed = max(now - self._started, 1e-9)
        audience = self.audience
        accepted = own.stats.accepted + self._counts["skipped"]
        accepted_batches = own.outcomes.count(Outcome.DONE) + self._counts["skipped_batches"]
        total = audience.sent
        rate = self._counts["sent_batches"] / elapsed
        parts = [
            f"{accepted_batches} batches / {accepted}"
            + (f" of {total} recipients ({100 * accepted / total:.0f}%)" if total else " recipients")
            + " accepted",
            f"{rate:.1f} requests/s",
        ]
        if total and rate > 0 and not final:
            left = max(0, audience.batch_count - self._dispatched_upto)
            parts.append(f"ETA {left / rate:.0f} s")
        outcomes = own.outcomes
        if outcomes.count(Outcome.IN_DOUBT):
            parts.append(f"{outcomes.count(Outcome.IN_DOUBT)} batches in doubt")
        failed = outcomes.count(Outcome.NOT_SENT) + outcomes.count(Outcome.REFUSED)
        if failed:
            parts.append(f"{failed} batches not sent")
        if self._rate_limit_status is not None:
            parts.append(f"rate limit: {self._rate_limit_status()}")
        self.log.info("Braze send %s: %s.", "finished" if final else "progress", "; ".join(parts))


def bounded_error(error: Any) -> Any:
    """One of Braze's non-fatal errors as kept in records and summaries: as it came when its JSON
    is short, else its JSON text cut to ``ERROR_CHARS`` (an object of any size would make every
    record and checkpoint write that large)."""
    if isinstance(error, str):
        return clip(error, ERROR_CHARS)
    text = json.dumps(error, ensure_ascii=False, sort_keys=True, default=str)
    return error if len(text) <= ERROR_CHARS else clip(text, ERROR_CHARS)


def _shown_ranges(indexes: list[int], limit: int = 10) -> str:
    """Batch numbers as text: ``[0-3, 7]``, the first ``limit`` ranges."""
    ranges = _ranges(indexes, None)
    shown = [str(a) if b == a + 1 else f"{a}-{b - 1}" for a, b in ranges[:limit]]
    return "[" + ", ".join(shown) + (", ..." if len(ranges) > limit else "") + "]"


def _ranges(indexes: list[int], limit: int | None = RANGES_KEPT) -> list[list[int]]:
    """Sorted indexes as ``[first, last + 1)`` ranges, at most ``limit`` of them."""
    ranges: list[list[int]] = []
    for index in indexes:
        if ranges and ranges[-1][1] == index:
            ranges[-1][1] = index + 1
        else:
            if limit is not None and len(ranges) == limit:
                break
            ranges.append([index, index + 1])
    return ranges


def check_delivery_options(concurrency: Any, progress_interval: Any, max_refused_batches: Any) -> None:
    """The delivery's numbers, checked (types too: ``"4"`` from a template is not 4)."""
    from airflow_provider_braze.validation import is_integer, is_number

    if not is_integer(concurrency) or not 1 <= concurrency <= 32:
        raise BrazeValidationError(
            f"concurrency must be a whole number between 1 and 32, got {concurrency!r}."
        )
    if not is_number(progress_interval) or not progress_interval > 0:
        raise BrazeValidationError(
            f"progress_interval must be a positive number of seconds, got {progress_interval!r}."
        )
    if not is_integer(max_refused_batches) or max_refused_batches < 0:
        raise BrazeValidationError(
            f"max_refused_batches must be a whole number, not negative, got {max_refused_batches!r}."
        )


def audience_counts(audience: Audience) -> dict[str, Any]:
    """The counts a summary can give as soon as the recipients are read."""
    return {
        "recipients": audience.sent,
        "recipients_read": audience.read,
        "duplicates": audience.duplicates,
        "batches": audience.batch_count,
    }
