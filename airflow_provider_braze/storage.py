"""Files this provider reads and writes (recipients, analytics rows, checkpoints): one rule for
what a location is and one for what format a file is in."""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_braze.exceptions import BrazeValidationError

#: File name suffixes and the formats they mean.
FILE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def is_url(location: Any) -> bool:
    """Whether ``location`` is a URL string (``s3://bucket/key``, ``file:///tmp/x``)."""
    return isinstance(location, str) and "://" in location


def storage_path(location: Any) -> Any:
    """A URL string as an ``ObjectStoragePath``; a local path, or an ObjectStoragePath, as given."""
    if is_url(location):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(location)
    return location


def file_format(name: str, explicit: str | None, *, argument: str, what: str = "") -> str:
    """``csv`` or ``jsonl``: ``explicit`` when given (checked), else from the name's suffix.

    :param argument: The argument that sets the format, named in the error.
    :param what: What the file is, for the error (``"recipient file "``).
    """
    if explicit:
        if explicit not in ("csv", "jsonl"):
            raise BrazeValidationError(f"{argument} must be 'csv' or 'jsonl', got {explicit!r}.")
        return explicit
    suffix = os.path.splitext(name.split("?", maxsplit=1)[0])[1].lower()
    if suffix not in FILE_FORMATS:
        raise BrazeValidationError(
            f"Cannot tell the format of {what}{name}: name it .csv, .jsonl or .ndjson, or pass "
            f"{argument}='csv' or 'jsonl'."
        )
    return FILE_FORMATS[suffix]
