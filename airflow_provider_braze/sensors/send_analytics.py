"""SendAnalyticsSensor: wait until a send's analytics meet a condition, without holding a worker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_braze import analytics_check

# Re-exported: they lived here before the check moved to its own module.
from airflow_provider_braze.analytics_check import (
    DEFAULT_NO_DATA_GRACE,
    MAYBE_UNTRACKED,
    check_send_analytics,
    next_check_in,
    old_enough_at,
)
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.validation import (
    check_duration,
    parse_utc,
    validate_campaign_id,
    validate_required_send_id,
    validate_series_length,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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

    Braze may keep a send ID's analytics only for broadcasts: its errors page says they are
    available "for a specific campaign send instance when the campaign is sent as a broadcast".
    If so, a send to a list of users never has any. So when the send is known to have gone to
    listed users (``broadcast=False``, as the send's summary says) and still has no analytics
    ``no_data_grace`` after it was ``min_age`` old (measured from ``sent_at``), the sensor fails
    at once (no retries, ``BrazeAnalyticsUntrackedError``) saying so, instead of waiting out
    its ``timeout``; with ``soft_fail=True`` it is skipped instead. When it is not known whether
    the send was a broadcast, it logs a warning with the same explanation and keeps waiting. A
    broadcast, or a send that has some analytics, is never taken for untracked.

    It works in ``poke`` and ``reschedule`` mode, and with ``deferrable=True`` (by default
    Airflow's ``[operators] default_deferrable``) it checks once on the worker, then hands the
    waiting to :class:`~airflow_provider_braze.triggers.send_analytics.SendAnalyticsTrigger`,
    which checks Braze every ``poke_interval`` seconds in the triggerer and wakes the task only
    when the condition is met, the ``timeout`` is up, or waiting cannot help.

    In every mode, with ``sent_at`` and ``min_age`` the check comes as soon as the send is
    ``min_age`` old, then every ``poke_interval``: a send that reaches ``min_age`` 60 s after the
    first check is checked again then, not a whole ``poke_interval`` (say 15 minutes) later.

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
    :param broadcast: Optional. Whether the send was a broadcast (the send summary's
        ``broadcast``): True, False, or their text (``"False"``); None when not known. (templated)
    :param no_data_grace: How long past ``min_age`` a send to listed users may have no
        analytics before the sensor concludes that Braze may not track it: a timedelta, or
        seconds (default 24 hours). (templated)
    :param length: Days of analytics to read per check, 1 to 100 (default 14).
    :param deferrable: Wait in the triggerer instead of on a worker: the trigger checks Braze
        every ``poke_interval`` seconds itself and wakes the task only when done. Defaults to
        Airflow's ``[operators] default_deferrable``.
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = (
        "campaign_id",
        "send_id",
        "sent_at",
        "min_sent",
        "min_age",
        "broadcast",
        "no_data_grace",
    )
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str,
        min_sent: int | str | None = None,
        min_age: timedelta | float | str | None = None,
        sent_at: Any = None,
        broadcast: bool | str | None = None,
        no_data_grace: timedelta | float | str = DEFAULT_NO_DATA_GRACE,
        length: int = 14,
        deferrable: bool | None = None,
        braze_conn_id: str = BrazeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.min_sent = min_sent
        self.min_age = min_age
        self.sent_at = sent_at
        self.broadcast = broadcast
        self.no_data_grace = no_data_grace
        self.length = length
        from airflow_provider_braze.validation import check_flag

        check_flag(deferrable, "deferrable", optional=True)
        if deferrable is None:
            # Airflow's convention: [operators] default_deferrable decides when not given.
            from airflow.configuration import conf

            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        self.braze_conn_id = braze_conn_id

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    # ------------------------------------------------------------------ poke / reschedule

    def poke(self, context: Context) -> PokeReturnValue:
        done, summary = self._check()
        return PokeReturnValue(is_done=done, xcom_value=summary)

    def _get_next_poke_interval(
        self,
        started_at: datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        """Airflow's wait before the next poke (``poke_interval``, or its exponential backoff),
        cut short to the moment the send reaches ``min_age`` when that comes sooner: the check
        that can first succeed happens then, not up to a ``poke_interval`` later. Used by both
        ``poke`` (the sleep) and ``reschedule`` (the reschedule date) modes."""
        interval = super()._get_next_poke_interval(started_at, run_duration, poke_count)
        _, _, _, sent_at, _, min_age = self._arguments()
        return next_check_in(interval, old_enough_at(sent_at, min_age), analytics_check._utcnow())

    # ------------------------------------------------------------------ deferrable

    def execute(self, context: Context) -> Any:
        from airflow_provider_braze.rehearsal import skip_if_rehearsal

        skip_if_rehearsal(context, "send analytics")
        if not self.deferrable:
            return super().execute(context)
        done, summary = self._check()
        if done:
            return summary
        self._defer(datetime.now(timezone.utc) + timedelta(seconds=self.timeout))

    def _defer(self, end_at: datetime) -> None:
        """Hand the waiting to the triggerer: it checks Braze every ``poke_interval`` itself."""
        from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

        campaign_id, send_id, length, sent_at, min_sent, min_age = self._arguments()
        broadcast, grace = self._untracked_arguments()
        ready = old_enough_at(sent_at, min_age)
        self.log.info(
            "Deferred: the triggerer checks Braze every %.0f s until %s; no worker slot is held.%s",
            self.poke_interval,
            end_at.isoformat(timespec="seconds"),
            f" It checks again as soon as the send is {min_age} old, at "
            f"{ready.isoformat(timespec='seconds')}."
            if ready is not None and ready > analytics_check._utcnow()
            else "",
        )
        self.defer(
            trigger=SendAnalyticsTrigger(
                campaign_id=campaign_id,
                send_id=send_id,
                length=length,
                min_sent=min_sent,
                min_age_seconds=min_age.total_seconds() if min_age is not None else None,
                sent_at=sent_at.isoformat() if sent_at else None,
                broadcast=broadcast,
                no_data_grace_seconds=grace.total_seconds(),
                poke_interval=float(self.poke_interval),
                end_at=end_at.isoformat(),
                braze_conn_id=self.braze_conn_id,
            ),
            method_name="execute_complete",
            # A safety net should the trigger never answer; the trigger itself ends at end_at.
            timeout=end_at - datetime.now(timezone.utc) + timedelta(minutes=5),
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Called when the trigger fires: the condition is met, the time is up, or it failed."""
        from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

        from airflow_provider_braze.exceptions import (
            BrazeAnalyticsUnavailableError,
            BrazeAnalyticsUntrackedError,
            BrazeError,
        )

        if not isinstance(event, dict):
            raise BrazeError(f"The triggerer woke the sensor without its event (got {event!r}).")
        status = event.get("status")
        if status == "done":
            return event.get("summary")
        if status == "timeout":
            message = (
                f"Braze analytics for send {self.send_id!r} did not meet the condition "
                f"in {self.timeout:.0f} s."
            )
            if event.get("message"):
                message += f" The last check failed: {event['message']}"
            last = event.get("summary")
            if (
                isinstance(last, dict)
                and not last.get("days")
                and _flag(self.broadcast, "broadcast") is not True
            ):
                message += f" No analytics appeared. {MAYBE_UNTRACKED}"
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        if status == "unavailable":
            # The trigger says which: no longer kept (14 days), or perhaps never tracked.
            error = BrazeAnalyticsUntrackedError if event.get("untracked") else BrazeAnalyticsUnavailableError
            raise error(str(event.get("message")))
        raise BrazeError(f"Waiting for Braze analytics failed in the triggerer: {event.get('message')}")

    # ------------------------------------------------------------------ the check itself

    def _arguments(self) -> tuple[str, str, int, datetime | None, int | None, timedelta | None]:
        """The rendered arguments, checked."""
        return (
            validate_campaign_id(self.campaign_id),
            validate_required_send_id(self.send_id),
            validate_series_length(self.length),
            parse_utc(self.sent_at, what="sent_at") if self.sent_at else None,
            _whole_number(self.min_sent, "min_sent"),
            check_duration(self.min_age),
        )

    def _untracked_arguments(self) -> tuple[bool | None, timedelta]:
        """``broadcast`` and ``no_data_grace``, rendered and checked."""
        return _flag(self.broadcast, "broadcast"), check_duration(
            self.no_data_grace, "no_data_grace"
        ) or timedelta(0)

    def _check(self) -> tuple[bool, dict[str, Any]]:
        campaign_id, send_id, length, sent_at, min_sent, min_age = self._arguments()
        broadcast, grace = self._untracked_arguments()
        return check_send_analytics(
            self.hook,
            campaign_id=campaign_id,
            send_id=send_id,
            length=length,
            min_sent=min_sent,
            min_age=min_age,
            sent_at=sent_at,
            broadcast=broadcast,
            no_data_grace=grace,
            log=self.log,
        )


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


def _flag(value: Any, name: str) -> bool | None:
    """True, False or None; a rendered template gives their text (``"False"``)."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "none"):
        return None
    if text in ("true", "false"):
        return text == "true"
    raise BrazeValidationError(f"{name} must be True, False or None, got {value!r}.")
