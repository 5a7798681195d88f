"""Recipient sources for the send operators: lists, iterables and CSV / JSON-lines files.

Everything here streams: a file is read line by line and batches are built as they are sent, so
memory stays flat whatever the number of recipients. Every error names the item or the file
line it comes from.

Every input row is accounted for: a recipient is either yielded or refused with an error, never
skipped in silence. The one exception is an empty line in a file (and, in JSON lines, a line of
only whitespace), which holds nothing at all. Text that UTF-8 cannot carry (invalid bytes in a
file, a lone surrogate such as ``"\\ud800"`` in JSON or in a Python string) is refused too,
naming its line or position: Braze takes UTF-8, and the spool is UTF-8.
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

#: CSV columns that name the recipient: a row needs a value in at least one of them.
CSV_ID_COLUMNS = ("external_user_id", "alias_name", "alias_label", "email")
#: Rows without a recipient ID named (by line) in the error; all of them are counted.
_NO_ID_EXAMPLES = 5

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


def iter_recipients(
    source: Any, kind: RecipientKind, *, file_format: str | None = None, argument: str = "recipients"
) -> Iterator[Any]:
    """Yield each recipient of ``source``, checked and in the shape the endpoint takes.

    :param source: A list or any iterable of recipients, or a path / URL of a CSV or JSON-lines
        file (any ``ObjectStoragePath`` URL such as ``file://`` or ``s3://``).
    :param kind: ``users`` (strings become external user IDs; alias objects stay aliases) or
        ``recipients`` (strings become ``{"external_user_id": ...}``; objects are checked).
    :param file_format: ``csv`` or ``jsonl``; by default taken from the file's suffix.
    :param argument: The operator argument ``source`` came from, named in errors
        (``recipients``, whose format ``recipients_format`` sets, or ``exclude_recipients``).
    """
    if source is None:
        return
    if is_path(source):
        yield from _from_file(source, kind, file_format, argument)
        return
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Iterable):
        raise BrazeValidationError(
            f"{argument} must be a list, an iterable or a file path, got {type(source).__name__}."
        )
    item_name = "recipient" if argument == "recipients" else f"{argument} item"
    for position, item in enumerate(source):
        where = f"{item_name} {position}"
        recipient = _normalize(item, kind, where)
        # Strings from Python may hold lone surrogates; the check is one flag test for ASCII text.
        if type(recipient) is not str or not recipient.isascii():
            _check_unicode(recipient, where)
        yield recipient


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


def _first_lone_surrogate(value: Any) -> str | None:
    """The first string in ``value`` (a recipient: strings, and dicts and lists of them, keys
    included) that UTF-8 cannot encode, or None."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            bad = _first_lone_surrogate(key)
            if bad is None:
                bad = _first_lone_surrogate(item)
            if bad is not None:
                return bad
    elif isinstance(value, (list, tuple)):
        for item in value:
            bad = _first_lone_surrogate(item)
            if bad is not None:
                return bad
    return None


def _check_unicode(value: Any, where: str) -> None:
    bad = _first_lone_surrogate(value)
    if bad is not None:
        raise BrazeValidationError(
            f"{where} is not valid text: {bad!r} holds a lone surrogate, which UTF-8 cannot encode."
        )


def _open_text(source: Any) -> Any:
    source = storage_path(source)
    # utf-8-sig: files saved by spreadsheet programs start with a byte-order mark, which would
    # otherwise end up in the first column's name.
    if isinstance(source, (str, os.PathLike)):
        return open(source, encoding="utf-8-sig", newline="")
    return source.open("r", encoding="utf-8-sig", newline="")


def _open_bytes(source: Any) -> Any:
    source = storage_path(source)
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    return source.open("rb")


def _undecodable(source: Any, name: str, err: UnicodeDecodeError) -> BrazeValidationError:
    """The error for a file that is not UTF-8, naming the first line that is not.

    The text decoder works on blocks of the file, so the line being read when it fails is not
    the bad one: the file is read again, as bytes, line by line, to find it (only on this error,
    so a good file costs nothing more)."""
    try:
        with _open_bytes(source) as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as found:
                    return BrazeValidationError(
                        f"{name} line {number} is not valid UTF-8: byte 0x{line[found.start]:02x} "
                        "cannot be decoded; save the file as UTF-8."
                    )
    except OSError:
        pass
    return BrazeValidationError(f"{name} is not valid UTF-8 ({err.reason}); save the file as UTF-8.")


def _from_file(source: Any, kind: RecipientKind, file_format: str | None, argument: str) -> Iterator[Any]:
    name = str(source)
    what = "recipient file" if argument == "recipients" else f"{argument} file"
    # Only recipients has a format argument (recipients_format); other files go by their name.
    option = "recipients_format" if argument == "recipients" else None
    fmt = storage.file_format(name, file_format, argument=option, what=f"{what} ")
    try:
        handle = _open_text(source)
    except OSError as err:
        raise BrazeValidationError(f"Cannot open {what} {name}: {err}") from err
    with handle:
        try:
            if fmt == "jsonl":
                yield from _from_jsonl(handle, kind, name)
            else:
                yield from _from_csv(handle, kind, name)
        except UnicodeDecodeError as err:
            raise _undecodable(source, name, err) from None


def _from_jsonl(handle: Any, kind: RecipientKind, name: str) -> Iterator[Any]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"{name} line {line_number}"
        try:
            item = json.loads(line)
        except ValueError as err:
            raise BrazeValidationError(f"{where} is not valid JSON: {err}") from None
        recipient = _normalize(item, kind, where)
        if "\\u" in line:  # only a JSON escape can make a lone surrogate out of valid UTF-8
            _check_unicode(recipient, where)
        yield recipient


def _from_csv(handle: Any, kind: RecipientKind, name: str) -> Iterator[Any]:
    """The rows of a CSV file with a header. An empty line is skipped (the csv module yields no
    row for it); any other row must name its recipient in an ID column (CSV_ID_COLUMNS): rows
    that do not, ``,,,`` included, are counted and refused after the whole file is read, naming
    a few lines."""
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS and not c.startswith("trigger_properties.")]
    if unknown or not header:
        raise BrazeValidationError(
            f"{name} line 1: unknown column(s) {', '.join(unknown) or '(no header)'}; recipient files "
            f"use {', '.join(CSV_COLUMNS)} and trigger_properties.<name> columns."
        )
    id_columns = frozenset(CSV_ID_COLUMNS)
    json_columns = [c for c in ("trigger_properties", "attributes") if c in header]
    without_id: list[int] = []
    without_id_count = 0
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row:
            raise BrazeValidationError(f"{where} has more fields than the header.")
        values = {k: v for k, v in row.items() if v not in (None, "")}
        if "external_user_id" not in values and values.keys().isdisjoint(id_columns):
            without_id_count += 1
            if len(without_id) < _NO_ID_EXAMPLES:
                without_id.append(reader.line_num)
            continue
        recipient = _normalize(_row_to_recipient(values, kind, where), kind, where)
        # Only a JSON escape in a JSON column can make a lone surrogate out of valid UTF-8.
        if json_columns and any("\\u" in (row[c] or "") for c in json_columns):
            _check_unicode(recipient, where)
        yield recipient
    if without_id_count:
        raise BrazeValidationError(_without_id_message(name, without_id, without_id_count))


def _without_id_message(name: str, lines: list[int], count: int) -> str:
    ids = "external_user_id, alias_name and alias_label, or email"
    rule = "every row must name its recipient (only empty lines are skipped)"
    if count == 1:
        return f"{name} line {lines[0]} has no recipient ID ({ids}); {rule}."
    listed = ", ".join(map(str, lines))
    if count > len(lines):
        listed += f" and {count - len(lines):,} more"
    return f"{name}: {count:,} rows have no recipient ID ({ids}): lines {listed}; {rule}."


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
