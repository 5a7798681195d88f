"""Checkpointed, concurrent, exactly-once delivery for the send operators.

- :mod:`.audience`: the recipients, read once before sending: checked, de-duplicated, spooled
  to local disk and fingerprinted.
- :mod:`.checkpoint`: where progress survives a retry (Airflow Variables, files at any
  ObjectStoragePath, or memory), the records kept there and their names.
- :mod:`.engine`: :class:`BatchDelivery`, which sends the batches and keeps the records.

README.md ("The delivery guarantee, in plain words") states what holds.
"""

from typing import Any

from airflow_provider_braze.delivery.audience import (
    Audience,
    read_audience,
    recipient_identity,
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
    checkpoint_name,
    task_prefix,
)
from airflow_provider_braze.delivery.engine import (
    AMBIGUOUS_DETAIL_LIMIT,
    SUMMARY_LIST_LIMIT,
    BatchDelivery,
    merge_outcomes,
)
from airflow_provider_braze.exceptions import BrazeDeliveryIncompleteError, BrazeDeliveryStoppedError

__all__ = [
    "AMBIGUOUS_DETAIL_LIMIT",
    "DEFAULT_RETENTION",
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
    "checkpoint_name",
    "merge_outcomes",
    "read_audience",
    "recipient_identity",
    "spool_folder",
    "spool_root",
    "task_prefix",
]


def __getattr__(name: str) -> Any:
    from airflow_provider_braze._deprecation import renamed_attribute
    from airflow_provider_braze.delivery.engine import _RENAMED

    return renamed_attribute(__name__, name, _RENAMED)
