"""BrazeHook: the one place that talks HTTP to the Braze REST API: its verbs and its one request
path. Where the connection points (:mod:`.connection`), the endpoints (:mod:`.endpoints`), how
answers become errors (:mod:`.errors`), keeping the key out of sight (:mod:`.redaction`) and
rate-limit pacing (:mod:`airflow_provider_braze.rate_limit`) each have their own module.

DAG files import operator modules, which import this module, so ``requests`` is imported only
when the first request is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_braze._masking import register_secret
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeError,
    BrazeTransportError,
    BrazeUnexpectedResponseError,
    BrazeValidationError,
)

# Re-exported: public names that lived here before the hook was split into modules.
from airflow_provider_braze.hooks.connection import (
    BRAZE_INSTANCES,
    BrazeConnectionSettings,
    connection_label,
    read_settings,
    resolve_base_url,
)
from airflow_provider_braze.hooks.endpoints import (
    CREATE_SEND_ID,
    GET_SEND_ANALYTICS,
    LIST_CAMPAIGNS,
    SCHEDULE_MESSAGES,
    SCHEDULE_TRIGGERED_CAMPAIGN,
    SEND_MESSAGES,
    SEND_TRIGGERED_CAMPAIGN,
    BrazeEndpoint,
)
from airflow_provider_braze.hooks.errors import (
    AMBIGUOUS_SUFFIX,
    api_error,
    excerpt,
    is_retryable_transport,
    transport_error,
)
from airflow_provider_braze.hooks.policy import (
    RetryBudget,
    backoff,
    request_headers,
    retry_delay,
    shown_cause,
    success_body,
)
from airflow_provider_braze.hooks.redaction import BearerAuth, redacted, secret_pattern
from airflow_provider_braze.messaging import validate_messages
from airflow_provider_braze.rate_limit import RateLimitPacer, RateLimitStatus, ServerClock, http_date
from airflow_provider_braze.validation import (
    check_attachments,
    check_body_size,
    check_broadcast,
    check_flag,
    check_recipient_count,
    normalize_schedule,
    to_utc_iso,
    validate_audience,
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

#: A clock difference with Braze worth a warning (smaller ones are within the Date header's precision).
_SKEW_WORTH_REPORTING = 5.0

# Module-level so tests can replace them without touching the global time module.
_sleep = time.sleep
_monotonic = time.monotonic
_wall_clock = time.time


#: Campaigns per page of ``GET /campaigns/list`` (Braze: "100 per page").
CAMPAIGNS_PER_PAGE = 100


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
        settings = read_settings(conn, self.braze_conn_id, self._overrides, self.log)
        # Mask it ourselves: dag.test() and `airflow dags test` do not mask connection passwords.
        register_secret(settings.api_key)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """One HTTP session per hook, so connections are kept alive across calls."""
        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        # Plain http goes only to loopback: never through a proxy from the environment, which
        # would see the key in clear (and could not reach this machine's loopback anyway).
        if self.settings.base_url.startswith("http://"):
            session.trust_env = False
        # An auth object (not a plain header) also stops requests from applying ~/.netrc.
        session.auth = BearerAuth(self.settings.api_key)
        session.headers.update(request_headers(f"python-requests/{requests.__version__}"))
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
                f"Braze answered {CREATE_SEND_ID} with success but without a send_id: {excerpt(str(data))}",
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
        lists. Not retried when in doubt (read timeout, dropped connection, 504):
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
        prepared = self.prepare_messages(
            campaign_id,
            send_id=send_id,
            segment_id=segment_id,
            audience=audience,
            broadcast=broadcast,
            messages=messages,
            recipient_subscription_state=recipient_subscription_state,
            override_frequency_capping=override_frequency_capping,
        )
        return self.send_prepared(prepared, _checked_users(external_user_ids, user_aliases))

    def send_triggered_campaign(
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
        prepared = self.prepare_triggered_campaign(
            campaign_id,
            send_id=send_id,
            trigger_properties=trigger_properties,
            broadcast=broadcast,
            audience=audience,
            attachments=attachments,
        )
        return self.send_prepared(prepared, _checked_trigger_recipients(recipients))

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
        _check_schedule_given(schedule)
        prepared = self.prepare_messages(
            campaign_id,
            schedule=schedule,
            send_id=send_id,
            segment_id=segment_id,
            audience=audience,
            broadcast=broadcast,
            messages=messages,
            recipient_subscription_state=recipient_subscription_state,
            override_messaging_limits=override_messaging_limits,
        )
        return self.send_prepared(prepared, _checked_users(external_user_ids, user_aliases))

    def schedule_triggered_campaign(
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

        Takes the arguments of :meth:`send_triggered_campaign` plus ``schedule`` (see
        :meth:`schedule_messages`).

        :return: Braze's answer, with ``schedule_id`` and ``dispatch_id``.
        """
        _check_schedule_given(schedule)
        prepared = self.prepare_triggered_campaign(
            campaign_id,
            schedule=schedule,
            send_id=send_id,
            trigger_properties=trigger_properties,
            broadcast=broadcast,
            audience=audience,
        )
        return self.send_prepared(prepared, _checked_trigger_recipients(recipients))

    # ------------------------------------------------------------ a send in batches: prepare once

    @staticmethod
    def prepare_messages(
        campaign_id: str | None = None,
        *,
        send_id: str | None = None,
        segment_id: str | None = None,
        audience: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        messages: dict[str, Any] | None = None,
        recipient_subscription_state: str | None = None,
        override_frequency_capping: bool | None = None,
        schedule: dict[str, Any] | datetime | str | None = None,
        override_messaging_limits: bool | None = None,
    ) -> PreparedSend:
        """Check a ``/messages/send`` (or, with ``schedule``, ``/messages/schedule/create``)
        request once, without its recipients, for :meth:`send_prepared` to send in batches.

        Takes the arguments of :meth:`send_messages` and :meth:`schedule_messages` except the
        recipients. No request is made.
        """
        if campaign_id is not None:
            validate_campaign_id(campaign_id)
        send_id = validate_send_id(send_id)
        if send_id is not None and campaign_id is None:
            raise BrazeValidationError("send_id needs the campaign_id it was created for.")
        if segment_id is not None and (not isinstance(segment_id, str) or not segment_id.strip()):
            raise BrazeValidationError(f"segment_id must be a non-empty string, got {segment_id!r}.")
        validate_audience(audience)
        if broadcast and segment_id is None and audience is None:
            # Braze: "include at least one of 'segment_id', 'external_user_ids', and 'audience'";
            # a broadcast lists no users, so it needs a segment or an audience (a campaign alone
            # is refused with No Recipients).
            raise BrazeValidationError(
                "A broadcast of /messages/send or /messages/schedule/create needs a segment_id or an "
                "audience; Braze refuses one with neither (a campaign_id alone is not a target)."
            )
        messages = validate_messages(messages, campaign_id=campaign_id)
        check_flag(broadcast, "broadcast", optional=True)
        check_flag(override_frequency_capping, "override_frequency_capping", optional=True)
        check_flag(override_messaging_limits, "override_messaging_limits", optional=True)
        if recipient_subscription_state not in (None, "opted_in", "subscribed", "all"):
            raise BrazeValidationError(
                "recipient_subscription_state must be 'opted_in', 'subscribed' or 'all', "
                f"got {recipient_subscription_state!r}."
            )
        body: dict[str, Any] = {
            "campaign_id": campaign_id,
            "send_id": send_id,
            "segment_id": segment_id,
            "audience": audience,
            "broadcast": broadcast,
            "messages": messages,
            "recipient_subscription_state": recipient_subscription_state,
        }
        if schedule is None:
            if override_messaging_limits is not None:
                raise BrazeValidationError(
                    "override_messaging_limits is for scheduled messages; /messages/send calls it "
                    "override_frequency_capping."
                )
            body["override_frequency_capping"] = override_frequency_capping
            endpoint = SEND_MESSAGES
        else:
            if override_frequency_capping is not None:
                raise BrazeValidationError(
                    "/messages/schedule/create takes override_messaging_limits, not "
                    "override_frequency_capping."
                )
            body["override_messaging_limits"] = override_messaging_limits
            body["schedule"] = normalize_schedule(schedule)
            endpoint = SCHEDULE_MESSAGES
        return PreparedSend(endpoint, _without_nones(body), "users", bool(broadcast))

    @staticmethod
    def prepare_triggered_campaign(
        campaign_id: str,
        *,
        send_id: str | None = None,
        trigger_properties: dict[str, Any] | None = None,
        broadcast: bool | None = None,
        audience: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        schedule: dict[str, Any] | datetime | str | None = None,
    ) -> PreparedSend:
        """Check a ``/campaigns/trigger/send`` (or, with ``schedule``,
        ``/campaigns/trigger/schedule/create``) request once, without its recipients, for
        :meth:`send_prepared` to send in batches. No request is made."""
        validate_campaign_id(campaign_id)
        send_id = validate_send_id(send_id)
        if trigger_properties is not None and not isinstance(trigger_properties, dict):
            raise BrazeValidationError("trigger_properties must be an object (a dict).")
        validate_audience(audience)
        check_flag(broadcast, "broadcast", optional=True)
        body: dict[str, Any] = {
            "campaign_id": campaign_id,
            "send_id": send_id,
            "trigger_properties": trigger_properties,
            "broadcast": broadcast,
            "audience": audience,
        }
        if schedule is None:
            if broadcast and attachments is not None:
                raise BrazeValidationError(
                    "Braze does not take attachments with broadcast=True on /campaigns/trigger/send."
                )
            body["attachments"] = check_attachments(attachments)
            endpoint = SEND_TRIGGERED_CAMPAIGN
        else:
            if attachments is not None:
                raise BrazeValidationError(
                    "Braze's schedule endpoint for triggered campaigns takes no attachments."
                )
            body["schedule"] = normalize_schedule(schedule)
            endpoint = SCHEDULE_TRIGGERED_CAMPAIGN
        return PreparedSend(endpoint, _without_nones(body), "recipients", bool(broadcast))

    def send_prepared(self, prepared: PreparedSend, recipients: list[Any] | None = None) -> dict[str, Any]:
        """Send one batch of a prepared send: its body plus these recipients (already checked
        and in the endpoint's shape: external user ID strings and alias objects for messages,
        recipient objects for triggers), at most 50; none for a broadcast."""
        return self._send(prepared.endpoint, prepared.request_body(recipients))

    def rate_limit_now(self) -> tuple[RateLimitStatus | None, float | None, str]:
        """The workspace's shared rate limit as it stands, for a rehearsal's estimate.

        The last headers this hook saw when there are any; otherwise one harmless request
        (``GET /campaigns/list``, page 0, in the same hourly pool as the send endpoints).

        :return: ``(status or None, the request's latency in seconds or None, where it came
            from)``. A key without ``campaigns.list`` (403) is no error: it may be right for sends.
        :raises BrazeAuthError: Braze did not accept the key (401): sends would fail too.
        :raises BrazeTransportError: Braze could not be reached: sends would fail too.
        """
        known = self.last_rate_limit
        if known is not None:
            return known, None, "the last answer's headers"
        started = time.monotonic()
        try:
            self._request(LIST_CAMPAIGNS, params={"page": 0}, idempotent=True, retry=False)
        except BrazeAuthError as err:
            if err.status_code == 401:
                raise
            refused = self.last_rate_limit  # a 403 (a send-only key) still tells
            if refused is not None:
                return refused, None, "the headers of a refused GET /campaigns/list"
            return None, None, f"unknown: GET /campaigns/list failed ({self._redact(str(err))[:200]})"
        except BrazeTransportError:
            raise
        except BrazeError as err:
            refused = self.last_rate_limit  # a refusal still tells
            if refused is not None:
                return refused, None, "the headers of a refused GET /campaigns/list"
            return None, None, f"unknown: GET /campaigns/list failed ({self._redact(str(err))[:200]})"
        latency = time.monotonic() - started
        status = self.last_rate_limit  # set from the answer's headers, if it had any
        if status is None:
            return None, latency, "unknown: Braze's answer to GET /campaigns/list had no rate-limit headers"
        return status, latency, "one GET /campaigns/list"

    def _send(self, endpoint: BrazeEndpoint, body: dict[str, Any]) -> dict[str, Any]:
        """POST a send: never repeated when in doubt; non-fatal errors kept."""
        answer = self._request(endpoint, json=body, idempotent=False)
        errors = answer.get("errors")
        answer["errors"] = errors if isinstance(errors, list) else ([errors] if errors else [])
        return answer

    def get_send_analytics(
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
        return self._request(GET_SEND_ANALYTICS, params=params, idempotent=True)

    def campaign_exists(self, campaign_id: str, *, max_pages: int = 100) -> bool:
        """Whether the workspace has this campaign (``GET /campaigns/list``, permission
        ``campaigns.list``), read 100 campaigns a page until it is found or the list ends.

        :raises BrazeUnexpectedResponseError: an answer without a ``campaigns`` list, or a list
            longer than ``max_pages`` pages (the question stays open: it is not answered False).
        """
        campaign_id = validate_campaign_id(campaign_id)
        for page in range(max_pages):
            answer = self._request(LIST_CAMPAIGNS, params={"page": page}, idempotent=True)
            campaigns = answer.get("campaigns")
            if not isinstance(campaigns, list):
                raise BrazeUnexpectedResponseError(
                    f"Braze answered {LIST_CAMPAIGNS} without a campaigns list: {excerpt(str(answer))}",
                    status_code=200,
                    message=str(answer.get("message")),
                    endpoint=str(LIST_CAMPAIGNS),
                )
            if any(isinstance(c, dict) and c.get("id") == campaign_id for c in campaigns):
                return True
            if len(campaigns) < CAMPAIGNS_PER_PAGE:  # the last page
                return False
        raise BrazeUnexpectedResponseError(
            f"Campaign {campaign_id!r} is not in the first {max_pages * CAMPAIGNS_PER_PAGE} campaigns "
            f"{LIST_CAMPAIGNS} lists, and the list goes on: whether it exists is not known.",
            endpoint=str(LIST_CAMPAIGNS),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check the endpoint and key with a harmless read (``GET /campaigns/list``, page 0).

        Needs the API key permission ``campaigns.list``; a key without it is told apart from a
        wrong key, since it may still be right for sends. Returns ``(ok, explanation)``: one
        plain sentence or two, naming the connection (not the random ID Airflow gives a form
        under test).
        """
        label = connection_label(self.braze_conn_id)
        try:
            base_url = self._redact(self.settings.base_url)
            self._request(LIST_CAMPAIGNS, params={"page": 0}, idempotent=True, retry=False)
        except BrazeAuthError as err:
            if err.status_code == 403:
                return False, (
                    f"{label}: Braze at {base_url} accepted the REST API key, but the key lacks the "
                    "'campaigns.list' permission this test uses (403). A key with only send "
                    "permissions (messages.send, sends.id.create...) still works for sends in DAGs; "
                    "add campaigns.list to the key to make this test pass."
                )
            return False, (
                f"{label}: Braze at {base_url} did not accept the REST API key (401). Check the key, "
                "and that the host is the REST endpoint of the key's workspace (e.g. US-03 for a "
                "dashboard at dashboard-03.braze.com)."
            )
        except BrazeAmbiguousRequestError as err:
            # A read: whether Braze "processed" it does not matter, only what went wrong.
            text = str(err).replace(AMBIGUOUS_SUFFIX, ".")
            return False, f"{label}: {text}"
        except BrazeError as err:
            text = self._redact(str(err))  # a configuration error already names the connection
            return False, text if text.startswith(label) else f"{label}: {text}"
        except Exception as err:  # the Airflow UI shows this text; never let it crash the form
            return False, f"{label}: {type(err).__name__}: {self._redact(str(err))}"
        return True, f"{label}: connected to Braze at {base_url}; the REST API key was accepted."

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

        :param idempotent: Whether repeating the call when it is in doubt (read timeout,
            connection dropped after sending) is harmless. When False such an outcome raises
            BrazeAmbiguousRequestError at once.
        :param retry: False to make a single attempt (used by test_connection).
        """
        import requests

        settings = self.settings
        session = self.session
        url = f"{settings.base_url}{endpoint.path}"
        budget = RetryBudget(settings.max_retries if retry else 0, settings.retry_budget)
        attempt = 0
        sent_before = False  # an earlier attempt may have taken effect

        while True:
            attempt += 1
            retries_left = budget.retries_left(attempt)
            paced = self.pacer.acquire(endpoint.path, budget.remaining())
            if paced:
                # Pacing spreads requests out by fractions of a second: only a real wait is news.
                log = self.log.info if paced >= 1 else self.log.debug
                log("Waited %.1f s for the Braze rate limit of %s to reset.", paced, endpoint)
                budget.waited += paced
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
                error = transport_error(endpoint, exc, attempt, settings.base_url, self._redact)
                if isinstance(error, BrazeAmbiguousRequestError) and not idempotent:
                    raise error from shown_cause(exc, self._redact)
                delay = backoff(attempt)
                if (
                    retries_left
                    and is_retryable_transport(exc)
                    and budget.pause(error, delay, attempt, self.log)
                ):
                    _sleep(delay)
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
            self.pacer.release(endpoint.path, rate, answered_at)
            if rate is not None:
                self.last_rate_limit = rate
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
                _sleep(delay)
                continue
            raise budget.give_up(failure, delay, retries_left)

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

    def _redact(self, text: str) -> str:
        """Remove the API key from text that goes into an error or a result (a proxy may echo
        headers), in every form :func:`~.redaction.secret_pattern` knows."""
        settings: BrazeConnectionSettings | None = self.__dict__.get("settings")
        if settings is None:
            return text
        pattern = self.__dict__.get("_key_pattern")
        if pattern is None:
            pattern = self.__dict__["_key_pattern"] = secret_pattern(settings.api_key)
        return pattern.sub("***", text)

    def redact(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of it) without the API key, for anything kept or shown."""
        return redacted(value, self._redact)


@dataclass(frozen=True)
class PreparedSend:
    """A send's request body, checked once, without its recipients: each batch only adds them
    (:meth:`BrazeHook.send_prepared`). Made by :meth:`BrazeHook.prepare_messages` and
    :meth:`BrazeHook.prepare_triggered_campaign`."""

    endpoint: BrazeEndpoint
    body: dict[str, Any]
    #: ``users`` (external user IDs and aliases) or ``recipients`` (recipient objects).
    recipients_as: str
    broadcast: bool

    @property
    def recipients_name(self) -> str:
        return "external user IDs and aliases" if self.recipients_as == "users" else "recipients"

    def request_body(self, recipients: list[Any] | None = None) -> dict[str, Any]:
        """The body of one request: the prepared body plus these recipients (at most 50, in the
        endpoint's shape; none for a broadcast), exactly as it is sent."""
        batch = list(recipients or [])
        check_recipient_count(len(batch), self.recipients_name)
        check_broadcast(self.broadcast, bool(batch))
        body = dict(self.body)
        if self.recipients_as == "users":
            ids = [r for r in batch if isinstance(r, str)]
            aliases = [r for r in batch if not isinstance(r, str)]
            if ids:
                body["external_user_ids"] = ids
            if aliases:
                body["user_aliases"] = aliases
        elif batch:
            body["recipients"] = batch
        check_body_size(body, str(self.endpoint))
        return body


def _checked_users(
    external_user_ids: list[str] | None, user_aliases: list[dict[str, str]] | None
) -> list[Any]:
    ids = validate_external_user_ids(external_user_ids) if external_user_ids is not None else []
    aliases = [validate_user_alias(a, f"user_aliases[{i}]") for i, a in enumerate(user_aliases or [])]
    return [*ids, *aliases]


def _checked_trigger_recipients(recipients: list[dict[str, Any]] | None) -> list[Any]:
    return [validate_trigger_recipient(r, f"recipients[{i}]") for i, r in enumerate(recipients or [])]


def _check_schedule_given(schedule: Any) -> None:
    # The prepare_* methods read a None schedule as "send now": a schedule verb must not.
    if schedule is None:
        raise BrazeValidationError("schedule is required: Braze's schedule endpoints need a schedule.time.")


def _without_nones(body: dict[str, Any]) -> dict[str, Any]:
    """Braze reads a null as a value, so optional fields are left out instead."""
    return {key: value for key, value in body.items() if value is not None}
