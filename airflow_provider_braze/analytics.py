"""Send analytics (``GET /sends/data_series``) as tidy rows, and where to put them.

Braze answers with one entry per day; each has the day's totals and, under ``messages``, a
list of per-variation statistics for every channel. :func:`send_analytics_rows` flattens that
into one row per (day, channel, variation), each carrying the day's totals too, so a warehouse
can load it without knowing Braze's shape.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_braze.exceptions import BrazeUnexpectedResponseError, BrazeValidationError

#: Braze keeps send analytics this long after the send.
RETENTION_DAYS = 14

#: Variation statistics Braze documents, in the order rows list them; others it adds follow.
#: Conversion counts: the main event and up to three more, by conversion time and by send time.
_CONVERSION_FIELDS = tuple(
    f"conversions{n}{suffix}" for n in ("", "1", "2", "3") for suffix in ("", "_by_send_time")
)
VARIATION_FIELDS = (
    "sent",
    "delivered",
    "undelivered",
    "delivery_failed",
    "direct_opens",
    "total_opens",
    "bounces",
    "body_clicks",
    "revenue",
    "unique_recipients",
    *_CONVERSION_FIELDS,
)
#: Day-level totals Braze documents; in rows they are prefixed ``day_``.
DAY_FIELDS = (*_CONVERSION_FIELDS, "unique_recipients", "revenue")
KEY_FIELDS = ("campaign_id", "send_id", "date", "channel", "variation_name")
#: The columns every row has, whatever Braze sent (missing values are None).
ROW_FIELDS = (*KEY_FIELDS, *VARIATION_FIELDS, *(f"day_{name}" for name in DAY_FIELDS))
#: Totals reported per channel by :func:`totals_by_channel`.
CHANNEL_TOTAL_FIELDS = (
    "sent",
    "delivered",
    "unique_recipients",
    "direct_opens",
    "total_opens",
    "body_clicks",
    "conversions",
    "revenue",
)


def send_analytics_rows(answer: Mapping[str, Any], *, campaign_id: str, send_id: str) -> list[dict[str, Any]]:
    """Flatten Braze's ``/sends/data_series`` answer into rows, oldest day first.

    Each row has every column of :data:`ROW_FIELDS` (None where Braze sent nothing), then any
    further scalar fields Braze returned for the variation (kept, not dropped). A day with no
    message statistics gives one row with ``channel`` and ``variation_name`` None, so its totals
    are not lost.
    """
    data = answer.get("data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise _unexpected(f"'data' is a {type(data).__name__}, not a list")
    rows: list[dict[str, Any]] = []
    for position, day in enumerate(data):
        if not isinstance(day, Mapping):
            raise _unexpected(f"data[{position}] is a {type(day).__name__}, not an object")
        date = _date_of(day.get("time"), position)
        base = {"campaign_id": campaign_id, "send_id": send_id, "date": date}
        totals = {f"day_{name}": _number(day.get(name), f"data[{position}].{name}") for name in DAY_FIELDS}
        messages = day.get("messages")
        if messages is None:
            messages = {}
        if not isinstance(messages, Mapping):
            raise _unexpected(f"data[{position}].messages is a {type(messages).__name__}, not an object")
        day_rows = 0
        for channel in sorted(messages):
            variations = messages[channel]
            if not isinstance(variations, list):
                raise _unexpected(f"data[{position}].messages.{channel} is not a list of variations")
            for index, variation in enumerate(variations):
                where = f"data[{position}].messages.{channel}[{index}]"
                if not isinstance(variation, Mapping):
                    raise _unexpected(f"{where} is not an object")
                row = dict.fromkeys(ROW_FIELDS)
                row.update(base, channel=channel, variation_name=variation.get("variation_name"))
                for name, value in variation.items():
                    if name == "variation_name":
                        continue
                    if name in VARIATION_FIELDS:
                        row[name] = _number(value, f"{where}.{name}")
                    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
                        row[name] = value  # a field Braze added since: keep it
                row.update(totals)
                rows.append(row)
                day_rows += 1
        if not day_rows:
            row = dict.fromkeys(ROW_FIELDS)
            row.update(base)
            row.update(totals)
            rows.append(row)
    rows.sort(key=lambda r: (r["date"], r["channel"] or "", r["variation_name"] or ""))
    return rows


def totals_by_channel(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Sum the main statistics per channel over all days and variations."""
    totals: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.get("channel") is None:
            continue
        channel = totals.setdefault(row["channel"], dict.fromkeys(CHANNEL_TOTAL_FIELDS, 0))
        for name in CHANNEL_TOTAL_FIELDS:
            channel[name] += row.get(name) or 0
    return totals


def describe_totals(totals: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One human-readable line per channel."""
    lines = []
    for channel, t in sorted(totals.items()):
        delivered = t["delivered"] or 0
        rate = f"{100 * t['direct_opens'] / delivered:.1f}%" if delivered else "n/a"
        lines.append(
            f"{channel}: {t['sent']:.0f} sent, {delivered:.0f} delivered, "
            f"{t['direct_opens']:.0f} direct opens ({rate}), {t['body_clicks']:.0f} clicks, "
            f"{t['conversions']:.0f} conversions, revenue {t['revenue']:.2f} USD"
        )
    return lines or ["no message statistics yet"]


def rows_to_text(rows: list[dict[str, Any]], file_format: str) -> str:
    """Rows as CSV (header first; columns: ROW_FIELDS then any extra fields) or JSON lines."""
    if file_format == "jsonl":
        return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    if file_format != "csv":
        raise BrazeValidationError(f"output format must be 'csv' or 'jsonl', got {file_format!r}.")
    extra = sorted({name for row in rows for name in row} - set(ROW_FIELDS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*ROW_FIELDS, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def output_format_for(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = os.path.splitext(path.split("?", maxsplit=1)[0])[1].lower()
    formats = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in formats:
        raise BrazeValidationError(
            f"Cannot tell the format of {path}: name it .csv or .jsonl, or pass output_format."
        )
    return formats[suffix]


def _date_of(value: Any, position: int) -> str:
    if not isinstance(value, str) or len(value) < 10:
        raise _unexpected(f"data[{position}].time is {value!r}, not an ISO-8601 date")
    return value[:10]


def _number(value: Any, where: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _unexpected(f"{where} is {value!r}, not a number")
    return value


def _unexpected(detail: str) -> BrazeUnexpectedResponseError:
    return BrazeUnexpectedResponseError(
        f"Braze's answer to GET /sends/data_series is not in the documented shape: {detail}.",
        endpoint="GET /sends/data_series",
    )
