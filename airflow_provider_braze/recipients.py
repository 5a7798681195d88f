"""Recipient sources for the send operators: lists, iterables and CSV / JSON-lines files.

Everything here streams: a file is read line by line and batches are built as they are sent, so
memory stays flat whatever the number of recipients. Every error names the item or the file
line it comes from.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from airflow_provider_braze import storage
from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.storage import storage_path
from airflow_provider_braze.validation import (
    validate_trigger_recipient,
    validate_user_alias,
)

#: What a recipient becomes: ``users`` for /messages/send (an external user ID string or a user
#: alias object), ``recipients`` for /campaigns/trigger/send (a recipient object).
RecipientKind = Literal["users", "recipients"]

#: CSV columns understood in recipient files; ``trigger_properties.<name>`` columns are also
#: accepted and gathered into the recipient's ``trigger_properties``.
CSV_COLUMNS = (
    "external_user_id",
    "alias_name",
    "alias_label",
    "email",
    "prioritization",
    "trigger_properties",
    "send_to_existing_only",
    "attributes",
)


def is_path(source: Any) -> bool:
    """Whether ``source`` names a file (a path string, ``os.PathLike`` or ObjectStoragePath)."""
    return isinstance(source, (str, os.PathLike)) or (
        hasattr(source, "open") and hasattr(source, "suffix") and not isinstance(source, Iterable)
    )


def iter_recipients(source: Any, kind: RecipientKind, *, file_format: str | None = None) -> Iterator[Any]:
    """Yield each recipient of ``source``, checked and in the shape the endpoint takes.

    :param source: A list or any iterable of recipients, or a path / URL of a CSV or JSON-lines
        file (any ``ObjectStoragePath`` URL such as ``file://`` or ``s3://``).
    :param kind: ``users`` (strings become external user IDs; alias objects stay aliases) or
        ``recipients`` (strings become ``{"external_user_id": ...}``; objects are checked).
    :param file_format: ``csv`` or ``jsonl``; by default taken from the file's suffix.
    """
    if source is None:
        return
    if is_path(source):
        yield from _from_file(source, kind, file_format)
        return
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Iterable):
        raise BrazeValidationError(
            f"recipients must be a list, an iterable or a file path, got {type(source).__name__}."
        )
    for position, item in enumerate(source):
        yield _normalize(item, kind, f"recipient {position}")


def recipient_key(recipient: Any) -> str:
    """A short, stable text naming one recipient, for logs and reports."""
    if isinstance(recipient, str):
        return recipient
    if "user_alias" in recipient:
        alias = recipient["user_alias"]
        return f"alias:{alias['alias_label']}:{alias['alias_name']}"
    if "alias_name" in recipient:
        return f"alias:{recipient['alias_label']}:{recipient['alias_name']}"
    if "email" in recipient:
        return f"email:{recipient['email']}"
    return str(recipient["external_user_id"])


# ------------------------------------------------------------------------------------ internals


def _normalize(item: Any, kind: RecipientKind, where: str) -> Any:
    if isinstance(item, str):
        if not item.strip():
            raise BrazeValidationError(f"{where} is an empty external user ID.")
        return item if kind == "users" else {"external_user_id": item}
    if not isinstance(item, dict):
        raise BrazeValidationError(
            f"{where} must be an external user ID string or an object, got {type(item).__name__}."
        )
    if kind == "recipients":
        return validate_trigger_recipient(item, where)
    # /messages/send takes only external user IDs and user aliases.
    if set(item) == {"external_user_id"}:
        if not isinstance(item["external_user_id"], str):
            raise BrazeValidationError(f"{where}.external_user_id must be a string.")
        return _normalize(item["external_user_id"], kind, where)
    if set(item) == {"user_alias"}:
        return validate_user_alias(item["user_alias"], f"{where}.user_alias")
    if set(item) == {"alias_name", "alias_label"}:
        return validate_user_alias(item, where)
    raise BrazeValidationError(
        f"{where} must be an external user ID or a user alias for this endpoint, got {item!r}."
    )


def _open_text(source: Any) -> Any:
    source = storage_path(source)
    # utf-8-sig: files saved by spreadsheet programs start with a byte-order mark, which would
    # otherwise end up in the first column's name.
    if isinstance(source, (str, os.PathLike)):
        return open(source, encoding="utf-8-sig", newline="")
    return source.open("r", encoding="utf-8-sig", newline="")


def _from_file(source: Any, kind: RecipientKind, file_format: str | None) -> Iterator[Any]:
    name = str(source)
    fmt = storage.file_format(name, file_format, argument="recipients_format", what="recipient file ")
    try:
        handle = _open_text(source)
    except OSError as err:
        raise BrazeValidationError(f"Cannot open recipient file {name}: {err}") from err
    with handle:
        if fmt == "jsonl":
            yield from _from_jsonl(handle, kind, name)
        else:
            yield from _from_csv(handle, kind, name)


def _from_jsonl(handle: Any, kind: RecipientKind, name: str) -> Iterator[Any]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"{name} line {line_number}"
        try:
            item = json.loads(line)
        except ValueError as err:
            raise BrazeValidationError(f"{where} is not valid JSON: {err}") from None
        yield _normalize(item, kind, where)


def _from_csv(handle: Any, kind: RecipientKind, name: str) -> Iterator[Any]:
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS and not c.startswith("trigger_properties.")]
    if unknown or not header:
        raise BrazeValidationError(
            f"{name} line 1: unknown column(s) {', '.join(unknown) or '(no header)'}; recipient files "
            f"use {', '.join(CSV_COLUMNS)} and trigger_properties.<name> columns."
        )
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row:
            raise BrazeValidationError(f"{where} has more fields than the header.")
        values = {k: v for k, v in row.items() if v not in (None, "")}
        if not values:
            continue
        yield _normalize(_row_to_recipient(values, kind, where), kind, where)


def _row_to_recipient(values: dict[str, str], kind: RecipientKind, where: str) -> Any:
    recipient: dict[str, Any] = {}
    if "alias_name" in values or "alias_label" in values:
        recipient["user_alias"] = {
            "alias_name": values.pop("alias_name", ""),
            "alias_label": values.pop("alias_label", ""),
        }
    for key in ("external_user_id", "email"):
        if key in values:
            recipient[key] = values.pop(key)
    if "prioritization" in values:
        recipient["prioritization"] = [
            p.strip() for p in values.pop("prioritization").split("|") if p.strip()
        ]
    for key in ("trigger_properties", "attributes"):
        if key in values:
            try:
                recipient[key] = json.loads(values.pop(key))
            except ValueError as err:
                raise BrazeValidationError(f"{where}: column {key} is not valid JSON: {err}") from None
    if "send_to_existing_only" in values:
        flag = values.pop("send_to_existing_only").strip().lower()
        if flag not in ("true", "false"):
            raise BrazeValidationError(f"{where}: send_to_existing_only must be true or false.")
        recipient["send_to_existing_only"] = flag == "true"
    extra = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("trigger_properties.")}
    if extra:
        recipient.setdefault("trigger_properties", {}).update(extra)
    if kind == "users":
        if set(recipient) == {"external_user_id"}:
            return recipient["external_user_id"]
        if set(recipient) == {"user_alias"}:
            return recipient
        raise BrazeValidationError(
            f"{where}: /messages/send takes an external_user_id or an alias_name and alias_label per row."
        )
    return recipient
