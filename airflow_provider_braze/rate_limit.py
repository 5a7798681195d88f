"""Braze's rate limits as this worker sees them: the ``X-RateLimit-*`` headers, Braze's clock, and
the pacer that spends a window without overrunning it.

Braze reports ``X-RateLimit-Reset`` as an epoch on *its* clock. A worker whose clock is off by
30 s would think a window had reset when it had not (and draw a 429 for most requests), so every
comparison with a reset time goes through :class:`ServerClock`, which learns Braze's clock from
the ``Date`` header of its answers.
"""

from __future__ import annotations

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
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitStatus | None:
        """Parse the headers (any case); None when Braze sent none of them."""
        if not hasattr(headers, "lower_items"):  # not requests' case-insensitive mapping
            headers = {k.lower(): v for k, v in headers.items()}
        limit = _int_or_none(headers.get("x-ratelimit-limit"))
        remaining = _int_or_none(headers.get("x-ratelimit-remaining"))
        reset = _int_or_none(headers.get("x-ratelimit-reset"))
        if limit is None and remaining is None and reset is None:
            return None
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


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


class ServerClock:
    """Braze's clock, estimated from the ``Date`` header of its answers.

    ``Date`` has whole seconds and is written before the answer travels back, so
    ``Date - time received`` is never more than the true offset between Braze's clock and this
    worker's. The largest such value over recent answers is therefore a lower bound of the
    offset that gets tight quickly (answers arrive at every fraction of a second), and using a
    lower bound errs on the safe side: this worker may wait a moment too long for a reset, never
    too short. Answers without a usable ``Date`` change nothing.

    :param local_clock: This worker's clock (UTC epoch seconds).
    """

    #: Recent answers whose offsets are kept; old ones are forgotten so a corrected clock is followed.
    SAMPLES = 64
    #: A ``Date`` further off than this is not Braze's clock (a cache, a broken proxy): ignored.
    MAX_OFFSET = 6 * 3600.0

    def __init__(self, local_clock: Callable[[], float] = time.time) -> None:
        self._local_clock = local_clock
        self._lock = threading.Lock()
        self._samples: deque[float] = deque(maxlen=self.SAMPLES)
        self._offset = 0.0

    def observe(self, date_header: str | None, received_at: float | None = None) -> None:
        """Learn from one answer's ``Date`` header, received at ``received_at`` (local epoch)."""
        if not date_header:
            return
        try:
            server_time = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        local = self._local_clock() if received_at is None else received_at
        sample = server_time - local
        if abs(sample) > self.MAX_OFFSET:
            return
        with self._lock:
            self._samples.append(sample)
            self._offset = max(self._samples)

    @property
    def offset(self) -> float:
        """Seconds to add to this worker's clock to get Braze's (0 until an answer had a ``Date``)."""
        return self._offset

    def now(self) -> float:
        """The current time on Braze's clock (UTC epoch seconds), as well as this worker knows it."""
        return self._local_clock() + self._offset


@dataclass
class _Window:
    remaining: int
    reset_at: float  # UTC epoch seconds, Braze's clock
    in_flight: int = 0


class RateLimitPacer:
    """Spends what is left of a rate-limit window without overrunning it; shared by threads.

    Braze reports ``X-RateLimit-Remaining`` and ``-Reset`` on every answer. Requests still in
    flight have not been counted yet, so a request may start only while ``remaining`` exceeds
    the number in flight; otherwise it waits for the reset instead of drawing a 429.

    :param clock: Braze's current time (see :class:`ServerClock`).
    :param sleep: How to wait (tests pass a recorder).
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, sleep: Callable[[float], object] = time.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def acquire(self, key: str, max_wait: float) -> float:
        """Wait (at most ``max_wait`` seconds) until a request may start; return the time waited.

        Every call must be followed by :meth:`release`, whatever happens to the request.
        """
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                return 0.0
            window.in_flight += 1  # counted while waiting too, so waiting threads do not pile up
            now = self._clock()
            if window.reset_at <= now or window.remaining >= window.in_flight:
                return 0.0
            # A little after the reset, so this client's estimate does not beat Braze's clock.
            wait = window.reset_at - now + random.uniform(0.05, 0.25)
        if wait > max_wait:
            return 0.0  # Too long to wait here: Braze's 429 answer decides.
        self._sleep(wait)
        return wait

    def release(self, key: str, rate: RateLimitStatus | None) -> None:
        """Record the end of a request started with :meth:`acquire` and what Braze said."""
        with self._lock:
            window = self._windows.get(key)
            if window is not None:
                window.in_flight = max(0, window.in_flight - 1)
            if rate is None or rate.remaining is None or rate.reset_at is None:
                return
            reset_at = rate.reset_at.timestamp()
            if window is None or reset_at > window.reset_at:
                self._windows[key] = _Window(rate.remaining, reset_at, window.in_flight if window else 0)
            elif reset_at == window.reset_at:
                # Answers arrive out of order; within one window the smallest count is the latest.
                window.remaining = min(window.remaining, rate.remaining)
