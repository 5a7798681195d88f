"""``/sends/data_series`` for the sandbox: statistics derived from what the sandbox delivered.

``sent`` and ``unique_recipients`` are exact (from the delivery ledger); deliveries, opens,
clicks, conversions and revenue are made up, but plausible, consistent with each other and
deterministic: the same seed, campaign, send ID, day and channel always give the same numbers.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

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


def channels_of(messages: dict[str, Any]) -> list[str]:
    return [CHANNEL_NAMES.get(name, name) for name in messages]


def variation_stats(seed: str, channel: str, sent: int) -> dict[str, Any]:
    rng = random.Random(seed)
    failed = round(sent * rng.uniform(0.0, 0.01))
    bounces = round(sent * rng.uniform(0.0, 0.02)) if channel == "email" else 0
    delivered = max(0, sent - failed - bounces)
    direct_opens = round(delivered * rng.uniform(0.15, 0.35))
    clicks = round(direct_opens * rng.uniform(0.05, 0.2))
    conversions = round(clicks * rng.uniform(0.1, 0.3))
    return {
        "variation_name": f"{channel.replace('_', ' ').title()} (API)",
        "sent": sent,
        "delivered": delivered,
        "undelivered": sent - delivered,
        "delivery_failed": failed,
        "direct_opens": direct_opens,
        "total_opens": direct_opens + round(direct_opens * rng.uniform(0.1, 0.5)),
        "bounces": bounces,
        "body_clicks": clicks,
        "revenue": round(conversions * rng.uniform(5, 50), 2),
        "unique_recipients": sent,
        "conversions": conversions,
        "conversions_by_send_time": conversions,
    }


def data_series(
    daily: Mapping[str, tuple[Mapping[str, int], int]],
    *,
    seed: int | None,
    campaign_id: str,
    send_id: str,
    end: date,
    length: int,
    today: date,
) -> list[dict[str, Any]]:
    """The ``data`` list: one entry per day from the first send day in range to ``end``."""
    first_kept = max(end - timedelta(days=length - 1), today - timedelta(days=RETENTION_DAYS))
    send_days = sorted(d for d in daily if first_kept <= date.fromisoformat(d) <= end)
    if not send_days:
        return []
    entries = []
    day = date.fromisoformat(send_days[0])
    while day <= end:
        key = day.isoformat()
        channels, recipients = daily.get(key, ({}, 0))
        messages = {
            channel: [variation_stats(f"{seed}|{campaign_id}|{send_id}|{key}|{channel}", channel, count)]
            for channel, count in sorted(channels.items())
        }
        variations = [v for stats in messages.values() for v in stats]
        conversions = sum(v["conversions"] for v in variations)
        entries.append(
            {
                "time": key,
                "messages": messages,
                "conversions": conversions,
                "conversions_by_send_time": conversions,
                "unique_recipients": recipients,
                "revenue": round(sum(v["revenue"] for v in variations), 2),
            }
        )
        day += timedelta(days=1)
    return entries
