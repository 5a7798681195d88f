"""``/sends/data_series`` for the sandbox: statistics derived from what the sandbox delivered.

``sent`` and ``unique_recipients`` are exact (from the delivery ledger); the rest (deliveries,
opens, clicks, conversions, revenue...) is made up, but plausible, consistent with each other
and deterministic: the same seed, campaign, send ID, day, channel and variation always give the
same numbers. Each channel reports its own statistics, as Braze documents them
(:data:`airflow_provider_braze.analytics.CHANNEL_METRICS`), one entry per message variation.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.analytics import PUSH_CHANNELS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Messaging-object keys of /messages/send and the channel names analytics report them under.
CHANNEL_NAMES = {
    "apple_push": "ios_push",
    "android_push": "android_push",
    "kindle_push": "kindle_push",
    "web_push": "web_push",
    "windows_phone8_push": "windows_phone8_push",
    "windows_universal_push": "windows_universal_push",
    "email": "email",
    "sms": "sms",
    "content_card": "content_cards",
    "webhook": "webhook",
    "whats_app": "whats_app",
}
#: What API-triggered campaigns send through in the sandbox (their content lives in the dashboard).
TRIGGERED_CAMPAIGN_CHANNEL = "email"
RETENTION_DAYS = 14

#: (analytics channel, message variation ID or None): what the ledger counts per day.
Line = tuple[str, "str | None"]


def lines_of(messages: dict[str, Any]) -> list[Line]:
    """The (channel, variation) lines a ``messages`` object sends through."""
    lines: list[Line] = []
    for name, message in messages.items():
        variation = message.get("message_variation_id") if isinstance(message, dict) else None
        lines.append((CHANNEL_NAMES.get(name, name), variation if isinstance(variation, str) else None))
    return lines


def variation_stats(seed: str, channel: str, sent: int) -> dict[str, Any]:
    """One variation's statistics for one day: the channel's own, then the outcomes."""
    rng = random.Random(seed)

    def share(of: int, low: float, high: float) -> int:
        return round(of * rng.uniform(low, high))

    stats: dict[str, Any] = {"sent": sent}
    if channel in PUSH_CHANNELS:
        failed = share(sent, 0.0, 0.01)
        bounces = share(sent - failed, 0.0, 0.02)
        delivered = sent - failed - bounces
        direct_opens = share(delivered, 0.03, 0.12)
        stats.update(
            delivered=delivered,
            undelivered=sent - delivered,
            delivery_failed=failed,
            direct_opens=direct_opens,
            total_opens=direct_opens + share(delivered - direct_opens, 0.02, 0.1),
            bounces=bounces,
            body_clicks=share(direct_opens, 0.3, 0.9),
        )
        engaged = direct_opens
    elif channel == "email":
        bounces = share(sent, 0.0, 0.02)
        delivered = sent - bounces
        unique_opens = share(delivered, 0.15, 0.35)
        unique_clicks = share(unique_opens, 0.05, 0.2)
        stats.update(
            delivered=delivered,
            opens=unique_opens + share(unique_opens, 0.1, 0.5),
            unique_opens=unique_opens,
            clicks=unique_clicks + share(unique_clicks, 0.1, 0.5),
            unique_clicks=unique_clicks,
            unsubscribes=share(delivered, 0.0, 0.005),
            bounces=bounces,
            reported_spam=share(delivered, 0.0, 0.001),
        )
        engaged = unique_clicks
    elif channel == "sms":
        rejected = share(sent, 0.0, 0.01)
        to_carrier = sent - rejected
        failed = share(to_carrier, 0.0, 0.02)
        delivered = to_carrier - failed
        clicks = share(delivered, 0.02, 0.1)
        stats.update(
            sent_to_carrier=to_carrier,
            delivered=delivered,
            rejected=rejected,
            delivery_failed=failed,
            clicks=clicks,
            opt_out=share(delivered, 0.0, 0.01),
            help=share(delivered, 0.0, 0.002),
        )
        engaged = clicks
    elif channel == "whats_app":
        failed = share(sent, 0.0, 0.02)
        delivered = sent - failed
        read = share(delivered, 0.4, 0.8)
        stats.update(delivered=delivered, failed=failed, read=read)
        engaged = share(read, 0.05, 0.2)
    elif channel == "content_cards":
        unique_impressions = share(sent, 0.3, 0.7)
        unique_clicks = share(unique_impressions, 0.05, 0.2)
        unique_dismissals = share(unique_impressions - unique_clicks, 0.05, 0.3)
        stats.update(
            total_impressions=unique_impressions + share(unique_impressions, 0.1, 0.8),
            unique_impressions=unique_impressions,
            total_clicks=unique_clicks + share(unique_clicks, 0.0, 0.3),
            unique_clicks=unique_clicks,
            total_dismissals=unique_dismissals,
            unique_dismissals=unique_dismissals,
        )
        engaged = unique_clicks
    elif channel == "webhook":
        stats.update(errors=share(sent, 0.0, 0.01))
        engaged = 0
    else:  # a channel without documented statistics: sends only
        engaged = 0
    conversions = share(engaged, 0.1, 0.3)
    stats.update(
        revenue=round(conversions * rng.uniform(5, 50), 2),
        unique_recipients=sent,
        conversions=conversions,
        conversions_by_send_time=conversions,
    )
    return stats


def data_series(
    daily: Mapping[str, tuple[Mapping[Line, int], int]],
    *,
    seed: int | None,
    campaign_id: str,
    send_id: str,
    end: date,
    length: int,
    today: date,
    variation_label: Callable[[str | None], dict[str, Any]],
    whole_window: bool = False,
) -> list[dict[str, Any]]:
    """The ``data`` list, one entry per day, from the first day with a send in range (or, with
    ``whole_window``, from the first day of the window, zeros where nothing was sent) to ``end``.

    :param daily: Day -> ((channel, variation) -> messages sent, recipients).
    :param variation_label: How an entry names its variation (``{"variation_name": ...}``).
    """
    first_kept = max(end - timedelta(days=length - 1), today - timedelta(days=RETENTION_DAYS))
    send_days = sorted(d for d in daily if first_kept <= date.fromisoformat(d) <= end)
    if whole_window:
        start = first_kept
    elif send_days:
        start = date.fromisoformat(send_days[0])
    else:
        return []
    every_line = sorted(
        {line for lines, _ in daily.values() for line in lines}, key=lambda x: (x[0], x[1] or "")
    )
    entries = []
    day = start
    while day <= end:
        key = day.isoformat()
        lines, recipients = daily.get(key, ({}, 0))
        shown = every_line if whole_window else sorted(lines, key=lambda x: (x[0], x[1] or ""))
        messages: dict[str, list[dict[str, Any]]] = {}
        for channel, variation in shown:
            stats = variation_stats(
                f"{seed}|{campaign_id}|{send_id}|{key}|{channel}|{variation}",
                channel,
                lines.get((channel, variation), 0),
            )
            messages.setdefault(channel, []).append({**variation_label(variation), **stats})
        every = [v for stats in messages.values() for v in stats]
        conversions = sum(v["conversions"] for v in every)
        entries.append(
            {
                "time": key,
                "messages": messages,
                "conversions": conversions,
                "conversions_by_send_time": conversions,
                "unique_recipients": recipients,
                "revenue": round(sum(v["revenue"] for v in every), 2),
            }
        )
        day += timedelta(days=1)
    return entries
