"""BrazeAsyncHook: the triggerer's way to Braze, on httpx, without ever blocking the event loop.

It is the async twin of :class:`~airflow_provider_braze.hooks.braze.BrazeHook`'s request path,
not a second definition of it: URL rules and settings (:mod:`.connection`), headers, retries and
the success body (:mod:`.policy`), errors (:mod:`.errors`) and redaction (:mod:`.redaction`) are
the same code; only the transport and the sleep differ.

A triggerer runs up to a thousand triggers in one event loop, so what every trigger would
otherwise repeat is done once and shared: the connection is read once per ``SETTINGS_TTL``
seconds per connection (Airflow's async lookup; concurrent triggers wait for the one lookup),
the TLS context is built once per CA bundle, and one ``httpx.AsyncClient`` (its connection pool)
serves every hook with the same settings in the same event loop (a few clients, in fact: see
``CONNECTIONS_PER_CLIENT``).

Like the synchronous hook it imports no HTTP library until the first request.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_braze.exceptions import BrazeAmbiguousRequestError
from airflow_provider_braze.hooks.connection import BrazeConnectionSettings, read_settings
from airflow_provider_braze.hooks.endpoints import GET_SEND_ANALYTICS
from airflow_provider_braze.hooks.errors import api_error, is_retryable_transport, transport_error
from airflow_provider_braze.hooks.policy import (
    RetryBudget,
    backoff,
    request_headers,
    retry_delay,
    shown_cause,
    success_body,
)
from airflow_provider_braze.hooks.redaction import redacted, secret_pattern
from airflow_provider_braze.rate_limit import RateLimitStatus, ServerClock, http_date
from airflow_provider_braze.validation import (
    to_utc_iso,
    validate_campaign_id,
    validate_required_send_id,
    validate_series_length,
)

if TYPE_CHECKING:
    import re
    import ssl
    from datetime import datetime

    import httpx

    from airflow_provider_braze.hooks.endpoints import BrazeEndpoint

#: How long a connection's settings are reused before Airflow is asked again, in seconds.
SETTINGS_TTL = 60.0
#: Requests to Braze in flight at once per connection settings and event loop (more wait).
MAX_CONNECTIONS = 200
#: ... split over clients of this many connections each: httpcore's pool scans all its
#: connections, and its queued requests, at every request's start and end, so one pool of 200
#: under load costs the loop milliseconds per request (measured: it saturated the loop with a
#: thousand triggers); pools of 20 cost far less.
CONNECTIONS_PER_CLIENT = 20
#: Seconds between two requests' starts, per connection settings and event loop (at most 200
#: a second). A thousand triggers starting together would otherwise send a thousand requests in
#: the same millisecond, and their answers, arriving together, would each cost the loop about
#: 2 ms in one stretch (measured: half a second and more); spaced, they interleave with
#: everything else. 200 a second is more than Braze's hourly limits allow on average (250,000
#: an hour is 69 a second), so the spacing only shapes bursts.
START_SPACING = 0.005
#: A clock difference with Braze worth a warning (as the synchronous hook's).
_SKEW_WORTH_REPORTING = 5.0

# Module-level so tests can replace them.
_asleep = asyncio.sleep
#: The wait for a request's turn to start: not a retry's wait, which tests record.
_wait_turn = asyncio.sleep
_wall_clock = time.time
_monotonic = time.monotonic
#: Tests set an ``httpx`` transport (``httpx.MockTransport``) that every new client uses.
_transport_for_tests: Any = None


@dataclass
class _LoopShared:
    """What every hook in one event loop shares."""

    settings: dict[tuple[str, tuple[Any, ...]], tuple[float, BrazeConnectionSettings]] = field(
        default_factory=dict
    )
    lookups: dict[tuple[str, tuple[Any, ...]], asyncio.Lock] = field(default_factory=dict)
    lanes: dict[tuple[Any, ...], list[_Lane]] = field(default_factory=dict)
    next_start: dict[tuple[Any, ...], float] = field(default_factory=dict)
    #: When a window an answer left empty resets (this machine's epoch), per connection settings.
    exhausted_until: dict[tuple[Any, ...], float] = field(default_factory=dict)


@dataclass
class _Lane:
    """One shared client, and the gate that keeps its requests within its pool (a request
    queued in httpcore's pool costs the loop time at every change in the pool; waiting at this
    gate costs nothing)."""

    client: httpx.AsyncClient
    gate: asyncio.Semaphore
    in_flight: int = 0


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShared] = weakref.WeakKeyDictionary()
_registered_keys: set[str] = set()


def _loop_shared() -> _LoopShared:
    loop = asyncio.get_running_loop()
    shared = _shared.get(loop)
    if shared is None:
        shared = _shared[loop] = _LoopShared()
    return shared


async def _spaced_start(settings: BrazeConnectionSettings) -> None:
    """Wait for this request's turn to start (``START_SPACING`` after the previous one)."""
    if not START_SPACING:
        return
    loop = asyncio.get_running_loop()
    shared = _loop_shared()
    key = (settings.base_url, settings.connect_timeout, settings.read_timeout, settings.ca_bundle)
    now = loop.time()
    turn = max(now, shared.next_start.get(key, 0.0))
    shared.next_start[key] = turn + START_SPACING
    if turn > now:
        await _wait_turn(turn - now)


async def aclose_shared_clients() -> None:
    """Close the clients shared in the running event loop (a triggerer never needs to; tests and
    benchmarks that end a loop may)."""
    shared = _shared.pop(asyncio.get_running_loop(), None)
    if shared is not None:
        for lanes in shared.lanes.values():
            for lane in lanes:
                await lane.client.aclose()


def prepare_transport(ca_bundle: str | None) -> None:
    """Do the blocking part of the first request's set-up: import httpx, build the TLS context
    for ``ca_bundle`` (None: certifi's CAs) and the headers. Callers on an event loop run it in a
    thread (:meth:`BrazeAsyncHook.get_settings` does); it is cached, so later calls are free."""
    _headers()
    _bearer_class()
    _ssl_context(ca_bundle)
    _prepared.add(ca_bundle)


#: The CA bundles whose transport is prepared in this process.
_prepared: set[str | None] = set()


@functools.lru_cache(maxsize=16)
def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificates are always verified (certifi's CAs, or the connection's ca_bundle instead, as
    requests does); built once per bundle: loading CAs costs milliseconds of CPU."""
    import ssl

    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


@functools.lru_cache(maxsize=16)
def _key_pattern(api_key: str) -> re.Pattern[str]:
    return secret_pattern(api_key)


def _prepare_key(api_key: str) -> None:
    """Mask ``api_key`` in this process's logs and compile its redaction pattern (in a thread)."""
    from airflow_provider_braze._masking import register_secret

    register_secret(api_key)
    _key_pattern(api_key)


@functools.lru_cache(maxsize=1)
def _headers() -> dict[str, str]:
    import httpx

    return request_headers(f"python-httpx/{httpx.__version__}")


def _bearer(api_key: str) -> httpx.Auth:
    auth: httpx.Auth = _bearer_class()(api_key)
    return auth


@functools.lru_cache(maxsize=1)
def _bearer_class() -> Any:
    import httpx

    class BearerAuth(httpx.Auth):
        """``Authorization: Bearer <key>`` that never shows the key in its repr."""

        def __init__(self, key: str) -> None:
            self._header = f"Bearer {key}"

        def auth_flow(self, request: httpx.Request) -> Any:
            request.headers["Authorization"] = self._header
            yield request

        def __repr__(self) -> str:
            return "BearerAuth(***)"

    return BearerAuth


class BrazeAsyncHook(BaseHook):
    """Call the Braze REST API from async code (a trigger), with the synchronous hook's rules.

    :param braze_conn_id: The Airflow connection to use.
    :param connect_timeout: Optional. Seconds allowed to connect; overrides the connection.
    :param read_timeout: Optional. Seconds allowed for Braze to answer; overrides the connection.
    :param max_retries: Optional. Retries per call; overrides the connection.
    :param retry_budget: Optional. Longest total wait between retries of one call, in seconds.
    """

    conn_name_attr = "braze_conn_id"
    default_conn_name = "braze_default"
    conn_type = "braze"
    hook_name = "Braze (async)"

    def __init__(
        self,
        braze_conn_id: str = default_conn_name,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        retry_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.braze_conn_id = braze_conn_id
        self._overrides: dict[str, float | None] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_retries": max_retries,
            "retry_budget": retry_budget,
        }
        self._settings: BrazeConnectionSettings | None = None
        #: Rate-limit headers of the most recent answer that carried them.
        self.last_rate_limit: RateLimitStatus | None = None
        self.server_clock = ServerClock(lambda: _wall_clock())  # noqa: PLW0108
        self._skew_reported = False

    # ----------------------------------------------------------------------------- settings

    async def get_settings(self) -> BrazeConnectionSettings:
        """The connection's settings, shared by the event loop's hooks for ``SETTINGS_TTL``."""
        shared = _loop_shared()
        key = (self.braze_conn_id, tuple(sorted(self._overrides.items())))
        cached = shared.settings.get(key)
        if cached is None or cached[0] <= _monotonic():
            lock = shared.lookups.setdefault(key, asyncio.Lock())
            async with lock:  # a thousand triggers starting together: one lookup
                cached = shared.settings.get(key)
                if cached is None or cached[0] <= _monotonic():
                    conn = await self._aget_connection()
                    settings = read_settings(conn, self.braze_conn_id, self._overrides, self.log)
                    if settings.api_key not in _registered_keys:
                        # Airflow's async lookup masks the password already; this also covers
                        # processes whose logging does not (as the sync hook does). The key's
                        # redaction pattern is compiled here too: a pattern of thousands of
                        # characters takes 15-50 ms to compile, too long for the event loop.
                        await asyncio.to_thread(_prepare_key, settings.api_key)
                        _registered_keys.add(settings.api_key)
                    if settings.ca_bundle not in _prepared:
                        await asyncio.to_thread(prepare_transport, settings.ca_bundle)
                    cached = shared.settings[key] = (_monotonic() + SETTINGS_TTL, settings)
        self._settings = cached[1]
        return cached[1]

    async def _aget_connection(self) -> Any:
        """Airflow's async connection lookup; where it cannot run (no task SDK context), the
        synchronous one in a thread."""
        aget = getattr(BaseHook, "aget_connection", None)
        if aget is not None:
            try:
                return await aget(self.braze_conn_id)
            except Exception as err:
                from airflow.sdk.exceptions import AirflowNotFoundException

                if isinstance(err, AirflowNotFoundException):
                    raise
                self.log.debug("Async connection lookup failed (%s); reading it in a thread.", err)
        return await asyncio.to_thread(self.get_connection, self.braze_conn_id)

    def _lane(self, settings: BrazeConnectionSettings) -> _Lane:
        """The least busy of the event loop's clients for these settings (shared by every hook)."""
        import httpx

        shared = _loop_shared()
        key = (settings.base_url, settings.connect_timeout, settings.read_timeout, settings.ca_bundle)
        lanes = shared.lanes.get(key)
        if lanes is None or any(lane.client.is_closed for lane in lanes):
            size = min(CONNECTIONS_PER_CLIENT, MAX_CONNECTIONS)
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            timeout = httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=None,  # never reached: the lane's gate admits only what its pool can take
            )
            lanes = shared.lanes[key] = [
                _Lane(
                    httpx.AsyncClient(
                        headers=_headers(),
                        timeout=timeout,
                        limits=limits,
                        verify=_ssl_context(settings.ca_bundle),
                        follow_redirects=False,
                        # Plain http goes only to loopback: never through a proxy from the
                        # environment, which would see the key in clear.
                        trust_env=not settings.base_url.startswith("http://"),
                        transport=_transport_for_tests,
                    ),
                    asyncio.Semaphore(size),
                )
                for _ in range(max(1, MAX_CONNECTIONS // size))
            ]
        return min(lanes, key=lambda lane: lane.in_flight)

    async def close(self) -> None:
        """Nothing of this hook's own to close: its client is shared by the event loop's hooks
        (see :func:`aclose_shared_clients`)."""
        return None

    # ----------------------------------------------------------------------------- API verbs

    async def get_send_analytics(
        self,
        campaign_id: str,
        send_id: str,
        length: int,
        ending_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """A send's daily analytics (``GET /sends/data_series``; permission ``sends.data_series``),
        as the synchronous hook's ``get_send_analytics``."""
        params: dict[str, Any] = {
            "campaign_id": validate_campaign_id(campaign_id),
            "send_id": validate_required_send_id(send_id),
            "length": validate_series_length(length),
        }
        if ending_at is not None:
            params["ending_at"] = to_utc_iso(ending_at, what="ending_at")
        return await self._request(GET_SEND_ANALYTICS, params=params, idempotent=True)

    # ----------------------------------------------------------------------------- request path

    async def _request(
        self, endpoint: BrazeEndpoint, *, params: dict[str, Any] | None = None, idempotent: bool
    ) -> dict[str, Any]:
        """One API call with the shared retry policy (:mod:`.policy`); Braze's JSON body.

        Rate limits: a call waits for the reset when an answer (to any hook of this event loop
        with these settings) left no requests in the window, as the synchronous hook does; a 429
        waits for its reset. There is no finer pacing: the pacer is the synchronous hook's,
        shared by threads, and checks are minutes apart."""
        import httpx

        settings = await self.get_settings()
        shared = _loop_shared()
        window_key = (settings.base_url, settings.api_key)
        auth = _bearer(settings.api_key)
        url = f"{settings.base_url}{endpoint.path}"
        budget = RetryBudget(settings.max_retries, settings.retry_budget)
        attempt = 0
        sent_before = False  # an earlier attempt may have taken effect

        while True:
            attempt += 1
            retries_left = budget.retries_left(attempt)
            empty_for = shared.exhausted_until.get(window_key, 0.0) - _wall_clock()
            if 0 < empty_for <= budget.remaining():
                self.log.info("Waiting %.1f s for the Braze rate limit of %s to reset.", empty_for, endpoint)
                budget.waited += empty_for
                await _asleep(empty_for)
            try:
                await _spaced_start(settings)
                lane = self._lane(settings)
                lane.in_flight += 1
                try:
                    async with lane.gate:
                        response = await lane.client.request(endpoint.method, url, params=params, auth=auth)
                finally:
                    lane.in_flight -= 1
            except httpx.TransportError as exc:
                error = transport_error(endpoint, exc, attempt, settings.base_url, self._redact)
                if isinstance(error, BrazeAmbiguousRequestError) and not idempotent:
                    raise error from shown_cause(exc, self._redact)
                delay = backoff(attempt)
                if (
                    retries_left
                    and is_retryable_transport(exc)
                    and budget.pause(error, delay, attempt, self.log)
                ):
                    await _asleep(delay)
                    sent_before = sent_before or isinstance(error, BrazeAmbiguousRequestError)
                    continue
                if attempt > 1:
                    error.args = (f"{error} Gave up after {attempt} attempts.",)
                raise error from shown_cause(exc, self._redact)
            self._observe_clock(response)
            answered_at = http_date(response.headers.get("Date"))
            rate = RateLimitStatus.from_headers(
                response.headers, answered_at if answered_at is not None else self.server_clock.now()
            )
            if rate is not None:
                self.last_rate_limit = rate
                self._note_window(shared, window_key, rate, answered_at)
            if 200 <= response.status_code < 300:
                return success_body(
                    endpoint, response, idempotent=idempotent, redact=self._redact, log=self.log
                )
            failure = api_error(
                endpoint,
                response,
                rate,
                attempt,
                sent_before,
                base_url=settings.base_url,
                redact=self._redact,
            )
            delay = retry_delay(
                endpoint,
                failure,
                response.status_code,
                idempotent=idempotent,
                attempt=attempt,
                rate=rate,
                date_header=response.headers.get("Date"),
                server_clock=self.server_clock,
            )
            if retries_left and budget.pause(failure, delay, attempt, self.log):
                await _asleep(delay)
                continue
            raise budget.give_up(failure, delay, retries_left)

    def _note_window(
        self, shared: _LoopShared, key: tuple[Any, ...], rate: RateLimitStatus, answered_at: float | None
    ) -> None:
        """Remember until when the window is empty (an answer with no requests left in it)."""
        if rate.remaining == 0:
            until_reset = rate.seconds_until_reset(
                answered_at if answered_at is not None else self.server_clock.now()
            )
            if until_reset:
                shared.exhausted_until[key] = _wall_clock() + until_reset
                return
        shared.exhausted_until.pop(key, None)

    def _observe_clock(self, response: httpx.Response) -> None:
        """Learn Braze's clock from the answer's ``Date``; say once when this machine's is far off."""
        self.server_clock.observe(response.headers.get("Date"), _wall_clock())
        offset = self.server_clock.offset
        if abs(offset) >= _SKEW_WORTH_REPORTING and not self._skew_reported:
            self._skew_reported = True
            self.log.warning(
                "This worker's clock is %.0f s %s Braze's (from the Date of its answers); rate-limit "
                "resets are timed on Braze's clock.",
                abs(offset),
                "behind" if offset > 0 else "ahead of",
            )

    def _redact(self, text: str) -> str:
        """Remove the API key from text that goes into an error or a result."""
        if self._settings is None:
            return text
        return _key_pattern(self._settings.api_key).sub("***", text)

    def redact(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of it) without the API key, for anything kept or shown."""
        return redacted(value, self._redact)
