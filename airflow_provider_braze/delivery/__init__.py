"""Checkpointed, concurrent, exactly-once delivery for the send operators.

- :mod:`.audience`: the recipients, read once before sending: checked, de-duplicated, spooled
  to local disk and fingerprinted.
- :mod:`.checkpoint`: where progress survives a retry (Airflow Variables, files at any
  ObjectStoragePath, or memory), the records kept there, their names and their retention.
- :mod:`.engine`: :class:`BatchDelivery`, which sends the batches and keeps the records.
- :mod:`.summary`: :class:`SendSummary`, what a try reports.

The model
=========

A **send** is one task instance (DAG, task, run, map index). Its recipients, read in order, are
cut into **batches** of 50; batch ``i`` is the same on every try (the audience's fingerprint
proves it). Braze has no idempotency key, so a batch's fate can only be known from what the
tries wrote down, each batch's state being an :class:`~.checkpoint.Outcome`.

**The checkpoint** of a send is a set of records in one store, under the send's name:

- one *try record* per try, written **only by that try**: the batches it reserved
  (``reserved_upto``: it may send any batch below, and no other) and one outcome per batch
  (done, not sent, refused, in doubt, skipped);
- at most one *done record*, written once every batch is confirmed; the try records are then
  deleted;
- at most one *abandoned record*, written by :func:`abandon_send` for a send given up on purpose
  (with the retention it was sent with); every later try refuses, naming from the try records
  the batches not delivered.

Every record is written whole (write then rename, or a store's one-step put) and carries a
digest of its contents; a record that is edited, truncated, of another format, or listed but
unreadable stops the try before it sends anything, and is never repaired with defaults.

**A try** reads every record, checks them against its own arguments and recipients, writes its
own record (which fences out older tries: the newest try owns the send), reads the others
again, merges them (a batch is done if any try confirmed it, in doubt if a try sent it without
learning the outcome or reserved it without recording an outcome, not sent otherwise), and
sends what is neither done nor in doubt, reserving each batch in a written record before it
goes out.

**Retention is by run**: the records of a send are deleted together, and only when the send
completed or was abandoned and its newest record is older than ``checkpoint_retention`` and
than the retention its done or abandoned record was written with. An
incomplete send is never pruned. A retry of a run older than the retention that finds no record
refuses to send (the run completed or was abandoned).

The invariants
==============

Checked after every step of the simulation of fault histories (``tests/reliability``):

- **I1** Nobody gets the message twice, except with ``at_least_once=True``, and then only among
  the recipients whose batch was in doubt (reported by an earlier try, or met in this one).
- **I2** A try that succeeds delivered to every distinct recipient exactly once (less those the
  user left out with ``exclude_recipients``, which the summary counts).
- **I3** Every recipient not delivered is named, as not sent or in doubt, by the try that ended
  (in its summary's ranges and its log); a killed try names nothing, and the next try does
  (also when it is refused because the send was abandoned).
- **I4** Following any error message's advice literally never sends anyone twice beyond what I1
  allows (the advice ``at_least_once=True`` says so and resends only recipients in doubt): no
  message advises deleting a record, starting the same recipients over in a new run, pointing a
  run's checkpoint elsewhere, or restoring an older copy of a record (which the digest cannot
  tell from the newest, and which would forget what was sent after it was taken).
- **I5** A record is at most 64 KB and a send writes at most 20 MB in all.

docs/delivery.md states the same for users.
"""

from airflow_provider_braze.delivery.audience import (
    Audience,
    read_audience,
    spool_folder,
    spool_root,
)
from airflow_provider_braze.delivery.checkpoint import (
    DEFAULT_RETENTION,
    Checkpoint,
    CheckpointStore,
    MemoryCheckpointStore,
    ObjectStorageCheckpointStore,
    VariableCheckpointStore,
    abandon_send,
    checkpoint_name,
    task_prefix,
)
from airflow_provider_braze.delivery.engine import (
    IN_DOUBT_DETAIL_LIMIT,
    SUMMARY_LIST_LIMIT,
    BatchDelivery,
    merge_outcomes,
)
from airflow_provider_braze.exceptions import BrazeDeliveryIncompleteError, BrazeDeliveryStoppedError
from airflow_provider_braze.identity import recipient_identity

__all__ = [
    "DEFAULT_RETENTION",
    "IN_DOUBT_DETAIL_LIMIT",
    "SUMMARY_LIST_LIMIT",
    "Audience",
    "BatchDelivery",
    "BrazeDeliveryIncompleteError",
    "BrazeDeliveryStoppedError",
    "Checkpoint",
    "CheckpointStore",
    "MemoryCheckpointStore",
    "ObjectStorageCheckpointStore",
    "VariableCheckpointStore",
    "abandon_send",
    "checkpoint_name",
    "merge_outcomes",
    "read_audience",
    "recipient_identity",
    "spool_folder",
    "spool_root",
    "task_prefix",
]
