"""Errors raised by the Braze provider.

Every error is a :class:`BrazeError` (an ``AirflowException``). Errors that come from a Braze
answer keep what Braze said as attributes (``status_code``, ``message``, ``errors``,
``endpoint``) so callers never have to parse the exception text.

.. code-block:: text

    BrazeError
    ├── BrazeValidationError          bad local input; raised before any request is sent
    ├── BrazeConfigurationError       the Airflow connection cannot be used (host, key, extras)
    ├── BrazeAnalyticsUnavailableError   Braze no longer keeps a send's analytics (14 days)
    │   └── BrazeAnalyticsUntrackedError  a send to listed users has none long after: maybe untracked
    ├── BrazeCheckpointError          a send's checkpoint cannot be read, written or trusted
    ├── BrazeTransportError           no usable HTTP answer (connection failed, timed out)
    │   └── BrazeAmbiguousRequestError    the request was sent and is in doubt
    └── BrazeAPIError                 Braze answered with an error status or an unusable body
        ├── BrazeBadRequestError          400 (and other 4xx without a class of their own)
        ├── BrazeAuthError                401 / 403: key, permission or instance URL
        ├── BrazeNotFoundError            404
        ├── BrazeRateLimitError           429, with the reset time
        ├── BrazeServerError              5xx
        └── BrazeUnexpectedResponseError  2xx whose body is not the JSON Braze documents
            └── BrazeAmbiguousResponseError   ... for a send: it is also a BrazeAmbiguousRequestError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from datetime import datetime


class BrazeError(AirflowException):
    """Root of every error this provider raises.

    Subclasses keep extra facts as keyword-only attributes; the positional ``message`` is the
    whole human-readable text, so ``cls(str(err))`` (how Airflow re-creates exceptions) works.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword attributes across pickling (e.g. between processes).
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[BrazeError], args: tuple[Any, ...], state: dict[str, Any]) -> BrazeError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class BrazeValidationError(BrazeError, AirflowFailException, ValueError):
    """Local input is invalid; nothing was sent to Braze.

    It is an ``AirflowFailException``: retrying the task with the same arguments cannot succeed.
    """


class BrazeConfigurationError(BrazeError):
    """The Braze connection is missing, incomplete or unsafe to use (host, API key, extras)."""


class BrazeCheckpointError(BrazeError):
    """A send's checkpoint could not be read or written, or it says something this try cannot
    safely act on (another send's record, a retry whose earlier record is gone).

    Sending is refused rather than guessed: the message names the checkpoint and what to do.
    """


class BrazeTransportError(BrazeError):
    """No usable HTTP answer: the connection failed or timed out, after any retries."""

    def __init__(self, text: str, *, endpoint: str | None = None, attempts: int = 1) -> None:
        super().__init__(text)
        self.endpoint = endpoint
        self.attempts = attempts
        # No HTTP answer, so no status: not AirflowException's default of 500, which code that
        # treats 5xx as "Braze failed" would misread.
        self.status_code = None  # type: ignore[assignment]  # AirflowException types it HTTPStatus


class BrazeAmbiguousRequestError(BrazeTransportError):
    """The request reached the network but no answer came back (read timeout, dropped connection).

    Braze may or may not have processed it. Calls that are not safe to repeat are not retried
    after this; the caller decides what to do.
    """


class BrazeAPIError(BrazeError):
    """Braze answered with an error status, or with a body that is not the JSON it documents.

    :param text: The full human-readable explanation.
    :param status_code: The HTTP status of Braze's answer.
    :param message: Braze's own ``message`` field (or a description of the body if it had none).
    :param errors: Braze's ``errors`` list, empty when it sent none.
    :param endpoint: The request, e.g. ``"POST /sends/id/create"``.
    :param attempts: How many attempts were made, retries included.
    """

    def __init__(
        self,
        text: str,
        *,
        status_code: int | None = None,
        message: str | None = None,
        errors: list[Any] | None = None,
        endpoint: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(text)
        # Shadows AirflowException.status_code (an HTTPStatus the API server uses for its own
        # errors) with Braze's actual status, which is what users of this error need.
        self.status_code = status_code  # type: ignore[assignment]
        self.message = message
        self.errors = list(errors) if errors else []
        self.endpoint = endpoint
        self.attempts = attempts


class BrazeBadRequestError(BrazeAPIError):
    """Braze refused the request as invalid (400, or another 4xx without its own class)."""


class BrazeAuthError(BrazeAPIError):
    """Braze refused the API key (401) or its permissions (403).

    :param required_permission: The API key permission the endpoint needs, when known.
    """

    def __init__(self, text: str, *, required_permission: str | None = None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.required_permission = required_permission


class BrazeNotFoundError(BrazeAPIError):
    """Braze answered 404: usually a wrong REST endpoint URL."""


class BrazeRateLimitError(BrazeAPIError):
    """Braze answered 429 and the reset is too far away to wait for.

    :param reset_at: When the limit resets (from ``X-RateLimit-Reset``), if Braze said.
    :param limit: ``X-RateLimit-Limit``, if sent.
    :param remaining: ``X-RateLimit-Remaining``, if sent.
    """

    def __init__(
        self,
        text: str,
        *,
        reset_at: datetime | None = None,
        limit: int | None = None,
        remaining: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(text, **kwargs)
        self.reset_at = reset_at
        self.limit = limit
        self.remaining = remaining


class BrazeServerError(BrazeAPIError):
    """Braze answered with a 5xx status (after any retries)."""


class BrazeUnexpectedResponseError(BrazeAPIError):
    """Braze answered 2xx, but the body is not the JSON object the endpoint documents."""


class BrazeAmbiguousResponseError(BrazeUnexpectedResponseError, BrazeAmbiguousRequestError):
    """A send was answered 2xx with a body that cannot be read (empty, HTML, not JSON).

    Something answered success, so Braze may well have processed the send, but the answer does
    not say so: it is in doubt, and never repeated automatically.
    """


class BrazeAnalyticsUnavailableError(BrazeError, AirflowFailException):
    """Braze no longer has analytics for a send (it keeps them 14 days); waiting cannot help."""


class BrazeAnalyticsUntrackedError(BrazeAnalyticsUnavailableError):
    """A send to a list of users still has no analytics long after it was sent: Braze may keep
    send analytics only for broadcasts (its docs are not clear), so waiting may never help."""


class BrazeDeliveryStoppedError(BrazeError):
    """A send was stopped (task killed or timed out, or a newer try took over); the checkpoint
    says where it stopped and a retry resumes from there.

    :param summary: The delivery summary when the send got far enough to have one (also pushed
        to XCom under ``summary``).
    """

    def __init__(self, text: str, *, summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.summary = summary or {}


class BrazeDeliveryIncompleteError(BrazeError):
    """Some batches of a send were not delivered, or are in doubt; the message lists
    them.

    :param summary: The delivery summary (also pushed to XCom under ``summary``).
    """

    def __init__(self, text: str, *, summary: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.summary = summary or {}
