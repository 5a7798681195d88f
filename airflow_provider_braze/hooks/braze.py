"""BrazeHook: the one place that talks HTTP to the Braze REST API.

DAG files import operator modules, which import this module, so ``requests`` is imported only
when the first request is made.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_braze import DISTRIBUTION_NAME, __version__
from airflow_provider_braze._masking import register_secret
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAmbiguousResponseError,
    BrazeAPIError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeConfigurationError,
    BrazeError,
    BrazeNotFoundError,
    BrazeRateLimitError,
    BrazeServerError,
    BrazeTransportError,
    BrazeUnexpectedResponseError,
    BrazeValidationError,
)

# Re-exported: these lived here before rate_limit.py, and users import them from here.
from airflow_provider_braze.messaging import validate_messages
from airflow_provider_braze.rate_limit import RateLimitPacer, RateLimitStatus, ServerClock
from airflow_provider_braze.validation import (
    check_broadcast,
    check_recipient_count,
    normalize_schedule,
    to_utc_iso,
    validate_campaign_id,
    validate_external_user_ids,
    validate_required_send_id,
    validate_send_id,
    validate_series_length,
    validate_trigger_recipient,
    validate_user_alias,
)

if TYPE_CHECKING:
    from datetime import datetime

    import requests

__all__ = [
    "BRAZE_INSTANCES",
    "BrazeConnectionSettings",
    "BrazeEndpoint",
    "BrazeHook",
    "RateLimitPacer",
    "RateLimitStatus",
    "resolve_base_url",
]

#: Braze instance codes and their REST endpoints (braze-docs ``_includes/data_centers.md``).
BRAZE_INSTANCES: dict[str, str] = {
    **{f"US-0{n}": f"https://rest.iad-0{n}.braze.com" for n in range(1, 9)},
    "US-10": "https://rest.us-10.braze.com",
    "EU-01": "https://rest.fra-01.braze.eu",
    "EU-02": "https://rest.fra-02.braze.eu",
    "AU-01": "https://rest.au-01.braze.com",
    "ID-01": "https://rest.id-01.braze.com",
    "JP-01": "https://rest.jp-01.braze.com",
    "KR-01": "https://rest.kr-01.braze.com",
}

_INSTANCE_CODE = re.compile(r"^[A-Za-z]{2,3}-\d{1,3}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_BODY_EXCERPT_CHARS = 200
#: A clock difference with Braze worth a warning (smaller ones are within the Date header's precision).
_SKEW_WORTH_REPORTING = 5.0

# Module-level so tests can replace them without touching the global time module.
_sleep = time.sleep
_monotonic = time.monotonic
_wall_clock = time.time


@dataclass(frozen=True)
class BrazeEndpoint:
    """A Braze REST endpoint and the facts the request path needs about it."""

    method: str
    path: str
    #: The API key permission Braze requires, named in 401/403 errors.
    permission: str
    #: A note on the endpoint's own rate limit, added to 429 errors.
    rate_limit_note: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


CREATE_SEND_ID = BrazeEndpoint(
    "POST",
    "/sends/id/create",
    "sends.id.create",
    rate_limit_note="Braze allows 100 custom send IDs per workspace per day",
)
LIST_CAMPAIGNS = BrazeEndpoint("GET", "/campaigns/list", "campaigns.list")
SEND_MESSAGES = BrazeEndpoint("POST", "/messages/send", "messages.send")
TRIGGER_CAMPAIGN_SEND = BrazeEndpoint("POST", "/campaigns/trigger/send", "campaigns.trigger.send")
SCHEDULE_MESSAGES = BrazeEndpoint("POST", "/messages/schedule/create", "messages.schedule.create")
SCHEDULE_CAMPAIGN_TRIGGER = BrazeEndpoint(
    "POST", "/campaigns/trigger/schedule/create", "campaigns.trigger.schedule.create"
)
SEND_DATA_SERIES = BrazeEndpoint("GET", "/sends/data_series", "sends.data_series")


@dataclass(frozen=True)
class BrazeConnectionSettings:
    """Everything the hook reads from its Airflow connection, checked and with defaults applied."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_retries: int = 5
    retry_budget: float = 120.0
    #: A CA bundle (PEM file) to trust for the endpoint's TLS certificate, besides the system's.
    ca_bundle: str | None = None


#: Extras that are not numbers.
_TEXT_OPTIONS = ("ca_bundle",)

_OPTION_DEFAULTS: dict[str, float] = {
    "connect_timeout": BrazeConnectionSettings.connect_timeout,
    "read_timeout": BrazeConnectionSettings.read_timeout,
    "max_retries": BrazeConnectionSettings.max_retries,
    "retry_budget": BrazeConnectionSettings.retry_budget,
}


def resolve_base_url(
    host: str | None, *, conn_id: str, port: int | None = None, schema: str | None = None
) -> str:
    """Turn a connection's host (a URL or an instance code like ``US-03``) into a base URL.

    A host without a scheme gets https (or the connection's schema, when that is http/https).
    Plain http is accepted only for loopback hosts, so the API key never crosses a network in
    clear text.
    """
    raw = (host or "").strip()
    if not raw:
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r} has no host: set it to your REST endpoint "
            "(e.g. https://rest.iad-01.braze.com) or an instance code such as US-01."
        )
    if _INSTANCE_CODE.match(raw):
        try:
            return BRAZE_INSTANCES[raw.upper()]
        except KeyError:
            raise BrazeConfigurationError(
                f"Braze connection {conn_id!r}: unknown instance code {raw!r}. Known codes: "
                f"{', '.join(BRAZE_INSTANCES)}. For another instance, set the host to its REST "
                "endpoint URL."
            ) from None

    if "://" not in raw:
        default_scheme = (schema or "").strip().lower() or "https"
        if default_scheme not in ("http", "https"):
            raise BrazeConfigurationError(
                f"Braze connection {conn_id!r}: schema {schema!r} is not a URL scheme; leave it "
                "empty or use https."
            )
        raw = f"{default_scheme}://{raw}"
    malformed = (
        f"Braze connection {conn_id!r}: host {host!r} is not a valid REST endpoint URL "
        "(expected e.g. https://rest.iad-01.braze.com or an instance code such as US-01)"
    )
    try:
        parts = urlsplit(raw)
        url_port = parts.port
    except ValueError:
        raise BrazeConfigurationError(f"{malformed}.") from None
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    if scheme not in ("http", "https"):
        raise BrazeConfigurationError(f"{malformed}: the scheme must be https.")
    if parts.username is not None or parts.password is not None:
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: the host must not contain credentials; put the REST "
            "API key in the connection's password field."
        )
    if parts.query or parts.fragment or any(ch.isspace() for ch in raw):
        raise BrazeConfigurationError(f"{malformed}: it must not contain a query, fragment or spaces.")
    is_ip = _is_ip(hostname)
    if not hostname or not (is_ip or _HOSTNAME.match(hostname)):
        raise BrazeConfigurationError(f"{malformed}.")
    if re.match(r"^(dashboard|sdk)[.-]", hostname) and hostname.endswith((".braze.com", ".braze.eu")):
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: {hostname} is a dashboard or SDK address, not a REST "
            "endpoint. Use the REST endpoint shown under Settings > APIs and Identifiers, e.g. "
            "https://rest.iad-01.braze.com, or an instance code such as US-01."
        )
    if scheme == "http" and not _is_loopback(hostname):
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: refusing plain http to {hostname}; the API key would "
            "travel unencrypted. Use https (plain http is allowed only for loopback hosts such as "
            "the local Braze sandbox)."
        )
    if url_port is not None and port is not None and url_port != port:
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: the host says port {url_port} but the port field says "
            f"{port}; set only one."
        )
    final_port = url_port if url_port is not None else port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if final_port is not None:
        netloc = f"{netloc}:{final_port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _check_ca_bundle(value: Any, conn_id: str) -> str | None:
    if value is None or value == "":
        return None
    import os

    if not isinstance(value, str) or not os.path.isfile(value):
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: ca_bundle {value!r} is not a readable file; it must be the "
            "path of a PEM file with the certificate authority to trust."
        )
    return value


def _check_api_key(password: str | None, conn_id: str) -> str:
    key = (password or "").strip()
    if not key:
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r} has no REST API key: put the key in the connection's "
            "password field."
        )
    if key[0] in "\"'" and key[-1] in "\"'":
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: the REST API key is wrapped in quotes; store it without them."
        )
    # A header value with whitespace or control characters would make requests raise an error
    # whose text contains the header, i.e. the key.
    if not key.isascii() or not key.isprintable() or any(ch.isspace() for ch in key):
        raise BrazeConfigurationError(
            f"Braze connection {conn_id!r}: the REST API key contains spaces, control or non-ASCII "
            "characters; copy it again from Braze."
        )
    return key


class BrazeHook(BaseHook):
    """Talk to the Braze REST API through an Airflow connection.

    The connection's host is the REST endpoint URL (``https://rest.iad-01.braze.com``) or an
    instance code (``US-01``); its password is the REST API key. Optional extras:
    ``connect_timeout`` and ``read_timeout`` (seconds), ``max_retries`` and ``retry_budget``
    (seconds); arguments given here override them.

    Every call goes through one request path that sets the auth header and timeouts, retries
    what is safe to retry (connection failures before sending, 429, 5xx) with exponential
    backoff and jitter within a time budget, waits for ``X-RateLimit-Reset`` when that is within
    the budget, and turns Braze's answers into values or typed :mod:`~airflow_provider_braze.exceptions`.

    .. seealso::
        https://www.braze.com/docs/api/basics/

    :param braze_conn_id: The Airflow connection to use.
    :param connect_timeout: Optional. Seconds allowed to connect; overrides the connection.
    :param read_timeout: Optional. Seconds allowed for Braze to answer; overrides the connection.
    :param max_retries: Optional. Retries per call; overrides the connection.
    :param retry_budget: Optional. Longest total wait between retries of one call, in seconds.
    """

    conn_name_attr = "braze_conn_id"
    default_conn_name = "braze_default"
    conn_type = "braze"
    hook_name = "Braze"

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
        #: Rate-limit headers of the most recent answer that carried them.
        self.last_rate_limit: RateLimitStatus | None = None
        #: Braze's clock as learnt from the ``Date`` of its answers; rate-limit resets are on it.
        # Lambdas: the module's clock and sleep are looked up at call time, so tests can replace them.
        self.server_clock = ServerClock(lambda: _wall_clock())  # noqa: PLW0108
        self.pacer = RateLimitPacer(
            clock=lambda: _wall_clock(),  # noqa: PLW0108
            sleep=lambda s: _sleep(s),  # noqa: PLW0108
            server_clock=self.server_clock,
        )
        self._skew_reported = False

    # ----------------------------------------------------------------------------- settings

    @cached_property
    def settings(self) -> BrazeConnectionSettings:
        """The connection's settings, read and checked once per hook."""
        conn = self.get_connection(self.braze_conn_id)
        conn_id = self.braze_conn_id
        api_key = _check_api_key(conn.password, conn_id)
        # Mask it ourselves: dag.test() and `airflow dags test` do not mask connection passwords.
        register_secret(api_key)
        base_url = resolve_base_url(conn.host, conn_id=conn_id, port=conn.port, schema=conn.schema)
        extras = conn.extra_dejson or {}
        known = (*_OPTION_DEFAULTS, *_TEXT_OPTIONS)
        unknown = sorted(set(extras) - set(known))
        if unknown:
            self.log.warning(
                "Braze connection %r has extra fields this hook does not use: %s (known: %s).",
                conn_id,
                ", ".join(unknown),
                ", ".join(known),
            )
        options = {
            name: self._option(name, extras.get(name), default) for name, default in _OPTION_DEFAULTS.items()
        }
        return BrazeConnectionSettings(
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            connect_timeout=options["connect_timeout"],
            read_timeout=options["read_timeout"],
            max_retries=int(options["max_retries"]),
            retry_budget=options["retry_budget"],
            ca_bundle=_check_ca_bundle(extras.get("ca_bundle"), conn_id),
        )

    def _option(self, name: str, extra_value: Any, default: float) -> float:
        """Hook argument, else connection extra, else default; checked to be a sane number."""
        override = self._overrides[name]
        source = "argument" if override is not None else "connection extra"
        value: Any = override if override is not None else extra_value
        if value is None or value == "":
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise BrazeConfigurationError(
                f"Braze connection {self.braze_conn_id!r}: {source} {name}={value!r} is not a number."
            ) from None
        minimum_ok = number >= 0 if name in ("max_retries", "retry_budget") else number > 0
        if not minimum_ok or not math.isfinite(number):
            raise BrazeConfigurationError(
                f"Braze connection {self.braze_conn_id!r}: {source} {name}={value!r} is out of range."
            )
        if name == "max_retries" and not number.is_integer():
            raise BrazeConfigurationError(
                f"Braze connection {self.braze_conn_id!r}: {source} max_retries={value!r} "
                "must be a whole number."
            )
        return number

    @cached_property
    def session(self) -> requests.Session:
        """One HTTP session per hook, so connections are kept alive across calls."""
        import requests
        from airflow import __version__ as airflow_version
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        # An auth object (not a plain header) also stops requests from applying ~/.netrc.
        session.auth = _BearerAuth(self.settings.api_key)
        session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": (
                    f"{DISTRIBUTION_NAME}/{__version__} apache-airflow/{airflow_version} "
                    f"python-requests/{requests.__version__}"
                ),
            }
        )
        # Retries are ours (see _request); urllib3 must not retry behind our back.
        # Room for the send operators' largest concurrency (32) to reuse connections.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=32, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        session = self.__dict__.pop("session", None)
        if session is not None:
            session.close()

    def get_conn(self) -> requests.Session:
        """Return the hook's HTTP session (Airflow's generic hook interface)."""
        return self.session

    # ----------------------------------------------------------------------------- API verbs

    def create_send_id(self, campaign_id: str, send_id: str | None = None) -> str:
        """Create a send identifier for a campaign (``POST /sends/id/create``).

        Needs the API key permission ``sends.id.create``. Braze allows 100 custom send IDs per
        workspace per day; :attr:`last_rate_limit` tells how many are left after the call.

        A call whose answer was lost (read timeout, dropped connection, 504, an unreadable
        success) is not repeated: Braze may have created the ID, and what it does when asked to
        create an existing one is not documented (it may count toward the quota again, or be
        refused). It raises :class:`~airflow_provider_braze.exceptions.BrazeAmbiguousRequestError`;
        ``CreateSendIdOperator`` remembers what it asked for and resolves this on its retry.

        :param campaign_id: The API identifier of the campaign.
        :param send_id: Optional. The send ID to create (ASCII, at most 64 characters); Braze
            generates one when omitted.
        :return: The send ID Braze answered with.
        """
        campaign_id = validate_campaign_id(campaign_id)
        send_id = validate_send_id(send_id)
        body: dict[str, Any] = {"campaign_id": campaign_id}
        if send_id is not None:
            body["send_id"] = send_id
        try:
            data = self._request(CREATE_SEND_ID, json=body, idempotent=False)
        except BrazeAmbiguousRequestError as err:
            what = f"send ID {send_id!r}" if send_id is not None else "a send ID"
            err.args = (
                f"{err} Braze may have created {what} for campaign {campaign_id!r}, so the call was "
                "not repeated.",
            )
            raise
        created = data.get("send_id")
        if not isinstance(created, str) or not created:
            raise BrazeUnexpectedResponseError(
                f"Braze answered {CREATE_SEND_ID} with success but without a send_id: {_excerpt(str(data))}",
                status_code=200,
                message=str(data.get("message")),
                endpoint=str(CREATE_SEND_ID),
            )
        if send_id is not None and created != send_id:
            self.log.warning(
                "Asked Braze for send ID %r but it answered %r; using %r.", send_id, created, created
            )
        return created

    def send_messages(
        self,
        campaign_id: str | None = None,
        *,
        send_id: str | None = None,
        external_user_ids: list[str] | None = None,
        user_aliases: list[dict[str, str]] | None = None,
        segment_id: str | None = None,
        audience: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        messages: dict[str, Any] | None = None,
        recipient_subscription_state: str | None = None,
        override_frequency_capping: bool | None = None,
    ) -> dict[str, Any]:
        """Send messages now (``POST /messages/send``; permission ``messages.send``).

        At most 50 external user IDs and aliases together; the send operators batch larger
        lists. Not retried after an unknown outcome (read timeout, dropped connection, 504):
        that raises :class:`~airflow_provider_braze.exceptions.BrazeAmbiguousRequestError`.

        :param campaign_id: Optional. The API campaign, needed for dashboard statistics.
        :param send_id: Optional. A send ID created for this campaign, to track this send.
        :param external_user_ids: Optional. Users to send to.
        :param user_aliases: Optional. Users to send to, as ``{"alias_name", "alias_label"}``.
        :param segment_id: Optional. Send to this segment (with ``broadcast=True``).
        :param audience: Optional. A connected audience object.
        :param broadcast: True to send to a segment or audience without listing users.
        :param messages: The messaging objects, keyed by channel (``email``, ``apple_push``...).
        :param recipient_subscription_state: Optional. ``opted_in``, ``subscribed`` or ``all``.
        :param override_frequency_capping: Optional. Ignore frequency capping.
        :return: Braze's answer: ``dispatch_id``, ``send_id`` when echoed, ``errors`` (non-fatal).
        """
        body = self._message_body(
            campaign_id=campaign_id,
            send_id=send_id,
            external_user_ids=external_user_ids,
            user_aliases=user_aliases,
            segment_id=segment_id,
            audience=audience,
            broadcast=broadcast,
            messages=messages,
            recipient_subscription_state=recipient_subscription_state,
        )
        body["override_frequency_capping"] = override_frequency_capping
        return self._send(SEND_MESSAGES, body)

    def trigger_campaign_send(
        self,
        campaign_id: str,
        *,
        send_id: str | None = None,
        recipients: list[dict[str, Any]] | None = None,
        trigger_properties: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        audience: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Trigger an API-triggered campaign now (``POST /campaigns/trigger/send``;
        permission ``campaigns.trigger.send``).

        :param campaign_id: The API-triggered campaign.
        :param send_id: Optional. A send ID created for this campaign.
        :param recipients: Optional. Up to 50 recipient objects, each with exactly one of
            ``external_user_id``, ``user_alias`` or ``email`` (+ ``prioritization``), and
            optionally their own ``trigger_properties`` (which override the top-level ones).
        :param trigger_properties: Optional. Personalization for every recipient.
        :param broadcast: True to send to the campaign's segment (or ``audience``) without
            listing recipients.
        :param audience: Optional. A connected audience object.
        :param attachments: Optional. Email attachments: ``[{"file_name", "url"}]``.
        :return: Braze's answer: ``dispatch_id``, ``send_id`` when echoed, ``errors`` (non-fatal).
        """
        body = self._trigger_body(
            campaign_id=campaign_id,
            send_id=send_id,
            recipients=recipients,
            trigger_properties=trigger_properties,
            broadcast=broadcast,
            audience=audience,
        )
        body["attachments"] = attachments
        return self._send(TRIGGER_CAMPAIGN_SEND, body)

    def schedule_messages(
        self,
        campaign_id: str | None = None,
        *,
        schedule: dict[str, Any] | datetime | str,
        send_id: str | None = None,
        external_user_ids: list[str] | None = None,
        user_aliases: list[dict[str, str]] | None = None,
        segment_id: str | None = None,
        audience: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        messages: dict[str, Any] | None = None,
        recipient_subscription_state: str | None = None,
        override_messaging_limits: bool | None = None,
    ) -> dict[str, Any]:
        """Schedule messages (``POST /messages/schedule/create``; permission
        ``messages.schedule.create``).

        Takes the arguments of :meth:`send_messages` (the frequency flag is called
        ``override_messaging_limits`` here, as in Braze's API) plus ``schedule``.

        :param schedule: ``{"time": ..., "in_local_time": bool, "at_optimal_time": bool}``, or
            just the time: a timezone-aware datetime or an ISO-8601 string (UTC when it has no
            offset), sent in UTC. With ``in_local_time`` or ``at_optimal_time`` the time is each
            user's wall clock: a naive datetime or a string without zone, sent as given.
        :return: Braze's answer, with ``schedule_id`` and ``dispatch_id``.
        """
        body = self._message_body(
            campaign_id=campaign_id,
            send_id=send_id,
            external_user_ids=external_user_ids,
            user_aliases=user_aliases,
            segment_id=segment_id,
            audience=audience,
            broadcast=broadcast,
            messages=messages,
            recipient_subscription_state=recipient_subscription_state,
        )
        body["override_messaging_limits"] = override_messaging_limits
        body["schedule"] = normalize_schedule(schedule)
        return self._send(SCHEDULE_MESSAGES, body)

    def schedule_campaign_trigger(
        self,
        campaign_id: str,
        *,
        schedule: dict[str, Any] | datetime | str,
        send_id: str | None = None,
        recipients: list[dict[str, Any]] | None = None,
        trigger_properties: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        audience: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Schedule an API-triggered campaign (``POST /campaigns/trigger/schedule/create``;
        permission ``campaigns.trigger.schedule.create``).

        Takes the arguments of :meth:`trigger_campaign_send` plus ``schedule`` (see
        :meth:`schedule_messages`).

        :return: Braze's answer, with ``schedule_id`` and ``dispatch_id``.
        """
        body = self._trigger_body(
            campaign_id=campaign_id,
            send_id=send_id,
            recipients=recipients,
            trigger_properties=trigger_properties,
            broadcast=broadcast,
            audience=audience,
        )
        body["schedule"] = normalize_schedule(schedule)
        return self._send(SCHEDULE_CAMPAIGN_TRIGGER, body)

    @staticmethod
    def _message_body(
        *,
        campaign_id: str | None,
        send_id: str | None,
        external_user_ids: list[str] | None,
        user_aliases: list[dict[str, str]] | None,
        segment_id: str | None,
        audience: dict[str, Any] | None,
        broadcast: bool | None,
        messages: dict[str, Any] | None,
        recipient_subscription_state: str | None,
    ) -> dict[str, Any]:
        """The checked body shared by /messages/send and /messages/schedule/create."""
        if campaign_id is not None:
            validate_campaign_id(campaign_id)
        send_id = validate_send_id(send_id)
        if send_id is not None and campaign_id is None:
            raise BrazeValidationError("send_id needs the campaign_id it was created for.")
        ids = validate_external_user_ids(external_user_ids) if external_user_ids is not None else []
        aliases = [validate_user_alias(a, f"user_aliases[{i}]") for i, a in enumerate(user_aliases or [])]
        check_recipient_count(len(ids) + len(aliases), "external user IDs and aliases")
        check_broadcast(broadcast, bool(ids or aliases))
        if broadcast and segment_id is None and audience is None and campaign_id is None:
            raise BrazeValidationError("A broadcast needs a segment_id, an audience or a campaign_id.")
        messages = validate_messages(messages, campaign_id=campaign_id)
        if recipient_subscription_state not in (None, "opted_in", "subscribed", "all"):
            raise BrazeValidationError(
                "recipient_subscription_state must be 'opted_in', 'subscribed' or 'all', "
                f"got {recipient_subscription_state!r}."
            )
        return {
            "campaign_id": campaign_id,
            "send_id": send_id,
            "external_user_ids": ids or None,
            "user_aliases": aliases or None,
            "segment_id": segment_id,
            "audience": audience,
            "broadcast": broadcast,
            "messages": messages,
            "recipient_subscription_state": recipient_subscription_state,
        }

    @staticmethod
    def _trigger_body(
        *,
        campaign_id: str,
        send_id: str | None,
        recipients: list[dict[str, Any]] | None,
        trigger_properties: dict[str, Any] | None,
        broadcast: bool | None,
        audience: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The checked body shared by the two /campaigns/trigger endpoints."""
        validate_campaign_id(campaign_id)
        send_id = validate_send_id(send_id)
        checked = [validate_trigger_recipient(r, f"recipients[{i}]") for i, r in enumerate(recipients or [])]
        check_recipient_count(len(checked), "recipients")
        check_broadcast(broadcast, bool(checked))
        if trigger_properties is not None and not isinstance(trigger_properties, dict):
            raise BrazeValidationError("trigger_properties must be an object (a dict).")
        return {
            "campaign_id": campaign_id,
            "send_id": send_id,
            "recipients": checked or None,
            "trigger_properties": trigger_properties,
            "broadcast": broadcast,
            "audience": audience,
        }

    def _send(self, endpoint: BrazeEndpoint, body: dict[str, Any]) -> dict[str, Any]:
        """POST a send: never repeated after an unknown outcome; non-fatal errors kept."""
        answer = self._request(endpoint, json=_without_nones(body), idempotent=False)
        errors = answer.get("errors")
        answer["errors"] = errors if isinstance(errors, list) else ([errors] if errors else [])
        return answer

    def get_send_data_series(
        self,
        campaign_id: str,
        send_id: str,
        length: int,
        ending_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """A send's daily analytics (``GET /sends/data_series``; permission ``sends.data_series``).

        Braze keeps send analytics for 14 days after the send, for API campaigns only.

        :param campaign_id: The campaign the send ID belongs to.
        :param send_id: The send ID.
        :param length: How many days before ``ending_at`` to include, 1 to 100.
        :param ending_at: Optional. The end of the series: a timezone-aware datetime or an
            ISO-8601 string (UTC when it has no offset); Braze's default is now.
        :return: Braze's answer: ``{"message": "success", "data": [{"time": ..., "messages":
            {channel: [variation stats...]}, ...day totals}]}``. See
            :func:`airflow_provider_braze.analytics.send_analytics_rows` for tidy rows.
        """
        params: dict[str, Any] = {
            "campaign_id": validate_campaign_id(campaign_id),
            "send_id": validate_required_send_id(send_id),
            "length": validate_series_length(length),
        }
        if ending_at is not None:
            params["ending_at"] = to_utc_iso(ending_at, what="ending_at")
        return self._request(SEND_DATA_SERIES, params=params, idempotent=True)

    def test_connection(self) -> tuple[bool, str]:
        """Check the endpoint and key with a harmless read (``GET /campaigns/list``, page 0).

        Needs the API key permission ``campaigns.list``. Returns ``(ok, explanation)``.
        """
        try:
            self._request(LIST_CAMPAIGNS, params={"page": 0}, idempotent=True, retry=False)
        except BrazeError as err:
            return False, str(err)
        except Exception as err:  # the Airflow UI shows this text; never let it crash the form
            return False, f"{type(err).__name__}: {err}"
        return True, f"Connected to Braze at {self.settings.base_url}; the REST API key was accepted."

    # ----------------------------------------------------------------------------- request path

    def _request(
        self,
        endpoint: BrazeEndpoint,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotent: bool,
        retry: bool = True,
    ) -> dict[str, Any]:
        """Send one API call, with the retry policy, and return Braze's JSON body.

        :param idempotent: Whether repeating the call after an unknown outcome (read timeout,
            connection dropped after sending) is harmless. When False such an outcome raises
            BrazeAmbiguousRequestError at once.
        :param retry: False to make a single attempt (used by test_connection).
        """
        import requests

        settings = self.settings
        session = self.session
        url = f"{settings.base_url}{endpoint.path}"
        max_retries = settings.max_retries if retry else 0
        waited = 0.0
        attempt = 0
        sent_before = False  # an earlier attempt may have taken effect

        while True:
            attempt += 1
            retries_left = attempt <= max_retries
            paced = self.pacer.acquire(endpoint.path, settings.retry_budget - waited)
            if paced:
                # Pacing spreads requests out by fractions of a second: only a real wait is news.
                log = self.log.info if paced >= 1 else self.log.debug
                log("Waited %.1f s for the Braze rate limit of %s to reset.", paced, endpoint)
                waited += paced
            try:
                response = session.request(
                    endpoint.method,
                    url,
                    json=json,
                    params=params,
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    allow_redirects=False,
                    # Certificates are always verified; a private CA can be trusted, never "no check".
                    # Given per request: requests lets REQUESTS_CA_BUNDLE override the session's.
                    verify=settings.ca_bundle or True,
                )
            except BaseException as exc:
                self.pacer.release(endpoint.path, None, answered=False)
                if not isinstance(exc, requests.RequestException):
                    raise
                error = self._transport_error(endpoint, exc, attempt)
                if isinstance(error, BrazeAmbiguousRequestError) and not idempotent:
                    raise error from exc
                delay = self._backoff(attempt)
                if retries_left and waited + delay <= settings.retry_budget and _is_retryable_transport(exc):
                    sent_before = sent_before or isinstance(error, BrazeAmbiguousRequestError)
                    self.log.warning("%s Retrying in %.1f s (attempt %d).", error, delay, attempt + 1)
                    _sleep(delay)
                    waited += delay
                    continue
                if attempt > 1:
                    error.args = (f"{error} Gave up after {attempt} attempts.",)
                raise error from exc
            self._observe_clock(response)
            answered_at = _http_date(response.headers.get("Date"))
            rate = RateLimitStatus.from_headers(
                response.headers, answered_at if answered_at is not None else self.server_clock.now()
            )
            self.pacer.release(endpoint.path, rate, answered_at)
            if rate is not None:
                self.last_rate_limit = rate
            if 200 <= response.status_code < 300:
                return self._success_body(endpoint, response, idempotent=idempotent)

            api_error = self._api_error(endpoint, response, rate, attempt, sent_before)
            status = response.status_code
            if status == 504 and not idempotent:
                # A gateway timed out waiting for Braze, which may still have processed the call.
                raise BrazeAmbiguousRequestError(
                    f"{api_error} A gateway timeout leaves the outcome unknown, so the call was not "
                    "repeated.",
                    endpoint=str(endpoint),
                    attempts=attempt,
                )
            if status == 429:
                reset_in = self._seconds_until_reset(rate, response)
                # Wait for the reset plus a little jitter so parallel callers do not stampede. A
                # reset that looks past (a clock that cannot be trusted) gets a plain backoff.
                delay = reset_in + random.uniform(0.0, 1.0) if reset_in else self._backoff(attempt)
            elif status >= 500:
                delay = self._backoff(attempt)
            else:
                raise api_error
            if retries_left and waited + delay <= settings.retry_budget:
                self.log.warning("%s Retrying in %.1f s (attempt %d).", api_error, delay, attempt + 1)
                _sleep(delay)
                waited += delay
                continue
            raise self._with_retry_note(api_error, settings, waited, delay, retries_left)

    @staticmethod
    def _backoff(attempt: int) -> float:
        """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... s, at most 30 s."""
        base: float = min(30.0, 0.5 * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)

    def _transport_error(self, endpoint: BrazeEndpoint, exc: Exception, attempt: int) -> BrazeTransportError:
        reason = _describe_transport_failure(exc)
        if _may_have_been_sent(exc):
            return BrazeAmbiguousRequestError(
                f"{endpoint} to {self.settings.base_url}: {reason}; the request was sent, so Braze "
                "may or may not have processed it.",
                endpoint=str(endpoint),
                attempts=attempt,
            )
        return BrazeTransportError(
            f"{endpoint} to {self.settings.base_url} failed before the request was sent: {reason}.",
            endpoint=str(endpoint),
            attempts=attempt,
        )

    def _success_body(
        self, endpoint: BrazeEndpoint, response: requests.Response, *, idempotent: bool
    ) -> dict[str, Any]:
        body = _json_or_none(response)
        if not isinstance(body, dict):
            text = (
                f"Braze answered {endpoint} with {response.status_code} but "
                f"{self._describe_body(response)}, not a JSON object."
            )
            details: dict[str, Any] = {
                "status_code": response.status_code,
                "message": self._describe_body(response),
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
        redacted: dict[str, Any] = _redacted(body, self._redact)
        errors = redacted.get("errors")
        if errors:
            # Non-fatal: Braze processed the call; the listed parts were not applied.
            self.log.warning("Braze accepted %s with non-fatal errors: %s", endpoint, errors)
        return redacted

    def _seconds_until_reset(self, rate: RateLimitStatus | None, response: requests.Response) -> float | None:
        """How long until the rate limit resets: from the answer's own ``Date`` when it has one
        (both times are then on Braze's clock, whatever this worker's says), else from the
        learnt clock."""
        if rate is None or rate.reset_at is None:
            return None
        answered_at = _http_date(response.headers.get("Date"))
        if answered_at is not None:
            # Date has whole seconds: the reset is at most this far; a moment too long is safe.
            return max(0.0, rate.reset_at.timestamp() - answered_at)
        return rate.seconds_until_reset(self.server_clock.now())

    def _observe_clock(self, response: requests.Response) -> None:
        """Learn Braze's clock from the answer's ``Date``; say once when this worker's is far off."""
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

    def _api_error(
        self,
        endpoint: BrazeEndpoint,
        response: requests.Response,
        rate: RateLimitStatus | None,
        attempt: int,
        sent_before: bool,
    ) -> BrazeAPIError:
        status = response.status_code
        body = _json_or_none(response)
        if isinstance(body, dict):
            message = self._redact(str(body.get("message") or "no message"))
            raw_errors = _redacted(body.get("errors"), self._redact)
            errors = raw_errors if isinstance(raw_errors, list) else ([raw_errors] if raw_errors else [])
        else:
            message = self._describe_body(response)
            errors = []
        reason = _reason_phrase(status, response.reason)
        text = f"Braze answered {status}{reason} to {endpoint}: {message}"
        if not text.endswith((".", "!", "?")):
            text += "."
        if errors:
            text += f" Errors: {self._redact(str(errors))}."
        base_url = self.settings.base_url
        kwargs: dict[str, Any] = {
            "status_code": status,
            "message": message,
            "errors": errors,
            "endpoint": str(endpoint),
            "attempts": attempt,
        }
        cls: type[BrazeAPIError]
        if status in (401, 403):
            text += (
                f" The API key needs the '{endpoint.permission}' permission, and the REST endpoint "
                f"({base_url}) must be the instance of the key's workspace."
            )
            return BrazeAuthError(
                self._finish(text, sent_before), required_permission=endpoint.permission, **kwargs
            )
        if status == 429:
            if endpoint.rate_limit_note:
                text += f" {endpoint.rate_limit_note}."
            if rate is not None:
                text += f" Rate limit: {rate.describe()}."
            return BrazeRateLimitError(
                self._finish(text, sent_before),
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
                    f" It redirects to {self._redact(location)}; set the connection's host to the final "
                    "REST endpoint."
                )
            cls = BrazeAPIError
        return cls(self._finish(text, sent_before), **kwargs)

    @staticmethod
    def _finish(text: str, sent_before: bool) -> str:
        if sent_before:
            text += (
                " Note: an earlier attempt of this call was sent but got no answer, so it may "
                "already have taken effect."
            )
        return text

    def _with_retry_note(
        self,
        error: BrazeAPIError,
        settings: BrazeConnectionSettings,
        waited: float,
        next_delay: float,
        retries_left: bool,
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
                f" The next retry would wait {_duration(next_delay)}, beyond the retry budget of "
                f"{_duration(settings.retry_budget)} ({_duration(waited)} already spent); "
                "it was not attempted."
            )
        error.args = (str(error) + note,)
        return error

    def _describe_body(self, response: requests.Response) -> str:
        text = response.text or ""
        if not text.strip():
            return "an empty body"
        content_type = self._redact(response.headers.get("Content-Type", "no content type"))
        # Redact before cutting: a key cut in two by the excerpt would no longer be recognised.
        return f"a non-JSON body ({_excerpt(content_type)}): {_excerpt(self._redact(text))!r}"

    def _redact(self, text: str) -> str:
        """Remove the API key from text that goes into an error or a result (a proxy may echo
        headers): in any letter case, and percent-encoded too."""
        settings: BrazeConnectionSettings | None = self.__dict__.get("settings")
        if settings is None:
            return text
        pattern = self.__dict__.get("_key_pattern")
        if pattern is None:
            pattern = self.__dict__["_key_pattern"] = _secret_pattern(settings.api_key)
        return pattern.sub("***", text)

    def redact(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of it) without the API key, for anything kept or shown."""
        return _redacted(value, self._redact)


class _BearerAuth:
    """``Authorization: Bearer <key>`` that never shows the key in its repr."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


def _secret_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` in any letter case, each character also as its percent-encoding, and
    the part of its base64 encodings (standard or URL-safe, at any alignment, as in a ``Basic``
    or re-encoded ``Bearer`` header) that only the secret determines (base64 keeps its case)."""
    import base64

    plain = "".join(
        f"(?:{re.escape(char)}|{re.escape(''.join(f'%{byte:02X}' for byte in char.encode('utf-8')))})"
        for char in secret
    )
    alternatives = [f"(?i:{plain})"]
    raw = secret.encode("utf-8")
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        core = encoded[(4 * shift + 2) // 3 : len(encoded) - 4]  # drop what neighbours also shape
        if len(core) >= 12:
            alternatives += [re.escape(core), re.escape(core.replace("+", "-").replace("/", "_"))]
    return re.compile("|".join(alternatives))


def _redacted(value: Any, redact: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {_redacted(k, redact): _redacted(v, redact) for k, v in value.items()}
    return value


def _http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as epoch seconds, or None if it cannot be read."""
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _without_nones(body: dict[str, Any]) -> dict[str, Any]:
    """Braze reads a null as a value, so optional fields are left out instead."""
    return {key: value for key, value in body.items() if value is not None}


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # JSONDecodeError, decoding errors, absurdly deep nesting
        return None


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _BODY_EXCERPT_CHARS else flat[:_BODY_EXCERPT_CHARS] + "..."


def _reason_phrase(status: int, sent: str | None) -> str:
    """`` Too Many Requests``: HTTP/2 answers carry no reason phrase, so use the standard one."""
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return f" {sent}" if sent else ""


def _duration(seconds: float) -> str:
    if seconds < 600:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _root_causes(exc: BaseException) -> list[BaseException]:
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


def _may_have_been_sent(exc: Exception) -> bool:
    """False only when the failure provably happened before the request left this machine."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        causes = _root_causes(exc)
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


def _is_retryable_transport(exc: Exception) -> bool:
    """TLS verification and malformed-request failures will fail the same way again."""
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


def _describe_transport_failure(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "could not connect within the connect timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error ({_excerpt(str(exc))}); check the endpoint's certificate"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection error ({_excerpt(str(exc))})"
    return f"{type(exc).__name__} ({_excerpt(str(exc))})"
