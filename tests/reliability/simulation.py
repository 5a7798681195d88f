"""A simulation of fault histories for the send operators' exactly-once promise.

It explores *histories*, not examples: a seeded ``random.Random`` picks every step (tries that
run, fail, get killed at any point or overlap; days passing; other runs of the task completing
and pruning; records edited by hand; inputs changed; rehearsals; Braze's refusals, 429s, 5xx,
dropped connections and non-fatal errors; store faults; and, when a try fails, doing exactly
what its error message advises). About a quarter of the histories then go on into "the weeks
after" (:func:`later_step`, drawn after the first steps, which stay as they were): a later run
of the task, its tries spread across days, days passing across the retention (sizes drawn
around its boundary and between the run's tries) as another run of the task completes (after
failed tries of its own, or with another retention), Airflow's retries, and the run given up
with ``delivery.abandon_send`` as the README says. Each step drives the **real operators**
against the **real in-process sandbox**; after every step the invariants are checked against
the sandbox's ledger and the checkpoint store:

- I1: nobody gets the message twice within one intended send (its tries, cleared reruns and the
  new DAG runs started on advice), except with ``at_least_once=True``, and then only people an
  earlier try reported (or a killed try left) in doubt;
- I2: a try that succeeds means every distinct recipient was delivered exactly once;
- I3: every recipient not delivered is named (``not_sent_ranges``/``in_doubt_ranges``, batches
  of 50 in read order) by the try that ended; and (precision) in a history with no kill and no
  failed checkpoint write, a batch named in doubt was handed to Braze by some try;
- I4: following an error message's advice literally never sends anyone twice (I1/I2 checked
  after the step that followed advice are reported as I4);
- I5: a checkpoint record (and an XCom summary) is at most 64 KB; one task instance writes at
  most 20 MB in all;
- I6: a real send never goes out under the rehearsal's placeholder send ID, and a rehearsal
  sends nothing;
- I7: a real try is not refused for "no checkpoint" when every earlier try of its run was a
  rehearsal (nothing could have been sent);
- I8: a recipient file with an empty-ID row or an ID with a lone surrogate fails the try with a
  ``BrazeValidationError`` naming the line (no silent skipping, no bare ``UnicodeEncodeError``);
- I9 (a run given up with ``abandon_send``): a later try of it sends nothing and says the send
  was abandoned; its records are pruned only once the newest is older than the retention it was
  sent with; and (I3) the recipients never delivered are named, by the refusal or by the last
  try that ended before it;
- spool: no ``braze-recipients-*.jsonl`` is left in ``tempfile.gettempdir()`` after a try that
  was not killed ends;
- key: the API key never reaches a summary, a record, an error text or the log, in any encoding
  Braze might echo it in (hex, HTML entities, ``\\u`` escapes, line-wrapped base64).

Seams used (public behaviour plus a few stable ones): ``checkpoint.checkpoint_store`` (wrapped),
``checkpoint.utcnow``/``engine.utcnow`` (the clock), ``airflow.sdk.Variable`` (a dict-backed fake
with the task SDK's failure behaviour), ``airflow_provider_braze.delivery.read_audience``
(to learn which spool file a try made), an operator's ``_send_batch`` (Braze's answers and the
kill switch), ``CreateSendIdOperator.hook.create_send_id`` (a lost answer), the operator's
``_log`` (captured), ``checkpoint_name`` (to find a run's records for hand edits), and the
``<key>.json`` file names of folder stores (for hand edits).

A SIGKILL is modelled in process: from the kill point on, the try's store operations and
requests are dropped (except, by a seeded choice, the request already on its way), the try is
unwound by :class:`KillTry` (a ``BaseException``), its XCom pushes are dropped and its spool
file is left behind. A kill in the middle of a write truncates whatever file the store is
writing at that moment (``open`` is wrapped for the writing thread only), so the simulation
follows the store's own way of writing: a plain folder leaves a ``.tmp`` file, a ``file://``
ObjectStoragePath written in place a truncated record.

Run ``scripts/soak --histories 2000 --seed 7``, or :func:`explore` / :func:`run_history`.
"""

from __future__ import annotations

import argparse
import base64
import builtins
import contextlib
import glob
import html
import io
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

from airflow_provider_braze.sandbox import email_message

DAG_ID = "sim"
TASK_ID = "send"
SEND_ID_TASK = "create_send_id"
CAMPAIGN = "sandbox-api-campaign"
PLACEHOLDER_SEND_ID = "dry-run-send-id"
BATCH = 50
RECORD_LIMIT = 64 * 1024
SEND_LIMIT = 20 * 1024 * 1024
#: Spool files, wherever a version of the provider puts them under the temporary folder.
SPOOL_NAMES = ("spool.jsonl", "braze-recipients-*.jsonl")


def spool_files() -> set[str]:
    """Every spool file under the temporary folder, however deep."""
    root = tempfile.gettempdir()
    return {
        path
        for name in SPOOL_NAMES
        for path in glob.glob(os.path.join(root, "**", name), recursive=True)
        if ".killed-" not in path
    }


#: The simulated "today" at day 0 (mid-morning: a history never crosses midnight by itself).
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MESSAGES = email_message()
JOIN_SECONDS = 120.0


class KillTry(BaseException):
    """The try's process was killed (SIGKILL, lost worker): unwinds it, never caught as an error."""


# ------------------------------------------------------------------------------------ steps


@dataclass
class Step:
    """One step of a history: ``kind`` and its arguments (all plain data, so it prints)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.args.items() if v not in (None, False, {}, []))
        return f"{self.kind}({shown})"


@dataclass
class Spec:
    """What a history starts with."""

    store: str = "folder"  # variable, folder, file_url
    recipients: int = 600
    concurrency: int = 2
    retention_days: int | None = 30
    source: str = "list"  # list, csv, jsonl
    bad_row: str | None = None  # empty (csv), surrogate (jsonl)
    poison: int | None = None  # position of a recipient Braze refuses (400 for its batch)
    start_day: int = 0


@dataclass
class Found:
    """One invariant violation: which, what, and how to replay it."""

    invariant: str
    detail: str
    step: int
    tags: tuple[str, ...] = ()


class Violation(AssertionError):
    def __init__(self, seed: int | None, spec: Spec, steps: list[Step], found: list[Found]) -> None:
        self.seed, self.spec, self.steps, self.found = seed, spec, steps, found
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{len(self.found)} invariant violation(s); replay: seed={self.seed}", f"spec: {self.spec}"]
        for f in self.found:
            lines.append(f"  [{f.invariant}] at step {f.step} (tags {', '.join(f.tags) or '-'}): {f.detail}")
        lines.append("steps:")
        lines += [f"  {i}: {s}" for i, s in enumerate(self.steps)]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ world


@dataclass
class Send:
    """One intended send: a task's run, plus the new runs started on an error's advice."""

    name: str
    recipients: list[str]
    run_id: str
    run_day: int
    runs: int = 1
    try_number: int = 0
    at_least_once: bool = False
    retention: timedelta | None = timedelta(days=30)
    send_id: str | None = None
    source: str = "list"
    bad_row: str | None = None
    bad_position: int = 0
    poison: str | None = None
    #: Recipients left out on an error's advice (exclude_recipients).
    exclude: list[str] = field(default_factory=list)
    finished: bool = False
    first_read: list[str] | None = None
    #: Recipients an earlier try reported in doubt, or a killed/overlapped try attempted.
    doubt: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    killed_any: bool = False
    write_failed: bool = False
    real_tries_this_run: int = 0
    advice: list[tuple[str, str]] = field(default_factory=list)
    bytes_written: Counter[str] = field(default_factory=Counter)
    sid_tries: int = 0
    #: The send ID came from a rehearsal of CreateSendIdOperator (a placeholder, or not created).
    sid_rehearsed: bool = False
    #: The days its real tries ran on.
    try_days: list[int] = field(default_factory=list)
    #: Its runs given up with ``delivery.abandon_send``: run ID -> the day.
    abandoned: dict[str, int] = field(default_factory=dict)
    #: An abandoned run -> the newest day among its records, while they are there.
    newest_record: dict[str, int] = field(default_factory=dict)
    #: Recipients named (not sent, or in doubt) by the last try of the current run that ended
    #: with counts; None before any did.
    named: set[str] | None = None
    #: The runs in which some try handed a batch to Braze.
    attempted_runs: set[str] = field(default_factory=set)


class TryCtx:
    """One try's process: its kill switch, pause point and what it did."""

    def __init__(self, send: Send, *, rehearsal: bool, kill: list[Any] | None, pause_at: int | None) -> None:
        self.send = send
        self.rehearsal = rehearsal
        self.kill = kill  # [mode, n, reach]: mode store|midwrite|send
        self.pause_at = pause_at
        self.killed = threading.Event()
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.ops = 0
        self.writes = 0
        self.sends = 0
        self.inflight = 0
        self.lock = threading.Lock()
        self.pushes: list[tuple[str, Any]] = []
        self.spools: list[str] = []
        self.kept_spools: list[tuple[str, str]] = []
        self.faults: dict[int, str] = {}
        self.nonfatal: str | None = None
        self.store_faults: dict[str, int] = {}
        self.store_ops: Counter[str] = Counter()
        self.attempted: set[str] = set()
        self.log = io.StringIO()
        #: When it started, in the simulation's order of events (Simulation.tick).
        self.started = 0
        #: Whether it began reading its recipients (a try can fail before, on other grounds).
        self.reading = False


_ARMED = threading.local()  # .cut: a kill mid-write is armed for this thread's next written file
_REAL_OPEN = builtins.open


class _TruncatingFile:
    """A file whose first write stores only part of its data, then the process dies."""

    def __init__(self, inner: Any, cut: float) -> None:
        self._inner = inner
        self._cut = cut

    def write(self, data: Any) -> int:
        part = data[: max(1, int(len(data) * self._cut))]
        self._inner.write(part)
        self._inner.flush()
        _ARMED.cut = None
        _ARMED.hit = True
        raise KillTry("killed in the middle of writing a checkpoint file")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _TruncatingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def __iter__(self) -> Any:
        return iter(self._inner)


def _sim_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    handle = _REAL_OPEN(file, mode, *args, **kwargs)
    cut = getattr(_ARMED, "cut", None)
    if cut is not None and any(c in mode for c in "wax"):
        return _TruncatingFile(handle, cut)
    return handle


class FakeVariables:
    """Airflow Variables as the task SDK behaves in 3.3: a ``get`` that fails answers the default
    (as if missing), a ``keys`` (listing) or ``set`` that fails raises."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()
        self.fail: Counter[str] = Counter()

    def _failing(self, op: str) -> bool:
        with self.lock:
            if self.fail[op] > 0:
                self.fail[op] -= 1
                return True
        return False

    def get(self, key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        if self._failing("get"):
            return default
        with self.lock:
            return self.values.get(key, default)

    def set(self, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        if self._failing("set"):
            raise RuntimeError("API server unreachable (simulated)")
        with self.lock:
            self.values[key] = value if isinstance(value, str) else json.dumps(value)

    def delete(self, key: str) -> None:
        if self._failing("delete"):
            raise RuntimeError("API server unreachable (simulated)")
        with self.lock:
            self.values.pop(key, None)

    def keys(self, prefix: str | None = None) -> list[str]:
        if self._failing("keys"):
            raise RuntimeError("API server unreachable (simulated)")
        with self.lock:
            return sorted(k for k in self.values if prefix is None or k.startswith(prefix))

    def as_class(self) -> type:
        return type(
            "Variable",
            (),
            {name: staticmethod(getattr(self, name)) for name in ("get", "set", "delete", "keys")},
        )


class SimStore:
    """Wraps one try's checkpoint store: counts and checks what is written, injects faults,
    pauses, and drops everything once the try is killed."""

    def __init__(self, inner: Any, sim: Simulation, ctx: TryCtx | None) -> None:
        self.inner = inner
        self.sim = sim
        self.ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _gate(self, op: str) -> str | None:
        """Before an operation: None to go on, or what the kill switch does to it."""
        ctx = self.ctx
        if ctx is None:
            return None
        if ctx.killed.is_set():
            raise KillTry(f"{op} after the kill")
        with ctx.lock:
            ctx.ops += 1
            n = ctx.ops
            if op == "write":
                ctx.writes += 1
            writes = ctx.writes
        if ctx.pause_at == n:
            ctx.paused.set()
            ctx.resume.wait(JOIN_SECONDS)
        if ctx.killed.is_set():
            raise KillTry(f"{op} after the kill")
        kill = ctx.kill
        if kill and kill[0] == "store" and kill[1] == n:
            return "kill"
        if kill and kill[0] == "midwrite" and op == "write" and kill[1] == writes:
            return "midwrite"
        return None

    def _fault(self, op: str) -> bool:
        ctx = self.ctx
        if ctx is None or not ctx.store_faults:
            return False
        with ctx.lock:
            ctx.store_ops[op] += 1
            return ctx.store_faults.get(op) == ctx.store_ops[op]

    def _die(self, why: str) -> None:
        assert self.ctx is not None
        self.sim.kill(self.ctx)
        raise KillTry(why)

    def keys(self, prefix: str) -> list[str]:
        gate = self._gate("keys")
        if gate:
            self._die("killed before a listing")
        if self._fault("keys"):
            if self.sim.fake_variables is not None and self.sim.spec.store == "variable":
                self.sim.fake_variables.fail["keys"] += 1
            else:
                from airflow_provider_braze.exceptions import BrazeCheckpointError

                raise BrazeCheckpointError("Cannot list the checkpoint folder (simulated outage)")
        keys = self.inner.keys(prefix)
        if self.ctx is not None and self.ctx.killed.is_set():
            raise KillTry("listing answered after the kill")
        return list(keys)

    def read(self, key: str) -> Any:
        gate = self._gate("read")
        if gate:
            self._die("killed before a read")
        if self._fault("read"):
            if self.sim.fake_variables is not None and self.sim.spec.store == "variable":
                self.sim.fake_variables.fail["get"] += 1  # the SDK answers "not found"
            else:
                from airflow_provider_braze.exceptions import BrazeCheckpointError

                raise BrazeCheckpointError(f"Cannot read the checkpoint file {key}: simulated outage")
        return self.inner.read(key)

    def write(self, key: str, record: dict[str, Any]) -> int:
        gate = self._gate("write")
        ctx = self.ctx
        text = json.dumps(record, separators=(",", ":"), sort_keys=True)
        size = len(text.encode("utf-8", "surrogatepass"))
        self.sim.check_record(ctx, key, text, size)
        if gate == "kill":
            assert ctx is not None
            if ctx.kill and ctx.kill[2]:  # the write reached the store before the process died
                self.inner.write(key, record)
            self._die("killed at a checkpoint write")
        if gate == "midwrite":
            assert ctx is not None
            self.sim.kill(ctx)
            if self.sim.spec.store == "variable":
                if ctx.kill and ctx.kill[2]:
                    self.inner.write(key, record)  # a Variable is written in one step
                raise KillTry("killed while writing a Variable")
            _ARMED.cut, _ARMED.hit = self.sim.rng_float(ctx, "cut", 0.2, 0.8), False
            try:
                self.inner.write(key, record)
            except KillTry:
                pass
            finally:
                hit = getattr(_ARMED, "hit", False)
                _ARMED.cut = None
            if hit:
                self.sim.tags.add("midwrite")
            else:
                self.sim.note(f"mid-write kill of {key} found no file being written")
            raise KillTry("killed after a checkpoint write")
        if self._fault("write"):
            if ctx is not None:
                ctx.send.write_failed = True
            if self.sim.fake_variables is not None and self.sim.spec.store == "variable":
                self.sim.fake_variables.fail["set"] += 1
            else:
                from airflow_provider_braze.exceptions import BrazeCheckpointError

                raise BrazeCheckpointError(f"Cannot write the checkpoint file {key}: simulated outage")
        try:
            written = self.inner.write(key, record)
        except Exception:
            if ctx is not None:
                ctx.send.write_failed = True
            raise
        if ctx is not None and not ctx.rehearsal:
            ctx.send.bytes_written[ctx.send.run_id] += size
            if ctx.send.bytes_written[ctx.send.run_id] > SEND_LIMIT:
                self.sim.found(
                    "I5-total",
                    f"{ctx.send.run_id} wrote {ctx.send.bytes_written[ctx.send.run_id]:,} bytes "
                    "to its checkpoint",
                )
        return int(written)

    def delete(self, key: str) -> None:
        gate = self._gate("delete")
        if gate:
            self._die("killed before a delete")
        self.sim.note_delete(self.ctx, key)
        self.inner.delete(key)

    def remove_leftovers(self, prefix: str) -> None:
        gate = self._gate("remove_leftovers")
        if gate:
            self._die("killed before removing leftovers")
        self.inner.remove_leftovers(prefix)

    def missing_location(self) -> Any:
        return self.inner.missing_location()


# ------------------------------------------------------------------------------------ the simulation


ADVICE = [
    ("new_run", re.compile(r"trigger a new DAG run", re.I)),
    ("delete_prefix", re.compile(r"delete the records starting with '([^']+)'", re.I)),
    ("delete_named", re.compile(r"\bdelete (it|that record|the record)\b", re.I)),
    ("at_least_once", re.compile(r"at_least_once=True", re.I)),
    ("restore", re.compile(r"\brestore (the recipients|them)\b", re.I)),
    ("mark_success", re.compile(r"mark the task successful", re.I)),
    ("raise_retention", re.compile(r"raise checkpoint_retention", re.I)),
    ("retry", re.compile(r"retry the task|a retry (of this task )?(sends|resumes)", re.I)),
    ("exclude", re.compile(r"exclude_recipients", re.I)),
]


def advice_in(text: str) -> list[tuple[str, str]]:
    """Every piece of advice an error message gives, as (kind, its argument)."""
    found = []
    for kind, pattern in ADVICE:
        match = pattern.search(text)
        if match:
            found.append((kind, match.group(1) if kind == "delete_prefix" else ""))
    return found


def _named_record(text: str) -> str | None:
    """The record an error names: a checkpoint file path or a Variable key."""
    match = re.search(r"checkpoint file (/\S+?\.json)", text) or re.search(r"file://(/\S+?\.json)", text)
    if match:
        return match.group(1)
    match = re.search(r"(?:Variable|checkpoint) '([^']+)'", text)
    return match.group(1) if match else None


class Simulation:
    """One history: its world (sandbox, store, clock, temp folder) and its steps."""

    def __init__(self, sandbox: Any, workdir: str, spec: Spec, seed: int | None = None) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.spec = spec
        self.seed = seed
        self.rng = random.Random(seed if seed is not None else 0)
        self.steps: list[Step] = []
        self.findings: list[Found] = []
        #: An older try of the main send is paused mid-run (an overlap).
        self.older_alive = False
        #: The order of events: tries starting, kills.
        self.ticks = 0
        #: Spool files that killed tries left: path -> (the send's run, when it was killed).
        self.killed_leftovers: dict[str, tuple[str, int]] = {}
        self.notes: list[str] = []
        self.tags: set[str] = set()
        self.day = spec.start_day
        self._t0 = time.monotonic()
        self._local = threading.local()
        self.fake_variables: FakeVariables | None = None
        self.sends: dict[str, Send] = {}
        self.others = 0
        #: The send the steps act on: "A", then each later run of the task started by next_run.
        self.subject = "A"
        self.later_runs = 0
        self.running: set[TryCtx] = set()
        self.step_index = 0
        self.after_advice: str | None = None
        #: Recipients already reported as delivered twice (a later step does not report them again).
        self.reported_twice: set[str] = set()
        self._lock = threading.Lock()
        self.key = sandbox.api_key
        self.needles = _key_needles(self.key)
        self.spool_dir = os.path.join(workdir, "tmp")
        os.makedirs(self.spool_dir, exist_ok=True)
        if spec.store == "variable":
            self.location: Any = "variable"
        elif spec.store == "folder":
            self.location = os.path.join(workdir, "checkpoints")
        else:
            self.location = f"file://{workdir}/checkpoints"
        self.folder = os.path.join(workdir, "checkpoints")

    # -------------------------------------------------------------- world set-up

    def now(self) -> datetime:
        return BASE + timedelta(days=self.day, seconds=time.monotonic() - self._t0)

    def rng_float(self, ctx: TryCtx | None, what: str, low: float, high: float) -> float:
        return low + (high - low) * random.Random(f"{self.seed}-{self.step_index}-{what}").random()

    @contextlib.contextmanager
    def patched(self) -> Any:
        import airflow.sdk

        from airflow_provider_braze import delivery
        from airflow_provider_braze.delivery import checkpoint, engine

        self.real_store = checkpoint.checkpoint_store
        real_read_audience = delivery.read_audience
        sim = self

        def store(location: Any, log: Any = None) -> Any:
            return SimStore(sim.real_store(location, log), sim, getattr(sim._local, "ctx", None))

        def read_audience(*args: Any, **kwargs: Any) -> Any:
            reading = getattr(sim._local, "ctx", None)
            if reading is not None:
                reading.reading = True
            before = spool_files()
            audience = real_read_audience(*args, **kwargs)
            ctx = getattr(sim._local, "ctx", None)
            if ctx is not None:
                after = spool_files()
                ctx.spools += sorted(after - before)
            return audience

        self.fake_variables = FakeVariables()
        saved_tempdir = tempfile.tempdir
        saved_env = os.environ.get("AIRFLOW_CONN_BRAZE_DEFAULT")
        with contextlib.ExitStack() as stack:
            patch = stack.enter_context
            patch(mock.patch.object(checkpoint, "checkpoint_store", store))
            patch(mock.patch.object(checkpoint, "utcnow", self.now))
            patch(mock.patch.object(engine, "utcnow", self.now))
            patch(mock.patch.object(delivery, "read_audience", read_audience))
            patch(mock.patch.object(airflow.sdk, "Variable", self.fake_variables.as_class(), create=True))
            patch(mock.patch.object(builtins, "open", _sim_open))
            patch(mock.patch.object(io, "open", _sim_open))
            tempfile.tempdir = self.spool_dir
            os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = self.sandbox.connection_json(
                max_retries=0, read_timeout=5, retry_budget=1
            )
            try:
                yield
            finally:
                tempfile.tempdir = saved_tempdir
                if saved_env is None:
                    os.environ.pop("AIRFLOW_CONN_BRAZE_DEFAULT", None)
                else:
                    os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = saved_env

    # -------------------------------------------------------------- findings

    def found(self, invariant: str, detail: str) -> None:
        if self.after_advice and invariant.startswith(("I1", "I2")):
            invariant = f"I4/{invariant} (advice: {self.after_advice})"
        with self._lock:
            if any(f.invariant == invariant for f in self.findings):
                return
            self.findings.append(Found(invariant, detail[:600], self.step_index, tuple(sorted(self.tags))))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def check_record(self, ctx: TryCtx | None, key: str, text: str, size: int) -> None:
        if size > RECORD_LIMIT:
            self.found("I5-record", f"a checkpoint record of {size:,} bytes ({key})")
        if self._leaks(text):
            self.found("key-leak", f"the API key is in checkpoint record {key}")

    def note_delete(self, ctx: TryCtx | None, key: str) -> None:
        """A store delete: remember when a send's records are pruned by another run."""
        from airflow_provider_braze.delivery import checkpoint_name

        for send in self.sends.values():
            name = checkpoint_name(DAG_ID, TASK_ID, send.run_id, -1)
            if (
                key.startswith(name)
                and (ctx is None or ctx.send is not send)
                and not send.finished
                and send.run_id not in send.abandoned
            ):
                self.tags.add("pruned-running-send")

    def _leaks(self, text: str) -> bool:
        return _contains_key(text, self.needles)

    def kill(self, ctx: TryCtx) -> None:
        """The try's process dies now: it leaves its spool file behind."""
        if ctx.killed.is_set():
            return
        ctx.killed.set()
        ctx.send.killed_any = True
        self.tags.add("killed")
        for number, spool in enumerate(ctx.spools):
            # Kept outside the try's folder, which the unwinding try removes; put back (without
            # the try's lock, which a dead process no longer holds) once it has unwound.
            kept = os.path.join(self.spool_dir, f"spool.killed-{id(ctx)}-{number}")
            with contextlib.suppress(OSError):
                os.link(spool, kept)
                ctx.kept_spools.append((spool, kept))

    # -------------------------------------------------------------- sends

    def new_send(self, name: str, count: int, *, poison: int | None = None) -> Send:
        recipients = [f"{name}-{n:05d}" for n in range(count)]
        send = Send(
            name=name,
            recipients=recipients,
            run_id=f"{name}-run1",
            run_day=self.day,
            retention=timedelta(days=self.spec.retention_days) if self.spec.retention_days else None,
        )
        if poison is not None and count:
            send.poison = recipients[min(poison, count - 1)]
        self.sends[name] = send
        return send

    def _source(self, send: Send) -> Any:
        """The operator's ``recipients``: the list, or a file written from it."""
        if send.source == "list":
            return list(send.recipients)
        path = os.path.join(self.workdir, f"{send.name}-{send.runs}-{send.try_number}.{send.source}")
        rows = list(send.recipients)
        with _REAL_OPEN(path, "w", encoding="utf-8", newline="") as fh:
            if send.source == "csv":
                fh.write("external_user_id,alias_name,alias_label\r\n")
                for i, r in enumerate(rows):
                    if send.bad_row == "empty" and i == send.bad_position:
                        fh.write(",,\r\n")
                    fh.write(f"{r},,\r\n")
            else:
                for i, r in enumerate(rows):
                    if send.bad_row == "surrogate" and i == send.bad_position:
                        fh.write(json.dumps({"external_user_id": f"{send.name}-bad\ud800"}) + "\n")
                    fh.write(json.dumps(r) + "\n")
        return path

    def _bad_line(self, send: Send) -> int:
        return send.bad_position + 2 if send.source == "csv" else send.bad_position + 1

    def batch_of(self, send: Send) -> dict[str, int]:
        return {r: i // BATCH for i, r in enumerate(dict.fromkeys(send.recipients))}

    def _send_wrapper(self, op: Any, ctx: TryCtx) -> Any:
        from airflow_provider_braze.exceptions import (
            BrazeAmbiguousRequestError,
            BrazeAmbiguousResponseError,
            BrazeBadRequestError,
            BrazeRateLimitError,
            BrazeServerError,
            BrazeTransportError,
        )

        real = op._send_batch
        send = ctx.send
        index_of = self.batch_of(send)

        def send_batch(batch: list[Any]) -> dict[str, Any]:
            if ctx.killed.is_set():
                raise KillTry("request after the kill")
            with ctx.lock:
                ctx.sends += 1
                k = ctx.sends
                ctx.inflight += 1
            try:
                keys = [r if isinstance(r, str) else json.dumps(r) for r in batch]
                ctx.attempted.update(keys)
                send.attempted.update(keys)
                send.attempted_runs.add(send.run_id)
                if op.send_id == PLACEHOLDER_SEND_ID or (send.sid_rehearsed and op.send_id == send.send_id):
                    self.found(
                        "I6-placeholder",
                        f"a real try sent a batch under send ID {op.send_id!r}, which only a rehearsal made",
                    )
                index = index_of.get(keys[0], -1) if keys else 0
                kill_here = bool(ctx.kill and ctx.kill[0] == "send" and ctx.kill[1] == k)
                if kill_here:
                    self.kill(ctx)
                    if not (ctx.kill and ctx.kill[2]):
                        raise KillTry("killed before this request left")
                fault = ctx.faults.get(index)
                if send.poison is not None and send.poison in keys:
                    raise BrazeBadRequestError(
                        f"Braze refused the request (400): {send.poison} is not a valid recipient",
                        status_code=400,
                        message="Invalid recipient",
                        endpoint="POST /messages/send",
                    )
                if fault == "5xx":
                    raise BrazeServerError(
                        "Braze answered 503", status_code=503, endpoint="POST /messages/send"
                    )
                if fault == "429":
                    raise BrazeRateLimitError(
                        "Braze answered 429", status_code=429, endpoint="POST /messages/send"
                    )
                if fault == "drop_before":
                    raise BrazeTransportError(
                        "connection refused (simulated)", endpoint="POST /messages/send"
                    )
                answer = real(batch)
                if ctx.killed.is_set():
                    raise KillTry("the answer came back after the kill")
                if fault == "drop_after":
                    raise BrazeAmbiguousRequestError("connection dropped after sending (simulated)")
                if fault == "unreadable":
                    raise BrazeAmbiguousResponseError(
                        "Braze answered 201 with a body that cannot be read", status_code=201
                    )
                if ctx.nonfatal == "objects":
                    answer = {**answer, "errors": [_big_error(index, n) for n in range(3)]}
                elif ctx.nonfatal == "key":
                    answer = {**answer, "errors": _key_echoes(self.key, index)}
                return dict(answer)
            finally:
                with ctx.lock:
                    ctx.inflight -= 1

        return send_batch

    def run_try(
        self,
        send: Send,
        *,
        kill: list[Any] | None = None,
        pause_at: int | None = None,
        faults: dict[int, str] | None = None,
        nonfatal: str | None = None,
        store_faults: dict[str, int] | None = None,
        dry_run: bool = False,
        conf_dry_run: bool = False,
        concurrency: int | None = None,
        sandbox_faults: dict[str, float] | None = None,
        thread: bool = False,
    ) -> Any:
        """One try of ``send``'s current run; in a thread if ``thread`` (returns the runner)."""
        from airflow_provider_braze.operators.messages import SendMessagesOperator

        send.try_number += 1
        rehearsal = dry_run or conf_dry_run
        ctx = TryCtx(send, rehearsal=rehearsal, kill=kill, pause_at=pause_at)
        ctx.started = self.tick()
        ctx.faults = {int(k): v for k, v in (faults or {}).items()}
        ctx.nonfatal = nonfatal
        ctx.store_faults = dict(store_faults or {})
        earlier_real = send.real_tries_this_run
        if not rehearsal:
            send.real_tries_this_run += 1
            send.try_days.append(self.day)
        op = SendMessagesOperator(
            task_id=TASK_ID,
            campaign_id=CAMPAIGN,
            send_id=send.send_id,
            recipients=self._source(send),
            messages=MESSAGES,
            checkpoint=self.location,
            checkpoint_retention=send.retention,
            concurrency=concurrency or self.spec.concurrency,
            at_least_once=send.at_least_once,
            exclude_recipients=list(send.exclude) or None,
            progress_interval=3600,
            dry_run=dry_run,
        )
        _capture_log(op, ctx.log)
        op._send_batch = self._send_wrapper(op, ctx)  # type: ignore[method-assign]
        ti = mock.MagicMock(
            dag_id=DAG_ID, task_id=TASK_ID, run_id=send.run_id, map_index=-1, try_number=send.try_number
        )
        ti.xcom_push.side_effect = lambda key, value: (
            None if ctx.killed.is_set() else ctx.pushes.append((key, value))
        )
        due = BASE + timedelta(days=send.run_day)
        context: Any = {
            "ti": ti,
            "dag_run": mock.MagicMock(
                run_after=due, logical_date=due, conf={"braze_dry_run": True} if conf_dry_run else {}
            ),
            "params": {},
        }
        outcome: dict[str, Any] = {}
        ledger_before = len(self.sandbox.ledger())
        if sandbox_faults:
            # The sandbox's own faults, through the hook's real handling of them; one request at
            # a time (op.concurrency is 1), so its seeded draws come in the same order every run.
            op.concurrency = 1
            self.sandbox.state.rng.seed(f"{self.seed}-{self.step_index}")
            self.sandbox.set_faults(paths=["/messages/send"], rate_limit_reset_seconds=0, **sandbox_faults)

        def body() -> None:
            self._local.ctx = ctx
            try:
                outcome["summary"] = op.execute(context)
            except BaseException as err:
                outcome["error"] = err
                outcome["trace"] = traceback.format_exc()
            finally:
                self._local.ctx = None

        def finish() -> None:
            if sandbox_faults:
                self.sandbox.set_faults()
            self._restore_spools(ctx)
            self.running.discard(ctx)
            self._after_try(send, ctx, outcome, earlier_real, ledger_before)

        self.running.add(ctx)
        if thread:
            runner = threading.Thread(
                target=body, name=f"sim-{send.run_id}-try{send.try_number}", daemon=True
            )
            runner.start()
            return ctx, runner, finish
        body()
        finish()
        return outcome

    def tick(self) -> int:
        self.ticks += 1
        return self.ticks

    def _restore_spools(self, ctx: TryCtx) -> None:
        killed_at = self.tick()
        for spool, kept in ctx.kept_spools:
            if os.path.exists(spool):
                os.unlink(kept)
            else:
                os.makedirs(os.path.dirname(spool), exist_ok=True)
                os.replace(kept, spool)
                self.killed_leftovers[spool] = (ctx.send.run_id, killed_at)

    # -------------------------------------------------------------- after a try

    def _after_try(
        self, send: Send, ctx: TryCtx, outcome: dict[str, Any], earlier_real: int, ledger_before: int
    ) -> None:
        from airflow_provider_braze.exceptions import BrazeCheckpointError, BrazeValidationError

        err = outcome.get("error")
        killed = ctx.killed.is_set()
        if send.run_id in send.abandoned and not ctx.rehearsal:
            self._check_abandoned_try(send, ctx, outcome, ledger_before)
        if killed:
            for r in ctx.attempted:
                send.doubt.add(r)
            self._check_ledger()
            return
        if err is not None and not isinstance(err, Exception):
            self.found("bare-error", f"try {send.try_number} ended with {type(err).__name__}: {err}")
        summaries = [v for k, v in ctx.pushes if k == "summary"]
        summary = summaries[-1] if summaries else outcome.get("summary")
        texts = [ctx.log.getvalue()]
        if err is not None:
            texts.append(f"{type(err).__name__}: {err}")
        for key, value in ctx.pushes:
            texts.append(json.dumps(value, default=str))
            if key == "summary":
                size = len(json.dumps(value, default=str).encode("utf-8", "surrogatepass"))
                if size > RECORD_LIMIT:
                    self.found("I5-summary", f"an XCom summary of {size:,} bytes")
        if any(self._leaks(t) for t in texts):
            self.found("key-leak", f"the API key is in try {send.try_number}'s summary, error or log")
        if not self.running or all(c.killed.is_set() for c in self.running):
            # A killed try's spool is removed by the next try of the same task instance (same
            # run) that starts after the kill; until then it may stay.
            left = [
                p
                for p in sorted(spool_files())
                if not any(p == s for c in self.running for s in c.spools)
                and not (
                    p in self.killed_leftovers
                    and (
                        self.killed_leftovers[p][0] != send.run_id
                        or self.killed_leftovers[p][1] > ctx.started
                    )
                )
            ]
            if left:
                self.found(
                    "spool", f"{len(left)} spool file(s) left after try {send.try_number} ended: {left[:2]}"
                )
        if ctx.rehearsal:
            if len(self.sandbox.ledger()) != ledger_before and not self.running:
                self.found("I6-rehearsal", "a rehearsal sent something")
            return
        if send.bad_row is not None and ctx.reading:
            line = self._bad_line(send)
            good = isinstance(err, BrazeValidationError) and f"line {line}" in str(err)
            if not good:
                what = "succeeded" if err is None else f"failed with {type(err).__name__}: {str(err)[:200]}"
                self.found(
                    "I8-input",
                    f"a {send.source} file with a bad row ({send.bad_row}) at line {line}: the try {what}",
                )
            send.bad_row = None  # the user fixes the file; the recipients read are the same
        if (
            isinstance(err, BrazeCheckpointError)
            and "found no checkpoint" in str(err)
            # The documented limit: a retry of a run older than the retention that finds nothing
            # cannot prove its earlier tries sent nothing (their records may have been pruned).
            and "checkpoint_retention" not in str(err)
            and earlier_real == 0
            and not self.running
        ):
            self.found(
                "I7-refused",
                f"try {send.try_number} refused (no earlier real try of this run): {str(err)[:200]}",
            )
        if err is None and summary is not None and summary.get("complete"):
            self._check_success(send)
        elif summary is not None and summary.get("accepted") is not None:
            self._check_named(send, summary)
        if isinstance(err, Exception):
            send.advice = advice_in(str(err))
            send.advice_text = str(err)  # type: ignore[attr-defined]
        else:
            send.advice = []
        self._check_ledger()

    def _check_abandoned_try(
        self, send: Send, ctx: TryCtx, outcome: dict[str, Any], ledger_before: int
    ) -> None:
        """A try of a run given up with abandon_send: it sends nothing, says why, and the
        recipients never delivered are named (by it, or by the last try that ended before)."""
        err = outcome.get("error")
        day = send.abandoned[send.run_id]
        sent = len(self.sandbox.ledger()) - ledger_before
        if sent or (err is None and not ctx.killed.is_set()):
            self.found(
                "I9-abandoned-sent",
                f"try {send.try_number} of {send.run_id}, abandoned on day {day}, "
                + (f"sent {sent} requests" if sent else "succeeded"),
            )
            return
        if ctx.killed.is_set() or err is None:
            return
        from airflow_provider_braze.exceptions import BrazeValidationError

        text = str(err)
        # Its arguments and recipients are checked first (BrazeValidationError): then it names them.
        if "abandon" not in text and not ctx.store_faults and not isinstance(err, BrazeValidationError):
            self.found(
                "I9-abandoned-unclear",
                f"try {send.try_number} of {send.run_id}, abandoned on day {day}, was refused without "
                f"saying the send was abandoned: {type(err).__name__}: {text[:300]}",
            )
        summaries = [v for k, v in ctx.pushes if k == "summary"]
        summary = summaries[-1] if summaries else None
        if summary is not None and summary.get("accepted") is not None:
            return  # named in its summary's ranges (checked by _check_named)
        if send.run_id not in send.attempted_runs:
            return  # no try of the run sent anything: nobody to name
        delivered = self.sandbox.state.deliveries(CAMPAIGN)
        unnamed = [
            r
            for r in dict.fromkeys(send.recipients)
            if delivered[r] == 0 and r not in send.exclude and (send.named is None or r not in send.named)
        ]
        if unnamed:
            self.found(
                "I3-abandoned-unnamed",
                f"try {send.try_number} of {send.run_id} (abandoned on day {day}) was refused naming "
                f"nobody, and {len(unnamed)} recipients never delivered were named by no try that "
                f"ended (e.g. {unnamed[:3]})",
            )

    def check_abandoned_records(self) -> None:
        """An abandoned run's records are pruned only once its newest is older than the retention
        the run was sent with."""
        from airflow_provider_braze.delivery import checkpoint_name

        for send in self.sends.values():
            for run_id in send.abandoned:
                name = checkpoint_name(DAG_ID, TASK_ID, run_id, -1)
                days = [
                    d
                    for d in (_record_day(k[len(name) :]) for k in self._raw_keys(f"{name}__"))
                    if d is not None
                ]
                if days:
                    send.newest_record[run_id] = max(days)
                    continue
                newest = send.newest_record.pop(run_id, None)
                if newest is None:
                    continue
                kept = None if send.retention is None else send.retention.days
                if kept is None or self.day - newest <= kept:
                    self.found(
                        "I9-abandoned-pruned",
                        f"the records of {run_id}, abandoned on day {send.abandoned[run_id]}, newest from "
                        f"day {newest}, were pruned on day {self.day} (its retention: "
                        f"{'none, kept for ever' if kept is None else f'{kept} days'})",
                    )

    def _allowed_twice(self, send: Send, recipient: str) -> bool:
        return send.at_least_once and recipient in send.doubt

    def _check_ledger(self) -> None:
        delivered = self.sandbox.state.deliveries(CAMPAIGN)
        for send in self.sends.values():
            prefix = f"{send.name}-"
            twice = [
                r
                for r, n in delivered.items()
                if n > 1
                and r.startswith(prefix)
                and r not in self.reported_twice
                and not self._allowed_twice(send, r)
            ]
            if twice:
                self.found(
                    "I1-duplicate",
                    f"{len(twice)} recipients of send {send.name} got the message twice or more "
                    f"(e.g. {twice[:3]})",
                )
                self.reported_twice.update(twice)

    def _check_success(self, send: Send) -> None:
        delivered = self.sandbox.state.deliveries(CAMPAIGN)
        wanted = [r for r in dict.fromkeys(send.recipients) if r not in send.exclude]
        missing = [r for r in wanted if delivered[r] == 0]
        twice = [r for r in wanted if delivered[r] > 1 and not self._allowed_twice(send, r)]
        if missing or any(r not in self.reported_twice for r in twice):
            self.found(
                "I2-success",
                f"try {send.try_number} of {send.run_id} succeeded, but {len(missing)} of {len(wanted)} were "
                f"never delivered and {len(twice)} twice (e.g. {(missing + twice)[:3]})",
            )
        send.finished = True

    def _check_named(self, send: Send, summary: dict[str, Any]) -> None:
        delivered = self.sandbox.state.deliveries(CAMPAIGN)
        index = self.batch_of(send)
        named: set[int] = set()
        doubt: set[int] = set()
        for key in ("not_sent_ranges", "in_doubt_ranges"):
            for start, end in summary.get(key) or []:
                named.update(range(start, end))
                if key == "in_doubt_ranges":
                    doubt.update(range(start, end))
        # Recipients left out on purpose (exclude_recipients) are named by the user, and counted.
        unnamed = [
            r for r, i in index.items() if delivered[r] == 0 and i not in named and r not in send.exclude
        ]
        if unnamed and not summary.get("ranges_truncated"):
            self.found(
                "I3-unnamed",
                f"try {send.try_number} ended and named neither as not sent nor in doubt {len(unnamed)} "
                f"recipients never delivered (e.g. {unnamed[:3]})",
            )
        send.named = {r for r, i in index.items() if i in named}
        by_batch: dict[int, list[str]] = {}
        for r, i in index.items():
            by_batch.setdefault(i, []).append(r)
            if i in doubt:
                send.doubt.add(r)
        if not send.killed_any and not send.write_failed and not self.older_alive:
            never = [i for i in sorted(doubt) if not any(r in send.attempted for r in by_batch.get(i, []))]
            if never:
                reasons = [
                    b.get("reason") for b in summary.get("in_doubt_details") or [] if b.get("batch") in never
                ]
                self.found(
                    "I3-doubt",
                    f"try {send.try_number} reports batches {never[:5]} in doubt, but no try ever sent them "
                    f"(no try was killed); reason given: {reasons[:1]}",
                )

    # -------------------------------------------------------------- steps

    def do(self, step: Step) -> None:
        self.steps.append(step)
        self.step_index = len(self.steps) - 1
        self.after_advice = None
        handler = getattr(self, f"_step_{step.kind}")
        handler(**step.args)
        self._check_ledger()
        self.check_abandoned_records()

    def main(self) -> Send:
        return self.sends[self.subject]

    def _step_start(self) -> None:
        spec = self.spec
        send = self.new_send("A", spec.recipients, poison=spec.poison)
        send.source = spec.source
        send.bad_row = spec.bad_row
        send.bad_position = min(spec.recipients - 1, max(0, spec.recipients // 3))
        if spec.poison is not None:
            self.tags.add("poison")

    def _step_send_id(self, dry_run: bool = False, lose_answer: bool = False, requested: bool = True) -> None:
        from airflow_provider_braze.exceptions import BrazeAmbiguousRequestError
        from airflow_provider_braze.operators.send_id import CreateSendIdOperator

        send = self.main()
        send.sid_tries += 1
        ctx = TryCtx(send, rehearsal=dry_run, kill=None, pause_at=None)
        op = CreateSendIdOperator(
            task_id=SEND_ID_TASK,
            campaign_id=CAMPAIGN,
            send_id=f"{send.name}-sid" if requested else None,
            checkpoint=self.location,
            dry_run=dry_run,
        )
        _capture_log(op, ctx.log)
        if lose_answer:
            real = op.hook.create_send_id

            def lost(*args: Any, **kwargs: Any) -> str:
                real(*args, **kwargs)
                raise BrazeAmbiguousRequestError("the answer to POST /sends/id/create was lost (simulated)")

            op.hook.create_send_id = lost  # type: ignore[method-assign]
        ti = mock.MagicMock(
            dag_id=DAG_ID, task_id=SEND_ID_TASK, run_id=send.run_id, map_index=-1, try_number=send.sid_tries
        )
        ti.xcom_push.side_effect = lambda key, value: ctx.pushes.append((key, value))
        self._local.ctx = ctx
        try:
            created = op.execute({"ti": ti, "dag_run": mock.MagicMock(conf={}), "params": {}})
        except Exception as err:
            send.advice = advice_in(str(err))
            return
        finally:
            self._local.ctx = None
        send.send_id = created
        send.sid_rehearsed = dry_run
        if dry_run:
            self.tags.add("send-id-rehearsal")

    def _step_try(self, **options: Any) -> None:
        send = self.main()
        if send.finished:
            return
        kind, pick = options.pop("fail_pending", None), options.pop("pick", 0)
        if kind:
            # Braze fails one of the batches still to send, chosen when the try starts.
            pending = pending_batches(self, send)
            if pending:
                chosen = random.Random(f"{self.seed}-{self.step_index}-{pick}").choice(pending)
                options["faults"] = {**(options.get("faults") or {}), chosen: kind}
        if options.get("kill"):
            self.tags.add("killed")
        if options.get("dry_run") or options.get("conf_dry_run"):
            self.tags.add("rehearsal")
        if options.get("nonfatal"):
            self.tags.add(f"nonfatal-{options['nonfatal']}")
        self.run_try(send, **options)

    def _step_overlap(self, pause_at: int, newer: dict[str, Any] | None = None) -> None:
        """Try N runs in a thread and pauses at its ``pause_at``-th store operation; try N+1 runs
        to its end; then N resumes."""
        send = self.main()
        if send.finished:
            return
        self.tags.add("overlap")
        ctx, runner, finish = self.run_try(send, pause_at=pause_at, thread=True)
        deadline = time.monotonic() + JOIN_SECONDS
        while not ctx.paused.is_set() and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        settled = 0
        while (
            runner.is_alive() and settled < 10 and time.monotonic() < deadline
        ):  # in-flight answers come back
            settled = settled + 1 if ctx.inflight == 0 else 0
            time.sleep(0.01)
        if ctx.paused.is_set():
            for r in ctx.attempted:
                send.doubt.add(r)
            # While the older try lives, what it reserved may still go out: in doubt is the true
            # answer for the newer try. Once it has ended, no later try may say so.
            self.older_alive = True
            try:
                self.run_try(send, **(newer or {}))
            finally:
                self.older_alive = False
        ctx.resume.set()
        runner.join(JOIN_SECONDS)
        if runner.is_alive():
            self.found("hang", f"the older try {send.try_number - 1} did not end after it resumed")
            return
        finish()

    def _step_days(self, n: int) -> None:
        self.day += n

    def _step_retry_later(self, n: int, options: dict[str, Any] | None = None) -> None:
        """Days pass, then Airflow retries the send (a run's tries spread across days)."""
        self.day += n
        self._step_try(**(options or {}))

    def _step_tries_across_days(self, gaps: list[int], fail: list[str | None]) -> None:
        """A run with several tries spread across days: before try i, ``gaps[i]`` days pass; it
        fails as ``fail[i]`` says (Braze's answer for one batch still to send), or not (None)."""
        for number, (gap, kind) in enumerate(zip(gaps, fail, strict=True)):
            if self.main().finished:
                return
            self.day += gap
            self._step_try(**({"fail_pending": kind, "pick": number} if kind else {}))

    def _step_cross_retention(self, n: int, count: int = 100, retention: int | None = None) -> None:
        """Days pass across the retention (``n`` drawn around its boundary), and another run of the
        task completes then, pruning what is past it."""
        self.day += n
        self._step_other_run(count, retention=retention)

    def _step_other_run(
        self, count: int = 100, tries: int = 1, gap: int = 0, retention: int | None = None
    ) -> None:
        """Another run of the same task (its own run ID and recipients) completes: with ``tries``,
        its earlier tries fail (Braze answers 503 for its first batch), ``gap`` days apart; its
        last try succeeds today and prunes the task's old records (with ``retention`` days, or the
        history's retention)."""
        self.others += 1
        other = self.new_send(f"O{self.others}", count)
        other.run_id = f"O{self.others}-run1"
        other.run_day = self.day
        if retention is not None:
            other.retention = timedelta(days=retention)
        for number in range(tries):
            if number:
                self.day += gap
            last = number == tries - 1
            self.run_try(other, faults=None if last else {0: "5xx"})

    def _step_clear_earlier(self, pick: int = 0, retention: int | None = None) -> None:
        """The user edits the DAG's ``checkpoint_retention`` (to ``retention`` days, or None) and
        clears an earlier run of the task that completed or was abandoned, perhaps pruned since:
        its new try must send nobody twice."""
        earlier = sorted(
            (s for name, s in self.sends.items() if name != self.subject and (s.finished or s.abandoned)),
            key=lambda s: s.name,
        )
        if not earlier:
            return
        send = earlier[pick % len(earlier)]
        self.tags.add("retention-edited")
        send.retention = None if retention is None else timedelta(days=retention)
        self.run_try(send)

    def _step_next_run(self, count: int = 300) -> None:
        """A later run of the task, with its own recipients, becomes the send the steps act on."""
        self.later_runs += 1
        name = f"N{self.later_runs}"
        send = self.new_send(name, count)
        send.run_id = f"{name}-run1"
        self.subject = name

    def _step_abandon(self) -> None:
        """The user gives up the current run, as the README says (after checking in Braze who
        got it): ``delivery.abandon_send`` with the operator's checkpoint and retention. Airflow may still
        retry the task: the following try steps are those retries."""
        from airflow_provider_braze.delivery import abandon_send
        from airflow_provider_braze.exceptions import BrazeError

        send = self.main()
        if send.finished:
            return
        self.tags.add("abandoned")
        try:
            key = abandon_send(
                DAG_ID,
                TASK_ID,
                send.run_id,
                -1,
                checkpoint=self.location,
                checkpoint_retention=send.retention,
            )
        except BrazeError as err:
            self.note(f"abandon_send refused: {err}")
            return
        if self._leaks(key):
            self.found("key-leak", "the API key is in the abandoned record's key")
        send.abandoned.setdefault(send.run_id, self.day)
        send.advice = []

    def _step_edit_record(self, mode: str, drop: list[str] | None = None, pick: int = 0) -> None:
        """A person edits one of the main send's try records by hand."""
        from airflow_provider_braze.delivery import checkpoint_name

        send = self.main()
        name = checkpoint_name(DAG_ID, TASK_ID, send.run_id, -1)
        keys = sorted(k for k in self._raw_keys(name) if "__try" in k)
        if not keys:
            return
        key = keys[pick % len(keys)]
        text = self._raw_read(key)
        if text is None:
            return
        self.tags.add(f"hand-{mode}")
        if mode == "truncate":
            self._raw_write(key, text[: len(text) // 2])
            return
        try:
            record = json.loads(text)
        except ValueError:
            return
        chosen = (
            drop
            if drop is not None
            else _keys_to_drop(record, random.Random(f"{self.seed}-{self.step_index}-{pick}"))
        )
        for k in chosen:
            record.pop(k, None)
        self._raw_write(key, json.dumps(record))

    def _step_edit_recipients(self, mode: str, n: int = 3) -> None:
        send = self.main()
        self.tags.add(f"recipients-{mode}")
        if mode == "remove_poison":
            if send.poison in send.recipients:
                send.recipients.remove(send.poison)
                send.poison = None
        elif mode == "insert":
            at = n % max(1, len(send.recipients))
            send.recipients[at:at] = [f"{send.name}-new{send.try_number}-{i}" for i in range(3)]
        elif mode == "delete":
            at = n % max(1, len(send.recipients))
            del send.recipients[at : at + 3]
        elif mode == "swap" and len(send.recipients) > 2:
            a, b = n % len(send.recipients), (n * 7 + 1) % len(send.recipients)
            send.recipients[a], send.recipients[b] = send.recipients[b], send.recipients[a]

    def _step_advice(self, pick: int = 0) -> None:
        """Do exactly what the last failure's message advised (one piece of it, chosen by ``pick``)."""
        send = self.main()
        if send.finished or not send.advice:
            return
        kind, argument = send.advice[pick % len(send.advice)]
        text = getattr(send, "advice_text", "")
        self.tags.add(f"advice-{kind}")
        if kind == "mark_success":
            send.finished = True
            return
        if kind == "new_run":
            send.runs += 1
            send.run_id = f"{send.name}-run{send.runs}"
            send.run_day = self.day
            send.try_number = 0
            send.real_tries_this_run = 0
            send.named = None
        elif kind == "delete_prefix":
            for key in self._raw_keys(argument):
                self._raw_delete(key)
        elif kind == "delete_named":
            named = _named_record(text)
            if named is None:
                self.note(f"advice to delete a record that it does not name: {text[:200]}")
                return
            self._raw_delete(named)
        elif kind == "at_least_once":
            send.at_least_once = True
        elif kind == "restore":
            if send.first_read is not None:
                send.recipients = list(send.first_read)
        elif kind == "raise_retention":
            send.retention = None
        elif kind == "exclude":
            # Leave out the recipient Braze refused, as the advice says (recipients unchanged).
            if send.poison is None:
                self.note(f"advice to exclude recipients when none was refused: {text[:200]}")
                return
            send.exclude = [send.poison]
        self.after_advice = kind
        self.run_try(send)
        self._check_ledger()

    def _step_mark_success(self) -> None:
        self.main().finished = True

    # -------------------------------------------------------------- the store, by hand

    def _raw_keys(self, prefix: str) -> list[str]:
        if self.spec.store == "variable":
            assert self.fake_variables is not None
            return [k for k in self.fake_variables.values if k.startswith(prefix)]
        if not os.path.isdir(self.folder):
            return []
        return [
            n[: -len(".json")]
            for n in os.listdir(self.folder)
            if n.startswith(prefix) and n.endswith(".json")
        ]

    def _raw_read(self, key: str) -> str | None:
        if self.spec.store == "variable":
            assert self.fake_variables is not None
            return self.fake_variables.values.get(key)
        try:
            with _REAL_OPEN(os.path.join(self.folder, f"{key}.json"), encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            return None

    def _raw_write(self, key: str, text: str) -> None:
        if self.spec.store == "variable":
            assert self.fake_variables is not None
            self.fake_variables.values[key] = text
            return
        with _REAL_OPEN(os.path.join(self.folder, f"{key}.json"), "w", encoding="utf-8") as fh:
            fh.write(text)

    def _raw_delete(self, named: str) -> None:
        if self.spec.store == "variable":
            assert self.fake_variables is not None
            self.fake_variables.values.pop(named, None)
            return
        path = named if named.startswith("/") else os.path.join(self.folder, f"{named}.json")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # -------------------------------------------------------------- after a step, for first_read

    def remember_first_read(self) -> None:
        send = self.main()
        if send.first_read is None and send.try_number >= 1 and send.real_tries_this_run:
            send.first_read = list(send.recipients)


# ------------------------------------------------------------------------------------ helpers


def _capture_log(op: Any, stream: io.StringIO) -> None:
    """Give the operator a logger writing to ``stream`` (Airflow 3.3's operators cache theirs in
    ``_cached_logger``; older LoggingMixin versions in ``_log``)."""
    logger = logging.getLogger(f"braze-sim.{id(stream)}")
    logger.handlers = [logging.StreamHandler(stream)]
    logger.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for name in ("_cached_logger", "_log"):
        with contextlib.suppress(AttributeError, TypeError):
            object.__setattr__(op, name, logger)


_RECORD_DAY = re.compile(r"__(?:try\d{3,}_(\d{8})T\d{12}_[0-9a-f]{8}|done_(\d{8})|abandoned_(\d{8}))$")


def _record_day(suffix: str) -> int | None:
    """The simulated day a record of a send was written (README: the checkpoint's life)."""
    found = _RECORD_DAY.fullmatch(suffix)
    if found is None:
        return None
    text = next(g for g in found.groups() if g)
    return (datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc).date() - BASE.date()).days


def _keys_to_drop(record: dict[str, Any], rng: random.Random) -> list[str]:
    """What a person editing a record by hand removes: one to three keys, either any of them or
    the ones that look like progress (numbers and opaque encoded strings)."""
    keys = sorted(record)
    progress = [
        k
        for k, v in sorted(record.items())
        if (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, str) and len(v) >= 12 and re.fullmatch(r"[A-Za-z0-9+/=]+", v) and not v.isdigit())
    ]
    pool = progress if progress and rng.random() < 0.5 else keys
    return rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))


def _big_error(index: int, n: int) -> dict[str, Any]:
    """A non-fatal error object as Braze might return one: large, nested."""
    return {
        "type": "invalid_recipient",
        "batch": index,
        "n": n,
        "detail": ("recipient could not be messaged; " * 250)[:8000],
        "context": {"recipients": [f"user-{i}" for i in range(40)]},
    }


def _key_echoes(key: str, index: int) -> list[str]:
    """Non-fatal errors echoing the key the way proxies and templates re-encode it."""
    raw = key.encode()
    b64 = base64.b64encode(b"Bearer " + raw).decode()
    return [
        f"batch {index}: token {raw.hex()} rejected",
        f"batch {index}: token {''.join(f'&#{b};' for b in raw)} rejected",
        "batch %d: token %s rejected" % (index, "".join(f"\\u{b:04x}" for b in raw)),  # noqa: UP031
        f"batch {index}: header\n" + "\n".join(b64[i : i + 16] for i in range(0, len(b64), 16)),
    ]


def _key_needles(key: str) -> list[str]:
    raw = key.encode()
    needles = [key.casefold(), raw.hex()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        core = encoded[(4 * shift + 2) // 3 : len(encoded) - 4]
        if len(core) >= 12:
            needles += [core, core.replace("+", "-").replace("/", "_")]
    return needles


def _contains_key(text: str, needles: list[str]) -> bool:
    """Whether ``text`` holds the key: plain, or hex, HTML entities, ``\\u`` escapes, base64 with
    line breaks (in any of these, also once more JSON-escaped)."""
    variants = {text}
    unescaped = re.sub(r"\\\\?u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    variants.add(unescaped)
    variants.add(html.unescape(unescaped))
    for v in list(variants):
        variants.add(re.sub(r"\s+|\\n|\\r", "", v))
    for v in variants:
        low = v.casefold()
        if needles[0] in low or needles[1] in low:  # plain (any case), hex (any case)
            return True
        if any(needle in v for needle in needles[2:]):  # base64 keeps its case
            return True
    return False


# ------------------------------------------------------------------------------------ histories


def random_spec(rng: random.Random) -> Spec:
    store = rng.choice(["variable", "folder", "file_url"])
    spec = Spec(
        store=store,
        recipients=rng.choice([150, 300, 600, 1000, 2000]),
        concurrency=rng.choice([1, 2, 3, 4]),
        retention_days=rng.choice([2, 3, 30, 30]),
        source=rng.choice(["list", "list", "list", "csv", "jsonl"]),
        start_day=0,
    )
    if spec.source != "list" and rng.random() < 0.4:
        spec.bad_row = "empty" if spec.source == "csv" else "surrogate"
    if rng.random() < 0.15:
        spec.poison = rng.randrange(spec.recipients)
    return spec


def random_try(sim: Simulation, rng: random.Random) -> dict[str, Any]:
    """A try's options: a kill, Braze faults, non-fatal errors, store faults."""
    send = sim.main()
    batches = max(1, len(send.recipients) // BATCH)
    options: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.3:
        mode = rng.choice(
            ["send", "store", "midwrite"] if sim.spec.store != "variable" else ["send", "store"]
        )
        n = rng.randint(1, max(2, batches)) if mode == "send" else rng.randint(1, 12)
        options["kill"] = [mode, n, rng.random() < 0.5]
    if rng.random() < 0.35:
        kinds = ["5xx", "429", "drop_before", "drop_after", "unreadable"]
        options["faults"] = {rng.randrange(batches): rng.choice(kinds) for _ in range(rng.randint(1, 3))}
    elif rng.random() < 0.2:
        kind = rng.choice(["rate_limit", "server_error", "drop_before", "drop_after", "unreadable_success"])
        options["sandbox_faults"] = {kind: rng.choice([0.1, 0.3])}
    if rng.random() < 0.1:
        options["nonfatal"] = rng.choice(["objects", "key"])
    if rng.random() < 0.12:
        options["store_faults"] = {rng.choice(["keys", "read", "write"]): rng.randint(1, 4)}
    return options


def random_step(sim: Simulation, rng: random.Random) -> Step:
    send = sim.main()
    retention = sim.spec.retention_days or 30
    if send.advice and rng.random() < 0.6:
        return Step("advice", {"pick": rng.randrange(8)})
    last = sim.steps[-1].kind if sim.steps else ""
    if last == "try" and send.advice and rng.random() < 0.25:
        return Step("days", {"n": 1})  # a retry the next day
    if last == "days" and rng.random() < 0.4:
        return Step("other_run", {"count": rng.choice([50, 100])})
    roll = rng.random()
    if roll < 0.34:
        return Step("try", random_try(sim, rng))
    if roll < 0.44:
        newer = random_try(sim, rng) if rng.random() < 0.3 else {}
        return Step("overlap", {"pause_at": rng.randint(1, 12), "newer": newer})
    if roll < 0.56:
        choices = [1, 1, retention, retention + 1, rng.randint(1, retention + 2)]
        if send.try_days:
            # The public retention rule, aimed at: the oldest try of the send just past it.
            boundary = min(send.try_days) + retention + 1 - sim.day
            if boundary > 0:
                choices += [boundary, boundary]
        return Step("days", {"n": rng.choice(choices)})
    if roll < 0.62:
        return Step("other_run", {"count": rng.choice([50, 100])})
    if roll < 0.70:
        mode = rng.choice(["drop_keys", "drop_keys", "truncate"])
        return Step("edit_record", {"mode": mode, "pick": rng.randrange(4)})
    if roll < 0.78:
        modes = ["insert", "delete", "swap"] + (["remove_poison"] * 3 if send.poison else [])
        return Step("edit_recipients", {"mode": rng.choice(modes), "n": rng.randrange(1000)})
    if roll < 0.86:
        return Step("try", {"dry_run": True} if rng.random() < 0.5 else {"conf_dry_run": True})
    if roll < 0.88:
        return Step("mark_success")
    return Step("try", {})


#: Steps after which another run of the task may have pruned records.
PRUNING = ("days", "other_run", "cross_retention")
#: How often a history goes on into "the weeks after" (:func:`later_step`).
LATER_SHARE = 0.25


def pending_batches(sim: Simulation, send: Send) -> list[int]:
    """The batches of ``send`` with someone not delivered yet (from the sandbox's ledger)."""
    delivered = sim.sandbox.state.deliveries(CAMPAIGN)
    return sorted({i for r, i in sim.batch_of(send).items() if delivered[r] == 0 and r not in send.exclude})


def later_try(sim: Simulation, rng: random.Random) -> dict[str, Any]:
    """A try of the weeks after: more often than not it leaves work for a later one (Braze fails
    a batch still to send), sometimes it is killed."""
    send = sim.main()
    pending = pending_batches(sim, send)
    options: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.65 and pending:
        kinds = ["5xx", "5xx", "429", "drop_before", "drop_after", "unreadable"]
        options["faults"] = {rng.choice(pending): rng.choice(kinds) for _ in range(rng.randint(1, 2))}
    elif roll < 0.75:
        mode = rng.choice(["send", "store"])
        n = rng.randint(1, max(2, len(pending))) if mode == "send" else rng.randint(1, 12)
        options["kill"] = [mode, n, rng.random() < 0.5]
    return options


def retention_days(sim: Simulation) -> int:
    send = sim.main()
    return send.retention.days if send.retention is not None else (sim.spec.retention_days or 30)


def across_retention(sim: Simulation, rng: random.Random) -> int:
    """Days to pass, drawn around the retention boundary R: R-1, R, R+1, the sizes that put one
    of the current run's tries just inside or just past it, and (half the time, when the run was
    tried on several days) a size that puts its older tries past it and its newer ones inside."""
    retention = retention_days(sim)
    days = sorted(set(sim.main().try_days))
    # Today + n - R is the first day kept: past the older of two tries, not past the newer.
    splits = [n for n in (day + retention - sim.day for day in days[1:]) if n > 0]
    if splits and rng.random() < 0.5:
        return rng.choice(splits)
    choices = [retention - 1, retention, retention + 1]
    for day in days:
        choices += [day + retention - sim.day, day + retention + 1 - sim.day]
    return rng.choice([n for n in choices if n > 0] or [1])


def later_step(sim: Simulation, rng: random.Random) -> Step:
    """The weeks after the first steps: the run retried across days, days passing across the
    retention, other runs of the task completing (and pruning), the run given up with
    ``abandon_send``, later runs of the task. Biased by where the run is: a run tried on one
    day or none is tried on several; a run tried on several days sees days pass across the
    retention as another run completes, then a retry."""
    send = sim.main()
    # Drawn from its own stream, so the histories of the fixed seeds stay as they were.
    side = random.Random(f"{sim.seed}-clear-{len(sim.steps)}")
    if sim.sends.keys() - {sim.subject} and side.random() < 0.08:
        return Step("clear_earlier", {"pick": side.randrange(8), "retention": side.choice([None, 45, 90, 2])})
    if send.finished or (send.run_id in send.abandoned and rng.random() < 0.3):
        return Step("next_run", {"count": rng.choice([150, 300])})
    if send.advice and rng.random() < 0.25:
        return Step("advice", {"pick": rng.randrange(8)})
    last = sim.steps[-1].kind if sim.steps else ""
    if last == "days" and rng.random() < 0.7:
        return other_run(sim, rng)
    if last in ("cross_retention", "other_run") and rng.random() < 0.8:
        return Step("try", later_try(sim, rng) if rng.random() < 0.5 else {})
    days_tried = len(set(send.try_days))
    roll = rng.random()
    if roll < 0.1:
        return Step("abandon")
    if roll < 0.2:
        return other_run(sim, rng)
    if roll < 0.3:
        return Step("try", later_try(sim, rng))
    if days_tried >= 2 and roll < 0.9:
        if roll < 0.45:
            return Step("days", {"n": across_retention(sim, rng)})
        args: dict[str, Any] = {"n": across_retention(sim, rng), "count": rng.choice([50, 100])}
        if rng.random() < 0.25:
            args["retention"] = rng.choice([2, 3, 30])
        return Step("cross_retention", args)
    if days_tried < 2 and roll < 0.8:
        tries = rng.randint(2, 3)
        kinds = ["5xx", "5xx", "429", "drop_before", "drop_after", "unreadable"]
        return Step(
            "tries_across_days",
            {
                "gaps": [rng.choice([0, 1])] + [rng.choice([1, 1, 2]) for _ in range(tries - 1)],
                "fail": [rng.choice(kinds) if rng.random() < 0.85 else None for _ in range(tries)],
            },
        )
    n = rng.choice([1, 1, 2, across_retention(sim, rng)])
    return Step("retry_later", {"n": n, "options": later_try(sim, rng)})


def other_run(sim: Simulation, rng: random.Random) -> Step:
    """Another run of the task completes: sometimes after failed tries across days, sometimes with
    another retention than this run's."""
    tries = rng.choice([1, 1, 2, 3])
    args: dict[str, Any] = {"count": rng.choice([50, 100])}
    if tries > 1:
        args.update(tries=tries, gap=rng.choice([0, 1, 1, 2]))
    if rng.random() < 0.25:
        args["retention"] = rng.choice([2, 3, 30])
    return Step("other_run", args)


def first_steps(sim: Simulation, rng: random.Random) -> list[Step]:
    steps = [Step("start")]
    if rng.random() < 0.25:
        dry = rng.random() < 0.3
        steps.append(
            Step(
                "send_id",
                {
                    "dry_run": dry,
                    "lose_answer": not dry and rng.random() < 0.3,
                    "requested": rng.random() < 0.6,
                },
            )
        )
        if steps[-1].args["lose_answer"]:
            steps.append(Step("send_id", {}))
    if rng.random() < 0.15:
        steps.append(Step("try", {"dry_run": True}))
    return steps


def run_history(
    sandbox: Any,
    seed: int | None = None,
    *,
    spec: Spec | None = None,
    steps: list[Step] | None = None,
    length: int | None = None,
    workdir: str | None = None,
) -> Simulation:
    """Run one history: the given ``steps`` (with ``spec``), or random ones from ``seed``.

    Returns the simulation; its ``findings`` list the invariants violated (empty when none).
    """
    rng = random.Random(seed)
    spec = spec or random_spec(rng)
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="braze-sim-")
    sandbox.reset()
    sim = Simulation(sandbox, workdir, spec, seed)
    try:
        with sim.patched():
            if steps is not None:
                for step in steps:
                    sim.do(step)
                    sim.remember_first_read()
            else:
                for step in first_steps(sim, rng):
                    sim.do(step)
                    sim.remember_first_read()
                for _ in range(length or rng.randint(3, 9)):
                    if sim.main().finished:
                        break
                    sim.do(random_step(sim, rng))
                    sim.remember_first_read()
                # The weeks after: drawn after the first steps, which are therefore the same as
                # before this part existed (the seeds of FOUND_BEFORE_THE_FIX replay them).
                if length is None and rng.random() < LATER_SHARE:
                    if rng.random() < 0.5:
                        sim.do(Step("next_run", {"count": rng.choice([150, 300])}))
                    for _ in range(rng.randint(3, 6)):
                        sim.do(later_step(sim, rng))
                        sim.remember_first_read()
                    if sim.steps[-1].kind in PRUNING and not sim.main().finished:
                        sim.do(Step("try"))  # Airflow's retry of the run comes after all
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return sim


def check_history(sandbox: Any, seed: int | None = None, **kwargs: Any) -> Simulation:
    """Like :func:`run_history`, but raises :class:`Violation` (seed, spec, steps) on a finding."""
    sim = run_history(sandbox, seed, **kwargs)
    if sim.findings:
        raise Violation(seed, sim.spec, sim.steps, sim.findings)
    return sim


@dataclass
class Exploration:
    histories: int = 0
    steps: int = 0
    first: dict[str, tuple[int, int, Violation]] = field(default_factory=dict)  # key -> (seed, n, violation)
    counts: Counter[str] = field(default_factory=Counter)


def classify(found: Found) -> str:
    """Which listed break a finding most likely is (by its invariant and the history's tags)."""
    tags = set(found.tags)
    inv = found.invariant
    if inv.startswith("I5"):
        return "7"
    if inv.startswith("I8"):
        return "8"
    if inv in ("spool", "key-leak"):
        return "10"
    if inv.startswith(("I6", "I7")):
        return "5"
    if inv.startswith("I3-doubt"):
        return "4"
    if inv.startswith(("I9", "I3-abandoned")):
        return "abandon"  # a run given up with abandon_send
    if "retention-edited" in tags:
        return "retention"  # a pruned run cleared after its checkpoint_retention was raised
    if inv.startswith("I4"):
        if "advice-delete_named" in tags:
            return "2"  # a damaged record (truncated by a kill mid-write, or by hand) deleted as advised
        if "advice-raise_retention" in tags or "pruned-running-send" in tags:
            return "1"
        return "9"  # a new DAG run, or the records deleted, as advised
    if "pruned-running-send" in tags:
        return "1"
    if "hand-drop_keys" in tags:
        return "3"
    if "poison" in tags:
        return "9"
    return "?"


def explore(sandbox: Any, seed: int, histories: int, *, progress: Any = None) -> Exploration:
    result = Exploration()
    for n in range(histories):
        history_seed = seed + n
        sim = run_history(sandbox, history_seed)
        result.histories += 1
        result.steps += len(sim.steps)
        for f in sim.findings:
            key = f"break {classify(f)}: {f.invariant.split(' ')[0]}"
            result.counts[key] += 1
            if key not in result.first:
                result.first[key] = (history_seed, n + 1, Violation(history_seed, sim.spec, sim.steps, [f]))
                if progress:
                    progress(f"history {n + 1} (seed {history_seed}) found {key}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Explore fault histories of the send operators.")
    parser.add_argument("--histories", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=int, default=None, help="run this one seed and print its history")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    _prepare_airflow_environment()
    from airflow_provider_braze.sandbox import BrazeSandbox

    logging.getLogger("airflow").setLevel(logging.ERROR)
    started = time.monotonic()
    with BrazeSandbox() as sandbox:
        if args.replay is not None:
            sim = run_history(sandbox, args.replay)
            print("\n".join(f"{i}: {s}" for i, s in enumerate(sim.steps)))
            if sim.findings:
                print(Violation(args.replay, sim.spec, sim.steps, sim.findings))
                return 1
            print("no violation")
            return 0
        result = explore(sandbox, args.seed, args.histories, progress=None if args.quiet else print)
    elapsed = time.monotonic() - started
    print(
        f"checked {result.histories} histories, {result.steps} steps, seeds {args.seed}.."
        f"{args.seed + args.histories - 1}, in {elapsed:.0f} s"
    )
    for key, (seed, n, violation) in sorted(result.first.items()):
        print(
            f"\n== {key}: {result.counts[key]} histories; first at seed {seed} (history {n}); "
            f"replay with --replay {seed}"
        )
        print(violation)
    return 1 if result.first else 0


def _prepare_airflow_environment() -> None:
    """What tests/conftest.py sets before Airflow is imported, for a run outside pytest."""
    home = tempfile.mkdtemp(prefix="braze-soak-airflow-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


if __name__ == "__main__":
    sys.exit(main())
