"""SendAnalyticsTrigger: wait for a send's analytics in the triggerer, checking Braze itself.

A deferred :class:`~airflow_provider_braze.sensors.send_analytics.SendAnalyticsSensor` holds no
worker slot: this trigger asks Braze every ``poke_interval`` seconds whether the condition is
met, and wakes the task only when it is, when the time is up, or when waiting cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class SendAnalyticsTrigger(BaseTrigger):
    """Check a send's analytics until they meet the sensor's condition.

    Braze is called through the provider's async hook
    (:class:`~airflow_provider_braze.hooks.braze_async.BrazeAsyncHook`, on httpx, with the
    synchronous hook's rules), so the triggerer's event loop is never blocked and no thread is
    held; each check is one ``GET /sends/data_series``, judged by the sensor's own check
    (:mod:`airflow_provider_braze.analytics_check`).

    :param campaign_id: The campaign the send ID belongs to.
    :param send_id: The send ID.
    :param length: Days of analytics to read per check.
    :param min_sent: Optional. Wait until at least this many messages were sent.
    :param min_age_seconds: Optional. Wait until the send is at least this old.
    :param sent_at: Optional. When the send happened (ISO-8601).
    :param broadcast: Optional. Whether the send was a broadcast (None: not known).
    :param no_data_grace_seconds: How long past ``min_age`` a send to listed users may have no
        analytics before Braze is taken not to track it.
    :param poke_interval: Seconds between checks.
    :param end_at: When to give up (ISO-8601): the sensor's ``timeout`` from its first check.
    :param braze_conn_id: The Braze connection to use.
    """

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str,
        length: int,
        min_sent: int | None,
        min_age_seconds: float | None,
        sent_at: str | None,
        poke_interval: float,
        end_at: str,
        braze_conn_id: str,
        broadcast: bool | None = None,
        no_data_grace_seconds: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.length = length
        self.min_sent = min_sent
        self.min_age_seconds = min_age_seconds
        self.sent_at = sent_at
        self.poke_interval = poke_interval
        self.end_at = end_at
        self.braze_conn_id = braze_conn_id
        self.broadcast = broadcast
        self.no_data_grace_seconds = no_data_grace_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "campaign_id": self.campaign_id,
                "send_id": self.send_id,
                "length": self.length,
                "min_sent": self.min_sent,
                "min_age_seconds": self.min_age_seconds,
                "sent_at": self.sent_at,
                "poke_interval": self.poke_interval,
                "end_at": self.end_at,
                "braze_conn_id": self.braze_conn_id,
                "broadcast": self.broadcast,
                "no_data_grace_seconds": self.no_data_grace_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The first trigger in a triggerer imports the hook, httpx and the check, and builds the
        # TLS context: a quarter of a second of blocking work on a busy machine (Airflow's
        # watchdog warned of it), so it is done in a thread; later triggers find it done.
        if not _ready:
            await asyncio.to_thread(_load)
        from airflow_provider_braze import analytics_check as check
        from airflow_provider_braze.exceptions import (
            BrazeAnalyticsUnavailableError,
            BrazeAnalyticsUntrackedError,
            BrazeRateLimitError,
            BrazeServerError,
            BrazeTransportError,
        )
        from airflow_provider_braze.hooks.braze_async import BrazeAsyncHook

        hook = BrazeAsyncHook(braze_conn_id=self.braze_conn_id)
        end_at = datetime.fromisoformat(self.end_at)
        # The first check that can succeed is when the send reaches min_age (if sent_at says
        # when): the wait before it is cut short to then; the others are poke_interval.
        old_enough = check.old_enough_at(
            datetime.fromisoformat(self.sent_at) if self.sent_at else None,
            timedelta(seconds=self.min_age_seconds) if self.min_age_seconds is not None else None,
        )
        summary: dict[str, Any] | None = None
        try:
            while True:
                failure = None
                try:
                    done, summary = await self._check(hook)
                except BrazeAnalyticsUnavailableError as err:
                    untracked = isinstance(err, BrazeAnalyticsUntrackedError)
                    yield _event({"status": "unavailable", "message": str(err), "untracked": untracked})
                    return
                except (BrazeTransportError, BrazeServerError, BrazeRateLimitError) as err:
                    # Braze or the network is down for now: waiting can help, so wait, as a
                    # sensor in reschedule mode would, until the next check or the timeout.
                    failure = str(hook.redact(f"{type(err).__name__}: {err}"))
                    self.log.warning("Checking Braze failed for now (%s); trying again later.", failure)
                    done = False
                except Exception as err:
                    text = str(hook.redact(f"{type(err).__name__}: {err}"))
                    yield _event({"status": "error", "message": text})
                    return
                if done:
                    yield _event({"status": "done", "summary": summary})
                    return
                now = check._utcnow()
                left = (end_at - now).total_seconds()
                if left <= 0:
                    yield _event({"status": "timeout", "summary": summary, "message": failure})
                    return
                wait = min(check.next_check_in(self.poke_interval, old_enough, now), left)
                self.log.info("Checking again in %.0f s.", wait)
                await asyncio.sleep(wait)
        finally:
            await hook.close()

    async def _check(self, hook: Any) -> tuple[bool, dict[str, Any]]:
        from airflow_provider_braze.analytics_check import DEFAULT_NO_DATA_GRACE, acheck_send_analytics

        return await acheck_send_analytics(
            hook,
            campaign_id=self.campaign_id,
            send_id=self.send_id,
            length=self.length,
            min_sent=self.min_sent,
            min_age=timedelta(seconds=self.min_age_seconds) if self.min_age_seconds is not None else None,
            sent_at=datetime.fromisoformat(self.sent_at) if self.sent_at else None,
            log=self.log,
            broadcast=self.broadcast,
            no_data_grace=(
                timedelta(seconds=self.no_data_grace_seconds)
                if self.no_data_grace_seconds is not None
                else DEFAULT_NO_DATA_GRACE
            ),
        )


#: Whether this process has loaded what a check needs (see :func:`_load`).
_ready = False


#: What the first check imports on its way (measured with an import hook): the hook and the
#: check, and, lazily on the first request or connection lookup, httpx's async stack (anyio's
#: asyncio backend, sniffio), asgiref (Airflow's async connection lookup) and the modules the
#: check and the masking use. Imported in a thread, so none of it is imported on the loop.
_FIRST_CHECK_IMPORTS = (
    "airflow_provider_braze.analytics_check",
    "airflow_provider_braze.analytics",
    "airflow_provider_braze._masking",
    "airflow_provider_braze.hooks.braze_async",
    "httpx",
    "httpcore",
    "h11",
    "sniffio",
    "anyio",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "anyio.to_thread",
    "asgiref.sync",
    # Airflow's connection lookup imports these on its first call (attrs builds their classes).
    "airflow.sdk.definitions.connection",
)


def _load() -> None:
    """Import what a check needs and build the TLS context, off the event loop (in a thread)."""
    global _ready  # noqa: PLW0603 - once per process
    import importlib

    for name in _FIRST_CHECK_IMPORTS:
        with contextlib.suppress(ImportError):  # asgiref, h11: only where Airflow uses them
            importlib.import_module(name)
    from airflow_provider_braze.hooks import braze_async

    braze_async.prepare_transport(None)
    _ready = True


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
