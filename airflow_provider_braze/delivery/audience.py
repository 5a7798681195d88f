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

Memory stays flat: the spool is on disk, and so is the duplicate pass's working set. Each
entry's identity (its external user ID, alias or lower-cased email, as text) goes with its
position to one of 64 partition files; after the read, each partition is checked on its own
against a set of the identities it holds. Identities are compared whole: there is no digest that
could collide, so a duplicate is found exactly and a distinct recipient is never taken for one
(and so never left out). At any time the pass holds one partition's distinct identities, about
1/64 of them: some 2 bytes per distinct recipient for IDs of 20 characters (1.8 measured by
``benchmarks/duplicate_memory.py``), under 16 for IDs of up to about 900 characters, plus a fixed
buffer of 32,768 entries. On disk the partition files take about an identity's length plus 9
bytes per entry until the pass ends; the positions of the entries to leave out (8 bytes each)
stay until the send ends.

Where the files go: every try works in a folder of its own, locked while it runs, inside a
private folder (mode 0o700) under ``<temp>/braze-spool-<uid>/``. A task instance's folder is
named after it (:func:`spool_folder`, what the send operators use), so a try killed before it
could clean up (SIGKILL, a lost worker) has its files removed by the next try of the same task
instance, on the same worker, before that one writes its own. Without a task instance the folder
is one per process (``pid-<pid>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import math
import os
import stat
import struct
import tempfile
from array import array
from itertools import compress, count, islice
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.identity import recipient_identity, recipient_key
from airflow_provider_braze.recipients import iter_recipients
from airflow_provider_braze.validation import MAX_RECIPIENTS_PER_REQUEST

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from airflow_provider_braze.recipients import RecipientKind

#: Recipients per request; the engine's batches.
BATCH_SIZE = MAX_RECIPIENTS_PER_REQUEST
#: Recipients per spool line, and per step of the fingerprint.
CHUNK_SIZE = 50
#: Intermediate fingerprint values kept to locate a change (evenly spaced).
MAX_MARKS = 64
#: Duplicate examples named in the log.
_EXAMPLES = 5

#: Partitions of the duplicate pass (a power of two: a key's partition is its hash's low bits).
_PARTITIONS = 64
#: Identities held in memory, over all partitions, before they are appended to their files.
_BUFFERED = 1 << 15
#: Positions of entries to leave out, held in memory before they are written out (and read
#: back per partition when merged: 64 runs of 4,096 at most).
_POSITIONS_BUFFERED = 1 << 12
#: A partition file's segment header: keys, bytes of keys, and whether they are lines (else marshal).
_SEGMENT = struct.Struct("<QQ?")
#: Bytes in a hash (a C ssize_t, struct's "n").
_WORD = struct.calcsize("n")
#: Each try's own folder inside a spool folder is named ``try-...``, and holds this lock file
#: while the try runs; the spool folder's own lock file guards creating and removing them.
_TRY_PREFIX = "try-"
_LOCK = ".lock"


# ------------------------------------------------------------------------------------ where files go


def spool_root() -> str:
    """This user's folder for spool files: ``<temp>/braze-spool-<uid>`` (``tempfile.gettempdir()``,
    read on each call, so ``TMPDIR`` decides)."""
    return os.path.join(tempfile.gettempdir(), f"braze-spool-{os.getuid()}")


def spool_folder(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """The spool folder of one task instance, the same for each of its tries (pass it to
    :func:`read_audience` as ``spool_dir``): a try removes what a killed earlier try left there.

    Its name is a digest of the whole identity, so two task instances never share one.
    """
    identity = json.dumps([dag_id, task_id, run_id, map_index]).encode("utf-8", "surrogatepass")
    return os.path.join(spool_root(), "ti-" + hashlib.sha256(identity).hexdigest()[:32])


def _private_folder(path: str) -> None:
    """Create ``path`` with mode 0o700, or check that the existing one is a folder of this user
    that no one else can use: in a shared temporary folder anyone may create a name first."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(
            f"{path} is not a folder of this user (uid {os.getuid()}); the spool needs a private "
            "one: remove it, or point TMPDIR elsewhere."
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def _flock(fd: int, *, wait: bool) -> bool:
    """Lock ``fd`` exclusively; False when another holder has it and ``wait`` is False. The
    kernel releases the lock when its holder exits, however it ends: this is how a killed try's
    files are told from a running one's."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _folder_locked(folder: str) -> Iterator[None]:
    """Hold the spool folder's lock: tries create, find and remove try folders one at a time."""
    path = os.path.join(folder, _LOCK)
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            _flock(fd, wait=True)
            # The lock file may have been removed (with an empty folder) while we waited.
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def _in_use(try_folder: str) -> bool:
    try:
        fd = os.open(os.path.join(try_folder, _LOCK), os.O_RDWR)
    except FileNotFoundError:  # killed between creating its folder and its lock
        return False
    try:
        return not _flock(fd, wait=False)
    finally:
        os.close(fd)


class _TryFolder:
    """One try's own folder inside a spool folder, locked while the try runs."""

    def __init__(self, path: str, lock: int) -> None:
        self.path = path
        self._lock: int | None = lock

    @classmethod
    def claim(cls, folder: str) -> _TryFolder:
        """Remove what tries that no longer run left in ``folder``, then make this try's."""
        for attempt in range(3):
            try:
                return cls._claim(folder)
            except FileNotFoundError:  # a try that just ended removed the empty folder: again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _claim(cls, folder: str) -> _TryFolder:
        import shutil

        folder = os.path.abspath(folder)
        if os.path.dirname(folder) == spool_root():
            _private_folder(os.path.dirname(folder))
            _private_folder(folder)
        else:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        with _folder_locked(folder):
            for entry in os.scandir(folder):
                mine = entry.name.startswith(_TRY_PREFIX) and entry.is_dir(follow_symlinks=False)
                if mine and not _in_use(entry.path):
                    shutil.rmtree(entry.path, ignore_errors=True)
            path = tempfile.mkdtemp(prefix=_TRY_PREFIX, dir=folder)
            lock = os.open(os.path.join(path, _LOCK), os.O_CREAT | os.O_RDWR, 0o600)
            _flock(lock, wait=False)
        return cls(path, lock)

    def release(self) -> None:
        """Remove this try's folder, and the spool folder too when nothing else is in it."""
        import shutil

        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)
        self._lock = None
        folder = os.path.dirname(self.path)
        with contextlib.suppress(OSError), _folder_locked(folder):
            if os.listdir(folder) == [_LOCK]:
                os.unlink(os.path.join(folder, _LOCK))
                os.rmdir(folder)


def _process_folder() -> str:
    return os.path.join(spool_root(), f"pid-{os.getpid()}")


# ------------------------------------------------------------------------------------ duplicates


class _Repeats:
    """The positions (in the order read, from 0) of entries whose identity repeats an earlier
    entry's: on disk, as one sorted run per partition, merged when read."""

    def __init__(self, path: str, runs: list[tuple[int, int]]) -> None:
        self._path = path
        self._runs = runs
        self.count = sum(n for _, n in runs)

    def __iter__(self) -> Iterator[int]:
        if not self.count:
            return
        import heapq

        with open(self._path, "rb") as handle:
            yield from heapq.merge(*(self._run(handle.fileno(), *run) for run in self._runs))

    @staticmethod
    def _run(fd: int, offset: int, left: int) -> Iterator[int]:
        while left:
            block = array("Q")
            block.frombytes(os.pread(fd, min(left, _POSITIONS_BUFFERED) * 8, offset))
            if not block:
                raise OSError(f"the duplicate pass's file lost entries at byte {offset}")
            yield from block
            offset += len(block) * 8
            left -= len(block)


class _RepeatFinder:
    """Finds entries whose identity repeats an earlier entry's, exactly, in bounded memory.

    :meth:`add` spreads identity keys
    (:func:`~airflow_provider_braze.identity.recipient_identity`) over 64 partitions, by the
    low bits of Python's hash of the key, with each entry's position; :meth:`finish` then checks one
    partition at a time against a set of the keys it holds. Keys are compared whole, so the hash
    decides only where a key is checked, never whether it repeats: the result is the same
    whatever PYTHONHASHSEED says, and no collision can drop a distinct recipient. The hash is
    keyed per process (unless PYTHONHASHSEED fixes it), so no list can be made to crowd one
    partition.

    On disk a partition is a series of segments, one per spill: the positions (8 bytes each),
    then the keys as UTF-8 (``surrogatepass``: alias and email keys hold ``IDENTITY_MARK``), one
    per line. Splitting that text at line ends gives the keys back exactly when none of them
    holds a line end, which the count of line ends proves; a segment where one does is written with marshal
    instead. Either way a key is read back as its UTF-8 bytes (one to one with the text), and
    whole bytes are what the sets compare.
    """

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._keys: list[list[str]] = [[] for _ in range(_PARTITIONS)]
        self._positions: list[array[int]] = [array("Q") for _ in range(_PARTITIONS)]
        self._add_key = [keys.append for keys in self._keys]
        self._add_position = [positions.append for positions in self._positions]
        #: The partition of each byte value: its low bits (_PARTITIONS divides 256).
        self._partition_of = bytes(value % _PARTITIONS for value in range(256))
        self._files: list[BinaryIO] = []
        self._buffered = 0
        self._read = 0

    def add(self, chunk: list[Any]) -> None:
        try:  # external user ID strings, the common case: they are their own keys
            hashes = list(map(hash, chunk))
            keys = chunk
        except TypeError:  # objects (aliases, emails, trigger recipients) are not hashable
            keys = list(map(recipient_identity, chunk))
            hashes = list(map(hash, keys))
        # Each key's partition, from one byte of its hash (the lowest on little-endian machines),
        # at C speed: the hashes as machine words, every word's first byte, then a table of
        # partitions by byte value.
        parts = struct.pack(f"{len(hashes)}n", *hashes)[::_WORD].translate(self._partition_of)
        add_key, add_position = self._add_key, self._add_position
        for key, part, position in zip(keys, parts, count(self._read)):
            add_key[part](key)
            add_position[part](position)
        self._read += len(keys)
        self._buffered += len(keys)
        if self._buffered >= _BUFFERED:
            self._spill()

    def _spill(self) -> None:
        """Append what is buffered to the partition files (one segment each)."""
        if not self._files:
            for part in range(_PARTITIONS):
                name = os.path.join(self._folder, f"keys-{part:02d}")
                self._files.append(open(name, "w+b", buffering=1 << 12))  # noqa: SIM115  (see close)
        for part, handle in enumerate(self._files):
            keys, positions = self._keys[part], self._positions[part]
            if keys:
                data = "\n".join(keys).encode("utf-8", "surrogatepass")
                lines = True
                if data.count(b"\n") != len(keys) - 1:  # a key holds a line end
                    data = marshal.dumps([key.encode("utf-8", "surrogatepass") for key in keys])
                    lines = False
                header = _SEGMENT.pack(len(keys), len(data), lines)
                handle.write(b"".join((header, positions.tobytes(), data)))  # one system call
                keys.clear()
                del positions[:]
        self._buffered = 0

    def _segments(self, part: int) -> Iterator[tuple[array[int], list[Any]]]:
        if self._files:
            handle = self._files[part]
            handle.seek(0)
            read = handle.read
            while header := read(_SEGMENT.size):
                number, size, lines = _SEGMENT.unpack(header)
                positions = array("Q")
                positions.frombytes(read(number * 8))
                data = read(size)
                if len(positions) != number or len(data) != size:
                    raise OSError(f"the duplicate pass's file {handle.name} lost entries")
                yield positions, data.split(b"\n") if lines else marshal.loads(data)  # noqa: S302
        elif self._keys[part]:
            yield self._positions[part], self._keys[part]

    def finish(self) -> _Repeats:
        """Check each partition; the partition files are removed, the positions found kept."""
        if self._files:
            self._spill()
        path = os.path.join(self._folder, "repeats")
        runs: list[tuple[int, int]] = []
        with open(path, "wb") as out:
            for part in range(_PARTITIONS):
                seen: set[Any] = set()
                found = array("Q")
                start = out.tell()
                for positions, keys in self._segments(part):
                    before = len(seen)
                    if seen.isdisjoint(keys):  # nothing seen before: the common case, at C speed
                        seen.update(keys)
                        if len(seen) - before == len(keys):
                            continue
                        repeats = [False] * len(keys)  # but a key repeats within the segment
                    else:  # whether each key was seen in an earlier segment
                        repeats = list(map(seen.__contains__, keys))
                        seen.update(keys)
                        if len(seen) - before == repeats.count(False):  # none repeats within
                            found.extend(compress(positions, repeats))
                            repeats = []
                    if repeats:  # a key's later entries in the segment: its first is kept
                        firsts: set[Any] = set()
                        for position, key, repeat in zip(positions, keys, repeats, strict=True):
                            if repeat or key in firsts:
                                found.append(position)
                            else:
                                firsts.add(key)
                    if len(found) >= _POSITIONS_BUFFERED:
                        found.tofile(out)
                        del found[:]
                found.tofile(out)
                if out.tell() > start:
                    runs.append((start, (out.tell() - start) // 8))
        self.close()
        return _Repeats(path, runs)

    def close(self) -> None:
        for handle in self._files:
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(handle.name)
        self._files = []
        for keys, positions in zip(self._keys, self._positions, strict=True):
            keys.clear()
            del positions[:]


# ------------------------------------------------------------------------------------ the audience


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
        deduplicate: bool = True,
        broadcast: bool = False,
        duplicate_examples: tuple[str, ...] = (),
        repeats: _Repeats | None = None,
        try_folder: _TryFolder | None = None,
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
        self._repeats = repeats
        self._try_folder = try_folder

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

    def repeats_within_a_batch(self, limit: int = 3) -> list[tuple[int, Any]]:
        """The first ``limit`` recipients listed twice within one batch, with the batch's index:
        Braze delivers a user listed twice in one request once, so with duplicates allowed the
        second entry would be lost. Empty when duplicates are left out, or there are none."""
        if self.deduplicate or not self.duplicates:
            return []
        found: list[tuple[int, Any]] = []
        for index, batch in enumerate(self.batches()):
            seen: set[str] = set()
            for recipient in batch:
                identity = recipient_identity(recipient)
                if identity in seen:
                    found.append((index, recipient))
                    if len(found) >= limit:
                        return found
                seen.add(identity)
        return found

    def batches(self) -> Generator[list[Any], None, None]:
        """The batches, in the same order on every try, from the spool: each recipient's first
        entry, or every entry when duplicates are allowed."""
        if self.broadcast:
            yield []
            return
        if self._spool is None:
            return
        skips: Iterator[int] = iter(())
        if self.deduplicate and self.duplicates and self._repeats is not None:
            skips = iter(self._repeats)
        try:
            skip = next(skips, -1)  # the next position to leave out (-1: none left)
            end = 0
            batch: list[Any] = []
            with open(self._spool, encoding="utf-8") as spool:
                for line in spool:
                    chunk = json.loads(line)
                    start, end = end, end + len(chunk)
                    if start <= skip < end:
                        kept = []
                        for position, recipient in enumerate(chunk, start):
                            if position == skip:
                                skip = next(skips, -1)
                            else:
                                kept.append(recipient)
                        chunk = kept
                    for recipient in chunk:
                        batch.append(recipient)
                        if len(batch) == BATCH_SIZE:
                            yield batch
                            batch = []
            if batch:
                yield batch
        finally:
            close = getattr(skips, "close", None)
            if close is not None:  # the merge of positions holds a file open
                close()

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
        if not stored:
            return counts  # a completed send keeps no marks: where they differ is not known
        parts = [f"the first {same_upto * CHUNK_SIZE:,} are the same"] if same_upto else []
        if first_different is not None:
            parts.append(f"the first change is before recipient {first_different * CHUNK_SIZE + 1:,}")
        elif same_upto:
            parts.append("the change comes after them")
        return f"{counts} ({'; '.join(parts)})" if parts else counts

    # ------------------------------------------------------------------ clean-up
    def close(self) -> None:
        """Remove the spool and this try's folder."""
        if self._try_folder is not None:
            self._try_folder.release()
            self._try_folder = None
        elif self._spool is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool)
        self._spool = None
        self._repeats = None

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
    spool_dir: str | os.PathLike[str] | None = None,
) -> Audience:
    """Read ``source`` once: check every recipient, spool, fingerprint and find duplicates.

    :param source: What the send operators accept as ``recipients`` (None: no recipients).
    :param kind: ``users`` or ``recipients`` (see :func:`~airflow_provider_braze.recipients.iter_recipients`).
    :param file_format: ``csv`` or ``jsonl`` when the file name does not say.
    :param deduplicate: Leave out entries whose identity repeats an earlier one.
    :param spool_dir: The folder whose ``try-*`` folders hold the spool: for a task instance,
        :func:`spool_folder` (the send operators pass it), so a try removes what a killed
        earlier try left there before it writes its own (a try still running, say a zombie, is
        left alone). By default a folder of this process, ``<temp>/braze-spool-<uid>/pid-<pid>``.
        It is created (mode 0o700) if missing, and removed when the last try in it ends.
    :raises BrazeValidationError: on the first bad recipient, naming it (or its file line).
    """
    folder = _TryFolder.claim(os.fspath(spool_dir) if spool_dir is not None else _process_folder())
    try:
        return _read_into(folder, source, kind, file_format, deduplicate)
    except BaseException:
        folder.release()
        raise


def _read_into(
    folder: _TryFolder, source: Any, kind: RecipientKind, file_format: str | None, deduplicate: bool
) -> Audience:
    digest = hashlib.sha256()
    finder = _RepeatFinder(folder.path)
    marks: list[tuple[int, str]] = []
    spacing = 1
    chunks = 0
    read = 0
    chunk: list[Any] = []
    path = os.path.join(folder.path, "spool.jsonl")

    def flush() -> None:
        nonlocal chunks, spacing, marks
        # One JSON array per line; the same bytes feed the spool and the fingerprint.
        try:
            data = (_spool_line(chunk) + "\n").encode("utf-8")
        except ValueError:
            raise BrazeValidationError(
                f"One of recipients {read - len(chunk) + 1:,} to {read:,} (in the order read) holds "
                "NaN or Infinity (in trigger_properties or attributes, say): JSON, and so Braze, "
                "cannot take it. Nothing was sent."
            ) from None
        spool.write(data)
        digest.update(data)
        finder.add(chunk)
        chunks += 1
        if chunks % spacing == 0:
            marks.append((chunks, digest.copy().hexdigest()[:16]))
            if len(marks) > MAX_MARKS:  # keep every other one: still evenly spaced
                marks = marks[1::2]
                spacing *= 2

    try:
        with open(path, "wb") as spool:
            recipients = iter_recipients(source, kind, file_format=file_format)
            while chunk := list(islice(recipients, CHUNK_SIZE)):
                read += len(chunk)
                flush()
        repeats = finder.finish()
    finally:
        finder.close()
    return Audience(
        read=read,
        unique=read - repeats.count,
        digest=digest.hexdigest(),
        marks=marks,
        spool=path,
        deduplicate=deduplicate,
        duplicate_examples=_examples(path, repeats),
        repeats=repeats,
        try_folder=folder,
    )


#: One encoder for every spool line (json.dumps with options builds one per call).
#: NaN and Infinity are refused: they are not JSON, so the request carrying them could not be
#: encoded, and its batch would fail at sending time instead of before anything is sent.
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
#: The characters json escapes in a string when ensure_ascii is False, as UTF-8 bytes.
_ESCAPED = bytes(range(0x20)) + b'"\\'


def _spool_line(chunk: list[Any]) -> str:
    """``chunk`` as one JSON array: exactly what ``json.dumps(chunk, ensure_ascii=False,
    sort_keys=True, separators=(",", ":"))`` gives (the fingerprint hashes these bytes, and
    earlier tries' fingerprints must still match).

    External user IDs with no quote, backslash or control character (U+0000 to U+001F: all that
    json escapes when ensure_ascii is False) are written as they are, a few times faster than
    the encoder. In UTF-8 those characters are single bytes that no other character's bytes
    hold, so deleting them from the encoded text shows at C speed whether there are any.
    """
    try:
        text = "".join(chunk)
    except TypeError:  # objects
        return _ENCODE(chunk)
    data = text.encode("utf-8", "surrogatepass")
    if len(data.translate(None, _ESCAPED)) != len(data):
        return _ENCODE(chunk)
    return '["' + '","'.join(chunk) + '"]'


def _examples(spool: str, repeats: _Repeats) -> tuple[str, ...]:
    """The first few repeated entries, named as in logs (read back from the spool)."""
    wanted = []
    positions = iter(repeats)
    try:
        for position in positions:
            wanted.append(position)
            if len(wanted) == _EXAMPLES:
                break
    finally:
        close = getattr(positions, "close", None)
        if close is not None:
            close()
    examples: list[str] = []
    with open(spool, encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if not wanted:
                break
            if wanted[0] // CHUNK_SIZE != number:
                continue
            chunk = json.loads(line)
            while wanted and wanted[0] // CHUNK_SIZE == number:
                examples.append(recipient_key(chunk[wanted.pop(0) % CHUNK_SIZE]))
    return tuple(examples)
