"""The sandbox's own table of Braze's documented request rules.

Each :class:`Rule` names the braze-docs page it comes from (a path in ``braze-inc/braze-docs``),
the HTTP status and ``message`` Braze answers with when the rule is broken (the name the errors
page gives, else ``Bad Request``), and one check. The checks look at the request alone; what
needs the sandbox's state (known campaigns, variations, send IDs, the clock-dependent schedule
rules, quotas) stays in the request handlers.

This module imports nothing of the provider's own checks (``messaging``, ``validation``,
``recipients``): the sandbox stands in for Braze, so a mistake in the client's checks must show
up against it, not be copied into it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

# ------------------------------------------------------------------------- the pages cited

DOCS = "_docs/_api"
ERRORS_PAGE = f"{DOCS}/errors.md"
API_LIMITS_PAGE = f"{DOCS}/api_limits.md"
#: Names the 413 answer ("Request Entity Too Large") for bodies over 4 MB.
USER_DATA_PAGE = f"{DOCS}/endpoints/user_data.md"
IDENTIFIER_TYPES_PAGE = f"{DOCS}/identifier_types.md"
CREATE_SEND_IDS_PAGE = f"{DOCS}/endpoints/messaging/send_messages/post_create_send_ids.md"
SEND_MESSAGES_PAGE = f"{DOCS}/endpoints/messaging/send_messages/post_send_messages.md"
TRIGGER_SEND_PAGE = f"{DOCS}/endpoints/messaging/send_messages/post_send_triggered_campaigns.md"
SCHEDULE_MESSAGES_PAGE = f"{DOCS}/endpoints/messaging/schedule_messages/post_schedule_messages.md"
SCHEDULE_TRIGGER_PAGE = f"{DOCS}/endpoints/messaging/schedule_messages/post_schedule_triggered_campaigns.md"
SEND_ANALYTICS_PAGE = f"{DOCS}/endpoints/export/campaigns/get_send_analytics.md"
RECIPIENT_OBJECT_PAGE = f"{DOCS}/objects_filters/recipient_object.md"
USER_ALIAS_PAGE = f"{DOCS}/objects_filters/user_alias_object.md"
TRIGGER_PROPERTIES_PAGE = f"{DOCS}/objects_filters/trigger_properties_object.md"
CONNECTED_AUDIENCE_PAGE = f"{DOCS}/objects_filters/connected_audience.md"
SCHEDULE_OBJECT_PAGE = f"{DOCS}/objects_filters/schedule_object.md"


def messaging_page(name: str) -> str:
    return f"{DOCS}/objects_filters/messaging/{name}.md"


# ------------------------------------------------------------------------- Braze's messages

BAD_REQUEST = "Bad Request"
NO_RECIPIENTS = "No Recipients"
NO_MESSAGE = "No message to send"
VARIANT_UNSPECIFIED = "Message Variant Unspecified"
INVALID_EXTRA = "Invalid Extra Push Payload"
APPLE_TOO_LONG = "Apple Push Length Exceeded"
ANDROID_TOO_LONG = "Android Push Length Exceeded"
TOO_MANY_USERS = "The max number of external_ids and aliases per request was exceeded"
TOO_LARGE = "Request Entity Too Large"
#: The errors page's names for 401 and 429.
UNAUTHORIZED = "Unauthorized"
RATE_LIMITED = "Rate Limited"

#: Users (external IDs and aliases, or recipient objects) one send request may list.
MAX_USERS = 50
SEND_ID_MAX_LENGTH = 64
#: "4 MB" read as the smaller of its two meanings (4,000,000 bytes), so as never to be more
#: lenient than Braze.
MAX_BODY_BYTES = 4_000_000
APPLE_MAX_BYTES = 1_912
ANDROID_MAX_BYTES = 4_000
#: Content cards expire at most 30 days ahead.
CONTENT_CARD_MAX_SECONDS = 30 * 86_400
#: Local times are read in the westernmost zone (UTC-12) when they must be as late as possible.
WESTERNMOST_OFFSET = timedelta(hours=12)
#: ... and in the easternmost zone (UTC+14) when they must be as early as possible.
EASTERNMOST_OFFSET = timedelta(hours=14)
#: Both schedule endpoints: "up to 90 days in the future".
MAX_SCHEDULE_AHEAD = timedelta(days=90)

Check = Callable[[Mapping[str, Any], datetime], list[str]]


@dataclass(frozen=True)
class Rule:
    """One documented rule: where it comes from, what Braze answers, and the check (which
    returns what breaks the rule, empty when the request keeps it)."""

    name: str
    page: str
    message: str
    check: Check
    status: int = 400
    #: ``(setting, value)``: the rule holds only while that sandbox setting has that value (where
    #: Braze's pages disagree, each reading is a setting of ``UNDOCUMENTED_BEHAVIOURS``).
    only_when: tuple[str, str] | None = None


@dataclass(frozen=True)
class Refusal:
    """Braze's answer to a request that breaks a rule."""

    status: int
    message: str
    errors: tuple[str, ...]
    rule: str


def first_refusal(
    rules: Sequence[Rule],
    body: Mapping[str, Any],
    now: datetime,
    behaviours: Mapping[str, str] | None = None,
) -> Refusal | None:
    """The answer to the first rule ``body`` breaks, or None (``behaviours``: the sandbox's
    settings, for rules that hold under one of them; the defaults when None)."""
    if behaviours is None:
        from airflow_provider_braze.sandbox.state import DEFAULT_BEHAVIOURS

        behaviours = DEFAULT_BEHAVIOURS
    for rule in rules:
        if rule.only_when is not None and behaviours.get(rule.only_when[0]) != rule.only_when[1]:
            continue
        breaches = rule.check(body, now)
        if breaches:
            return Refusal(rule.status, rule.message, tuple(breaches), rule.name)
    return None


def body_too_large(raw: bytes) -> Refusal | None:
    """Bodies over 4 MB: the user-data page names 413 "Request Entity Too Large" (the rate-limits
    page says 413 or 400; the client must cope with both, and the sandbox answers 413)."""
    if len(raw) <= MAX_BODY_BYTES:
        return None
    return Refusal(
        413, TOO_LARGE, (f"the body is {len(raw)} bytes; at most {MAX_BODY_BYTES}",), "body at most 4 MB"
    )


# ------------------------------------------------------------------------- small predicates


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _flag(value: Any) -> bool:
    return value is None or isinstance(value, bool)


def _is_alias(value: Any) -> bool:
    return isinstance(value, dict) and _text(value.get("alias_name")) and _text(value.get("alias_label"))


def _json_bytes(value: Any) -> int:
    # The object as compact UTF-8 JSON: the fewest bytes it can be sent as, so the count is never
    # below what Braze measures.
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _parse_date_time(value: Any) -> datetime | None:
    """An ISO-8601 date *and time* (a date alone is refused where the docs ask for a datetime)."""
    if not isinstance(value, str) or len(value.strip()) < 11 or value.strip()[10] not in "Tt ":
        return None
    return _parse_time(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: An email address, checked no more strictly than "something@something".
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


def _messages(body: Mapping[str, Any]) -> dict[str, Any]:
    messages = body.get("messages")
    return messages if isinstance(messages, dict) else {}


def _channel(body: Mapping[str, Any], channel: str) -> dict[str, Any] | None:
    obj = _messages(body).get(channel)
    return obj if isinstance(obj, dict) else None


def _users(body: Mapping[str, Any]) -> list[Any]:
    ids = body.get("external_user_ids")
    aliases = body.get("user_aliases")
    return (ids if isinstance(ids, list) else []) + (aliases if isinstance(aliases, list) else [])


def _recipients(body: Mapping[str, Any]) -> list[Any]:
    recipients = body.get("recipients")
    return recipients if isinstance(recipients, list) else []


# ------------------------------------------------------------------------- the request's shape


def _users_shape(body: Mapping[str, Any], now: datetime) -> list[str]:
    ids, aliases = body.get("external_user_ids"), body.get("user_aliases")
    problems = []
    if ids is not None and not (isinstance(ids, list) and all(_text(i) for i in ids)):
        problems.append("external_user_ids must be an array of non-empty strings")
    if aliases is not None and not (isinstance(aliases, list) and all(_is_alias(a) for a in aliases)):
        problems.append("user_aliases must be an array of user alias objects (alias_name, alias_label)")
    return problems


def _too_many_users(body: Mapping[str, Any], now: datetime) -> list[str]:
    count = len(_users(body)) + len(_recipients(body))
    return [f"{count} users given; the maximum is {MAX_USERS}"] if count > MAX_USERS else []


def _broadcast_flag(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [] if _flag(body.get("broadcast")) else ["broadcast must be true or false"]


def _broadcast_with_users(body: Mapping[str, Any], now: datetime) -> list[str]:
    if body.get("broadcast") is True and (_users(body) or _recipients(body)):
        return ["broadcast cannot be true when users or recipients are listed"]
    return []


def _target_needs_broadcast(body: Mapping[str, Any], now: datetime) -> list[str]:
    # A segment or an audience with no users listed is a broadcast: "must be set to true if users
    # are not specified". The errors page's No Recipients is for no external IDs or segment IDs
    # at all, so this is the generic Bad Request.
    if body.get("broadcast") is True or _users(body) or _recipients(body):
        return []
    if body.get("segment_id") is not None or body.get("audience") is not None:
        return ["broadcast must be true to send to a segment or an audience without listing users"]
    return []


def _segment_is_text(body: Mapping[str, Any], now: datetime) -> list[str]:
    value = body.get("segment_id")
    return [] if value is None or _text(value) else ["segment_id must be a non-empty string"]


#: The top-level fields each endpoint documents (``api_key``: the legacy key in the body).
_MESSAGE_FIELDS = frozenset(
    {
        "broadcast",
        "external_user_ids",
        "user_aliases",
        "audience",
        "segment_id",
        "campaign_id",
        "send_id",
        "recipients",
        "recipient_subscription_state",
        "messages",
        "api_key",
    }
)
_TRIGGER_FIELDS = frozenset(
    {"campaign_id", "send_id", "trigger_properties", "broadcast", "audience", "recipients", "api_key"}
)


def _known_fields(allowed: frozenset[str]) -> Check:
    # Braze's pages do not say how unknown fields are answered; refused (a stricter choice), so
    # that a misspelt field (``segment`` for ``segment_id``) cannot pass the sandbox silently.
    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        return [f"{name} is not a field of this endpoint" for name in body if name not in allowed]

    return check


# ------------------------------------------------------------------------- connected audience

_CUSTOM_ATTRIBUTE_COMPARISONS = frozenset(
    {
        "equals",
        "not_equal",
        "does_not_equal",
        "matches_regex",
        "does_not_match_regex",
        "exists",
        "does_not_exist",
        "includes_value",
        "does_not_include_value",
        "greater_than",
        "greater_than_or_equal_to",
        "less_than",
        "less_than_or_equal_to",
        "less_than_x_days_ago",
        "greater_than_x_days_ago",
        "less_than_x_days_in_the_future",
        "greater_than_x_days_in_the_future",
        "after",
        "before",
    }
)
_SUBSCRIPTION_VALUES = ("opted_in", "subscribed", "unsubscribed")


def _audience_filter(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict) or len(value) != 1:
        return [f"{where} must be an object with one key: AND, OR or a filter"]
    ((name, inner),) = value.items()
    if name in ("AND", "OR"):
        if not isinstance(inner, list) or not inner:
            return [f"{where}.{name} must be a non-empty array of filters"]
        return [p for i, item in enumerate(inner) for p in _audience_filter(item, f"{where}.{name}[{i}]")]
    if not isinstance(inner, dict):
        return [f"{where}.{name} must be an object"]
    comparison, given = inner.get("comparison"), inner.get("value")
    if name == "custom_attribute":
        problems = (
            []
            if _text(inner.get("custom_attribute_name"))
            else [f"{where}: custom_attribute_name is required"]
        )
        if comparison not in _CUSTOM_ATTRIBUTE_COMPARISONS:
            return [*problems, f"{where}: unknown custom attribute comparison {comparison!r}"]
        if comparison in ("exists", "does_not_exist"):
            return problems
        if "value" not in inner:
            problems.append(f"{where}: value is required with {comparison}")
        elif comparison in ("after", "before") and _parse_date_time(given) is None:
            problems.append(f"{where}: value must be an ISO-8601 date and time with {comparison}")
        elif comparison == "matches_regex" and not isinstance(given, str):
            problems.append(f"{where}: value must be a string with matches_regex")
        return problems
    if name in ("push_subscription_status", "email_subscription_status"):
        problems = [] if comparison in ("is", "is_not") else [f"{where}: comparison must be is or is_not"]
        if given not in _SUBSCRIPTION_VALUES:
            problems.append(f"{where}: value must be one of {', '.join(_SUBSCRIPTION_VALUES)}")
        return problems
    if name == "last_used_app":
        problems = (
            [] if comparison in ("after", "before") else [f"{where}: comparison must be after or before"]
        )
        if _parse_date_time(given) is None:
            problems.append(f"{where}: value must be an ISO-8601 date and time")
        return problems
    return [f"{where}: {name} is not a connected audience filter"]


def _audience(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [] if body.get("audience") is None else _audience_filter(body["audience"], "audience")


# ------------------------------------------------------------------------- schedules


def _schedule_time(body: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The earliest and latest instants ``schedule.time`` can mean (a local or optimal wall
    clock is reached first at UTC+14 and last at UTC-12), or None when it is not one to judge
    (the request handler refuses what is not a schedule)."""
    schedule = body.get("schedule")
    if not isinstance(schedule, dict):
        return None
    moment = _parse_date_time(schedule.get("time"))
    if moment is None:
        return None
    if schedule.get("in_local_time") is True or schedule.get("at_optimal_time") is True:
        return moment - EASTERNMOST_OFFSET, moment + WESTERNMOST_OFFSET
    return moment, moment


def _schedule_within_90_days(body: Mapping[str, Any], now: datetime) -> list[str]:
    span = _schedule_time(body)
    if span is not None and span[1] - now > MAX_SCHEDULE_AHEAD:
        return ["schedule.time is more than 90 days in the future"]
    return []


def _plain_schedule_not_past(body: Mapping[str, Any], now: datetime) -> list[str]:
    # The docs name only a passed local time as an error; a plain time in the past is refused
    # too (a stricter choice: a send "scheduled" for the past is a mistake to report).
    schedule = body.get("schedule")
    if not isinstance(schedule, dict) or schedule.get("in_local_time") is True:
        return []
    if schedule.get("at_optimal_time") is True:
        return []
    span = _schedule_time(body)
    return ["schedule.time has passed"] if span is not None and span[0] < now else []


def _schedule_is_date_time(body: Mapping[str, Any], now: datetime) -> list[str]:
    schedule = body.get("schedule")
    if not isinstance(schedule, dict) or not isinstance(schedule.get("time"), str):
        return []
    text = schedule["time"]
    text = text[:-1] if text.endswith(("Z", "z")) else text
    if _parse_time(text) is not None and _parse_date_time(text) is None:
        return ["schedule.time must be a date and time, not a date"]
    return []


def _users_or_broadcast(body: Mapping[str, Any], now: datetime) -> list[str]:
    if body.get("broadcast") is not True and not (_users(body) or _recipients(body)):
        return ["no users or recipients are listed and broadcast is not true"]
    return []


def _messages_target(body: Mapping[str, Any], now: datetime) -> list[str]:
    # "You will need to include at least one of 'segment_id', 'external_user_ids', and
    # 'audience'" (user_aliases count as users): a broadcast of a campaign alone is refused.
    if _users(body) or body.get("segment_id") is not None or body.get("audience") is not None:
        return []
    return ["give at least one of segment_id, external_user_ids (or user_aliases) and audience"]


def _send_id_needs_campaign(body: Mapping[str, Any], now: datetime) -> list[str]:
    # A send ID is created for one campaign (/sends/id/create takes campaign_id), and is
    # tracked under it: without the campaign there is nothing to track it under.
    if body.get("send_id") is not None and body.get("campaign_id") is None:
        return ["send_id requires campaign_id"]
    return []


def _campaign_required(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [] if _text(body.get("campaign_id")) else ["campaign_id is required, as a string"]


def _campaign_is_text(body: Mapping[str, Any], now: datetime) -> list[str]:
    value = body.get("campaign_id")
    return [] if value is None or _text(value) else ["campaign_id must be a non-empty string"]


def _send_id_format(body: Mapping[str, Any], now: datetime) -> list[str]:
    value = body.get("send_id")
    if value is None:
        return []
    if not isinstance(value, str) or not value:
        return ["send_id must be a non-empty string"]
    if not value.isascii():
        return ["send_id must contain only ASCII characters"]
    if len(value) > SEND_ID_MAX_LENGTH:
        return [f"send_id must be at most {SEND_ID_MAX_LENGTH} characters"]
    return []


def _object_field(name: str) -> Check:
    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        value = body.get(name)
        return [] if value is None or isinstance(value, dict) else [f"{name} must be an object"]

    return check


def _subscription_state(body: Mapping[str, Any], now: datetime) -> list[str]:
    value = body.get("recipient_subscription_state")
    if value in (None, "opted_in", "subscribed", "all"):
        return []
    return ["recipient_subscription_state must be opted_in, subscribed or all"]


def _flags(*names: str) -> Check:
    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        return [f"{name} must be true or false" for name in names if not _flag(body.get(name))]

    return check


# ------------------------------------------------------------------------- recipient objects

_RECIPIENT_IDS = ("external_user_id", "user_alias", "braze_id", "email")
#: The prioritization values of an email recipient (post_user_identify: identifying by email).
PRIORITIZATION = ("identified", "unidentified", "most_recently_updated", "least_recently_updated")


def _recipients_shape(body: Mapping[str, Any], now: datetime) -> list[str]:
    recipients = body.get("recipients")
    if recipients is None:
        return []
    if not isinstance(recipients, list):
        return ["recipients must be an array of recipient objects"]
    problems = []
    for position, recipient in enumerate(recipients):
        where = f"recipients[{position}]"
        if not isinstance(recipient, dict):
            problems.append(f"{where} must be a recipient object")
            continue
        given = [key for key in _RECIPIENT_IDS if recipient.get(key) is not None]
        if len(given) != 1:
            problems.append(f"{where} needs exactly one of external_user_id, user_alias, braze_id or email")
        elif given == ["user_alias"] and not _is_alias(recipient["user_alias"]):
            problems.append(f"{where}.user_alias must be a user alias object")
        elif given != ["user_alias"] and not _text(recipient[given[0]]):
            problems.append(f"{where}.{given[0]} must be a non-empty string")
        elif given == ["email"] and not _ADDRESS.match(recipient["email"].strip()):
            problems.append(f"{where}.email must be an email address")
        elif given == ["email"] and not recipient.get("prioritization"):
            problems.append(f"{where}: email needs a prioritization array")
        if recipient.get("prioritization") is not None:
            order = recipient["prioritization"]
            if not (isinstance(order, list) and order and all(item in PRIORITIZATION for item in order)):
                problems.append(f"{where}.prioritization must be an array of {', '.join(PRIORITIZATION)}")
    return problems


def _recipient_fields(body: Mapping[str, Any], now: datetime) -> list[str]:
    problems = []
    for position, recipient in enumerate(_recipients(body)):
        if not isinstance(recipient, dict):
            continue
        for name in ("trigger_properties", "attributes"):
            if recipient.get(name) is not None and not isinstance(recipient[name], dict):
                problems.append(f"recipients[{position}].{name} must be an object")
        if not _flag(recipient.get("send_to_existing_only")):
            problems.append(f"recipients[{position}].send_to_existing_only must be true or false")
    return problems


def _new_users_need_attributes(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [
        f"recipients[{position}]: send_to_existing_only false needs an attributes object"
        for position, recipient in enumerate(_recipients(body))
        if isinstance(recipient, dict)
        and recipient.get("send_to_existing_only") is False
        and not isinstance(recipient.get("attributes"), dict)
    ]


def _alias_flag(*refused: Any) -> Check:
    """Alias recipients that carry ``send_to_existing_only`` with one of ``refused`` (any value
    when none are named)."""

    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        return [
            f"recipients[{position}]: send_to_existing_only cannot be used with a user alias"
            for position, recipient in enumerate(_recipients(body))
            if isinstance(recipient, dict)
            and recipient.get("user_alias") is not None
            and "send_to_existing_only" in recipient
            and (not refused or any(recipient["send_to_existing_only"] is value for value in refused))
        ]

    return check


def _attachments_shape(body: Mapping[str, Any], now: datetime) -> list[str]:
    attachments = body.get("attachments")
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        return ["attachments must be an array of {file_name, url} objects"]
    return [
        f"attachments[{position}] needs a file_name and a url"
        for position, item in enumerate(attachments)
        if not (isinstance(item, dict) and _text(item.get("file_name")) and _text(item.get("url")))
    ]


def _no_attachments_in_broadcast(body: Mapping[str, Any], now: datetime) -> list[str]:
    if body.get("broadcast") is True and body.get("attachments") is not None:
        return ["with broadcast true, the attachments list cannot be included"]
    return []


# ------------------------------------------------------------------------- messaging objects


def _required(obj: Mapping[str, Any], channel: str, *names: str) -> list[str]:
    return [f"messages.{channel}.{name} is required" for name in names if not _text(obj.get(name))]


def _one_of(
    obj: Mapping[str, Any], channel: str, name: str, choices: Sequence[str], *, required: bool
) -> list[str]:
    value = obj.get(name)
    if (value is None and not required) or value in choices:
        return []
    return [f"messages.{channel}.{name} must be one of {', '.join(choices)}"]


_SENDER = re.compile(r"^\s*[^<>]*\S[^<>]*<[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+>\s*$")


def _email(obj: Mapping[str, Any]) -> list[str]:
    problems = _required(obj, "email", "app_id")
    if not (isinstance(obj.get("from"), str) and _SENDER.match(obj["from"])):
        problems.append('messages.email.from is required, as "Display Name <address>"')
    if not _text(obj.get("email_template_id")):
        problems += _required(obj, "email", "body")
    attachments = obj.get("attachments")
    if attachments is not None and not (
        isinstance(attachments, list)
        and all(
            isinstance(a, dict) and _text(a.get("file_name")) and _text(a.get("url")) for a in attachments
        )
    ):
        problems.append("messages.email.attachments must be {file_name, url} objects")
    reply_to = obj.get("reply_to")
    if reply_to is not None and not (
        reply_to == "NO_REPLY_TO" or (isinstance(reply_to, str) and _ADDRESS.match(reply_to.strip()))
    ):
        problems.append('messages.email.reply_to must be an email address (or "NO_REPLY_TO")')
    problems += _objects_of(obj, "email", "extras", "headers")
    return problems + _booleans(obj, "email", "should_inline_css")


def _objects_of(obj: Mapping[str, Any], channel: str, *names: str) -> list[str]:
    return [
        f"messages.{channel}.{name} must be an object"
        for name in names
        if obj.get(name) is not None and not isinstance(obj[name], dict)
    ]


def _booleans(obj: Mapping[str, Any], channel: str, *names: str) -> list[str]:
    return [f"messages.{channel}.{name} must be true or false" for name in names if not _flag(obj.get(name))]


def _arrays(obj: Mapping[str, Any], channel: str, *names: str) -> list[str]:
    return [
        f"messages.{channel}.{name} must be an array"
        for name in names
        if obj.get(name) is not None and not isinstance(obj[name], list)
    ]


_BUTTON_ACTIONS = ("OPEN_APP", "URI", "DEEP_LINK", "CLOSE")


def _apple_buttons(obj: Mapping[str, Any]) -> list[str]:
    buttons = obj.get("buttons")
    if buttons is None:
        return []
    if not isinstance(buttons, list):
        return ["messages.apple_push.buttons must be an array of button objects"]
    category = obj.get("category")
    if not _text(category):
        return ["messages.apple_push.category is required to use buttons"]
    # Braze's own categories (ab_cat_...) take an optional action; an app's own need action and uri.
    braze_category = str(category).startswith("ab_cat_")
    problems = []
    for position, button in enumerate(buttons):
        where = f"messages.apple_push.buttons[{position}]"
        if not isinstance(button, dict) or not _text(button.get("action_id")):
            problems.append(f"{where} needs an action_id")
            continue
        if braze_category:
            if button.get("action") is not None and button["action"] not in _BUTTON_ACTIONS:
                problems.append(f"{where}.action must be one of {', '.join(_BUTTON_ACTIONS)}")
        else:
            if button.get("action") not in ("URI", "DEEP_LINK"):
                problems.append(f"{where}.action must be URI or DEEP_LINK for an app-defined category")
            if not _text(button.get("uri")):
                problems.append(f"{where}.uri is required for an app-defined category")
    return problems


_ASSET_TYPES = ("aif", "gif", "jpg", "m4a", "mp3", "mp4", "png", "wav")


def _apple_push(obj: Mapping[str, Any]) -> list[str]:
    silent = obj.get("content-available") is True
    alert = obj.get("alert")
    problems = []
    if not silent and not (_text(alert.get("body")) if isinstance(alert, dict) else _text(alert)):
        problems.append(
            "messages.apple_push.alert (or alert.body) is required unless content-available is true"
        )
    if obj.get("asset_url") is not None:
        problems += _one_of(obj, "apple_push", "asset_file_type", _ASSET_TYPES, required=True)
    levels = ("passive", "active", "time-sensitive", "critical")
    problems += _one_of(obj, "apple_push", "interruption_level", levels, required=False)
    if obj.get("badge") is not None and not _integer(obj["badge"]):
        problems.append("messages.apple_push.badge must be an integer")
    if obj.get("expiry") is not None and _parse_time(obj["expiry"]) is None:
        problems.append("messages.apple_push.expiry must be an ISO-8601 date string")
    if isinstance(alert, dict):
        problems += [
            f"messages.apple_push.alert.{name} must be an array of strings"
            for name in ("loc_args", "title_loc_args")
            if alert.get(name) is not None
            and not (isinstance(alert[name], list) and all(isinstance(a, str) for a in alert[name]))
        ]
    priority = obj.get("apns_priority")
    if priority is not None and not (_integer(priority) and 1 <= priority <= 10):
        problems.append("messages.apple_push.apns_priority must be an integer from 1 to 10")
    score = obj.get("relevance_score")
    if score is not None and not (_number(score) and 0.0 <= score <= 1.0):
        problems.append("messages.apple_push.relevance_score must be a number from 0.0 to 1.0")
    return problems + _apple_buttons(obj)


def _android_push(obj: Mapping[str, Any]) -> list[str]:
    extras = _android_buttons(obj.get("buttons")) + _conversation(obj.get("conversation_data"))
    if obj.get("send_to_sync") is True:
        return [
            f"messages.android_push.{name} must not be set when send_to_sync is true"
            for name in ("alert", "title")
            if obj.get(name) is not None
        ] + extras
    return _required(obj, "android_push", "alert", "title") + extras


def _android_buttons(buttons: Any) -> list[str]:
    if buttons is None:
        return []
    if not isinstance(buttons, list):
        return ["messages.android_push.buttons must be an array of button objects"]
    problems = []
    for position, button in enumerate(buttons):
        where = f"messages.android_push.buttons[{position}]"
        if not isinstance(button, dict) or not _text(button.get("text")):
            problems.append(f"{where} needs a text")
        elif button.get("action") is not None and button["action"] not in _BUTTON_ACTIONS:
            problems.append(f"{where}.action must be one of {', '.join(_BUTTON_ACTIONS)}")
    return problems


def _conversation(data: Any) -> list[str]:
    if data is None:
        return []
    where = "messages.android_push.conversation_data"
    if not isinstance(data, dict):
        return [f"{where} must be an object"]
    problems = [
        f"{where}.{name} is required"
        for name in ("shortcut_id", "reply_person_id")
        if not _text(data.get(name))
    ]
    messages, persons = data.get("messages"), data.get("persons")
    if not (
        isinstance(messages, list)
        and all(
            isinstance(m, dict)
            and _text(m.get("text"))
            and _integer(m.get("timestamp"))
            and _text(m.get("person_id"))
            for m in messages
        )
    ):
        problems.append(f"{where}.messages is required: each with text, timestamp (integer) and person_id")
    if not (
        isinstance(persons, list)
        and all(isinstance(p, dict) and _text(p.get("id")) and _text(p.get("name")) for p in persons)
    ):
        problems.append(f"{where}.persons is required: each with id and name")
    return problems


def _alert_and_title(channel: str) -> Callable[[Mapping[str, Any]], list[str]]:
    return lambda obj: _required(obj, channel, "alert", "title")


def _content_card(obj: Mapping[str, Any]) -> list[str]:
    problems = _one_of(obj, "content_card", "type", ("CLASSIC", "CAPTIONED_IMAGE", "BANNER"), required=True)
    problems += _required(obj, "content_card", "title", "description")
    if obj.get("type") in ("CAPTIONED_IMAGE", "BANNER"):
        problems += _required(obj, "content_card", "image_url")
    if obj.get("time_to_live") is None and obj.get("expire_at") is None:
        problems.append("messages.content_card needs time_to_live or expire_at")
    return problems + _booleans(obj, "content_card", "pinned")


def _sms(obj: Mapping[str, Any]) -> list[str]:
    return _required(obj, "sms", "subscription_group_id", "body", "app_id") + _arrays(
        obj, "sms", "media_items"
    )


def _webhook(obj: Mapping[str, Any]) -> list[str]:
    problems = _required(obj, "webhook", "url")
    problems += _one_of(obj, "webhook", "request_method", ("POST", "PUT", "DELETE", "GET"), required=True)
    if obj.get("request_headers") is not None and not isinstance(obj["request_headers"], dict):
        problems.append("messages.webhook.request_headers must be an object")
    if obj.get("body") is not None and not isinstance(obj["body"], str):
        problems.append("messages.webhook.body must be a string")
    return problems


WHATS_APP_TYPES = (
    "template_message",
    "text_response_message",
    "text_image_response_message",
    "quick_reply_response_message",
    "list_response_message",
    "flow_response_message",
)


def _whats_app(obj: Mapping[str, Any]) -> list[str]:
    problems = _required(obj, "whats_app", "app_id", "subscription_group_id")
    problems += _one_of(obj, "whats_app", "message_type", WHATS_APP_TYPES, required=True)
    if not isinstance(obj.get("message"), dict):
        problems.append("messages.whats_app.message is required, as an object")
    return problems


def _windows_phone8(obj: Mapping[str, Any]) -> list[str]:
    problems = _required(obj, "windows_phone8_push", "toast_content")
    return problems + _one_of(obj, "windows_phone8_push", "push_type", ("toast",), required=False)


def _windows_universal(obj: Mapping[str, Any]) -> list[str]:
    kinds = tuple(f"toast_text_0{n}" for n in range(1, 5)) + tuple(
        f"toast_image_and_text_0{n}" for n in range(1, 5)
    )
    problems = _one_of(obj, "windows_universal_push", "push_type", kinds, required=True)
    return problems + _required(obj, "windows_universal_push", "toast_text1")


#: Every messaging object, the page that documents it, and the check of its required fields.
CHANNELS: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "email": (messaging_page("email_object"), _email),
    "apple_push": (messaging_page("apple_object"), _apple_push),
    "android_push": (messaging_page("android_object"), _android_push),
    "kindle_push": (messaging_page("kindle_and_fireos_object"), _alert_and_title("kindle_push")),
    "web_push": (messaging_page("web_objects"), _alert_and_title("web_push")),
    "content_card": (messaging_page("content_cards_object"), _content_card),
    "sms": (messaging_page("sms_object"), _sms),
    "webhook": (messaging_page("webhook_object"), _webhook),
    "whats_app": (messaging_page("whats_app_object"), _whats_app),
    "windows_phone8_push": (messaging_page("windows_objects"), _windows_phone8),
    "windows_universal_push": (messaging_page("windows_objects"), _windows_universal),
}


def _messages_present(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [] if _messages(body) else ["messages must be a non-empty object of messaging objects"]


def _known_channels(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [
        f"messages.{channel} is not a messaging object Braze documents"
        for channel in _messages(body)
        if channel not in CHANNELS
    ]


def _objects(body: Mapping[str, Any], now: datetime) -> list[str]:
    return [
        f"messages.{channel} must be an object"
        for channel, obj in _messages(body).items()
        if not isinstance(obj, dict)
    ]


def _extras(body: Mapping[str, Any], now: datetime) -> list[str]:
    problems = []
    for channel, obj in _messages(body).items():
        if not isinstance(obj, dict) or obj.get("extra") is None:
            continue
        if not isinstance(obj["extra"], dict):
            problems.append(f"messages.{channel}.extra must be an object")
        elif channel == "apple_push" and ({"ab", "aps"} & set(obj["extra"])):
            problems.append("messages.apple_push.extra must not contain the keys ab or aps")
    return problems


def _fields_of(channel: str) -> Check:
    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        obj = _channel(body, channel)
        return [] if obj is None else CHANNELS[channel][1](obj)

    return check


def _payload_at_most(channel: str, limit: int) -> Check:
    def check(body: Mapping[str, Any], now: datetime) -> list[str]:
        obj = _channel(body, channel)
        if obj is None:
            return []
        size = _json_bytes(obj)
        return [f"messages.{channel} is {size} bytes as JSON; at most {limit}"] if size > limit else []

    return check


def _whats_app_message(body: Mapping[str, Any], now: datetime) -> list[str]:
    obj = _channel(body, "whats_app")
    if obj is None or not isinstance(obj.get("message"), dict):
        return []
    message, kind = obj["message"], obj.get("message_type")
    where = f"messages.whats_app.message ({kind})"

    def missing(*names: str) -> list[str]:
        return [f"{where} needs {name}" for name in names if not _text(message.get(name))]

    if kind == "template_message":
        problems = missing("template_name", "template_language_code")
        for name in ("header_variables", "button_variables"):
            variables = message.get(name)
            if variables is None:
                continue
            if not isinstance(variables, dict):
                problems.append(f"{where}.{name} must be an object")
            elif len(variables) > 1:
                problems.append(f"{where}.{name}: at most one variable can be specified")
        return problems
    if kind == "text_response_message":
        return missing("body")
    if kind == "text_image_response_message":
        return missing("image_uri")
    if kind == "quick_reply_response_message":
        problems = missing("body")
        buttons = message.get("buttons")
        if not (
            isinstance(buttons, list)
            and buttons
            and all(isinstance(b, dict) and _text(b.get("text")) for b in buttons)
        ):
            problems.append(f"{where} needs buttons, each with a text")
        if message.get("header_image_uri") is not None and message.get("header_text") is not None:
            problems.append(f"{where} takes header_image_uri or header_text, not both")
        return problems
    if kind == "list_response_message":
        return missing("body") + _whats_app_list(message.get("list"), where)
    if kind == "flow_response_message":
        problems = missing("body")
        button = message.get("flow_button")
        if not (isinstance(button, dict) and _text(button.get("caption")) and _text(button.get("flow_id"))):
            problems.append(f"{where} needs a flow_button with a caption and a flow_id")
        elif len(button["caption"]) > 20:
            problems.append(f"{where}: flow_button.caption is at most 20 characters")
        return problems
    return []


def _whats_app_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where} needs a list object"]
    problems = [] if _text(value.get("list_button_text")) else [f"{where} needs list.list_button_text"]
    sections = value.get("list_sections")
    if not isinstance(sections, list) or not sections:
        return [*problems, f"{where} needs at least one list section"]
    rows = 0
    for position, section in enumerate(sections):
        section_rows = section.get("list_rows") if isinstance(section, dict) else None
        if not (
            isinstance(section, dict)
            and _text(section.get("section_title"))
            and isinstance(section_rows, list)
        ):
            problems.append(f"{where}: list_sections[{position}] needs a section_title and list_rows")
            continue
        rows += len(section_rows)
        if not all(isinstance(row, dict) and _text(row.get("row_title")) for row in section_rows):
            problems.append(f"{where}: every row of list_sections[{position}] needs a row_title")
    if rows > 10:
        problems.append(f"{where}: at most 10 rows across all sections, got {rows}")
    return problems


def _content_card_expiry(body: Mapping[str, Any], now: datetime) -> list[str]:
    obj = _channel(body, "content_card")
    if obj is None:
        return []
    problems = []
    ttl = obj.get("time_to_live")
    if ttl is not None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
            problems.append("messages.content_card.time_to_live must be a positive whole number of seconds")
        elif ttl > CONTENT_CARD_MAX_SECONDS:
            problems.append(
                f"messages.content_card.time_to_live is more than 30 days ({CONTENT_CARD_MAX_SECONDS} s)"
            )
    if obj.get("expire_at") is not None:
        expires = _parse_time(obj["expire_at"])
        if expires is None:
            problems.append("messages.content_card.expire_at must be an ISO-8601 date")
        else:
            local = obj.get("expire_in_local_time") is True
            # A local wall clock is reached last at UTC-12 and first at UTC+14.
            latest = expires + WESTERNMOST_OFFSET if local else expires
            earliest = expires - EASTERNMOST_OFFSET if local else expires
            if latest - now > timedelta(seconds=CONTENT_CARD_MAX_SECONDS):
                problems.append("messages.content_card.expire_at is more than 30 days away")
            elif earliest <= now:
                # Not in the docs: a card that expired before it is sent is refused (stricter).
                problems.append("messages.content_card.expire_at has passed")
    return problems


def _variations(body: Mapping[str, Any], now: datetime) -> list[str]:
    if body.get("campaign_id") is None:
        return []
    return [
        f"messages.{channel}.message_variation_id is required with a campaign_id"
        for channel, obj in _messages(body).items()
        if isinstance(obj, dict) and not _text(obj.get("message_variation_id"))
    ]


def _message_rules(page: str) -> tuple[Rule, ...]:
    per_channel = tuple(
        Rule(f"{channel} required fields", channel_page, BAD_REQUEST, _fields_of(channel))
        for channel, (channel_page, _check) in CHANNELS.items()
    )
    return (
        Rule("messages given", ERRORS_PAGE, NO_MESSAGE, _messages_present),
        Rule("documented messaging objects only", page, BAD_REQUEST, _known_channels),
        Rule("messaging objects are objects", page, BAD_REQUEST, _objects),
        Rule("extra is a dictionary (no ab/aps for Apple)", ERRORS_PAGE, INVALID_EXTRA, _extras),
        *per_channel,
        Rule(
            "WhatsApp message has its type's fields",
            messaging_page("whats_app_object"),
            BAD_REQUEST,
            _whats_app_message,
        ),
        Rule(
            "content card expires within 30 days",
            messaging_page("content_cards_object"),
            BAD_REQUEST,
            _content_card_expiry,
        ),
        Rule(
            "apple_push at most 1,912 bytes",
            ERRORS_PAGE,
            APPLE_TOO_LONG,
            _payload_at_most("apple_push", APPLE_MAX_BYTES),
        ),
        Rule(
            "android_push at most 4,000 bytes",
            ERRORS_PAGE,
            ANDROID_TOO_LONG,
            _payload_at_most("android_push", ANDROID_MAX_BYTES),
        ),
        Rule("variation given with a campaign", ERRORS_PAGE, VARIANT_UNSPECIFIED, _variations),
    )


def _schedule_rules(page: str) -> tuple[Rule, ...]:
    return (
        Rule("schedule.time is a date and time", SCHEDULE_OBJECT_PAGE, BAD_REQUEST, _schedule_is_date_time),
        Rule("schedule up to 90 days ahead", page, BAD_REQUEST, _schedule_within_90_days),
        Rule(
            "plain schedule not in the past (stricter)",
            SCHEDULE_OBJECT_PAGE,
            BAD_REQUEST,
            _plain_schedule_not_past,
        ),
    )


def _message_send_rules(page: str, flags: tuple[str, ...], *, scheduled: bool) -> tuple[Rule, ...]:
    fields = _MESSAGE_FIELDS | set(flags) | ({"schedule"} if scheduled else set())
    return (
        Rule("documented fields only (stricter)", page, BAD_REQUEST, _known_fields(frozenset(fields))),
        Rule("campaign_id is a string", page, BAD_REQUEST, _campaign_is_text),
        Rule("send ID format", IDENTIFIER_TYPES_PAGE, BAD_REQUEST, _send_id_format),
        Rule(
            "send_id needs its campaign (stricter)",
            IDENTIFIER_TYPES_PAGE,
            BAD_REQUEST,
            _send_id_needs_campaign,
        ),
        Rule("segment_id is a string", page, BAD_REQUEST, _segment_is_text),
        Rule("users are IDs and alias objects", USER_ALIAS_PAGE, BAD_REQUEST, _users_shape),
        Rule("flags are booleans", page, BAD_REQUEST, _flags("broadcast", *flags)),
        Rule("recipient_subscription_state value", page, BAD_REQUEST, _subscription_state),
        Rule("connected audience object", CONNECTED_AUDIENCE_PAGE, BAD_REQUEST, _audience),
        *(_schedule_rules(page) if scheduled else ()),
        Rule("at most 50 users", ERRORS_PAGE, TOO_MANY_USERS, _too_many_users),
        Rule("no users with broadcast", page, BAD_REQUEST, _broadcast_with_users),
        Rule("a segment or audience needs broadcast", page, BAD_REQUEST, _target_needs_broadcast),
        Rule("users, or broadcast", ERRORS_PAGE, NO_RECIPIENTS, _users_or_broadcast),
        Rule("segment_id, users or audience", page, NO_RECIPIENTS, _messages_target),
        *_message_rules(page),
    )


def _trigger_rules(page: str, *, attachments: bool) -> tuple[Rule, ...]:
    fields = _TRIGGER_FIELDS | ({"attachments"} if attachments else {"schedule"})
    rules: tuple[Rule, ...] = (
        Rule("documented fields only (stricter)", page, BAD_REQUEST, _known_fields(frozenset(fields))),
        Rule("campaign_id required", page, BAD_REQUEST, _campaign_required),
        Rule("send ID format", IDENTIFIER_TYPES_PAGE, BAD_REQUEST, _send_id_format),
        Rule("broadcast is a boolean", page, BAD_REQUEST, _broadcast_flag),
        Rule("connected audience object", CONNECTED_AUDIENCE_PAGE, BAD_REQUEST, _audience),
        *(() if attachments else _schedule_rules(page)),
        Rule(
            "trigger_properties is an object",
            TRIGGER_PROPERTIES_PAGE,
            BAD_REQUEST,
            _object_field("trigger_properties"),
        ),
        Rule("recipient objects", RECIPIENT_OBJECT_PAGE, BAD_REQUEST, _recipients_shape),
        Rule("recipient object fields", RECIPIENT_OBJECT_PAGE, BAD_REQUEST, _recipient_fields),
        Rule(
            "send_to_existing_only false needs attributes",
            RECIPIENT_OBJECT_PAGE,
            BAD_REQUEST,
            _new_users_need_attributes,
        ),
        Rule(
            "send_to_existing_only not with aliases",
            RECIPIENT_OBJECT_PAGE,
            BAD_REQUEST,
            _alias_flag(),
            only_when=("alias_send_to_existing_only", "refused"),
        ),
        Rule(
            "send_to_existing_only false not with aliases",
            page,
            BAD_REQUEST,
            _alias_flag(False),
            only_when=("alias_send_to_existing_only", "false_only"),
        ),
        Rule("at most 50 recipients", page, TOO_MANY_USERS, _too_many_users),
        Rule("no recipients with broadcast", page, BAD_REQUEST, _broadcast_with_users),
        Rule("an audience needs broadcast", page, BAD_REQUEST, _target_needs_broadcast),
        Rule("recipients, or broadcast", ERRORS_PAGE, NO_RECIPIENTS, _users_or_broadcast),
    )
    if attachments:
        rules += (
            Rule("attachments are file_name and url", page, BAD_REQUEST, _attachments_shape),
            Rule("no attachments with broadcast", page, BAD_REQUEST, _no_attachments_in_broadcast),
        )
    return rules


def _length(query: Mapping[str, Any], now: datetime) -> list[str]:
    text = str(query.get("length", ""))
    if text.isdigit() and 1 <= int(text) <= 100:
        return []
    return ["length must be an integer between 1 and 100"]


def _ending_at(query: Mapping[str, Any], now: datetime) -> list[str]:
    if "ending_at" not in query:
        return []
    if _parse_date_time(query["ending_at"]) is not None:
        return []
    return ["ending_at must be an ISO-8601 date and time"]


def _query_required(*names: str) -> Check:
    def check(query: Mapping[str, Any], now: datetime) -> list[str]:
        return [f"{name} is required" for name in names if not query.get(name)]

    return check


#: Each endpoint's rules, in the order they are checked.
RULES: dict[str, tuple[Rule, ...]] = {
    "POST /sends/id/create": (
        Rule("campaign_id required", CREATE_SEND_IDS_PAGE, BAD_REQUEST, _campaign_required),
        Rule("send ID format", IDENTIFIER_TYPES_PAGE, BAD_REQUEST, _send_id_format),
    ),
    "POST /messages/send": _message_send_rules(
        SEND_MESSAGES_PAGE, ("override_frequency_capping",), scheduled=False
    ),
    "POST /messages/schedule/create": _message_send_rules(
        SCHEDULE_MESSAGES_PAGE, ("override_messaging_limits",), scheduled=True
    ),
    "POST /campaigns/trigger/send": _trigger_rules(TRIGGER_SEND_PAGE, attachments=True),
    "POST /campaigns/trigger/schedule/create": _trigger_rules(SCHEDULE_TRIGGER_PAGE, attachments=False),
    "GET /sends/data_series": (
        Rule(
            "campaign_id and send_id required",
            SEND_ANALYTICS_PAGE,
            BAD_REQUEST,
            _query_required("campaign_id", "send_id"),
        ),
        Rule("length 1 to 100", SEND_ANALYTICS_PAGE, BAD_REQUEST, _length),
        Rule("ending_at ISO-8601", SEND_ANALYTICS_PAGE, BAD_REQUEST, _ending_at),
    ),
}


def refusal_for(
    endpoint: str, body: Mapping[str, Any], now: datetime, behaviours: Mapping[str, str] | None = None
) -> Refusal | None:
    """Braze's answer to the first of ``endpoint``'s rules ``body`` breaks, or None."""
    return first_refusal(RULES[endpoint], body, now, behaviours)
