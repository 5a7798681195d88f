"""Send analytics (``GET /sends/data_series``) as tidy rows, and where to put them.

Braze answers with one entry per day; each has the day's totals and, under ``messages``, a
list of per-variation statistics for every channel. :func:`send_analytics_rows` flattens that
into one row per (day, channel, variation), each carrying the day's totals too, so a warehouse
can load it without knowing Braze's shape.

Each channel has its own statistics (an email is opened, a push notification is directly
opened): :data:`CHANNEL_METRICS` lists them as Braze documents them, and the per-channel totals
and summaries use each channel's own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from airflow_provider_braze.exceptions import BrazeUnexpectedResponseError, BrazeValidationError
from airflow_provider_braze.hooks.endpoints import GET_SEND_ANALYTICS

#: Braze keeps send analytics this long after the send.
RETENTION_DAYS = 14

#: Braze's channel keys for push; "all push message types will have the same statistics".
PUSH_CHANNELS = (
    "ios_push",
    "android_push",
    "kindle_push",
    "web_push",
    "windows_phone8_push",
    "windows_universal_push",
)
_PUSH_METRICS = (
    "sent",
    "delivered",
    "undelivered",
    "delivery_failed",
    "direct_opens",
    "total_opens",
    "bounces",
    "body_clicks",
)
_IN_APP_METRICS = ("impressions", "clicks", "first_button_clicks", "second_button_clicks")
#: Each channel's statistics, as Braze documents them for ``/sends/data_series`` (push) and
#: ``/campaigns/data_series`` (every channel), in the order rows and summaries list them.
CHANNEL_METRICS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(PUSH_CHANNELS, _PUSH_METRICS),
    "email": (
        "sent",
        "delivered",
        "opens",
        "unique_opens",
        "clicks",
        "unique_clicks",
        "unsubscribes",
        "bounces",
        "reported_spam",
    ),
    "sms": (
        "sent",
        "sent_to_carrier",
        "delivered",
        "rejected",
        "delivery_failed",
        "clicks",
        "opt_out",
        "help",
    ),
    "whats_app": ("sent", "delivered", "failed", "read"),
    "content_cards": (
        "sent",
        "total_impressions",
        "unique_impressions",
        "total_clicks",
        "unique_clicks",
        "total_dismissals",
        "unique_dismissals",
    ),
    "webhook": ("sent", "errors"),
    "in_app_message": _IN_APP_METRICS,
    "trigger_in_app_message": _IN_APP_METRICS,
}
#: Conversion counts: the main event and up to three more, by conversion time and by send time.
_CONVERSION_FIELDS = tuple(
    f"conversions{n}{suffix}" for n in ("", "1", "2", "3") for suffix in ("", "_by_send_time")
)
#: What every channel's variations report besides their own statistics.
OUTCOME_FIELDS = ("revenue", "unique_recipients", *_CONVERSION_FIELDS)
#: Every variation statistic Braze documents: each channel's, then the outcomes. In rows, a
#: statistic that is not the row's channel's is None (an email row has no ``direct_opens``).
VARIATION_FIELDS = (
    tuple(dict.fromkeys(name for metrics in CHANNEL_METRICS.values() for name in metrics)) + OUTCOME_FIELDS
)
#: Day-level totals Braze documents; in rows they are prefixed ``day_``.
DAY_FIELDS = (*_CONVERSION_FIELDS, "unique_recipients", "revenue")
#: ``/sends/data_series`` names a variation by ``variation_name``; ``/campaigns/data_series``
#: now by ``variation_api_id``: rows have both columns, None where Braze sent nothing.
KEY_FIELDS = ("campaign_id", "send_id", "date", "channel", "variation_name", "variation_api_id")
#: The columns every row has, whatever Braze sent (missing values are None).
ROW_FIELDS = (*KEY_FIELDS, *VARIATION_FIELDS, *(f"day_{name}" for name in DAY_FIELDS))
#: Outcomes totalled for every channel, after the channel's own statistics.
CHANNEL_OUTCOMES = ("unique_recipients", "conversions", "revenue")

#: The summary line of each kind of channel: (statistic, label), and the rate shown as
#: (statistic, of statistic, label).
_PUSH_SUMMARY = (
    (
        ("sent", "sent"),
        ("direct_opens", "direct opens"),
        ("total_opens", "total opens"),
        ("body_clicks", "body clicks"),
        ("bounces", "bounces"),
    ),
    ("direct_opens", "sent", "direct open rate"),
)
_IN_APP_SUMMARY = (
    (
        ("impressions", "impressions"),
        ("clicks", "clicks"),
        ("first_button_clicks", "first button clicks"),
        ("second_button_clicks", "second button clicks"),
    ),
    ("clicks", "impressions", "click rate"),
)
_SUMMARIES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, str, str] | None]] = {
    **dict.fromkeys(PUSH_CHANNELS, _PUSH_SUMMARY),
    "email": (
        (
            ("sent", "sent"),
            ("delivered", "delivered"),
            ("unique_opens", "unique opens"),
            ("unique_clicks", "unique clicks"),
            ("unsubscribes", "unsubscribes"),
            ("bounces", "bounces"),
            ("reported_spam", "spam reports"),
        ),
        ("unique_opens", "delivered", "unique open rate"),
    ),
    "sms": (
        (
            ("sent", "sent"),
            ("delivered", "delivered"),
            ("delivery_failed", "failed"),
            ("rejected", "rejected"),
            ("clicks", "clicks"),
            ("opt_out", "opt-outs"),
        ),
        ("delivered", "sent", "delivery rate"),
    ),
    "whats_app": (
        (("sent", "sent"), ("delivered", "delivered"), ("read", "read"), ("failed", "failed")),
        ("read", "delivered", "read rate"),
    ),
    "content_cards": (
        (
            ("sent", "sent"),
            ("unique_impressions", "unique impressions"),
            ("unique_clicks", "unique clicks"),
            ("unique_dismissals", "unique dismissals"),
        ),
        ("unique_clicks", "unique_impressions", "unique click rate"),
    ),
    "webhook": ((("sent", "sent"), ("errors", "errors")), None),
    "in_app_message": _IN_APP_SUMMARY,
    "trigger_in_app_message": _IN_APP_SUMMARY,
}


def send_analytics_rows(answer: Mapping[str, Any], *, campaign_id: str, send_id: str) -> list[dict[str, Any]]:
    """Flatten Braze's ``/sends/data_series`` answer into rows, oldest day first.

    Each row has every column of :data:`ROW_FIELDS` (None where Braze sent nothing, so an email
    row's push statistics are None), then any further scalar fields Braze returned for the
    variation (kept, not dropped). A day with no message statistics gives one row with
    ``channel`` and the variation None, so its totals are not lost.
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
                row.update(base, channel=channel)
                for name, value in variation.items():
                    if name in ("variation_name", "variation_api_id"):
                        row[name] = _text(value, f"{where}.{name}")
                    elif name in VARIATION_FIELDS:
                        row[name] = _number(value, f"{where}.{name}")
                    elif name not in ROW_FIELDS and _is_scalar(value):
                        row[name] = value  # a field Braze added since: keep it
                row.update(totals)
                rows.append(row)
                day_rows += 1
        if not day_rows:
            row = dict.fromkeys(ROW_FIELDS)
            row.update(base)
            row.update(totals)
            rows.append(row)
    rows.sort(
        key=lambda r: (r["date"], r["channel"] or "", r["variation_name"] or "", r["variation_api_id"] or "")
    )
    return rows


def channel_statistics(channel: str, row: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The statistics totalled for ``channel``: its own as Braze documents them, then the
    outcomes. For a channel Braze has added since, every numeric field of ``row``."""
    if channel in CHANNEL_METRICS:
        return (*CHANNEL_METRICS[channel], *CHANNEL_OUTCOMES)
    if row is None:
        return CHANNEL_OUTCOMES
    return tuple(
        name
        for name, value in row.items()
        if name not in KEY_FIELDS and not name.startswith("day_") and _is_number(value)
    )


def totals_by_channel(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sum each channel's own statistics (and its outcomes) over all days and variations, and
    count the days with activity (``days``).

    Every statistic of a known channel is present; it is None when Braze never reported it
    (not 0: "no data" is not "nobody opened"). Braze counts ``unique_*`` statistics per day, so
    over several days their sum counts a user once per day, not once.
    """
    totals: dict[str, dict[str, Any]] = {}
    active: dict[str, set[str]] = {}
    for row in rows:
        channel = row.get("channel")
        if channel is None:
            continue
        sums = totals.setdefault(channel, dict.fromkeys(channel_statistics(channel)))
        days = active.setdefault(channel, set())
        for name in channel_statistics(channel, row):
            value = row.get(name)
            sums.setdefault(name, None)
            if _is_number(value):
                sums[name] = (sums[name] or 0) + value
                if value > 0:
                    days.add(row["date"])
    for channel, sums in totals.items():
        if isinstance(sums.get("revenue"), float):
            sums["revenue"] = round(sums["revenue"], 2)
        sums["days"] = len(active[channel])
    return totals


def describe_totals(totals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One human-readable line per channel, in that channel's own terms."""
    lines = []
    for channel, t in sorted(totals.items()):
        counts, rate = _SUMMARIES.get(
            channel,
            (
                tuple(
                    (name, name.replace("_", " ")) for name in t if name not in (*CHANNEL_OUTCOMES, "days")
                ),
                None,
            ),
        )
        days = t.get("days")
        # Unique counts are per day: summed over several days they are not unique, and a rate
        # from them could pass 100%.
        several_days = isinstance(days, int) and days > 1
        parts = [_counted(t.get(name), label) for name, label in counts]
        if rate is not None:
            numerator, denominator, label = rate
            if not (several_days and (numerator.startswith("unique_") or denominator.startswith("unique_"))):
                parts.append(f"{label} {_percent(t.get(numerator), t.get(denominator))}")
        parts.append(_counted(t.get("conversions"), "conversions"))
        revenue = t.get("revenue")
        parts.append("revenue n/a" if revenue is None else f"revenue {revenue:.2f} USD")
        line = f"{channel}: " + ", ".join(parts)
        if several_days and any(name.startswith("unique_") for name, _ in counts):
            line += f" (over {days} days; unique counts are per day, summed)"
        lines.append(line)
    return lines or ["no message statistics yet"]


def activity_days(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The days on which some channel reports a positive statistic, oldest first.

    Whether Braze's series starts on the day of the send or covers the whole requested window
    with zeros is not documented: days whose statistics are all zero are not activity.
    """
    days = set()
    for row in rows:
        channel = row.get("channel")
        if channel is None or row["date"] in days:
            continue
        if any(_is_number(row.get(name)) and row[name] > 0 for name in channel_statistics(channel, row)):
            days.add(row["date"])
    return sorted(days)


def rows_to_text(
    rows: list[dict[str, Any]], file_format: str, *, fields: tuple[str, ...] = ROW_FIELDS
) -> str:
    """Rows as CSV (header first; columns: ``fields`` then any extra fields) or JSON lines."""
    if file_format == "jsonl":
        return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    if file_format != "csv":
        raise BrazeValidationError(f"output format must be 'csv' or 'jsonl', got {file_format!r}.")
    extra = sorted({name for row in rows for name in row} - set(fields))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*fields, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def output_format_for(path: str, explicit: str | None) -> str:
    """``csv`` or ``jsonl`` for an output file: ``output_format``, else the path's suffix."""
    from airflow_provider_braze.storage import file_format

    return file_format(path, explicit, argument="output_format")


def _date_of(value: Any, position: int) -> str:
    if not isinstance(value, str) or len(value) < 10:
        raise _unexpected(f"data[{position}].time is {value!r}, not an ISO-8601 date")
    return value[:10]


def _number(value: Any, where: str) -> float | int | None:
    if value is None:
        return None
    if not _is_number(value):
        raise _unexpected(f"{where} is {value!r}, not a number")
    return value


def _unexpected(detail: str) -> BrazeUnexpectedResponseError:
    return BrazeUnexpectedResponseError(
        f"Braze's answer to {GET_SEND_ANALYTICS} is not in the documented shape: {detail}.",
        endpoint=str(GET_SEND_ANALYTICS),
    )


def _counted(value: Any, label: str) -> str:
    """``3 bounces``, ``1 bounce``, ``n/a bounces``: the labels are plural nouns or participles."""
    if value is None:
        return f"n/a {label}"
    if value == 1 and label.endswith("s"):
        label = label[:-1]
    return f"{value:.0f} {label}"


def _percent(numerator: Any, denominator: Any) -> str:
    if not _is_number(numerator) or not _is_number(denominator) or not denominator:
        return "n/a"
    return f"{100 * numerator / denominator:.1f}%"


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value)


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _unexpected(f"{where} is {value!r}, not text")
