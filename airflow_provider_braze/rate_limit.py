"""Braze's rate limits as this worker sees them: the ``X-RateLimit-*`` headers, Braze's clock, and
the pacer that spends a window without overrunning it.

Braze reports ``X-RateLimit-Reset`` as an epoch on *its* clock. A worker whose clock is off by
30 s would think a window had reset when it had not (and draw a 429 for most requests), so every
comparison with a reset time goes through :class:`ServerClock`, which learns Braze's clock from
the ``Date`` header of its answers.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


@dataclass(frozen=True)
class RateLimitStatus:
    """What Braze's ``X-RateLimit-*`` headers said on one answer."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: float | None = None) -> RateLimitStatus | None:
        """Parse the headers (any case); None when Braze sent none of them.

        Braze sends ``X-RateLimit-Reset`` as an epoch. A value too small to be one (before
        2001) is read as seconds until the reset, counted from ``now`` (Braze's time of the
        answer, by default this machine's clock), as some proxies and gateways send it.
        """
        if not hasattr(headers, "lower_items"):  # not requests' case-insensitive mapping
            headers = {k.lower(): v for k, v in headers.items()}
        limit = _int_or_none(headers.get("x-ratelimit-limit"))
        remaining = _int_or_none(headers.get("x-ratelimit-remaining"))
        reset = _int_or_none(headers.get("x-ratelimit-reset"))
        if limit is None and remaining is None and reset is None:
            return None
        if reset is not None and 0 <= reset < _EPOCH_2001:
            reset = int((time.time() if now is None else now) + reset)
        try:
            reset_at = datetime.fromtimestamp(reset, tz=timezone.utc) if reset is not None else None
        except (ValueError, OverflowError, OSError):  # a nonsense epoch: ignore it, do not crash
            reset_at = None
        return cls(limit=limit, remaining=remaining, reset_at=reset_at)

    def seconds_until_reset(self, now: float) -> float | None:
        """Seconds from ``now`` (epoch, on Braze's clock) until the reset, never negative; None if unknown."""
        if self.reset_at is None:
            return None
        return max(0.0, self.reset_at.timestamp() - now)

    def describe(self) -> str:
        parts = []
        if self.remaining is not None and self.limit is not None:
            parts.append(f"{self.remaining} of {self.limit} left")
        elif self.remaining is not None:
            parts.append(f"{self.remaining} left")
        if self.reset_at is not None:
            parts.append(f"resets at {self.reset_at:%Y-%m-%d %H:%M:%S} UTC")
        return ", ".join(parts) or "no details"


#: Epochs before this (2001-09-09) are not current times: such a "reset" counts seconds instead.
_EPOCH_2001 = 1_000_000_000


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    # "inf", "1e400" or 400 nines are not counts or epochs anyone sends: ignore them.
    if not math.isfinite(number) or abs(number) > 1e12:
        return None
    return int(number)


#: After this many answers without rate-limit headers in a row, requests are no longer paced.
_ANSWERS_WITHOUT_LIMITS = 3


class ServerClock:
    """Braze's clock, estimated from the ``Date`` header of its answers.

    ``Date`` has whole seconds and is written before the answer travels back, so
    ``Date - time received`` is at most the true offset between Braze's clock and this worker's,
    and within about a second of it. The estimate is the second largest of the last few such
    values: close to the truth (answers arrive at every fraction of a second), on the safe side
    of it (this worker may wait a moment too long for a reset, rarely too short), not moved by a
    single answer from a node whose clock is off, and following a clock that steps within a few
    answers. Answers without a usable ``Date`` change nothing.

    :param local_clock: This worker's clock (UTC epoch seconds).
    """

    #: Recent answers whose offsets are kept.
    SAMPLES = 9
    #: A ``Date`` further off than this is not a clock (a cached page, a broken proxy): ignored.
    MAX_OFFSET = 7 * 86_400.0

    def __init__(self, local_clock: Callable[[], float] = time.time) -> None:
        self._local_clock = local_clock
        self._lock = threading.Lock()
        self._samples: deque[float] = deque(maxlen=self.SAMPLES)
        self._offset = 0.0

    def observe(self, date_header: str | None, received_at: float | None = None) -> None:
        """Learn from one answer's ``Date`` header, received at ``received_at`` (local epoch)."""
        server_time = http_date(date_header)
        if server_time is None:
            return
        local = self._local_clock() if received_at is None else received_at
        sample = server_time - local
        if not math.isfinite(sample) or abs(sample) > self.MAX_OFFSET:
            return
        with self._lock:
            self._samples.append(sample)
            ordered = sorted(self._samples)
            self._offset = ordered[-2] if len(ordered) >= 3 else ordered[-1]

    @property
    def offset(self) -> float:
        """Seconds to add to this worker's clock to get Braze's (0 until an answer had a ``Date``)."""
        return self._offset

    def now(self) -> float:
        """The current time on Braze's clock (UTC epoch seconds), as well as this worker knows it."""
        return self._local_clock() + self._offset


@dataclass
class _Window:
    #: ``X-RateLimit-Reset`` as Braze sent it (an epoch on Braze's clock): names the window.
    reset_epoch: float
    remaining: int
    #: When the window resets on this worker's clock (see RateLimitPacer.release).
    reset_at: float
    #: A request is out to learn whether the window has reset (see RateLimitPacer.acquire).
    probing: bool = False
    #: The window's limit (``X-RateLimit-Limit``), when Braze sent it.
    limit: int | None = None
    #: When the next request may start (this worker's clock): requests are spread over the window.
    next_start: float = 0.0


class RateLimitPacer:
    """Spends what is left of a rate-limit window without overrunning it; shared by threads.

    Braze reports ``X-RateLimit-Remaining`` and ``-Reset`` on every answer. Requests still in
    flight may not have been counted yet, so a request may start only while ``remaining`` covers
    every request in flight, itself included; otherwise it waits (for the reset, or for answers)
    instead of drawing a 429.

    The reset is an epoch on Braze's clock. Each answer's ``Date`` is on the same clock, so
    ``reset - Date`` is how long the window had left when Braze answered, whatever this worker's
    clock says, and counting it from when the answer arrived gives the reset on this worker's
    clock; a window's earliest such estimate is kept (``Date`` has whole seconds). An answer
    without ``Date`` falls back on the clock learnt from earlier ones (:class:`ServerClock`).
    Once the reset is due and no answer from the new window has come, one request at a time goes
    out to find out, so an estimate that is off costs at most one 429 per answer, never a burst.

    :param clock: This worker's clock (UTC epoch seconds).
    :param sleep: How to wait (tests pass a recorder).
    :param server_clock: Braze's clock as learnt so far, for answers without ``Date``.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        server_clock: ServerClock | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._server_clock = server_clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._in_flight: dict[str, int] = {}
        #: Answers in a row without rate-limit headers, per key (after a few: no limits to pace by).
        self._unlimited_answers: dict[str, int] = {}

    def acquire(self, key: str, max_wait: float) -> float:
        """Wait (at most ``max_wait`` seconds) until a request may start; return the time waited.

        Every call must be followed by :meth:`release`, whatever happens to the request.
        """
        waited = 0.0
        while True:
            with self._lock:
                in_flight = self._in_flight.get(key, 0)
                window = self._windows.get(key)
                if window is None:
                    # Until an answer tells the limits, one request at a time (a first burst
                    # could overrun a small limit); unless answers carry no limits at all.
                    admit = in_flight == 0 or self._unlimited_answers.get(key, 0) >= _ANSWERS_WITHOUT_LIMITS
                    wait = random.uniform(0.02, 0.1)
                else:
                    now = self._clock()
                    spare = window.remaining - in_flight - _reserve(window.limit)
                    admit = False
                    if now >= window.reset_at:
                        if not window.probing:
                            window.probing = admit = True  # one request finds out whether it reset
                        else:
                            wait = random.uniform(0.02, 0.1)  # the probe's answer will tell
                    elif spare <= 0:
                        # A little after the reset, so this estimate does not beat Braze's clock.
                        wait = window.reset_at - now + random.uniform(0.05, 0.25)
                    elif now < window.next_start:
                        wait = window.next_start - now
                    else:
                        # What is left of the window, spread evenly until its reset. The window is
                        # the workspace's, shared by every sender: each sees what the others spent
                        # in ``remaining`` and slows down as it falls, so senders share it evenly
                        # instead of racing for it and drawing 429s.
                        admit = True
                        window.next_start = now + (window.reset_at - now) / spare
                if admit or waited + wait > max_wait:
                    # Too long to wait here: Braze's 429 answer decides.
                    self._in_flight[key] = in_flight + 1
                    return waited
            self._sleep(wait)
            waited += wait

    def release(
        self,
        key: str,
        rate: RateLimitStatus | None,
        answered_at: float | None = None,
        *,
        answered: bool = True,
    ) -> None:
        """Record the end of a request started with :meth:`acquire` and what Braze said.

        :param answered_at: The answer's ``Date`` (epoch, Braze's clock), when it had one.
        :param answered: False when no answer came at all (a connection error).
        """
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
            window = self._windows.get(key)
            if window is not None:
                window.probing = False  # whatever the answer, the next request may find out
            if rate is None or rate.remaining is None or rate.reset_at is None:
                if answered:
                    self._unlimited_answers[key] = self._unlimited_answers.get(key, 0) + 1
                return
            self._unlimited_answers[key] = 0
            epoch = rate.reset_at.timestamp()
            now = self._clock()
            braze_now = answered_at
            if braze_now is None:
                braze_now = now + (self._server_clock.offset if self._server_clock is not None else 0.0)
            reset_at = now + max(0.0, epoch - braze_now)
            if window is not None and epoch == window.reset_epoch:
                # Answers arrive out of order; within one window the smallest count is the latest,
                # and the earliest reset estimate the closest (Date has whole seconds).
                window.remaining = min(window.remaining, rate.remaining)
                window.reset_at = min(window.reset_at, reset_at)
            elif window is None or epoch > window.reset_epoch or now >= window.reset_at:
                # A later window; or, once the known one is due, whatever Braze says now (its
                # clock may have stepped back, numbering windows lower).
                self._windows[key] = _Window(epoch, rate.remaining, reset_at, limit=rate.limit)
            # else: a late answer from an earlier window


def _reserve(limit: int | None) -> int:
    """Requests of a window left for the other senders' requests in flight, which ``remaining``
    does not count yet: 1 % of the limit, at least 1 and at most 100."""
    if limit is None or limit <= 0:
        return 0
    return min(100, max(1, limit // 100))


def http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as epoch seconds, or None if it cannot be read."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


#: Braze's shared request pool (the send endpoints, exports, campaigns/list) resets every hour.
HOURLY_WINDOW_SECONDS = 3600.0
#: A request's round trip when no measurement says otherwise (Braze answers in about 0.1-0.3 s).
TYPICAL_LATENCY_SECONDS = 0.2


def estimate_send_seconds(
    requests: int,
    *,
    concurrency: int,
    status: RateLimitStatus | None,
    now: float,
    latency: float | None = None,
    window_seconds: float | None = None,
) -> tuple[float, str]:
    """How long ``requests`` calls should take at least, and how that was worked out.

    The larger of two bounds: the round trips (``requests x latency / concurrency``) and the
    rate limit as ``status`` tells it: the pacer spreads what is left of a window evenly until
    its reset, and a send needing more than is left waits for the next windows (``limit`` each).
    The headers do not say how long a window is: ``window_seconds`` when given; else an hour for
    a limit of 10,000 or more (Braze's request pools are hourly), and for a smaller limit (a
    sandbox, a test setting) the time to the next reset, which keeps the figure a lower bound.

    :param now: The current time on Braze's clock (epoch seconds).
    """
    latency_used = latency if latency is not None else TYPICAL_LATENCY_SECONDS
    by_round_trips = requests * latency_used / max(1, concurrency)
    how = f"{requests} requests, {concurrency} at a time, about {latency_used:.2f} s each" + (
        "" if latency is not None else " (assumed)"
    )
    reset_in = status.seconds_until_reset(now) if status is not None else None
    if status is None or status.remaining is None or reset_in is None:
        return by_round_trips, how + "; the rate limit is unknown"
    remaining = max(0, status.remaining)
    limit = status.limit if status.limit and status.limit > 0 else None
    if requests <= remaining:
        paced = requests * reset_in / remaining if remaining else 0.0
        how += f"; {remaining} of the window's requests left, {reset_in:.0f} s until its reset"
        return max(by_round_trips, paced), how
    if limit is None:
        return max(by_round_trips, reset_in), how + f"; only {remaining} requests left before the reset"
    if window_seconds is None:
        window_seconds = HOURLY_WINDOW_SECONDS if limit >= 10_000 else max(1.0, reset_in)
    window = max(window_seconds, reset_in)
    rest = requests - remaining
    full_windows, last = divmod(rest, limit)
    paced = reset_in + full_windows * window + (last / limit) * window
    how += (
        f"; {remaining} requests left in this window ({reset_in:.0f} s to its reset), then "
        f"{limit} per {window:.0f} s window"
    )
    return max(by_round_trips, paced), how
