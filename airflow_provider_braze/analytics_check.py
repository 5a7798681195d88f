"""The one check of a send's analytics, shared by
:class:`~airflow_provider_braze.sensors.send_analytics.SendAnalyticsSensor` on a worker and
:class:`~airflow_provider_braze.triggers.send_analytics.SendAnalyticsTrigger` in the triggerer:
:func:`evaluate_send_analytics` judges Braze's answer (no I/O, so the trigger runs it on its
event loop after an async request); :func:`check_send_analytics` asks the synchronous hook and
judges, :func:`acheck_send_analytics` the async one. And when to check: :func:`old_enough_at`,
:func:`next_check_in`.

Cheap to import: no hook, no HTTP library, no Airflow operator machinery."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_braze.hooks.braze import BrazeHook
    from airflow_provider_braze.hooks.braze_async import BrazeAsyncHook

#: How long past ``min_age`` a send to listed users may show no analytics before the sensor
#: concludes Braze may not track it. Braze documents no delay for send analytics; a day is far
#: more than its reports take, so under Braze's other reading (all sends tracked) it does not
#: raise a false alarm.
DEFAULT_NO_DATA_GRACE = timedelta(hours=24)
#: Why a send may have no analytics at all, and what to do.
MAYBE_UNTRACKED = (
    "Braze may keep send analytics only for broadcasts (its errors page: analytics are available "
    '"for a specific campaign send instance when the campaign is sent as a broadcast"), so a send '
    "to a list of users may never have any. To have send analytics, send to a segment or audience "
    "as a broadcast, or read the campaign's analytics instead; if Braze is only slow, raise "
    "no_data_grace."
)


def check_send_analytics(
    hook: BrazeHook,
    *,
    campaign_id: str,
    send_id: str,
    length: int,
    min_sent: int | None,
    min_age: timedelta | None,
    sent_at: datetime | None,
    log: Any,
    broadcast: bool | None = None,
    no_data_grace: timedelta = DEFAULT_NO_DATA_GRACE,
) -> tuple[bool, dict[str, Any]]:
    """One check of a send's analytics against the sensor's condition, through the synchronous
    hook: whether it is met, and the summary ``{"sent", "days", "channel_totals"}``. See
    :func:`evaluate_send_analytics`."""
    answer = hook.get_send_analytics(campaign_id, send_id, length)
    return evaluate_send_analytics(
        answer,
        campaign_id=campaign_id,
        send_id=send_id,
        min_sent=min_sent,
        min_age=min_age,
        sent_at=sent_at,
        log=log,
        broadcast=broadcast,
        no_data_grace=no_data_grace,
        now=_utcnow(),
    )


async def acheck_send_analytics(
    hook: BrazeAsyncHook,
    *,
    campaign_id: str,
    send_id: str,
    length: int,
    min_sent: int | None,
    min_age: timedelta | None,
    sent_at: datetime | None,
    log: Any,
    broadcast: bool | None = None,
    no_data_grace: timedelta = DEFAULT_NO_DATA_GRACE,
) -> tuple[bool, dict[str, Any]]:
    """:func:`check_send_analytics` through the async hook (the trigger's)."""
    answer = await hook.get_send_analytics(campaign_id, send_id, length)
    return evaluate_send_analytics(
        answer,
        campaign_id=campaign_id,
        send_id=send_id,
        min_sent=min_sent,
        min_age=min_age,
        sent_at=sent_at,
        log=log,
        broadcast=broadcast,
        no_data_grace=no_data_grace,
        now=_utcnow(),
    )


def evaluate_send_analytics(
    answer: dict[str, Any],
    *,
    campaign_id: str,
    send_id: str,
    min_sent: int | None,
    min_age: timedelta | None,
    sent_at: datetime | None,
    log: Any,
    now: datetime,
    broadcast: bool | None = None,
    no_data_grace: timedelta = DEFAULT_NO_DATA_GRACE,
) -> tuple[bool, dict[str, Any]]:
    """Whether Braze's answer to ``GET /sends/data_series`` (``answer``) meets the sensor's
    condition at ``now``, and the summary ``{"sent", "days", "channel_totals"}``.

    :raises BrazeAnalyticsUnavailableError: Braze no longer has the send's analytics.
    :raises BrazeAnalyticsUntrackedError: a send to listed users (``broadcast`` False) still has
        none ``no_data_grace`` after it was ``min_age`` old: Braze may track only broadcasts.
    """
    from airflow_provider_braze._words import plural
    from airflow_provider_braze.analytics import (
        RETENTION_DAYS,
        activity_days,
        send_analytics_rows,
        totals_by_channel,
    )
    from airflow_provider_braze.exceptions import BrazeAnalyticsUnavailableError, BrazeAnalyticsUntrackedError

    rows = send_analytics_rows(answer, campaign_id=campaign_id, send_id=send_id)
    with_stats = [r for r in rows if r["channel"] is not None]
    sent = sum(r["sent"] or 0 for r in with_stats)
    # Not the first day of the series: whether it starts on the day of the send or covers
    # the whole window with zeros is undocumented. The first day with any activity.
    days = activity_days(with_stats)
    # Braze reports days, not times, and does not say in which time zone: without sent_at,
    # the send happened some time on its first day, in some zone from UTC+14 to UTC-12.
    # Retention counts from the earliest that can be; min_age from the latest, so it is
    # never met early (at worst 36 hours late: pass sent_at for precision).
    oldest = newest = sent_at
    if sent_at is None and days:
        midnight = datetime.fromisoformat(days[0]).replace(tzinfo=timezone.utc)
        oldest = midnight - _EASTERNMOST_OFFSET
        newest = min(now, midnight + timedelta(days=1) + _WESTERNMOST_OFFSET)
    age = now - oldest if oldest else None
    least_age = now - newest if newest else None

    if age is not None and age > timedelta(days=RETENTION_DAYS):
        if not days:
            raise BrazeAnalyticsUnavailableError(
                f"Braze has no analytics for send {send_id!r} of campaign {campaign_id!r}: the send "
                f"is {age.days} days old and Braze keeps send analytics for {RETENTION_DAYS} days."
            )
        log.warning(
            "Send %r is %d days old; Braze keeps send analytics for %d days, so fetch them now.",
            send_id,
            age.days,
            RETENTION_DAYS,
        )

    # No analytics at all, long after the send: Braze may not track sends to listed users.
    # Only from sent_at (without data the send's age is unknown), and never for a broadcast.
    overdue = (
        not days
        and sent_at is not None
        and broadcast is not True
        and now - sent_at >= (min_age or timedelta(0)) + no_data_grace
    )
    if overdue and sent_at is not None:
        waited = _whole_seconds(now - sent_at)
        if broadcast is False:
            raise BrazeAnalyticsUntrackedError(
                f"Braze has no analytics for send {send_id!r} of campaign {campaign_id!r}, sent to a "
                f"list of users {waited} ago (past min_age {min_age or timedelta(0)} plus no_data_grace "
                f"{no_data_grace}). {MAYBE_UNTRACKED}"
            )
        log.warning(
            "Send %r of campaign %r has no analytics %s after it was sent. If it went to a list of "
            "users: %s Pass broadcast= (the send summary's) to fail at once instead of waiting.",
            send_id,
            campaign_id,
            waited,
            MAYBE_UNTRACKED,
        )

    waiting = []
    if not days:
        waiting.append("analytics to appear")
    if min_sent is not None and sent < min_sent:
        waiting.append(f"at least {min_sent} sent (now {sent})")
    if min_age is not None and (least_age is None or least_age < min_age):
        waiting.append(f"the send to be {min_age} old (now {'unknown' if least_age is None else least_age})")
    summary = {"sent": sent, "days": len(days), "channel_totals": totals_by_channel(with_stats)}
    if waiting:
        log.info(
            "Send %r: %d sent over %s; waiting for %s.",
            send_id,
            sent,
            plural(len(days), "day"),
            ", ".join(waiting),
        )
    else:
        log.info("Send %r: %d sent over %s; the condition is met.", send_id, sent, plural(len(days), "day"))
    return not waiting, summary


#: The time zones a day can be reported in: from UTC+14 (it starts 14 hours before UTC's) to
#: UTC-12 (it ends 12 hours after UTC's).
_EASTERNMOST_OFFSET = timedelta(hours=14)
_WESTERNMOST_OFFSET = timedelta(hours=12)


def old_enough_at(sent_at: datetime | None, min_age: timedelta | None) -> datetime | None:
    """When the send reaches ``min_age``: known only with ``sent_at`` (without it, the send's age
    comes from the analytics themselves, so there is no moment to aim the next check at)."""
    if sent_at is None or min_age is None:
        return None
    return sent_at + min_age


def next_check_in(interval: float, old_enough: datetime | None, now: datetime) -> float:
    """Seconds until the next check: ``interval``, or fewer when the send reaches ``min_age``
    (``old_enough``) sooner, so the check that can first succeed happens at that moment. Used
    by the sensor on a worker and by its trigger."""
    if old_enough is None:
        return interval
    until = (old_enough - now).total_seconds()
    return until if 0 < until < interval else interval


def _utcnow() -> datetime:
    """Now, in UTC (a function, so tests can set the clock)."""
    return datetime.now(timezone.utc)


def _whole_seconds(span: timedelta) -> timedelta:
    return timedelta(seconds=int(span.total_seconds()))
