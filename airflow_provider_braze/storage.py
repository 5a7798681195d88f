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


def suffix_of(name: str) -> str:
    """A path's or URL's file suffix in lower case (``.csv``), its query left out."""
    return os.path.splitext(name.split("?", maxsplit=1)[0])[1].lower()


def file_format(name: str, explicit: str | None, *, argument: str | None, what: str = "") -> str:
    """``csv`` or ``jsonl``: ``explicit`` when given (checked), else from the name's suffix.

    :param argument: The argument that sets the format, named in the error; ``None`` when the
        file's format can only come from its name.
    :param what: What the file is, for the error (``"recipient file "``).
    """
    if explicit:
        if explicit not in ("csv", "jsonl"):
            raise BrazeValidationError(f"{argument} must be 'csv' or 'jsonl', got {explicit!r}.")
        return explicit
    suffix = suffix_of(name)
    if suffix not in FILE_FORMATS:
        advice = "name it .csv, .jsonl or .ndjson"
        if argument is not None:
            advice += f", or pass {argument}='csv' or 'jsonl'"
        raise BrazeValidationError(f"Cannot tell the format of {what}{name}: {advice}.")
    return FILE_FORMATS[suffix]


def open_for_writing(location: Any, *, binary: bool = False) -> Any:
    """Open a local path or ObjectStoragePath (or URL) for writing, creating its folder."""
    location = storage_path(location)
    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    if isinstance(location, (str, os.PathLike)):
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        return open(location, mode, encoding=encoding)
    location.parent.mkdir(parents=True, exist_ok=True)
    return location.open(mode, encoding=encoding)


def write_file(location: Any, data: str | bytes) -> str:
    """Write text (UTF-8) or bytes to a local path or ObjectStoragePath URL; return where."""
    with open_for_writing(location, binary=isinstance(data, bytes)) as handle:
        handle.write(data)
    return str(storage_path(location))


def sibling(location: Any, suffix: str) -> str:
    """``location`` (a path or URL string) with its file suffix replaced by ``suffix``."""
    text = str(location)
    base, _, query = text.partition("?")
    stem, old = os.path.splitext(base)
    if "/" in old:  # the "suffix" was in a folder name: the file has none
        stem = base
    return stem + suffix + (f"?{query}" if query else "")
