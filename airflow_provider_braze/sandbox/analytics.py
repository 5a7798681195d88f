"""``/sends/data_series`` for the sandbox: statistics derived from what the sandbox delivered.

``sent`` and ``unique_recipients`` are exact (from the delivery ledger); the rest (deliveries,
opens, clicks, conversions, revenue...) is made up, but plausible, consistent with each other
and deterministic: the same seed, campaign, send ID, day, channel and variation always give the
same numbers. Each channel reports its own statistics, as Braze documents them
(:data:`airflow_provider_braze.analytics.CHANNEL_METRICS`), one entry per message variation.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.analytics import PUSH_CHANNELS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

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


def content_of(messages: dict[str, Any]) -> dict[Line, str]:
    """A fingerprint of each line's content (the messaging object without its variation ID):
    what the sandbox's made-up engagement depends on, as real engagement depends on content."""
    contents: dict[Line, str] = {}
    for line, (name, message) in zip(lines_of(messages), messages.items(), strict=True):
        body = (
            {k: v for k, v in message.items() if k != "message_variation_id"}
            if isinstance(message, dict)
            else message
        )
        contents[line] = _fingerprint([name, body])
    return contents


def trigger_content(campaign_id: str | None, trigger_properties: Any) -> dict[Line, str]:
    """The content of an API-triggered campaign's send: the campaign's (dashboard) message,
    personalised by the request's trigger properties."""
    return {(TRIGGERED_CAMPAIGN_CHANNEL, None): _fingerprint([campaign_id, trigger_properties])}


def audience_print(recipient_keys: Iterable[str]) -> int:
    """A 64-bit print of a set of recipients, order-independent (XOR of each key's hash), so a
    day's statistics depend on who was sent to, and can be added to batch by batch."""
    value = 0
    for key in recipient_keys:
        value ^= int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return value


def content_lifts(seed: int | None, fingerprint: str | None) -> tuple[float, float]:
    """How much better or worse than the channel's typical rates a content does: (lift on
    opens/reads/impressions, lift on clicks), each around 1. Fixed by the seed and the content,
    so the same content always performs the same; most contents differ by 10-30 %."""
    if fingerprint is None:
        return 1.0, 1.0
    rng = random.Random(f"{seed}|content|{fingerprint}")
    return (
        min(1.7, max(0.6, math.exp(rng.gauss(0.0, 0.2)))),
        min(1.7, max(0.6, math.exp(rng.gauss(0.0, 0.2)))),
    )


def variation_stats(
    seed: str, channel: str, sent: int, lifts: tuple[float, float] = (1.0, 1.0)
) -> dict[str, Any]:
    """One variation's statistics for one day: the channel's own, then the outcomes.

    Each count is a binomial draw (seeded by ``seed``) at the channel's typical rate times the
    content's ``lifts``, so counts are consistent (clicks never exceed opens) and two variations
    differ as much as their content and their sample sizes make plausible.
    """
    rng = random.Random(seed)
    opens_lift, clicks_lift = lifts

    def draw(n: int, p: float) -> int:
        return _binomial(rng, n, p)

    stats: dict[str, Any] = {"sent": sent}
    if channel in PUSH_CHANNELS:
        failed = draw(sent, 0.005)
        bounces = draw(sent - failed, 0.01)
        delivered = sent - failed - bounces
        direct_opens = draw(delivered, 0.06 * opens_lift)
        stats.update(
            delivered=delivered,
            undelivered=sent - delivered,
            delivery_failed=failed,
            direct_opens=direct_opens,
            total_opens=direct_opens + draw(delivered - direct_opens, 0.04),
            bounces=bounces,
            body_clicks=draw(direct_opens, 0.5 * clicks_lift),
        )
        engaged = direct_opens
    elif channel == "email":
        bounces = draw(sent, 0.01)
        delivered = sent - bounces
        unique_opens = draw(delivered, 0.25 * opens_lift)
        unique_clicks = draw(unique_opens, 0.12 * clicks_lift)
        stats.update(
            delivered=delivered,
            opens=unique_opens + draw(unique_opens, 0.3),
            unique_opens=unique_opens,
            clicks=unique_clicks + draw(unique_clicks, 0.2),
            unique_clicks=unique_clicks,
            unsubscribes=draw(delivered, 0.002),
            bounces=bounces,
            reported_spam=draw(delivered, 0.0005),
        )
        engaged = unique_clicks
    elif channel == "sms":
        rejected = draw(sent, 0.005)
        to_carrier = sent - rejected
        failed = draw(to_carrier, 0.01)
        delivered = to_carrier - failed
        clicks = draw(delivered, 0.05 * clicks_lift)
        stats.update(
            sent_to_carrier=to_carrier,
            delivered=delivered,
            rejected=rejected,
            delivery_failed=failed,
            clicks=clicks,
            opt_out=draw(delivered, 0.004),
            help=draw(delivered, 0.001),
        )
        engaged = clicks
    elif channel == "whats_app":
        failed = draw(sent, 0.01)
        delivered = sent - failed
        read = draw(delivered, min(0.95, 0.6 * opens_lift))
        stats.update(delivered=delivered, failed=failed, read=read)
        engaged = draw(read, 0.12 * clicks_lift)
    elif channel == "content_cards":
        unique_impressions = draw(sent, min(0.95, 0.5 * opens_lift))
        unique_clicks = draw(unique_impressions, 0.1 * clicks_lift)
        unique_dismissals = draw(unique_impressions - unique_clicks, 0.15)
        stats.update(
            total_impressions=unique_impressions + draw(unique_impressions, 0.4),
            unique_impressions=unique_impressions,
            total_clicks=unique_clicks + draw(unique_clicks, 0.15),
            unique_clicks=unique_clicks,
            total_dismissals=unique_dismissals,
            unique_dismissals=unique_dismissals,
        )
        engaged = unique_clicks
    elif channel == "webhook":
        stats.update(errors=draw(sent, 0.005))
        engaged = 0
    else:  # a channel without documented statistics: sends only
        engaged = 0
    conversions = draw(engaged, 0.2)
    stats.update(
        revenue=round(sum(rng.uniform(5, 50) for _ in range(conversions)), 2),
        unique_recipients=sent,
        conversions=conversions,
        conversions_by_send_time=conversions,
    )
    return stats


def _binomial(rng: random.Random, n: int, p: float) -> int:
    """A seeded binomial draw: exact for small ``n``, the normal approximation above."""
    p = min(1.0, max(0.0, p))
    if n <= 0 or p == 0.0:
        return 0
    if n < 100:
        return sum(rng.random() < p for _ in range(n))
    return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))


def _fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    contents: Mapping[Line, str] | None = None,
    audience_prints: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The ``data`` list, one entry per day, from the first day with a send in range (or, with
    ``whole_window``, from the first day of the window, zeros where nothing was sent) to ``end``.

    :param daily: Day -> ((channel, variation) -> messages sent, recipients).
    :param variation_label: How an entry names its variation (``{"variation_name": ...}``).
    :param contents: (channel, variation) -> the fingerprint of its content (:func:`content_of`).
    :param audience_prints: Day -> the print of that day's recipients (:func:`audience_print`).
    """
    contents = contents or {}
    audience_prints = audience_prints or {}
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
                f"{seed}|{campaign_id}|{send_id}|{key}|{channel}|{variation}|{audience_prints.get(key, 0)}",
                channel,
                lines.get((channel, variation), 0),
                content_lifts(seed, contents.get((channel, variation))),
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
