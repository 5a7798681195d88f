"""The Braze sandbox's in-memory world: API keys, campaigns, quotas, faults and the ledger.

Plain Python with one lock, so the HTTP layer (``app.py``) stays a thin translation and tests
can inspect or change the state directly when the sandbox runs in their process.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from airflow_provider_braze.sandbox.analytics import Line

#: Every API key permission the sandbox knows; a key created without a list gets all of them.
ALL_PERMISSIONS: tuple[str, ...] = (
    "sends.id.create",
    "campaigns.list",
    "messages.send",
    "campaigns.trigger.send",
    "messages.schedule.create",
    "campaigns.trigger.schedule.create",
    "sends.data_series",
)

DEFAULT_WORKSPACE = "sandbox-workspace"
#: Campaigns every fresh sandbox knows, so examples run without set-up.
DEFAULT_CAMPAIGNS: dict[str, str] = {
    "sandbox-api-campaign": "api",
    "sandbox-api-triggered-campaign": "api_triggered",
}
#: Further message variations of the default campaigns: the API campaign has three email
#: variations, so a content experiment can send each variant as its own variation.
EXTRA_DEFAULT_VARIATIONS: dict[str, dict[str, str]] = {
    "sandbox-api-campaign": {
        "sandbox-api-campaign-email-2": "email",
        "sandbox-api-campaign-email-3": "email",
    },
}


#: What the sandbox does where Braze's documentation is silent (or its pages disagree), each
#: plausible behaviour a setting (the tests run the example pipelines under every value):
#: - ``send_id_recreate``: creating a send ID that exists for the campaign ``count``\ s again
#:   toward the daily quota and succeeds (the literal reading of "each send_id and campaign_id
#:   combination that you create will count"), succeeds without quota (``idempotent``), or is
#:   refused with a 400 (``refuse``);
#: - ``send_id_recreate_wording``: the words of that refusal (never documented, so a client must
#:   not branch on them): ``already_exists`` (``Bad Request``, the error naming the existing ID),
#:   ``bad_request`` (a bare ``Bad Request``) or ``invalid_send_id`` (``Invalid send_id``, the
#:   words of a send with an ID never created);
#: - ``send_id_quota``: which ``/sends/id/create`` requests count toward the 100 a day: only those
#:   that create an ID (``successes``) or every authenticated request, refusals included
#:   (``attempts``);
#: - ``send_id_quota_day``: when the day of that quota starts: at midnight UTC
#:   (``utc_midnight``, as Braze's hourly windows reset on the clock hour) or 24 hours after each
#:   counted request (``rolling``);
#: - ``unknown_send_id``: a send tagged with a send ID never created for its campaign is refused
#:   with 400 ``Invalid send_id`` (``refuse``) or sent and tracked under it (``accept``);
#: - ``send_tracking``: Braze keeps a send ID's analytics for every send (``all_sends``) or only
#:   for broadcasts (``broadcast_only``: the errors page says analytics are available "for a
#:   specific campaign send instance when the campaign is sent as a broadcast"); decided when a
#:   send is made, so a user-list send under ``broadcast_only`` has empty analytics;
#: - ``local_time_passed``: a local-time schedule (``in_local_time: true``) has passed, and is
#:   refused with 400 ``Bad Request``, once its time has passed in ``all_zones`` (the schedule
#:   object page) or in the company's time zone (``company_zone``, the errors page; the sandbox's
#:   company zone is ``SandboxState(company_time_zone=...)``, UTC by default);
#: - ``analytics_series``: ``/sends/data_series`` covers the whole requested window, every
#:   variation of the send with zeros on days nothing happened (``window``), or starts on the
#:   first day with a send (``send_days``);
#: - ``analytics_variation_key``: a variation's statistics are named by ``variation_name`` (as
#:   ``/sends/data_series`` documents) or by ``variation_api_id`` (as ``/campaigns/data_series``
#:   now documents);
#: - ``data_series_unknown_send_id``: ``/sends/data_series`` for a send ID never created for the
#:   campaign (and never sent with) is refused with 400 ``Invalid send_id`` (``refuse``) or
#:   answered with success and no data (``empty``);
#: - ``data_series_triggered_campaign``: ``/sends/data_series`` for an API-triggered campaign
#:   ("this endpoint is for API campaigns only") is refused with 400 ``Invalid Campaign ID``
#:   (``refuse``), answered with success and no data (``empty``), or answered like an API
#:   campaign's (``tracked``);
#: - ``data_series_scheduled_sends``: sends made through the schedule endpoints have no send
#:   analytics (``untracked``) or have them from their scheduled time on (``tracked``; a local or
#:   optimal time counts as that wall clock in UTC);
#: - ``scheduled_broadcast_pool`` (Braze's pages disagree): a broadcast scheduled through
#:   ``/campaigns/trigger/schedule/create`` counts against the ``shared`` hourly pool (the endpoint
#:   page) or the ``broadcast`` per-minute limits (the rate-limits page).
UNDOCUMENTED_BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "send_id_recreate": ("count", "idempotent", "refuse"),
    "send_id_recreate_wording": ("already_exists", "bad_request", "invalid_send_id"),
    "send_id_quota": ("successes", "attempts"),
    "send_id_quota_day": ("utc_midnight", "rolling"),
    "unknown_send_id": ("refuse", "accept"),
    "send_tracking": ("all_sends", "broadcast_only"),
    "local_time_passed": ("all_zones", "company_zone"),
    "analytics_series": ("window", "send_days"),
    "analytics_variation_key": ("variation_name", "variation_api_id"),
    "data_series_unknown_send_id": ("refuse", "empty"),
    "data_series_triggered_campaign": ("refuse", "empty", "tracked"),
    "data_series_scheduled_sends": ("untracked", "tracked"),
    "scheduled_broadcast_pool": ("shared", "broadcast"),
    # recipient_object.md: the flag "can't be used with user aliases" (any value: refused);
    # the triggered-send page's newer bullet limits that to false (false_only).
    "alias_send_to_existing_only": ("refused", "false_only"),
}
DEFAULT_BEHAVIOURS = {
    "send_id_recreate": "count",
    "send_id_recreate_wording": "already_exists",
    "send_id_quota": "successes",
    "send_id_quota_day": "utc_midnight",
    "unknown_send_id": "refuse",
    "send_tracking": "all_sends",
    "local_time_passed": "all_zones",
    "analytics_series": "window",
    "analytics_variation_key": "variation_name",
    "data_series_unknown_send_id": "refuse",
    "data_series_triggered_campaign": "refuse",
    "data_series_scheduled_sends": "untracked",
    "scheduled_broadcast_pool": "shared",
    "alias_send_to_existing_only": "refused",
}


def default_variations(campaign_id: str) -> dict[str, str]:
    """A campaign's message variations when none are given: one per messaging channel, named
    ``<campaign>-<channel>`` (``sandbox-api-campaign-email``); variation ID -> channel."""
    from airflow_provider_braze.sandbox.rules import CHANNELS

    return {f"{campaign_id}-{channel.replace('_', '-')}": channel for channel in CHANNELS}


#: Braze's documented default limits: (requests, window in seconds), per workspace.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "send_id": (100, 86_400),  # /sends/id/create: send IDs created per day
    "shared": (250_000, 3_600),  # the hourly pool shared by the send and export endpoints
    "broadcast": (250, 60),  # sends to a segment, audience or whole campaign
    # ... and at most 10 a minute to each unique audience (campaign + segment + audience object)
    "broadcast_audience": (10, 60),
}


@dataclass(frozen=True)
class ApiKey:
    """A REST API key: the workspace it belongs to and the endpoints it may call."""

    key: str = field(repr=False)
    workspace: str = DEFAULT_WORKSPACE
    permissions: frozenset[str] = frozenset(ALL_PERMISSIONS)


@dataclass
class Faults:
    """Faults the sandbox injects into Braze API calls (never into ``/_sandbox`` control calls).

    Probabilities are per request, checked in this order: drop before processing, 429, 5xx,
    then (after a successful processing) drop after processing, then an unreadable success body.
    """

    #: Added to every API call, in milliseconds.
    latency_ms: float = 0.0
    #: Probability of answering 429 (with ``X-RateLimit-Reset`` ``rate_limit_reset_seconds`` ahead).
    rate_limit: float = 0.0
    rate_limit_reset_seconds: float = 1.0
    #: Probability of answering a 5xx status picked from ``server_error_statuses``.
    server_error: float = 0.0
    server_error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    #: Probability of closing the connection before the request is processed.
    drop_before: float = 0.0
    #: Probability of processing the request (it is in the ledger) and then closing the connection.
    drop_after: float = 0.0
    #: Probability of processing the request (it is in the ledger) and answering its success
    #: status with a body that cannot be read: empty, or an HTML page (a proxy mangling answers).
    unreadable_success: float = 0.0
    #: Probability of answering a successful send with non-fatal ``errors`` (Braze: "If your
    #: message is successful but has non-fatal errors"); the send is processed as usual.
    nonfatal_errors: float = 0.0
    #: Probability of a slow answer: the request waits ``slow_ms`` before it is processed and
    #: answered (past a client's read timeout, Braze may have processed what the client gave up on).
    slow: float = 0.0
    slow_ms: float = 5_000.0
    #: Inject faults only into these paths (e.g. ``["/messages/send"]``); None means every path.
    paths: tuple[str, ...] | None = None
    #: Stop injecting faults (latency aside) after this many; None means no limit. With a
    #: probability of 1.0 this fails exactly the next N requests.
    max_faults: int | None = None

    def __post_init__(self) -> None:
        if self.paths is not None:
            self.paths = tuple(self.paths)
        if self.max_faults is not None and self.max_faults < 0:
            raise ValueError("max_faults must not be negative")
        for name in (
            "rate_limit",
            "server_error",
            "drop_before",
            "drop_after",
            "unreadable_success",
            "nonfatal_errors",
            "slow",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault probability {name}={value} is not between 0 and 1")
        if self.latency_ms < 0 or self.rate_limit_reset_seconds < 0 or self.slow_ms < 0:
            raise ValueError("latency_ms, slow_ms and rate_limit_reset_seconds must not be negative")
        self.server_error_statuses = tuple(int(s) for s in self.server_error_statuses)
        if not self.server_error_statuses or any(not 500 <= s <= 599 for s in self.server_error_statuses):
            raise ValueError("server_error_statuses must be a non-empty list of 5xx codes")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["server_error_statuses"] = list(self.server_error_statuses)
        data["paths"] = list(self.paths) if self.paths is not None else None
        return data


@dataclass(frozen=True)
class Window:
    """A rate-limit window's bounds as Braze reports them (reset in UTC epoch seconds)."""

    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimitBucket:
    """A fixed-window counter per workspace; windows align to the clock (Braze resets on the hour)."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._used: dict[tuple[str, int], int] = {}

    def _window_start(self, now: float) -> int:
        return int(now // self.window_seconds) * self.window_seconds

    def peek(self, workspace: str, now: float) -> Window:
        start = self._window_start(now)
        used = self._used.get((workspace, start), 0)
        return Window(self.limit, max(0, self.limit - used), start + self.window_seconds)

    def consume(self, workspace: str, now: float) -> Window:
        start = self._window_start(now)
        self._used[(workspace, start)] = self._used.get((workspace, start), 0) + 1
        return self.peek(workspace, now)


class RollingBucket(RateLimitBucket):
    """A sliding-window counter per workspace: each counted request frees its unit
    ``window_seconds`` later (``send_id_quota_day="rolling"``). ``reset`` is when the oldest
    counted request leaves the window, the next time a unit comes back."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        super().__init__(limit, window_seconds)
        self._times: dict[str, deque[float]] = defaultdict(deque)

    def _live(self, workspace: str, now: float) -> deque[float]:
        times = self._times[workspace]
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        return times

    def peek(self, workspace: str, now: float) -> Window:
        times = self._live(workspace, now)
        reset = times[0] + self.window_seconds if times else now + self.window_seconds
        return Window(self.limit, max(0, self.limit - len(times)), math.ceil(reset))

    def consume(self, workspace: str, now: float) -> Window:
        self._live(workspace, now).append(now)
        return self.peek(workspace, now)


class SandboxState:
    """Everything the sandbox remembers. All methods are thread-safe.

    :param api_key: The first API key (all permissions, default workspace); random if omitted.
    :param faults: Faults to inject from the start.
    :param seed: Seed for fault injection and generated IDs, for repeatable runs.
    :param clock: Returns the current UTC epoch time; tests may pass a fake one.
    :param clock_offset: Seconds the sandbox's clock runs ahead of ``clock`` (negative: behind),
        to test clients whose clock differs from Braze's. Everything the sandbox dates uses it:
        rate-limit windows and their ``X-RateLimit-Reset``, the ``Date`` header, the ledger.
    :param behaviours: What the sandbox does where Braze's docs are silent
        (:data:`UNDOCUMENTED_BEHAVIOURS`; :data:`DEFAULT_BEHAVIOURS` for those not given).
    :param company_time_zone: The company's time zone (an IANA name), for
        ``local_time_passed="company_zone"``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        faults: Faults | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        clock_offset: float = 0.0,
        send_id_daily_limit: int | None = None,
        rate_limits: dict[str, tuple[int, int]] | None = None,
        behaviours: dict[str, str] | None = None,
        company_time_zone: str = "UTC",
    ) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        self._lock = threading.RLock()
        try:
            #: The workspace's company time zone (``local_time_passed="company_zone"``).
            self.company_time_zone = ZoneInfo(company_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {company_time_zone!r}; give an IANA name") from None
        self._base_clock = clock
        self.clock_offset = float(clock_offset)
        self.primary_key = api_key or f"sandbox-{secrets.token_hex(16)}"
        self._initial_faults = faults or Faults()
        self._seed = seed
        self._rate_limits = dict(DEFAULT_RATE_LIMITS)
        if send_id_daily_limit is not None:
            self._rate_limits["send_id"] = (send_id_daily_limit, 86_400)
        self._rate_limits.update(rate_limits or {})
        unknown = set(self._rate_limits) - set(DEFAULT_RATE_LIMITS)
        if unknown:
            raise ValueError(f"unknown rate limit(s): {', '.join(sorted(unknown))}")
        self._initial_rate_limits = dict(self._rate_limits)
        self._initial_clock_offset = self.clock_offset
        self._initial_behaviours = _checked_behaviours({**DEFAULT_BEHAVIOURS, **(behaviours or {})})
        self.reset()

    def reset(self) -> None:
        """Forget everything except the primary API key and the initial settings."""
        with self._lock:
            self.keys: dict[str, ApiKey] = {self.primary_key: ApiKey(self.primary_key)}
            self.campaigns: dict[str, str] = dict(DEFAULT_CAMPAIGNS)
            # campaign ID -> message variation ID -> the channel of that variation
            self.variations: dict[str, dict[str, str]] = {
                c: {**default_variations(c), **EXTRA_DEFAULT_VARIATIONS.get(c, {})} for c in DEFAULT_CAMPAIGNS
            }
            self._edited: dict[str, float] = dict.fromkeys(DEFAULT_CAMPAIGNS, self.clock())
            self.faults: Faults = Faults.from_dict(self._initial_faults.to_dict())
            self.faults_injected = 0
            self._rate_limits = dict(self._initial_rate_limits)
            self.clock_offset = self._initial_clock_offset
            #: Where Braze's docs are silent, what this sandbox does (see UNDOCUMENTED_BEHAVIOURS).
            self.behaviours: dict[str, str] = dict(self._initial_behaviours)
            self._statuses: dict[str, Counter[int]] = defaultdict(Counter)
            self.rng = random.Random(self._seed)
            self.buckets = {name: self._bucket(name, *spec) for name, spec in self._rate_limits.items()}
            # (workspace, campaign_id, send_id) -> creation time (UTC epoch seconds)
            self.send_ids: dict[tuple[str, str, str], float] = {}
            self._ledger: list[dict[str, Any]] = []
            # (campaign_id, send_id or "") -> recipient key -> times delivered (or scheduled)
            self._deliveries: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
            self._scheduled: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
            # (campaign_id, send_id) -> day -> messages per (channel, variation); recipients per day
            self._daily: dict[tuple[str, str], dict[str, Counter[Line]]] = defaultdict(dict)
            self._daily_recipients: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
            # Scheduled sends whose analytics appear at their time (data_series_scheduled_sends):
            # (due, (campaign_id, send_id), recipients, lines, contents), in order of arrival.
            self._due: list[tuple[float, tuple[str, str], list[str], list[Line], dict[Line, str]]] = []
            # (campaign_id, send_id) -> (channel, variation) -> fingerprint of its first content
            self._contents: dict[tuple[str, str], dict[Line, str]] = defaultdict(dict)
            # (campaign_id, send_id) -> day -> print of the day's recipients
            self._audience_prints: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)

    # ------------------------------------------------------------------ configuration

    def add_key(
        self, key: str, *, workspace: str = DEFAULT_WORKSPACE, permissions: Iterable[str] | None = None
    ) -> ApiKey:
        perms = frozenset(ALL_PERMISSIONS if permissions is None else permissions)
        unknown = perms - set(ALL_PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permission(s): {', '.join(sorted(unknown))}")
        api_key = ApiKey(key, workspace, perms)
        with self._lock:
            self.keys[key] = api_key
        return api_key

    def add_campaign(
        self, campaign_id: str, kind: str = "api", variations: dict[str, str] | None = None
    ) -> None:
        """Add a campaign (``api`` or ``api_triggered``) with its message variations (variation ID
        -> channel, e.g. ``{"spring-email-a": "email"}``; one per channel by default)."""
        from airflow_provider_braze.sandbox.rules import CHANNELS

        if kind not in ("api", "api_triggered"):
            raise ValueError("campaign kind must be 'api' or 'api_triggered'")
        chosen = dict(variations) if variations is not None else default_variations(campaign_id)
        unknown = sorted(set(chosen.values()) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) for variations: {', '.join(unknown)}")
        with self._lock:
            self.campaigns[campaign_id] = kind
            self.variations[campaign_id] = chosen
            self._edited[campaign_id] = self.clock()

    def variation_name(self, campaign_id: str, variation_id: str | None) -> str | None:
        """The dashboard name of a campaign's variation: ``Variant 1``, ``Variant 2``... in the
        order they were given."""
        with self._lock:
            order = list(self.variations.get(campaign_id, {}))
        return f"Variant {order.index(variation_id) + 1}" if variation_id in order else None

    def campaign_edited_at(self, campaign_id: str) -> str:
        """When the campaign was last edited (added, in the sandbox), as Braze's ISO-8601."""
        with self._lock:
            edited = self._edited.get(campaign_id, self.clock())
        return datetime.fromtimestamp(edited, tz=timezone.utc).isoformat(timespec="seconds")

    def nonfatal_error_due(self, path: str) -> bool:
        """Whether this successful send's answer should carry non-fatal errors (a fault)."""
        faults = self.faults
        if not faults.nonfatal_errors or (faults.paths is not None and path not in faults.paths):
            return False
        return self.draw() < faults.nonfatal_errors and self.fault_allowed()

    def set_behaviours(self, **behaviours: str) -> None:
        """Choose what the sandbox does where Braze's docs are silent (UNDOCUMENTED_BEHAVIOURS).

        Changing ``send_id_quota_day`` restarts the send ID quota's count."""
        checked = _checked_behaviours({**self.behaviours, **behaviours})
        with self._lock:
            day_changed = checked["send_id_quota_day"] != self.behaviours["send_id_quota_day"]
            self.behaviours = checked
            if day_changed:
                self.buckets["send_id"] = self._bucket("send_id", *self._rate_limits["send_id"])

    def _bucket(self, name: str, limit: int, window_seconds: int) -> RateLimitBucket:
        rolling = name == "send_id" and self.behaviours["send_id_quota_day"] == "rolling"
        return (RollingBucket if rolling else RateLimitBucket)(limit, window_seconds)

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self.faults_injected = 0

    def fault_allowed(self) -> bool:
        """Whether one more fault may be injected (``max_faults``); counts it if so."""
        with self._lock:
            limit = self.faults.max_faults
            if limit is not None and self.faults_injected >= limit:
                return False
            self.faults_injected += 1
            return True

    def set_rate_limit(self, name: str, limit: int, window_seconds: int) -> None:
        """Replace one rate-limit bucket (``send_id``, ``shared`` or ``broadcast``); counts restart."""
        if name not in DEFAULT_RATE_LIMITS:
            raise ValueError(f"unknown rate limit {name!r}; known: {', '.join(DEFAULT_RATE_LIMITS)}")
        if limit < 0 or window_seconds <= 0:
            raise ValueError("limit must be >= 0 and window_seconds > 0")
        with self._lock:
            self._rate_limits[name] = (limit, window_seconds)
            self.buckets[name] = self._bucket(name, limit, window_seconds)

    @property
    def send_id_quota(self) -> RateLimitBucket:
        return self.buckets["send_id"]

    # ------------------------------------------------------------------ lookups used by the app

    def authenticate(self, key: str | None) -> ApiKey | None:
        with self._lock:
            return self.keys.get(key) if key else None

    def draw(self) -> float:
        """A random number in [0, 1) from the seeded generator (fault injection)."""
        with self._lock:
            return self.rng.random()

    def choose(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self.rng.choice(options)

    def clock(self) -> float:
        """The sandbox's current time (UTC epoch seconds): ``clock`` plus ``clock_offset``."""
        return self._base_clock() + self.clock_offset

    def now(self) -> float:
        return self.clock()

    @property
    def seed(self) -> int | None:
        return self._seed

    def new_id(self) -> str:
        """A random 32-hex-character ID (dispatch, schedule or generated send ID), seedable."""
        with self._lock:
            return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    # ------------------------------------------------------------------ ledger

    def record(self, endpoint: str, workspace: str, request: Any, response: dict[str, Any]) -> int:
        """Add an accepted call to the ledger; return its sequence number."""
        with self._lock:
            seq = len(self._ledger) + 1
            self._ledger.append(
                {
                    "seq": seq,
                    "at": datetime.fromtimestamp(self.clock(), tz=timezone.utc).isoformat(),
                    "endpoint": endpoint,
                    "workspace": workspace,
                    "request": request,
                    "response": response,
                }
            )
            return seq

    def ledger(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """A copy of the accepted calls, oldest first, optionally for one endpoint."""
        with self._lock:
            return [dict(e) for e in self._ledger if endpoint is None or e["endpoint"] == endpoint]

    # ------------------------------------------------------------------ send IDs

    def count_send_id_attempt(self, workspace: str) -> tuple[Window, bool]:
        """Count a ``/sends/id/create`` request toward the daily quota before anything in it is
        checked, when every attempt counts (``send_id_quota="attempts"``).

        :return: ``(quota window, allowed)``; not allowed when the quota is used up (answer 429).
            With ``successes`` nothing is counted here and the request is allowed.
        """
        with self._lock:
            now = self.clock()
            window = self.send_id_quota.peek(workspace, now)
            if self.behaviours["send_id_quota"] != "attempts":
                return window, True
            if window.remaining <= 0:
                return window, False
            return self.send_id_quota.consume(workspace, now), True

    def create_send_id(
        self, workspace: str, campaign_id: str, send_id: str | None
    ) -> tuple[str | None, Window, bool]:
        """Create a send ID within the daily quota (the request already counted, with
        ``send_id_quota="attempts"``, by :meth:`count_send_id_attempt`).

        :return: ``(send_id, quota window, created)``; ``send_id`` is None when the quota is used
            up. Re-creating an existing pair follows ``behaviours["send_id_recreate"]``; with
            ``refuse`` the answer is ``(send_id, window, False)`` and the caller refuses it
            (:meth:`recreate_refusal`).
        """
        with self._lock:
            now = self.clock()
            exists = send_id is not None and (workspace, campaign_id, send_id) in self.send_ids
            mode = self.behaviours["send_id_recreate"]
            if exists and mode != "count":
                return send_id, self.send_id_quota.peek(workspace, now), mode == "idempotent"
            window = self.send_id_quota.peek(workspace, now)
            if self.behaviours["send_id_quota"] == "successes":
                if window.remaining <= 0:
                    return None, window, False
                window = self.send_id_quota.consume(workspace, now)
            if send_id is None:
                send_id = self.new_id()
            self.send_ids[(workspace, campaign_id, send_id)] = now
            return send_id, window, True

    def recreate_refusal(self, campaign_id: str, send_id: str) -> tuple[str, list[str] | None]:
        """The 400's ``message`` and ``errors`` refusing to re-create an existing send ID, in the
        chosen wording (``send_id_recreate_wording``; Braze documents none)."""
        wording = self.behaviours["send_id_recreate_wording"]
        if wording == "already_exists":
            return "Bad Request", [f"send_id {send_id!r} already exists for campaign {campaign_id!r}"]
        if wording == "invalid_send_id":
            return "Invalid send_id", None
        return "Bad Request", None

    # ------------------------------------------------------------------ schedules

    def local_time_refusal(self, wall_clock: datetime) -> str | None:
        """Why a local-time schedule at ``wall_clock`` (naive: the users' wall clock) is refused
        as past, following ``local_time_passed``; None when it is not past."""
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        if self.behaviours["local_time_passed"] == "company_zone":
            company_now = now.astimezone(self.company_time_zone).replace(tzinfo=None)
            if wall_clock < company_now:
                # The errors page's words.
                return "in_local_time is true but time has passed in your company's time zone"
            return None
        # It has passed everywhere once it has in the westernmost zone, UTC-12.
        if wall_clock.replace(tzinfo=timezone.utc) + timedelta(hours=12) < now:
            return "in_local_time is true but schedule.time has passed in all time zones"
        return None

    def count_status(self, path: str, status: int) -> None:
        with self._lock:
            self._statuses[path][status] += 1

    def statuses(self) -> dict[str, dict[str, int]]:
        """Answers given per path and HTTP status (faults included), e.g. to count 429s."""
        with self._lock:
            return {path: {str(k): v for k, v in counts.items()} for path, counts in self._statuses.items()}

    def check_send_id(self, workspace: str, campaign_id: str, send_id: str) -> bool:
        with self._lock:
            return (workspace, campaign_id, send_id) in self.send_ids

    # ------------------------------------------------------------------ deliveries

    def record_deliveries(
        self,
        campaign_id: str | None,
        send_id: str | None,
        recipients: list[str],
        *,
        scheduled: bool = False,
        lines: Iterable[Line] = (("email", None),),
        contents: Mapping[Line, str] | None = None,
        broadcast: bool = False,
        due: float | None = None,
    ) -> None:
        """Count each recipient key as sent (or scheduled) for the campaign and send ID, and the
        day's messages per (channel, message variation): what ``/sends/data_series`` reports.

        Whether the send has analytics is decided now, by the settings in force: a send to
        listed users has none under ``send_tracking="broadcast_only"``; a scheduled one has them
        from ``due`` (UTC epoch seconds) on under ``data_series_scheduled_sends="tracked"``.

        :param contents: (channel, variation) -> fingerprint of the content sent; the first
            content of each line is what its made-up engagement depends on.
        :param broadcast: Whether the send was a broadcast (no users listed).
        :param due: When a scheduled send is due.
        """
        with self._lock:
            key = (campaign_id or "", send_id or "")
            tracked = broadcast or self.behaviours["send_tracking"] == "all_sends"
            if scheduled:
                self._scheduled[key].update(recipients)
                schedules_tracked = self.behaviours["data_series_scheduled_sends"] == "tracked"
                if tracked and schedules_tracked and due is not None:
                    self._due.append((due, key, list(recipients), list(lines), dict(contents or {})))
                return
            self._deliveries[key].update(recipients)
            if tracked:
                self._count_analytics(key, self.clock(), recipients, lines, contents or {})

    def _count_analytics(
        self,
        key: tuple[str, str],
        at: float,
        recipients: list[str],
        lines: Iterable[Line],
        contents: Mapping[Line, str],
    ) -> None:
        from airflow_provider_braze.sandbox.analytics import audience_print

        day = datetime.fromtimestamp(at, tz=timezone.utc).date().isoformat()
        per_day = self._daily[key].setdefault(day, Counter())
        for line in lines:
            per_day[line] += len(recipients)
        self._daily_recipients[key][day] += len(recipients)
        for line, fingerprint in contents.items():
            self._contents[key].setdefault(line, fingerprint)
        prints = self._audience_prints[key]
        prints[day] = prints.get(day, 0) ^ audience_print(recipients)

    def _count_due_schedules(self) -> None:
        """Scheduled sends whose time has come join the analytics (on their scheduled day)."""
        now = self.clock()
        still_due = []
        for entry in self._due:
            due, key, recipients, lines, contents = entry
            if due <= now:
                self._count_analytics(key, due, recipients, lines, contents)
            else:
                still_due.append(entry)
        self._due = still_due

    def daily_sends(self, campaign_id: str, send_id: str) -> dict[str, tuple[Counter[Line], int]]:
        """Day (``YYYY-MM-DD``) -> (messages sent per (channel, variation), recipients) for one
        send ID."""
        with self._lock:
            self._count_due_schedules()
            key = (campaign_id, send_id)
            return {
                day: (Counter(channels), self._daily_recipients[key][day])
                for day, channels in self._daily.get(key, {}).items()
            }

    def send_profile(self, campaign_id: str, send_id: str) -> tuple[dict[Line, str], dict[str, int]]:
        """What a send's made-up statistics depend on besides its counts: each line's content
        fingerprint and each day's audience print."""
        with self._lock:
            self._count_due_schedules()
            key = (campaign_id, send_id)
            return dict(self._contents.get(key, {})), dict(self._audience_prints.get(key, {}))

    def deliveries(self, campaign_id: str | None = None, send_id: str | None = None) -> Counter[str]:
        """How many times each recipient key was sent a message (optionally for one campaign and
        send ID). Keys: the external user ID, ``alias:<label>:<name>`` or ``email:<address>``."""
        return self._count(self._deliveries, campaign_id, send_id)

    def scheduled(self, campaign_id: str | None = None, send_id: str | None = None) -> Counter[str]:
        """Like :meth:`deliveries`, for recipients of scheduled sends."""
        return self._count(self._scheduled, campaign_id, send_id)

    def _count(
        self, table: dict[tuple[str, str], Counter[str]], campaign_id: str | None, send_id: str | None
    ) -> Counter[str]:
        total: Counter[str] = Counter()
        with self._lock:
            for (campaign, send), counts in table.items():
                if campaign_id is not None and campaign != campaign_id:
                    continue
                if send_id is not None and send != send_id:
                    continue
                total.update(counts)
        return total


def _checked_behaviours(behaviours: dict[str, str]) -> dict[str, str]:
    for name, value in behaviours.items():
        choices = UNDOCUMENTED_BEHAVIOURS.get(name)
        if choices is None:
            raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(UNDOCUMENTED_BEHAVIOURS)}")
        if value not in choices:
            raise ValueError(f"behaviour {name} must be one of {', '.join(choices)}, got {value!r}")
    return dict(behaviours)
