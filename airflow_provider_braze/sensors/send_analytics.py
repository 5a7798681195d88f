"""SendAnalyticsSensor: wait until a send's analytics meet a condition, without holding a worker."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.validation import (
    parse_utc,
    validate_campaign_id,
    validate_required_send_id,
    validate_series_length,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class SendAnalyticsSensor(BaseSensorOperator):
    """Wait until Braze has analytics for a send ID that meet a condition.

    The conditions combine (all must hold): analytics are present, that is some channel reports
    a positive statistic (always); at least ``min_sent`` messages sent; the send at least
    ``min_age`` old, measured from ``sent_at`` or, without it, from the latest moment the first
    day with activity can end (Braze reports days, not times, in a time zone it does not name,
    and its series may start earlier, with zeros): so ``min_age`` is never met early, at worst
    36 hours late; pass ``sent_at`` for precision. The sensor returns, and pushes to XCom, a
    small summary: ``sent``, ``days`` (days with activity), ``channel_totals``.

    Braze keeps send analytics for 14 days: the sensor warns when the send is older than that,
    and fails at once (no retries) when Braze no longer has data for it (this needs
    ``sent_at``, or data seen for the send).

    It works in ``poke`` and ``reschedule`` mode, and with ``deferrable=True`` it holds no
    worker slot between checks: it waits ``poke_interval`` in the triggerer, then checks again.

    .. code-block:: python

        SendAnalyticsSensor(
            task_id="wait_for_analytics",
            campaign_id="{{ params.campaign_id }}",
            send_id=create_send_id.output,
            min_age=timedelta(hours=24),
            sent_at="{{ ti.xcom_pull(task_ids='send', key='summary')['finished_at'] }}",
            deferrable=True,
            poke_interval=30 * 60,
            timeout=36 * 3600,
        )

    :param campaign_id: The campaign the send ID belongs to. (templated)
    :param send_id: The send ID. (templated)
    :param min_sent: Optional. Wait until at least this many messages were sent, summed over
        channels and days. (templated)
    :param min_age: Optional. Wait until the send is at least this old: a timedelta, or seconds.
        (templated)
    :param sent_at: Optional. When the send happened: ISO-8601 or a timezone-aware datetime.
        (templated)
    :param length: Days of analytics to read per check, 1 to 100 (default 14).
    :param deferrable: Wait between checks in the triggerer instead of on a worker.
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = ("campaign_id", "send_id", "sent_at", "min_sent", "min_age")
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str,
        min_sent: int | str | None = None,
        min_age: timedelta | float | str | None = None,
        sent_at: Any = None,
        length: int = 14,
        deferrable: bool = False,
        braze_conn_id: str = BrazeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.min_sent = min_sent
        self.min_age = min_age
        self.sent_at = sent_at
        self.length = length
        self.deferrable = deferrable
        self.braze_conn_id = braze_conn_id

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    # ------------------------------------------------------------------ poke / reschedule

    def poke(self, context: Context) -> PokeReturnValue:
        done, summary = self._check()
        return PokeReturnValue(is_done=done, xcom_value=summary)

    # ------------------------------------------------------------------ deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done, summary = self._check()
        if done:
            return summary
        self._defer_until_next_check(started_at=datetime.now(timezone.utc))

    def execute_complete(self, context: Context, event: Any = None, started_at: str | None = None) -> Any:
        """Called after each wait in the triggerer: check again, succeed, or wait again."""
        done, summary = self._check()
        if done:
            return summary
        started = datetime.fromisoformat(started_at) if started_at else datetime.now(timezone.utc)
        if (datetime.now(timezone.utc) - started).total_seconds() >= self.timeout:
            from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

            message = (
                f"Braze analytics for send {self.send_id!r} did not meet the condition "
                f"in {self.timeout:.0f} s."
            )
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        self._defer_until_next_check(started_at=started)

    def _defer_until_next_check(self, *, started_at: datetime) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.log.info("Checking again in %.0f s (deferred: no worker slot is held).", self.poke_interval)
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.poke_interval)),
            method_name="execute_complete",
            kwargs={"started_at": started_at.isoformat()},
        )

    # ------------------------------------------------------------------ the check itself

    def _check(self) -> tuple[bool, dict[str, Any]]:
        from airflow_provider_braze._words import plural
        from airflow_provider_braze.analytics import (
            RETENTION_DAYS,
            activity_days,
            send_analytics_rows,
            totals_by_channel,
        )
        from airflow_provider_braze.exceptions import BrazeAnalyticsUnavailableError

        campaign_id = validate_campaign_id(self.campaign_id)
        send_id = validate_required_send_id(self.send_id)
        length = validate_series_length(self.length)
        sent_at = parse_utc(self.sent_at, what="sent_at") if self.sent_at else None
        min_sent = _whole_number(self.min_sent, "min_sent")
        min_age = _duration(self.min_age)

        answer = self.hook.get_send_analytics(campaign_id, send_id, length)
        rows = send_analytics_rows(answer, campaign_id=campaign_id, send_id=send_id)
        with_stats = [r for r in rows if r["channel"] is not None]
        sent = sum(r["sent"] or 0 for r in with_stats)
        # Not the first day of the series: whether it starts on the day of the send or covers
        # the whole window with zeros is undocumented. The first day with any activity.
        days = activity_days(with_stats)
        now = _utcnow()
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
            self.log.warning(
                "Send %r is %d days old; Braze keeps send analytics for %d days, so fetch them now.",
                send_id,
                age.days,
                RETENTION_DAYS,
            )

        waiting = []
        if not days:
            waiting.append("analytics to appear")
        if min_sent is not None and sent < min_sent:
            waiting.append(f"at least {min_sent} sent (now {sent})")
        if min_age is not None and (least_age is None or least_age < min_age):
            waiting.append(
                f"the send to be {min_age} old (now {'unknown' if least_age is None else least_age})"
            )
        summary = {"sent": sent, "days": len(days), "channel_totals": totals_by_channel(with_stats)}
        if waiting:
            self.log.info(
                "Send %r: %d sent over %s; waiting for %s.",
                send_id,
                sent,
                plural(len(days), "day"),
                ", ".join(waiting),
            )
        else:
            self.log.info(
                "Send %r: %d sent over %s; the condition is met.", send_id, sent, plural(len(days), "day")
            )
        return not waiting, summary


#: The time zones a day can be reported in: from UTC+14 (it starts 14 hours before UTC's) to
#: UTC-12 (it ends 12 hours after UTC's).
_EASTERNMOST_OFFSET = timedelta(hours=14)
_WESTERNMOST_OFFSET = timedelta(hours=12)


def _utcnow() -> datetime:
    """Now, in UTC (a function, so tests can set the clock)."""
    return datetime.now(timezone.utc)


def _whole_number(value: Any, name: str) -> int | None:
    """A rendered template gives text: accept ``"500"`` as well as ``500``."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise BrazeValidationError(f"{name} must be a whole number, got {value!r}.") from None
    if number < 0:
        raise BrazeValidationError(f"{name} must not be negative, got {value!r}.")
    return number


def _duration(value: Any) -> timedelta | None:
    """``min_age`` as a timedelta: a timedelta, or seconds as a number or text."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if value is None or value == "" or isinstance(value, timedelta):
        return value or None
    try:
        seconds = float(str(value))
    except ValueError:
        raise BrazeValidationError(f"min_age must be a timedelta or seconds, got {value!r}.") from None
    if not math.isfinite(seconds) or seconds > timedelta.max.total_seconds():
        raise BrazeValidationError(f"min_age must be a finite number of seconds, got {value!r}.")
    if seconds < 0:
        raise BrazeValidationError(f"min_age must not be negative, got {value!r}.")
    return timedelta(seconds=seconds)
