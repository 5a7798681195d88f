"""Braze's answers and transport failures as typed errors, with messages that say what happened
and what to do. The request path in :mod:`airflow_provider_braze.hooks.braze` decides what to
retry; this module only describes."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_braze._words import clip
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAPIError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeNotFoundError,
    BrazeRateLimitError,
    BrazeServerError,
    BrazeTransportError,
)
from airflow_provider_braze.hooks.redaction import redacted

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_braze.hooks.endpoints import BrazeEndpoint
    from airflow_provider_braze.rate_limit import RateLimitStatus


class Response(Protocol):
    """What this module reads of an answer: a ``requests.Response`` or an ``httpx.Response``
    (whose reason is ``reason_phrase``; see :func:`reason_of`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def reason_of(response: Response) -> str | None:
    """The answer's reason phrase: ``reason`` in requests, ``reason_phrase`` in httpx."""
    reason = getattr(response, "reason", None)
    if reason is None:
        reason = getattr(response, "reason_phrase", None)
    return reason if isinstance(reason, str) else None


_BODY_EXCERPT_CHARS = 200
#: Longest message, and longest text of the errors list, an error's text keeps from Braze's answer
#: (an answer of any size would otherwise make a message, a log line, of that size).
MESSAGE_CHARS = 1_000
#: How a transport failure after the request went out ends its message.
AMBIGUOUS_SUFFIX = "; the request was sent, so Braze may or may not have processed it."


def transport_error(
    endpoint: BrazeEndpoint,
    exc: Exception,
    attempt: int,
    base_url: str,
    redact: Callable[[str], str] = lambda text: text,
) -> BrazeTransportError:
    """A failure to get an answer: ambiguous when the request may have reached Braze. The text
    goes through ``redact`` (a key pasted into the host must not come back in the message)."""
    reason = redact(describe_transport_failure(exc, base_url))
    base_url = redact(base_url)
    if may_have_been_sent(exc):
        return BrazeAmbiguousRequestError(
            f"{endpoint} to {base_url}: {reason}{AMBIGUOUS_SUFFIX}",
            endpoint=str(endpoint),
            attempts=attempt,
        )
    return BrazeTransportError(
        f"{endpoint} to {base_url} failed before the request was sent: {reason}.",
        endpoint=str(endpoint),
        attempts=attempt,
    )


def api_error(
    endpoint: BrazeEndpoint,
    response: Response,
    rate: RateLimitStatus | None,
    attempt: int,
    sent_before: bool,
    *,
    base_url: str,
    redact: Callable[[str], str],
) -> BrazeAPIError:
    """Braze's non-2xx answer as the matching error class, its message and errors redacted."""
    base_url = redact(base_url)  # a key pasted into the host must not come back in the text
    status = response.status_code
    body = json_or_none(response)
    if isinstance(body, dict):
        # Redacted before cut: a key cut in two would no longer be recognised.
        message = clip(redact(str(body.get("message") or "no message")), MESSAGE_CHARS)
        raw_errors = redacted(body.get("errors"), redact)
        errors = raw_errors if isinstance(raw_errors, list) else ([raw_errors] if raw_errors else [])
    else:
        message = describe_body(response, redact)
        errors = []
    reason = reason_phrase(status, reason_of(response))
    text = f"Braze answered {status}{reason} to {endpoint}: {message}"
    if not text.endswith((".", "!", "?")):
        text += "."
    if errors:
        # The whole list stays on the error's ``errors``; its text in the message is bounded.
        text += f" Errors: {clip(redact(str(errors)), MESSAGE_CHARS)}."
    kwargs: dict[str, Any] = {
        "status_code": status,
        "message": message,
        "errors": errors,
        "endpoint": str(endpoint),
        "attempts": attempt,
    }
    cls: type[BrazeAPIError]
    if status == 401:
        # Braze: an invalid key, or a valid key sent to another instance's endpoint.
        text += (
            f" Braze did not accept the REST API key: check the key, and that {base_url} is the "
            "REST endpoint of the key's workspace."
        )
        return BrazeAuthError(finish(text, sent_before), required_permission=endpoint.permission, **kwargs)
    if status == 403:
        # Braze: the key is valid but lacks this endpoint's permission (or the plan forbids it).
        text += (
            f" The API key lacks the '{endpoint.permission}' permission this call needs (or the "
            "workspace's plan does not allow it); add the permission to the key in Braze."
        )
        return BrazeAuthError(finish(text, sent_before), required_permission=endpoint.permission, **kwargs)
    if status == 429:
        if endpoint.rate_limit_note:
            text += f" {endpoint.rate_limit_note}."
        if rate is not None:
            text += f" Rate limit: {rate.describe()}."
        return BrazeRateLimitError(
            finish(text, sent_before),
            reset_at=rate.reset_at if rate else None,
            limit=rate.limit if rate else None,
            remaining=rate.remaining if rate else None,
            **kwargs,
        )
    if status == 404:
        text += f" Check the connection's REST endpoint ({base_url})."
        cls = BrazeNotFoundError
    elif status >= 500:
        cls = BrazeServerError
    elif 400 <= status < 500:
        cls = BrazeBadRequestError
    else:
        location = response.headers.get("Location")
        if location:
            text += (
                f" It redirects to {redact(location)}; set the connection's host to the final REST endpoint."
            )
        cls = BrazeAPIError
    return cls(finish(text, sent_before), **kwargs)


def finish(text: str, sent_before: bool) -> str:
    if sent_before:
        text += (
            " Note: an earlier attempt of this call was sent but got no answer, so it may "
            "already have taken effect."
        )
    return text


def with_retry_note(
    error: BrazeAPIError, retry_budget: float, waited: float, next_delay: float, retries_left: bool
) -> BrazeAPIError:
    """Say why the call was not retried, keeping the error's class and attributes."""
    if error.attempts > 1:
        note = f" Gave up after {error.attempts} attempts."
    elif not retries_left:
        note = " Not retried (no retries are configured for this call)."
    else:
        note = ""
    if retries_left:
        note += (
            f" The next retry would wait {duration(next_delay)}, beyond the retry budget of "
            f"{duration(retry_budget)} ({duration(waited)} already spent); "
            "it was not attempted."
        )
    error.args = (str(error) + note,)
    return error


def describe_body(response: Response, redact: Callable[[str], str]) -> str:
    text = response.text or ""
    if not text.strip():
        return "an empty body"
    content_type = redact(response.headers.get("Content-Type", "no content type"))
    # Redact before cutting: a key cut in two by the excerpt would no longer be recognised.
    return f"a non-JSON body ({excerpt(content_type)}): {excerpt(redact(text))!r}"


def json_or_none(response: Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # JSONDecodeError, decoding errors, absurdly deep nesting
        return None


def excerpt(text: str) -> str:
    return clip(" ".join(text.split()), _BODY_EXCERPT_CHARS)


def reason_phrase(status: int, sent: str | None) -> str:
    """`` Too Many Requests``: HTTP/2 answers carry no reason phrase, so use the standard one."""
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return f" {sent}" if sent else ""


def duration(seconds: float) -> str:
    if seconds < 600:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def root_causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests wraps urllib3 wraps socket errors)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
    return seen


def may_have_been_sent(exc: Exception) -> bool:
    """False only when the failure provably happened before the request left this machine."""
    if _is_httpx(exc):
        import httpx

        return not isinstance(
            exc,
            (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.PoolTimeout,
                httpx.ProxyError,
                httpx.UnsupportedProtocol,
                httpx.LocalProtocolError,
            ),
        )
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        causes = root_causes(exc)
        return not any(
            isinstance(c, (NewConnectionError, NameResolutionError, ConnectTimeoutError)) for c in causes
        )
    # Invalid URL, too many redirects and similar are raised before sending.
    return not isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
        ),
    )


def is_retryable_transport(exc: Exception) -> bool:
    """TLS verification and malformed-request failures will fail the same way again."""
    if _is_httpx(exc):
        import ssl

        import httpx

        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
            return False
        return not (
            isinstance(exc, httpx.ConnectError) and any(isinstance(c, ssl.SSLError) for c in root_causes(exc))
        )
    import requests

    return not isinstance(
        exc,
        (
            requests.exceptions.SSLError,
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
        ),
    )


def describe_transport_failure(exc: Exception, base_url: str = "") -> str:
    """One plain sentence for what went wrong on the way to Braze, in the same words whichever
    HTTP library (requests or httpx) failed."""
    from airflow_provider_braze.hooks.connection import host_of

    host = host_of(base_url) if base_url else "the endpoint"
    kind = _httpx_failure_kind(exc) if _is_httpx(exc) else _requests_failure_kind(exc)
    if kind == "read_timeout":
        return "no answer within the read timeout"
    if kind == "connect_timeout":
        return f"could not connect to {host} within the connect timeout"
    if kind == "tls":
        text = " ".join(dict.fromkeys(str(c) for c in root_causes(exc)))
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
            return (
                f"{host} does not speak HTTPS (the TLS handshake got a plain answer): check the "
                "port; a local server without TLS, such as the Braze sandbox, needs an http:// host"
            )
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return (
                f"the certificate of {host} could not be verified: check the host, or give the "
                "issuing CA in the connection's ca_bundle extra"
            )
        return (
            f"the TLS handshake with {host} failed ({excerpt(str(exc))}); check the endpoint and its "
            "certificate"
        )
    if kind == "proxy":
        return f"the proxy refused or failed the connection to {host}; check the proxy settings"
    if kind == "dns":
        return (
            f"could not resolve {host}: check the connection's host, and this machine's DNS and "
            "network access"
        )
    if kind == "refused":
        return f"{host} refused the connection: check the host and port, and that nothing blocks it"
    if kind == "reset":
        return f"{host} closed the connection while answering"
    if kind == "closed":
        return f"{host} closed the connection without answering"
    if kind == "network":
        return f"could not reach {host} (a network error: check the host and this machine's network)"
    return f"{type(exc).__name__} ({excerpt(str(exc))})"


def _is_httpx(exc: BaseException) -> bool:
    """Whether httpx raised it (checked by name: httpx is imported only by the async hook)."""
    return type(exc).__module__.split(".")[0] == "httpx"


def _common_kind(causes: list[BaseException]) -> str | None:
    import socket

    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in causes):
        return "dns"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "refused"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "reset"
    return None


def _requests_failure_kind(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy"
    causes = root_causes(exc)
    kind = _common_kind(causes)
    if kind is not None:
        return kind
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(type(c).__name__ in ("RemoteDisconnected", "ProtocolError") for c in causes):
            return "closed"
        return "network"
    return "other"


def _httpx_failure_kind(exc: Exception) -> str:
    import ssl

    import httpx

    if isinstance(exc, httpx.ReadTimeout):
        return "read_timeout"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.ProxyError):
        return "proxy"
    causes = root_causes(exc)
    if isinstance(exc, httpx.ConnectError) and any(isinstance(c, ssl.SSLError) for c in causes):
        return "tls"
    kind = _common_kind(causes)
    if kind is not None:
        return kind
    if isinstance(exc, httpx.RemoteProtocolError):
        return "closed"
    if isinstance(exc, httpx.ReadError):
        return "reset"
    if isinstance(exc, (httpx.ConnectError, httpx.WriteError, httpx.NetworkError)):
        return "network"
    return "other"
