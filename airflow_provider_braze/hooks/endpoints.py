"""The Braze REST endpoints the hook calls, and what the request path needs to know of each.

Each constant is named after the hook verb that calls it (``send_triggered_campaign`` calls
:data:`SEND_TRIGGERED_CAMPAIGN`); everything else that names an endpoint uses these.
"""

from __future__ import annotations

from dataclasses import dataclass


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
#: ``campaign_exists`` and ``test_connection`` page through it.
LIST_CAMPAIGNS = BrazeEndpoint("GET", "/campaigns/list", "campaigns.list")
SEND_MESSAGES = BrazeEndpoint("POST", "/messages/send", "messages.send")
SEND_TRIGGERED_CAMPAIGN = BrazeEndpoint("POST", "/campaigns/trigger/send", "campaigns.trigger.send")
SCHEDULE_MESSAGES = BrazeEndpoint("POST", "/messages/schedule/create", "messages.schedule.create")
SCHEDULE_TRIGGERED_CAMPAIGN = BrazeEndpoint(
    "POST", "/campaigns/trigger/schedule/create", "campaigns.trigger.schedule.create"
)
GET_SEND_ANALYTICS = BrazeEndpoint("GET", "/sends/data_series", "sends.data_series")
