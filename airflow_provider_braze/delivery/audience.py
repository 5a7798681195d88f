"""The recipients of one send, read once, checked, de-duplicated and fingerprinted before anything
is sent.

One pass over the source (a list, an iterable, a CSV or JSON-lines file at any ObjectStoragePath)
checks every recipient, writes them to a private spool file on local disk, hashes them in order,
and notes whose identity occurs more than once. Sending then reads the spool, never the source
again: a generator can be read only once, and a file that changes while the send runs cannot
change what this try sends.

The fingerprint (a SHA-256 over the recipients in order, with intermediate values at up to 64
evenly spaced points) lets a later try prove, before it sends anything, that it reads exactly
the recipients the earlier try read, and say where they differ when they do not.

Memory stays flat: the spool is on disk, and finding duplicates keeps 8 bytes per recipient
(a 64-bit hash) during the pass, then only the identities that really repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from array import array
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.recipients import iter_recipients, recipient_key
from airflow_provider_braze.validation import MAX_RECIPIENTS_PER_REQUEST

if TYPE_CHECKING:
    from collections.abc import Generator, Hashable

    from airflow_provider_braze.recipients import RecipientKind

#: Recipients per request; the engine's batches.
BATCH_SIZE = MAX_RECIPIENTS_PER_REQUEST
#: Recipients per spool line, and per step of the fingerprint.
CHUNK_SIZE = 50
#: Intermediate fingerprint values kept to locate a change (evenly spaced).
MAX_MARKS = 64
#: Duplicate examples named in the log.
_EXAMPLES = 5
_PARTITIONS = 256


def recipient_identity(recipient: Any) -> Hashable:
    """Who a recipient is, for finding duplicates: an external user ID, an alias or an email.

    Two entries with the same identity are the same person (whatever else they carry, such as
    different ``trigger_properties``), so sending both would message that person twice. Email
    addresses are compared without regard to case.
    """
    if type(recipient) is str:
        return recipient
    if "user_alias" in recipient:
        alias = recipient["user_alias"]
        return ("alias", alias["alias_label"], alias["alias_name"])
    if "alias_name" in recipient:
        return ("alias", recipient["alias_label"], recipient["alias_name"])
    if "email" in recipient:
        # One inbox, however its address is capitalised: mail providers ignore case.
        return ("email", str(recipient["email"]).strip().casefold())
    return str(recipient["external_user_id"])


class Audience:
    """The checked recipients of one send, spooled to local disk; use as a context manager (or
    call :meth:`close`) so the spool is removed.

    Build one with :func:`read_audience` (or :meth:`broadcast_audience`).
    """

    def __init__(
        self,
        *,
        read: int,
        unique: int,
        digest: str,
        marks: list[tuple[int, str]],
        spool: str | None,
        duplicate_hashes: frozenset[int] = frozenset(),
        deduplicate: bool = True,
        broadcast: bool = False,
        duplicate_examples: tuple[str, ...] = (),
    ) -> None:
        #: Recipients read from the source, duplicates included.
        self.read = read
        #: Distinct recipients (identities).
        self.unique = unique
        #: Recipients that repeat an earlier entry's identity.
        self.duplicates = read - unique
        #: Whether repeated entries are left out of the send (the default) or sent too.
        self.deduplicate = deduplicate
        self.digest = digest
        self.marks = marks
        self.broadcast = broadcast
        self.duplicate_examples = duplicate_examples
        self._spool = spool
        self._duplicate_hashes = duplicate_hashes

    @classmethod
    def broadcast_audience(cls) -> Audience:
        """A broadcast: one request with no recipient list."""
        return cls(
            read=0, unique=0, digest=hashlib.sha256().hexdigest(), marks=[], spool=None, broadcast=True
        )

    # ------------------------------------------------------------------ the batches

    @property
    def sent(self) -> int:
        """Recipients the send addresses: distinct ones, or all when duplicates are allowed."""
        return self.unique if self.deduplicate else self.read

    @property
    def batch_count(self) -> int:
        if self.broadcast:
            return 1
        return math.ceil(self.sent / BATCH_SIZE)

    def batch_size(self, index: int) -> int:
        """Recipients in batch ``index`` (0 for the broadcast's single request)."""
        if self.broadcast:
            return 0
        return min(BATCH_SIZE, self.sent - index * BATCH_SIZE)

    def recipients_in(self, indexes: Any) -> int:
        return sum(self.batch_size(i) for i in indexes)

    def batches(self) -> Generator[list[Any], None, None]:
        """The batches, in the same order on every try, from the spool."""
        if self.broadcast:
            yield []
            return
        if self._spool is None:
            return
        repeated = self._duplicate_hashes if self.deduplicate else frozenset()
        seen: set[Hashable] = set()
        batch: list[Any] = []
        with open(self._spool, encoding="utf-8") as spool:
            for line in spool:
                for recipient in json.loads(line):
                    if repeated:
                        identity = recipient_identity(recipient)
                        if hash(identity) in repeated:
                            if identity in seen:
                                continue
                            seen.add(identity)
                    batch.append(recipient)
                    if len(batch) == BATCH_SIZE:
                        yield batch
                        batch = []
        if batch:
            yield batch

    # ------------------------------------------------------------------ fingerprint

    def fingerprint(self, *, with_marks: bool = True) -> dict[str, Any]:
        """What a later try compares with: counts, the digest and (optionally) the marks."""
        data: dict[str, Any] = {
            "read": self.read,
            "unique": self.unique,
            "digest": self.digest,
            "broadcast": self.broadcast,
        }
        if with_marks:
            data["marks"] = [list(mark) for mark in self.marks]
        return data

    def difference(self, earlier: dict[str, Any]) -> str | None:
        """None when ``earlier`` (a :meth:`fingerprint`) is of the same recipients in the same
        order; otherwise a sentence saying how they differ."""
        if (
            earlier.get("digest") == self.digest
            and earlier.get("read") == self.read
            and bool(earlier.get("broadcast")) == self.broadcast
        ):
            return None
        if bool(earlier.get("broadcast")) != self.broadcast:
            return "one try is a broadcast and the other lists recipients"
        before = int(earlier.get("read") or 0)
        if before == self.read:
            counts = f"both read {self.read:,} recipients, but not the same ones in the same order"
        else:
            counts = f"it read {before:,} recipients and this try reads {self.read:,}"
        stored = {int(chunks): digest for chunks, digest in earlier.get("marks") or []}
        same_upto = 0
        first_different: int | None = None
        for chunks, digest in self.marks:
            if chunks not in stored:
                continue
            if stored[chunks] != digest:
                first_different = chunks
                break
            same_upto = chunks
        where = f"the first {same_upto * CHUNK_SIZE:,} are the same"
        if first_different is not None:
            where += f"; the first change is before recipient {first_different * CHUNK_SIZE + 1:,}"
        elif same_upto:
            where += "; the change comes after them"
        return f"{counts} ({where})"

    # ------------------------------------------------------------------ clean-up

    def close(self) -> None:
        """Remove the spool file."""
        if self._spool is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool)
            self._spool = None

    def __enter__(self) -> Audience:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_audience(
    source: Any,
    kind: RecipientKind,
    *,
    file_format: str | None = None,
    deduplicate: bool = True,
    spool_dir: str | None = None,
) -> Audience:
    """Read ``source`` once: check every recipient, spool, fingerprint and find duplicates.

    :param source: What the send operators accept as ``recipients`` (None: no recipients).
    :param kind: ``users`` or ``recipients`` (see :func:`~airflow_provider_braze.recipients.iter_recipients`).
    :param file_format: ``csv`` or ``jsonl`` when the file name does not say.
    :param deduplicate: Leave out entries whose identity repeats an earlier one.
    :param spool_dir: Where the spool file goes (the system's temporary folder by default).
    :raises BrazeValidationError: on the first bad recipient, naming it (or its file line).
    """
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115  (closed below, removed by Audience.close)
        "w", encoding="utf-8", prefix="braze-recipients-", suffix=".jsonl", dir=spool_dir, delete=False
    )
    try:
        return _read_into(handle, source, kind, file_format, deduplicate)
    except BaseException:
        handle.close()
        os.unlink(handle.name)
        raise


def _read_into(
    spool: Any, source: Any, kind: RecipientKind, file_format: str | None, deduplicate: bool
) -> Audience:
    digest = hashlib.sha256()
    # Hashes of every identity, partitioned so repeats are found one small partition at a time.
    partitions = [array("q") for _ in range(_PARTITIONS)]
    marks: list[tuple[int, str]] = []
    spacing = 1
    chunks = 0
    read = 0
    chunk: list[Any] = []

    def flush() -> None:
        nonlocal chunks, spacing, marks
        # One JSON array per line; the same bytes feed the spool and the fingerprint.
        line = json.dumps(chunk, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
        spool.write(line)
        digest.update(line.encode("utf-8"))
        for value in map(hash, map(recipient_identity, chunk)):
            partitions[value & (_PARTITIONS - 1)].append(value)
        chunks += 1
        if chunks % spacing == 0:
            marks.append((chunks, digest.copy().hexdigest()[:16]))
            if len(marks) > MAX_MARKS:  # keep every other one: still evenly spaced
                marks = marks[1::2]
                spacing *= 2

    for recipient in iter_recipients(source, kind, file_format=file_format):
        chunk.append(recipient)
        read += 1
        if len(chunk) == CHUNK_SIZE:
            flush()
            chunk = []
    if chunk:
        flush()
    spool.close()

    repeated: set[int] = set()
    for partition in partitions:
        if len(set(partition)) != len(partition):
            repeated.update(value for value, count in Counter(partition).items() if count > 1)
    partitions.clear()  # 8 bytes per recipient, no longer needed

    unique = read
    examples: list[str] = []
    if repeated:
        # 64-bit hashes may collide: count true repeats by identity, for the few that matter.
        seen: set[Hashable] = set()
        with open(spool.name, encoding="utf-8") as lines:
            for line in lines:
                for recipient in json.loads(line):
                    identity = recipient_identity(recipient)
                    if hash(identity) not in repeated:
                        continue
                    if identity in seen:
                        unique -= 1
                        if len(examples) < _EXAMPLES:
                            examples.append(recipient_key(recipient))
                    else:
                        seen.add(identity)
    return Audience(
        read=read,
        unique=unique,
        digest=digest.hexdigest(),
        marks=marks,
        spool=spool.name,
        duplicate_hashes=frozenset(repeated),
        deduplicate=deduplicate,
        duplicate_examples=tuple(examples),
    )
