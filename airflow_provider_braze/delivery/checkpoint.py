"""Where a send's progress survives a task retry: checkpoint stores, names and records.

A send's checkpoint is a set of small JSON records under one name (see :func:`checkpoint_name`):

- ``<name>__try<NNN>_<started>_<token>``: one per try, written **only by that try**. It holds
  the facts that try knows: the batches it reserved before sending (``reserved_upto``) and the
  outcome of every batch it sent (one byte per batch, compressed), a few error texts, counters.
  Because no try ever writes another's record, overlapping tries cannot overwrite each other's
  facts; the newest try (highest try number, then latest start) owns the send, and an older try
  that sees a newer record stops dispatching.
- ``<name>__done_<date>``: written once the send is complete; a few hundred bytes with the
  audience fingerprint and the summary. The try records are then deleted.

Reading is strict: a record that is listed but cannot be read, or cannot be parsed, is an error,
never "no checkpoint". Stores list keys and read values through separate calls (Airflow's task
SDK turns a failed Variable read into "not found", but fails a listing loudly), so a missing
record is only ever concluded from a listing that worked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import threading
import zlib
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, Protocol

from airflow_provider_braze.exceptions import BrazeCheckpointError
from airflow_provider_braze.storage import is_url, storage_path

CHECKPOINT_FORMAT = 3
#: The file a local checkpoint folder holds once a try has written there: a retry that finds the
#: folder without it is not looking at the folder earlier tries used.
FOLDER_MARK = ".braze-checkpoints"
#: How the key of a rehearsal's probe (:attr:`Checkpoint.probe_key`) ends.
PROBE_SUFFIX = "__rehearsal"
#: How the key of a task's pruning record (:meth:`Checkpoint.pruned_through`) ends, after the
#: task's prefix (no run's record key is that short).
PRUNED_THROUGH = "pruned_through"
#: How long the record of a send is kept after its last try started or it completed.
DEFAULT_RETENTION = timedelta(days=30)
#: Error texts kept per try record (the rest are in that try's log).
ERRORS_KEPT = 10
#: Longest error text kept in a record.
ERROR_CHARS = 300


class Outcome(IntEnum):
    """What one batch's byte in a try record's outcomes means (and, merged over every try, what
    is known of the batch)."""

    #: This try has not sent it (and, below its ``reserved_upto``, may be about to).
    NOT_TRIED = 0
    #: Braze confirmed it (2xx, readable).
    DONE = 1
    #: Failed before Braze processed it (5xx, connection refused, 429): safe to send again.
    NOT_SENT = 2
    #: Braze refused it (4xx): nothing was sent; safe to send again once fixed.
    REFUSED = 3
    #: Sent, and Braze may or may not have processed it (read timeout, dropped connection, 504,
    #: unreadable 2xx): never sent again unless ``at_least_once``.
    IN_DOUBT = 4
    #: Merged views only: reserved by a try that recorded no outcome for it, so it may have gone
    #: out: in doubt too.
    RESERVED = 5
    #: This try decided not to send it (done or in doubt in an earlier try): its reservation does
    #: not cover it.
    SKIPPED = 6


_NAME_PART = re.compile(r"[^A-Za-z0-9_.-]+")
_TRY_SUFFIX = re.compile(r"__try(\d{3,})_(\d{8}T\d{12})_([0-9a-f]{8})$")
_DONE_SUFFIX = re.compile(r"__done_(\d{8})$")
_ABANDONED_SUFFIX = re.compile(r"__abandoned_(\d{8})$")
#: Any record of a send, and the name of the send (the run) it belongs to.
_RECORD = re.compile(
    r"^(?P<name>.+?)(?:__try\d{3,}_(?P<try>\d{8})T\d{12}_[0-9a-f]{8}|__done_(?P<done>\d{8})"
    r"|__abandoned_(?P<abandoned>\d{8}))$"
)


def utcnow() -> datetime:
    """The current UTC time, for every date the checkpoint keeps or compares (one clock, so a
    simulation can move it across days)."""
    return datetime.now(timezone.utc)


def _readable(text: str, limit: int) -> str:
    return _NAME_PART.sub("_", text)[:limit].strip("_") or "x"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def task_prefix(dag_id: str, task_id: str, kind: str = "send") -> str:
    """The start shared by the checkpoint names of every run of one task (and no other task).

    :param kind: ``send`` (a send's delivery records) or ``send_id`` (what CreateSendIdOperator
        created).
    """
    return (
        f"braze_{kind}__{_readable(dag_id, 40)}__{_readable(task_id, 40)}__{_digest(dag_id, task_id)[:10]}__"
    )


def checkpoint_name(dag_id: str, task_id: str, run_id: str, map_index: int, kind: str = "send") -> str:
    """The name of one task instance's records, whatever its try: a readable prefix, then a digest
    of the whole identity, so two task instances never share a name (``newsletter__eu``/``send``
    and ``newsletter``/``eu__send``, or run IDs ``run:1`` and ``run+1``, differ by their digest)."""
    return (
        f"{task_prefix(dag_id, task_id, kind)}{_readable(run_id, 48)}__{map_index}__"
        f"{_digest(dag_id, task_id, run_id, map_index)[:16]}"
    )


def checkpoint_store(location: Any, log: Any = None) -> CheckpointStore:
    """The store for an operator's ``checkpoint`` argument: ``"variable"`` (Airflow Variables),
    None (memory: nothing survives a retry), an ObjectStoragePath or its URL (``file:///abs``,
    ``file://localhost/abs``, ``s3://...``), or an absolute local folder. Anything else, which
    could only resolve differently on another worker, is a BrazeValidationError."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if location is None:
        if log is not None:
            log.warning("checkpoint=None: nothing is remembered across task retries.")
        return MemoryCheckpointStore()
    if location == "variable":
        return VariableCheckpointStore()
    folder = _folder_location(location)
    if folder is None:
        raise BrazeValidationError(
            f"checkpoint must be 'variable' (the default), None, an absolute folder path every "
            f"worker can reach, or an ObjectStoragePath URL such as 's3://bucket/prefix'; got "
            f"{location!r}. (A relative path would depend on the worker's current folder.)"
        )
    return ObjectStorageCheckpointStore(folder)


def _folder_location(location: Any) -> Any:
    """``location`` as a folder every worker could reach, or None if it is not one: never a
    ``file://`` URL whose path would be read as relative, never ``memory://`` (one process)."""
    from urllib.parse import urlsplit

    if is_url(location) or hasattr(location, "protocol"):
        text = location if isinstance(location, str) else str(location)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "memory":
            return None
        if scheme in ("file", "local"):
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                return None
            return parts.path if isinstance(location, str) else location
        return location
    if isinstance(location, (str, os.PathLike)) and os.path.isabs(os.fspath(location)):
        return location
    return None


def retention_of(value: Any) -> timedelta | None:
    """An operator's ``checkpoint_retention``: a timedelta, seconds, or None (keep forever)."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        value = timedelta(seconds=value)
    if isinstance(value, timedelta) and value >= timedelta(0):
        return value
    raise BrazeValidationError(
        f"checkpoint_retention must be a timedelta, a number of seconds (not negative) or None, "
        f"got {value!r}."
    )


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ stores


class CheckpointStore(Protocol):
    """Keeps checkpoint records by key, reachable from every worker that may run a retry."""

    def keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``; raises BrazeCheckpointError if it cannot list."""
        ...

    def read(self, key: str) -> dict[str, Any] | None:
        """The record, or None if it no longer exists; raises BrazeCheckpointError if it exists
        but cannot be read or parsed."""
        ...

    def write(self, key: str, record: dict[str, Any]) -> int:
        """Store the record (replacing any); return the bytes written. Raises BrazeCheckpointError."""
        ...

    def delete(self, key: str) -> None: ...

    def describe(self, key: str | None = None) -> str: ...

    def missing_location(self) -> str | None:
        """Why the store's location cannot hold earlier records (a folder that does not exist),
        or None when it can, or when the store cannot tell."""
        ...

    def remove_leftovers(self, prefix: str) -> None:
        """Remove what an interrupted write may have left for keys starting with ``prefix``."""
        ...

    def create_location(self) -> None:
        """Create the store's location if it can be missing (a local folder); raises
        BrazeCheckpointError if it cannot be created."""
        ...


def _encode(record: dict[str, Any], key: str) -> str:
    """The record as stored: canonical JSON with its own key and a digest of its contents, so
    that any edit or truncation, or a record copied or renamed under another key, is found when
    it is read back (:func:`_decode`)."""
    body = {**{k: v for k, v in record.items() if k != "digest"}, "key": key}
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return json.dumps(
        {**body, "digest": hashlib.sha256(canonical.encode()).hexdigest()},
        separators=(",", ":"),
        sort_keys=True,
    )


#: What every refusal of a record that cannot be trusted advises. Never "delete it": deleting
#: a record forgets what it says was sent, and the next try would send it again.
_UNTRUSTED_ADVICE = (
    "Sending was refused rather than guessed: what earlier tries sent cannot be known from it. "
    "Check in Braze who received the message, then mark the task as successful or failed. "
    "(Restoring an older copy of the record would forget what was sent after it was taken.)"
)


def _decode(text: Any, where: str, key: str) -> dict[str, Any]:
    """A stored record, checked against its digest: an edited, truncated or foreign record is an
    error, never repaired with defaults."""
    try:
        value = json.loads(text) if isinstance(text, (str, bytes)) else text
    except ValueError as err:
        raise BrazeCheckpointError(
            f"The {where} is not valid JSON ({err}); it was damaged or not written by this "
            f"provider. {_UNTRUSTED_ADVICE}"
        ) from None
    if not isinstance(value, dict):
        raise BrazeCheckpointError(
            f"The {where} does not hold a checkpoint record (a JSON object). {_UNTRUSTED_ADVICE}"
        )
    stored = value.get("digest")
    body = {k: v for k, v in value.items() if k != "digest"}
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True)
    if not isinstance(stored, str) or stored != hashlib.sha256(canonical.encode()).hexdigest():
        raise BrazeCheckpointError(
            f"The {where} was edited or damaged: "
            + ("it has no digest" if stored is None else "its digest does not match its contents")
            + f". {_UNTRUSTED_ADVICE}"
        )
    if body.get("key") != key:
        raise BrazeCheckpointError(
            f"The {where} was written under another name ({body.get('key')!r}): it was copied or "
            f"renamed by hand, and says nothing of this send. {_UNTRUSTED_ADVICE}"
        )
    return body


class VariableCheckpointStore:
    """Keeps records in Airflow Variables (the metadata database), reachable from every worker.

    Needs a running Airflow task (the task SDK talks to the API server).
    """

    description = "Braze send checkpoint (airflow-provider-braze)"

    def keys(self, prefix: str) -> list[str]:
        from airflow.sdk import Variable

        try:
            return [str(key) for key in list(Variable.keys(prefix=prefix))]
        except Exception as err:
            raise self._unreachable(f"list the checkpoint Variables starting with {prefix!r}", err) from err

    def read(self, key: str) -> dict[str, Any] | None:
        from airflow.sdk import Variable

        try:
            # The task SDK answers the default both when the Variable is missing and when it could
            # not be read (API unreachable, value that cannot be decrypted), so None is checked
            # against a listing, which fails loudly.
            text = Variable.get(key, default=None)
        except Exception as err:
            raise self._unreachable(f"read the checkpoint Variable {key!r}", err) from err
        if text is None:
            if key in self.keys(key):
                raise BrazeCheckpointError(
                    f"The checkpoint Variable {key!r} exists but could not be read (the Airflow API "
                    "server did not answer, a secrets backend failed, or its value cannot be "
                    "decrypted). Sending was refused: starting over could send every recipient "
                    "again. Fix the cause and retry the task; the checkpoint is left as it is."
                )
            return None
        return _decode(text, f"checkpoint Variable {key!r}", key)

    def write(self, key: str, record: dict[str, Any]) -> int:
        from airflow.sdk import Variable

        text = _encode(record, key)
        try:
            Variable.set(key, text, description=self.description)
        except Exception as err:
            raise self._unreachable(f"write the checkpoint Variable {key!r}", err) from err
        return len(text.encode())

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        try:
            Variable.delete(key)
        except Exception as err:
            raise self._unreachable(f"delete the checkpoint Variable {key!r}", err) from err

    def describe(self, key: str | None = None) -> str:
        return f"Airflow Variable {key!r}" if key else "Airflow Variables"

    def missing_location(self) -> str | None:
        return None  # the metadata database is always there; a failed listing raises

    def remove_leftovers(self, prefix: str) -> None:
        return None  # Variables are written in one step

    def create_location(self) -> None:
        return None

    @staticmethod
    def _unreachable(action: str, err: Exception) -> BrazeCheckpointError:
        return BrazeCheckpointError(
            f"Cannot {action} ({type(err).__name__}: {err}). Variables need a running Airflow task; "
            "outside one, pass checkpoint=<a folder or ObjectStoragePath URL>."
        )


class ObjectStorageCheckpointStore:
    """Keeps records as JSON files in a folder: a local path or any ObjectStoragePath URL
    (``s3://bucket/prefix``, ``gs://``...). Every worker that may run a retry must reach it."""

    def __init__(self, folder: Any) -> None:
        folder = storage_path(folder)
        if getattr(folder, "protocol", None) in ("file", "local"):
            # A local ObjectStoragePath (file://) is a local folder: written through the same
            # write-then-rename as a plain path, since fsspec's local writes are in place and a
            # kill mid-write would leave half a record.
            folder = folder.path
        self.folder = folder
        self._marked = False

    def _mark(self) -> None:
        """Create the local folder if needed, with the file that says records are written here."""
        folder = os.fspath(self.folder)
        os.makedirs(folder, exist_ok=True)
        mark = os.path.join(folder, FOLDER_MARK)
        if not os.path.exists(mark):
            with open(mark, "w", encoding="utf-8") as fh:
                fh.write("Checkpoint records of airflow-provider-braze sends are kept here.\n")
        self._marked = True

    @property
    def _local(self) -> bool:
        return isinstance(self.folder, (str, os.PathLike))

    def _path(self, key: str) -> Any:
        if self._local:
            return os.path.join(os.fspath(self.folder), f"{key}.json")
        return self.folder / f"{key}.json"

    def keys(self, prefix: str) -> list[str]:
        try:
            if self._local:
                folder = os.fspath(self.folder)
                names = os.listdir(folder) if os.path.isdir(folder) else []
            else:
                names = [p.name for p in self.folder.iterdir()] if self.folder.exists() else []
        except Exception as err:
            raise BrazeCheckpointError(f"Cannot list the checkpoint folder {self.folder}: {err}") from err
        return sorted(n[: -len(".json")] for n in names if n.startswith(prefix) and n.endswith(".json"))

    def read(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            if self._local:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            else:
                text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except Exception as err:
            raise BrazeCheckpointError(
                f"Cannot read the checkpoint file {path}: {err}. Sending was refused: starting over "
                "could send every recipient again."
            ) from err
        return _decode(text, f"checkpoint file {path}", key)

    def write(self, key: str, record: dict[str, Any]) -> int:
        path = self._path(key)
        text = _encode(record, key)
        try:
            if self._local:
                # Write then rename, so a kill mid-write never leaves half a record (a kill may
                # leave the temporary file, removed later by remove_leftovers).
                if not self._marked:
                    self._mark()
                temporary = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
                with open(temporary, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(temporary, path)
            else:
                # An object store (s3://, gs://...) replaces an object in one step.
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        except Exception as err:
            raise BrazeCheckpointError(f"Cannot write the checkpoint file {path}: {err}") from err
        return len(text.encode())

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if self._local:
                os.unlink(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except Exception as err:
            raise BrazeCheckpointError(f"Cannot delete the checkpoint file {path}: {err}") from err

    def describe(self, key: str | None = None) -> str:
        return f"checkpoint file {self._path(key)}" if key else f"checkpoint folder {self.folder}"

    def missing_location(self) -> str | None:
        if not self._local:
            return None  # an object store has no folders: an empty prefix looks like a new one
        folder = os.fspath(self.folder)
        if not os.path.isdir(folder):
            return f"the checkpoint folder {self.folder} does not exist"
        if not os.path.exists(os.path.join(folder, FOLDER_MARK)):
            # An unmounted volume's mount point is an empty folder that exists.
            return (
                f"the checkpoint folder {self.folder} has no {FOLDER_MARK} file, which every try "
                "that writes there leaves (an unmounted volume's empty mount point, or another folder)"
            )
        return None

    def create_location(self) -> None:
        if not self._local:
            return  # an object store has no folders to create
        try:
            self._mark()
        except OSError as err:
            raise BrazeCheckpointError(
                f"Cannot create the checkpoint folder {self.folder}: {err}. Nothing was sent."
            ) from err

    def remove_leftovers(self, prefix: str) -> None:
        if not self._local:
            return
        folder = os.fspath(self.folder)
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


class MemoryCheckpointStore:
    """Keeps records in this process only: no protection across task retries (``checkpoint=None``)."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.records if k.startswith(prefix))

    def read(self, key: str) -> dict[str, Any] | None:
        text = self.records.get(key)
        return None if text is None else _decode(text, f"checkpoint {key!r}", key)

    def write(self, key: str, record: dict[str, Any]) -> int:
        self.records[key] = _encode(record, key)
        return len(self.records[key].encode())

    def delete(self, key: str) -> None:
        self.records.pop(key, None)

    def describe(self, key: str | None = None) -> str:
        return "memory (not kept across task retries)"

    def missing_location(self) -> str | None:
        return None

    def remove_leftovers(self, prefix: str) -> None:
        return None

    def create_location(self) -> None:
        return None


# ------------------------------------------------------------------------------------ records


def encode_outcomes(outcomes: bytearray) -> str:
    return base64.b64encode(zlib.compress(bytes(outcomes), 9)).decode("ascii")


def decode_outcomes(text: str, where: str) -> bytearray:
    try:
        return bytearray(zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True)))
    except (ValueError, zlib.error) as err:
        raise BrazeCheckpointError(f"The batch outcomes in {where} are damaged ({err}).") from None


@dataclass
class TryStats:
    """What one try counted, kept in its record (and summed over tries in the summary)."""

    accepted: int = 0
    #: Recipients left out (``exclude_recipients``) of batches this try sent and Braze confirmed.
    excluded: int = 0
    resent_in_doubt: int = 0
    dispatch_count: int = 0
    batches_with_non_fatal_errors: int = 0
    dispatch_ids: list[str] = field(default_factory=list)
    schedule_ids: list[str] = field(default_factory=list)
    non_fatal_errors: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> TryStats:
        """Counts and lists from a record, every one required and of its type."""
        if not isinstance(data, dict):
            raise TypeError(f"stats is a {type(data).__name__}, not an object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                raise TypeError(f"stats.{f.name} is missing")
            value = data[f.name]
            wanted = list if f.name in ("dispatch_ids", "schedule_ids", "non_fatal_errors") else int
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise TypeError(f"stats.{f.name} is {value!r}")
            values[f.name] = list(value) if isinstance(value, list) else value
        return cls(**values)


@dataclass
class TryRecord:
    """What one try of a send knows, as stored in its own record."""

    key: str
    try_number: int
    started: str  # UTC, ``YYYYMMDDTHHMMSSffffff``
    token: str
    send: dict[str, Any]
    audience: dict[str, Any]
    state: str = "running"  # running, ended, stopped, superseded
    reserved_upto: int = 0
    outcomes: bytearray = field(default_factory=bytearray)
    errors: list[dict[str, Any]] = field(default_factory=list)
    stats: TryStats = field(default_factory=TryStats)
    seq: int = 0
    updated_at: str = ""

    @property
    def order(self) -> tuple[int, str, str]:
        """Newer tries sort later: by try number, then start time, then token."""
        return (self.try_number, self.started, self.token)

    def outcome(self, index: int) -> int:
        return Outcome(self.outcomes[index]) if index < len(self.outcomes) else Outcome.NOT_TRIED

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": "try",
            "try": self.try_number,
            "started": self.started,
            "token": self.token,
            "send": self.send,
            "audience": self.audience,
            "state": self.state,
            "reserved_upto": self.reserved_upto,
            "outcomes": encode_outcomes(self.outcomes),
            "errors": self.errors,
            "stats": self.stats.to_json(),
            "seq": self.seq,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any], where: str) -> TryRecord:
        """Strict: every field is required and of its type (the digest already proved the record
        is as written; this refuses one written by something else)."""
        try:
            record = cls(
                key=key,
                try_number=_typed(data["try"], int),
                started=_typed(data["started"], str),
                token=_typed(data["token"], str),
                send=_typed(data["send"], dict),
                audience=_typed(data["audience"], dict),
                state=_typed(data["state"], str),
                reserved_upto=_typed(data["reserved_upto"], int),
                outcomes=decode_outcomes(_typed(data["outcomes"], str), where),
                errors=_typed(data["errors"], list),
                stats=TryStats.from_json(data["stats"]),
                seq=_typed(data["seq"], int),
                updated_at=_typed(data["updated_at"], str),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise BrazeCheckpointError(
                f"The {where} is not a complete try record ({err!r}). {_UNTRUSTED_ADVICE}"
            ) from None
        if record.reserved_upto < 0 or any(b > max(Outcome) for b in record.outcomes):
            raise BrazeCheckpointError(f"The {where} holds impossible values. {_UNTRUSTED_ADVICE}")
        return record


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


@dataclass
class Loaded:
    """A send's records as read at one moment."""

    done: dict[str, Any] | None = None
    done_key: str | None = None
    #: Set when the send was abandoned (:func:`abandon_send`): nothing may be sent any more.
    abandoned: dict[str, Any] | None = None
    abandoned_key: str | None = None
    tries: list[TryRecord] = field(default_factory=list)
    #: Keys of try records, including ones that vanished between listing and reading.
    try_keys: list[str] = field(default_factory=list)


class Checkpoint:
    """The records of one send in a store, and the rules for reading, writing and pruning them.

    :param store: Where the records are kept.
    :param name: The send's name (:func:`checkpoint_name`).
    :param prune_prefix: The names of the task's other sends start with it (:func:`task_prefix`).
    """

    def __init__(self, store: CheckpointStore, name: str, *, prune_prefix: str | None = None) -> None:
        self.store = store
        self.name = name
        self.prune_prefix = prune_prefix

    def describe(self, key: str | None = None) -> str:
        """One record (``key``), or where all of this send's records are."""
        if key is not None:
            return self.store.describe(key)
        return f"{self.store.describe()}, records starting with {self.name!r}"

    def try_key(self, try_number: int, started: str, token: str) -> str:
        return f"{self.name}__try{try_number:03d}_{started}_{token}"

    def done_key(self, day: date) -> str:
        return f"{self.name}__done_{day:%Y%m%d}"

    def abandoned_key(self, day: date) -> str:
        return f"{self.name}__abandoned_{day:%Y%m%d}"

    @property
    def probe_key(self) -> str:
        """The record a rehearsal writes and deletes to prove the store is writable; a rehearsal
        killed in between leaves it, and the run's completion or pruning removes it."""
        return f"{self.name}{PROBE_SUFFIX}"

    def own_keys(self) -> list[str]:
        """The keys of this send's records (a listing that fails raises)."""
        prefix = f"{self.name}__"
        return [
            k
            for k in self.store.keys(prefix)
            if _TRY_SUFFIX.fullmatch(k[len(self.name) :])
            or self._is_done(k)
            or _ABANDONED_SUFFIX.fullmatch(k[len(self.name) :])
        ]

    def _is_done(self, key: str) -> bool:
        return bool(_DONE_SUFFIX.fullmatch(key[len(self.name) :]))

    @staticmethod
    def order_of(key: str) -> tuple[int, str, str] | None:
        found = _TRY_SUFFIX.search(key)
        return (int(found.group(1)), found.group(2), found.group(3)) if found else None

    def load(self, *, keys: list[str] | None = None) -> Loaded:
        """Read every record of this send; strict (see the module docstring)."""
        loaded = Loaded()
        for key in sorted(keys if keys is not None else self.own_keys()):
            where = self.describe(key)
            if self._is_done(key) or _ABANDONED_SUFFIX.fullmatch(key[len(self.name) :]):
                record = self.store.read(key)
                if record is None:
                    continue
                kind = "done" if self._is_done(key) else "abandoned"
                if record.get("kind") != kind or record.get("format") != CHECKPOINT_FORMAT:
                    raise BrazeCheckpointError(
                        f"The {where} is named as a {kind} record but holds kind "
                        f"{record.get('kind')!r}, format {record.get('format')!r}. {_UNTRUSTED_ADVICE}"
                    )
                if kind == "done":
                    loaded.done, loaded.done_key = record, key
                else:
                    loaded.abandoned, loaded.abandoned_key = record, key
                continue
            loaded.try_keys.append(key)
            record = self.store.read(key)
            if record is None:
                continue  # deleted since the listing: a try completed the send (its done record says)
            if record.get("format") != CHECKPOINT_FORMAT:
                raise BrazeCheckpointError(
                    f"The {where} has format {record.get('format')!r}, not this provider's "
                    f"{CHECKPOINT_FORMAT}; it was written by another version. Sending was refused."
                )
            if record.get("kind") != "try":
                raise BrazeCheckpointError(
                    f"The {where} is named as a try's record but holds kind {record.get('kind')!r}; "
                    "it was not written by this provider or was edited. Sending was refused."
                )
            loaded.tries.append(TryRecord.from_json(key, record, where))
        if loaded.done is None and any(self._is_done(k) for k in (keys or [])):
            # Listed as done but gone: pruned between listing and reading. Read again.
            return self.load()
        return loaded

    def prune(self, retention: timedelta, today: date, *, limit: int = 100) -> list[str]:
        """Delete the records of this task's other sends (runs) that are over: a run's records go
        together, only when the run completed (a done record) or was abandoned, and its newest
        record is older than ``retention``. An incomplete run is kept, whatever its age: a retry
        of it must find what its earlier tries sent. At most ``limit`` runs a call.

        Within a run the try records go first and the done or abandoned record last, so a prune
        cut short leaves a run that still reads as complete (or abandoned), never as a fresh
        start or a partial set of tries.

        :return: The names of the runs pruned.
        """
        if self.prune_prefix is None:
            return []
        cutoff = today - retention
        self.store.remove_leftovers(self.prune_prefix)
        keys = self.store.keys(self.prune_prefix)
        runs = group_by_run(keys)
        probes = {k[: -len(PROBE_SUFFIX)]: k for k in keys if k.endswith(PROBE_SUFFIX)}
        doomed = []
        for name, records in sorted(runs.items()):
            if name == self.name or not run_is_over(records) or newest_day(records) >= cutoff:
                continue
            if not self._own_retention_passed(records, today):
                continue
            doomed.append(name)
            if len(doomed) >= limit:
                break
        if not doomed:
            return []
        # Raised before anything is deleted: a prune cut short never hides a pruned run.
        self._raise_pruned_through(max(newest_day(runs[name]) for name in doomed))
        for name in doomed:
            records = runs[name]
            if name in probes:
                self.store.delete(probes[name])  # a killed rehearsal's, not a record: goes first
            for key in sorted(records, key=lambda k: records[k][0] != "try"):
                self.store.delete(key)
        return doomed

    @property
    def pruned_through_key(self) -> str | None:
        """The task's one record of how far pruning went (:meth:`pruned_through`)."""
        return None if self.prune_prefix is None else f"{self.prune_prefix}{PRUNED_THROUGH}"

    def pruned_through(self) -> date | None:
        """The newest day of any run of this task whose records were pruned, or None if none was.

        A run that finds no records may be one whose records were pruned after it completed or
        was abandoned: every run due on or before this day is treated so, whatever the retention
        says now (a retention raised, or set to None, since the pruning must not make a pruned
        run look fresh and send again).
        """
        key = self.pruned_through_key
        if key is None:
            return None
        record = self.store.read(key)
        if record is None:
            return None
        day = _day(str(record.get("day")))
        if record.get("kind") != "pruned" or record.get("format") != CHECKPOINT_FORMAT or day is None:
            raise BrazeCheckpointError(
                f"The {self.describe(key)} is not a pruning record this provider wrote. {_UNTRUSTED_ADVICE}"
            )
        return day

    def _raise_pruned_through(self, day: date) -> None:
        key = self.pruned_through_key
        assert key is not None
        current = self.pruned_through()
        if current is not None and current >= day:
            return
        self.store.write(key, {"format": CHECKPOINT_FORMAT, "kind": "pruned", "day": f"{day:%Y%m%d}"})

    def _own_retention_passed(self, records: dict[str, tuple[str, date]], today: date) -> bool:
        """Whether a completed or abandoned run is also past the retention it was sent with (kept
        in its done or abandoned record): a later run with a shorter retention must not prune what
        a longer one protects, or a retry of that run would find nothing and send again."""
        for key in sorted(key for key, (kind, _) in records.items() if kind != "try"):
            try:
                record = self.store.read(key)
            except BrazeCheckpointError:
                return False  # unreadable: kept, as a retry would refuse it anyway
            if record is None:
                continue  # gone since the listing
            if "retention_seconds" not in record:
                return False
            seconds = record["retention_seconds"]
            if seconds is None:
                return False  # sent with retention None: kept for ever
            if newest_day(records) >= today - timedelta(seconds=float(seconds)):
                return False
        return True

    def stale_incomplete_runs(self, retention: timedelta, today: date) -> list[str]:
        """This task's other runs whose send is incomplete and whose newest record is older than
        ``retention``: kept until completed or abandoned (:func:`abandon_send`)."""
        if self.prune_prefix is None:
            return []
        cutoff = today - retention
        runs = group_by_run(self.store.keys(self.prune_prefix))
        return sorted(
            name
            for name, records in runs.items()
            if name != self.name and not run_is_over(records) and newest_day(records) < cutoff
        )


def group_by_run(keys: list[str]) -> dict[str, dict[str, tuple[str, date]]]:
    """Record keys by the send (run) they belong to: ``{name: {key: (kind, day)}}`` with kind
    ``try``, ``done`` or ``abandoned``. Keys that are not records (a write's leftovers, a
    rehearsal's probe) are left out."""
    runs: dict[str, dict[str, tuple[str, date]]] = {}
    for key in keys:
        found = _RECORD.match(key)
        if found is None:
            continue
        kind = next(k for k in ("try", "done", "abandoned") if found.group(k))
        day = _day(found.group(kind))
        if day is None:
            continue
        runs.setdefault(found.group("name"), {})[key] = (kind, day)
    return runs


def run_is_over(records: dict[str, tuple[str, date]]) -> bool:
    """Whether a run's send completed or was abandoned."""
    return any(kind != "try" for kind, _ in records.values())


def newest_day(records: dict[str, tuple[str, date]]) -> date:
    return max(day for _, day in records.values())


def _run_and_map(rest: str) -> str:
    """``<run> (map index <m>)`` from a send name's part after the task prefix (the run as its
    readable, possibly shortened, form)."""
    run, map_index, _ = rest.rsplit("__", 2)
    return f"{run} (map index {map_index})"


def abandon_send(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int = -1,
    *,
    checkpoint: Any = "variable",
    checkpoint_retention: Any = DEFAULT_RETENTION,
) -> str:
    """Give up an incomplete send for good: no later try of that task instance sends anything
    (each refuses, naming this record and the batches not delivered), and its records are pruned
    with the task's other runs once older than its retention. Use it after checking in Braze who
    received the message, for a send you will not complete; run it where the checkpoint is
    reachable (for ``"variable"``, inside an Airflow task).

    :param checkpoint: The send operator's ``checkpoint`` argument.
    :param checkpoint_retention: The send operator's ``checkpoint_retention`` argument: the
        records are kept at least this long (a later run with a shorter retention does not prune
        them sooner, or a retry of the abandoned run would find nothing and send again).
    :return: The key of the abandoned record.
    :raises BrazeCheckpointError: the send already completed, has no record (nothing was sent:
        a mistyped identity), the checkpoint folder does not exist or was never written by a
        send, or the records cannot be read.
    """
    retention = retention_of(checkpoint_retention)
    store = checkpoint_store(checkpoint)
    missing = store.missing_location()
    if missing is not None:
        # Writing there would record the abandonment where no try of that send looks (a typo, an
        # unmounted volume), and leave the real run retryable.
        raise BrazeCheckpointError(
            f"Cannot abandon the send of {dag_id}.{task_id} in run {run_id!r}: {missing}. "
            "Pass the send operator's checkpoint argument exactly."
        )
    prefix = task_prefix(dag_id, task_id)
    target = Checkpoint(store, checkpoint_name(dag_id, task_id, run_id, map_index), prune_prefix=prefix)
    loaded = target.load()
    if loaded.done is None and loaded.abandoned is None and not loaded.try_keys:
        # A mistyped run ID or map index would be abandoned while the real run stays retryable.
        others = sorted(_run_and_map(name[len(prefix) :]) for name in group_by_run(store.keys(prefix)))
        raise BrazeCheckpointError(
            f"Cannot abandon the send of {dag_id}.{task_id} in run {run_id!r} (map index {map_index}): "
            f"{store.describe()} holds no record of it, so none of its tries sent anything. Check "
            "dag_id, task_id, run_id and map_index"
            + (
                f"; this task's runs with records are {', '.join(others[:5])}"
                + (", ..." if len(others) > 5 else "")
                if others
                else "; this task has no records there"
            )
            + "."
        )
    if loaded.done is not None:
        raise BrazeCheckpointError(
            f"The send of {dag_id}.{task_id} in run {run_id!r} completed "
            f"({target.describe(loaded.done_key)}): there is nothing to abandon."
        )
    if loaded.abandoned_key is not None:
        return loaded.abandoned_key
    now = utcnow()
    key = target.abandoned_key(now.date())
    store.write(
        key,
        {
            "format": CHECKPOINT_FORMAT,
            "kind": "abandoned",
            "at": now.isoformat(timespec="seconds"),
            "tries": [r.try_number for r in loaded.tries],
            "retention_seconds": None if retention is None else retention.total_seconds(),
        },
    )
    return key
