"""What both transports share, defined once: the synchronous hook (requests) and the async hook
(httpx, in the triggerer) send the same headers, retry the same answers after the same waits
within the same budget, and turn a success body into the same value or error.

No HTTP library is imported here: a transport hands in its response object (anything with
``status_code``, ``headers``, ``content``, ``text`` and ``json()``; see :class:`.errors.Response`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_braze._words import clip
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAmbiguousResponseError,
    BrazeUnexpectedResponseError,
)
from airflow_provider_braze.hooks.errors import MESSAGE_CHARS, describe_body, json_or_none, with_retry_note
from airflow_provider_braze.hooks.redaction import redacted
from airflow_provider_braze.rate_limit import http_date

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_braze.exceptions import BrazeAPIError
    from airflow_provider_braze.hooks.endpoints import BrazeEndpoint
    from airflow_provider_braze.hooks.errors import Response
    from airflow_provider_braze.rate_limit import RateLimitStatus, ServerClock

#: Longest backoff between two attempts, in seconds.
MAX_BACKOFF = 30.0


def request_headers(transport: str) -> dict[str, str]:
    """The headers of every request (the key goes in an auth object, never here). ``transport``
    names the HTTP library and its version, e.g. ``python-requests/2.32.3``."""
    from airflow import __version__ as airflow_version

    from airflow_provider_braze import DISTRIBUTION_NAME, __version__

    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"{DISTRIBUTION_NAME}/{__version__} apache-airflow/{airflow_version} {transport}",
    }


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... s, at most 30 s."""
    base: float = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1))
    return base * random.uniform(0.5, 1.0)


def seconds_until_reset(
    rate: RateLimitStatus | None, date_header: str | None, server_clock: ServerClock
) -> float | None:
    """How long until the rate limit resets: from the answer's own ``Date`` when it has one
    (both times are then on Braze's clock, whatever this worker's says), else from the learnt
    clock."""
    if rate is None or rate.reset_at is None:
        return None
    answered_at = http_date(date_header)
    if answered_at is not None:
        # Date has whole seconds: the reset is at most this far; a moment too long is safe.
        return max(0.0, rate.reset_at.timestamp() - answered_at)
    return rate.seconds_until_reset(server_clock.now())


def retry_delay(
    endpoint: BrazeEndpoint,
    failure: BrazeAPIError,
    status: int,
    *,
    idempotent: bool,
    attempt: int,
    rate: RateLimitStatus | None,
    date_header: str | None,
    server_clock: ServerClock,
) -> float:
    """How long to wait before repeating a call Braze answered with ``status`` (``failure``):
    429 until ``X-RateLimit-Reset``, 5xx a backoff. Raises what cannot be retried: any other
    status, and a 504 to a call that must not be repeated (ambiguous)."""
    if status == 504 and not idempotent:
        # A gateway timed out waiting for Braze, which may still have processed the call.
        raise BrazeAmbiguousRequestError(
            f"{failure} A gateway timeout leaves the call in doubt (Braze may or may not have "
            "processed it), so it was not repeated.",
            endpoint=str(endpoint),
            attempts=attempt,
        )
    if status == 429:
        reset_in = seconds_until_reset(rate, date_header, server_clock)
        # Wait for the reset plus a little jitter so parallel callers do not stampede. A
        # reset that looks past (a clock that cannot be trusted) gets a plain backoff.
        return reset_in + random.uniform(0.0, 1.0) if reset_in else backoff(attempt)
    if status >= 500:
        return backoff(attempt)
    raise failure


@dataclass
class RetryBudget:
    """One call's retries: how many are configured, and the time already spent waiting."""

    max_retries: int
    budget: float
    waited: float = 0.0

    def retries_left(self, attempt: int) -> bool:
        return attempt <= self.max_retries

    def remaining(self) -> float:
        return self.budget - self.waited

    def pause(self, error: Exception, delay: float, attempt: int, log: Any) -> bool:
        """Whether to wait ``delay`` before the next attempt (within the budget); if so, it is
        logged and counted, and the caller sleeps."""
        if self.waited + delay > self.budget:
            return False
        log.warning("%s Retrying in %.1f s (attempt %d).", error, delay, attempt + 1)
        self.waited += delay
        return True

    def give_up(self, failure: BrazeAPIError, delay: float, retries_left: bool) -> BrazeAPIError:
        """``failure``, saying why it was not retried."""
        return with_retry_note(failure, self.budget, self.waited, delay, retries_left)


def success_body(
    endpoint: BrazeEndpoint,
    response: Response,
    *,
    idempotent: bool,
    redact: Callable[[str], str],
    log: Any,
) -> dict[str, Any]:
    """A 2xx answer's JSON object, redacted; its non-fatal ``errors`` logged. An answer that is
    not a JSON object raises: ambiguous for a call that must not be repeated."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        text = (
            f"Braze answered {endpoint} with {response.status_code} but "
            f"{describe_body(response, redact)}, not a JSON object."
        )
        details: dict[str, Any] = {
            "status_code": response.status_code,
            "message": describe_body(response, redact),
            "endpoint": str(endpoint),
        }
        if not idempotent:
            # Something answered success, so the call may have taken effect; the body does
            # not confirm it. Never a reason to repeat the call.
            raise BrazeAmbiguousResponseError(
                f"{text} The call may have taken effect, so it was not repeated.", **details
            )
        raise BrazeUnexpectedResponseError(text, **details)
    # A proxy that echoes request headers could put the key anywhere in the body: redact it
    # before anyone keeps or shows any part of it.
    clean: dict[str, Any] = redacted(body, redact)
    errors = clean.get("errors")
    if errors:
        # Non-fatal: Braze processed the call; the listed parts were not applied.
        log.warning(
            "Braze accepted %s with non-fatal errors: %s",
            endpoint,
            clip(json.dumps(errors, ensure_ascii=False, default=str), MESSAGE_CHARS),
        )
    return clean


def shown_cause(exc: BaseException, redact: Callable[[str], str]) -> BaseException | None:
    """``exc`` to chain under our error, or None when it or any exception behind it carries
    the key (a key pasted into the host comes back lowercased in urllib3's errors, where
    tracebacks show it): our error's message already says what failed, redacted."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for text in (str(current), repr(current)):
            if redact(text) != text:
                return None
        current = current.__cause__ or current.__context__
    return exc
