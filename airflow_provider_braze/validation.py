"""Checks on user input that run before any request is sent.

Operators call these in ``execute`` (after templates are rendered) and the hook calls them
again in its public verbs, so direct hook users get the same errors.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_braze.exceptions import BrazeValidationError

#: Braze's documented limit on a send identifier's length.
SEND_ID_MAX_LENGTH = 64


def validate_campaign_id(value: Any, *, argument: str = "campaign_id") -> str:
    """Return ``value`` if it is a usable Braze campaign ID, else raise BrazeValidationError."""
    if not isinstance(value, str):
        raise BrazeValidationError(
            f"{argument} must be a string (a Braze campaign API identifier), got {type(value).__name__}."
        )
    if not value.strip():
        raise BrazeValidationError(f"{argument} is empty; pass the API identifier of a Braze campaign.")
    if value != value.strip():
        raise BrazeValidationError(f"{argument} {value!r} has leading or trailing whitespace.")
    return value


def validate_send_id(value: Any) -> str | None:
    """Return ``value`` if it is None or a valid send identifier, else raise BrazeValidationError.

    Braze requires send IDs to be ASCII and at most 64 characters long; we also refuse control
    characters and surrounding whitespace, which can only be mistakes (e.g. a stray newline from
    a rendered template).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise BrazeValidationError(f"send_id must be a string or None, got {type(value).__name__}.")
    if value == "":
        raise BrazeValidationError("send_id is an empty string; pass None to let Braze generate one.")
    if not value.isascii():
        bad = next(ch for ch in value if not ch.isascii())
        raise BrazeValidationError(
            f"send_id {value!r} contains the non-ASCII character {bad!r}; Braze send IDs must be ASCII."
        )
    if len(value) > SEND_ID_MAX_LENGTH:
        raise BrazeValidationError(
            f"send_id is {len(value)} characters long; Braze allows at most {SEND_ID_MAX_LENGTH}."
        )
    if value != value.strip():
        raise BrazeValidationError(f"send_id {value!r} has leading or trailing whitespace.")
    if not value.isprintable():
        raise BrazeValidationError(f"send_id {value!r} contains a control character.")
    return value


#: Braze accepts at most this many users (external IDs, aliases or recipient objects) per request.
MAX_RECIPIENTS_PER_REQUEST = 50
#: Braze's limit on a request body: "4 MB", read as 4,000,000 bytes (the smaller reading).
MAX_BODY_BYTES = 4_000_000


def check_body_size(body: dict[str, Any], what: str) -> None:
    """A request body Braze would refuse (413, or 400) for being over 4 MB, measured as the JSON
    ``requests`` sends (``json.dumps`` with its defaults)."""
    import json

    size = len(json.dumps(body, allow_nan=False).encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise BrazeValidationError(
            f"The {what} request body is {size:,} bytes; Braze refuses bodies over 4 MB "
            f"({MAX_BODY_BYTES:,} bytes). Send smaller messages or fewer recipients per request."
        )


def validate_external_user_ids(value: Any) -> list[str]:
    """A list of non-empty external user ID strings."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise BrazeValidationError(
            f"external_user_ids must be a list of strings, got {type(value).__name__}."
        )
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise BrazeValidationError(
                f"external_user_ids[{position}] must be a non-empty string, got {item!r}."
            )
    return list(value)


def validate_user_alias(value: Any, where: str) -> dict[str, str]:
    """A Braze user alias object: ``{"alias_name": ..., "alias_label": ...}``."""
    if not isinstance(value, dict) or set(value) != {"alias_name", "alias_label"}:
        raise BrazeValidationError(
            f"{where} must be a user alias object with exactly alias_name and alias_label, got {value!r}."
        )
    for key in ("alias_name", "alias_label"):
        if not isinstance(value[key], str) or not value[key]:
            raise BrazeValidationError(f"{where}.{key} must be a non-empty string, got {value[key]!r}.")
    return value


_RECIPIENT_IDS = ("external_user_id", "user_alias", "braze_id", "email")
#: The values of an email recipient's ``prioritization`` (identifying users by email).
PRIORITIZATION = ("identified", "unidentified", "most_recently_updated", "least_recently_updated")
#: An email address, checked no more strictly than "something@something".
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
_RECIPIENT_OPTIONS = ("trigger_properties", "canvas_entry_properties", "send_to_existing_only", "attributes")


def validate_trigger_recipient(value: Any, where: str) -> dict[str, Any]:
    """A recipient object of ``/campaigns/trigger/send``: exactly one of external_user_id,
    user_alias, braze_id or email (with prioritization), plus optional per-recipient fields."""
    if not isinstance(value, dict):
        raise BrazeValidationError(
            f"{where} must be a recipient object (a dict), got {type(value).__name__}."
        )
    ids = [key for key in _RECIPIENT_IDS if value.get(key) is not None]
    if len(ids) != 1:
        raise BrazeValidationError(
            f"{where} must have exactly one of external_user_id, user_alias, braze_id or email, "
            f"got {value!r}."
        )
    unknown = set(value) - set(_RECIPIENT_IDS) - set(_RECIPIENT_OPTIONS) - {"prioritization"}
    if unknown:
        raise BrazeValidationError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}.")
    if ids[0] == "user_alias":
        validate_user_alias(value["user_alias"], f"{where}.user_alias")
    elif not isinstance(value[ids[0]], str) or not value[ids[0]].strip():
        raise BrazeValidationError(f"{where}.{ids[0]} must be a non-empty string, got {value[ids[0]]!r}.")
    if ids[0] == "email" and not _ADDRESS.match(value["email"].strip()):
        raise BrazeValidationError(f"{where}.email {value['email']!r} is not an email address.")
    if ids[0] == "email" and not value.get("prioritization"):
        raise BrazeValidationError(f"{where} targets an email address, which needs a prioritization list.")
    order = value.get("prioritization")
    if order is not None and not (
        isinstance(order, list) and order and all(item in PRIORITIZATION for item in order)
    ):
        raise BrazeValidationError(
            f"{where}.prioritization must be a list of {', '.join(PRIORITIZATION)}, got {order!r}."
        )
    for key in ("trigger_properties", "canvas_entry_properties", "attributes"):
        if key in value and not isinstance(value[key], dict):
            raise BrazeValidationError(f"{where}.{key} must be an object (a dict).")
    if "send_to_existing_only" in value and not isinstance(value["send_to_existing_only"], bool):
        raise BrazeValidationError(f"{where}.send_to_existing_only must be true or false.")
    check_new_user(value, ids[0], where)
    return value


def check_new_user(recipient: dict[str, Any], identifier: str, where: str) -> None:
    """Braze's recipient object: ``send_to_existing_only`` "can't be used with user aliases"
    (any value: the recipient object page's reading, the stricter of Braze's two pages), and
    ``false`` (create the user if missing) needs an ``attributes`` object."""
    if identifier == "user_alias" and "send_to_existing_only" in recipient:
        raise BrazeValidationError(
            f"{where}: send_to_existing_only cannot be used with a user alias (Braze's recipient "
            "object); leave it out: an alias recipient must already exist."
        )
    if recipient.get("send_to_existing_only") is not False:
        return
    if not isinstance(recipient.get("attributes"), dict):
        raise BrazeValidationError(
            f"{where}: a recipient with send_to_existing_only false needs an attributes object; "
            "Braze creates the user from it."
        )


def check_attachments(value: Any) -> list[dict[str, Any]] | None:
    """``attachments`` of /campaigns/trigger/send: a list of ``{"file_name", "url"}`` objects,
    both required (post_send_triggered_campaigns)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise BrazeValidationError("attachments must be a list of {file_name, url} objects.")
    for position, item in enumerate(value):
        if not (
            isinstance(item, dict)
            and all(isinstance(item.get(key), str) and item[key].strip() for key in ("file_name", "url"))
        ):
            raise BrazeValidationError(f"attachments[{position}] needs a file_name and a url, got {item!r}.")
    return value


def check_recipient_count(count: int, what: str) -> None:
    if count > MAX_RECIPIENTS_PER_REQUEST:
        raise BrazeValidationError(
            f"{count} {what} in one request; Braze accepts at most {MAX_RECIPIENTS_PER_REQUEST}. "
            "The send operators split larger lists into batches."
        )


def is_integer(value: Any) -> bool:
    """An int that is not a bool (``True`` is an int to Python, not a count to anyone)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_flag(value: Any, name: str, *, optional: bool = False) -> None:
    """``value`` is True or False (or None when ``optional``): the text ``"false"`` is not False."""
    if value is None and optional:
        return
    if not isinstance(value, bool):
        raise BrazeValidationError(f"{name} must be True or False, got {value!r}.")


def check_broadcast(broadcast: bool | None, has_users: bool) -> None:
    """Braze's rule: broadcast must be true when no users are listed, and false when they are."""
    check_flag(broadcast, "broadcast", optional=True)
    if broadcast and has_users:
        raise BrazeValidationError("broadcast=True cannot be combined with a list of users or recipients.")
    if not broadcast and not has_users:
        raise BrazeValidationError(
            "No users or recipients are listed: to send to a campaign's segment, a segment_id or an "
            "audience, pass broadcast=True (Braze requires it)."
        )


#: Schedule flags under which ``time`` is the users' local wall clock, sent without a zone.
LOCAL_TIME_FLAGS = ("in_local_time", "at_optimal_time")


def normalize_schedule(value: Any) -> dict[str, Any]:
    """Braze's ``schedule`` object from a dict, a timezone-aware datetime or an ISO-8601 string.

    A plain schedule's ``time`` is sent in UTC (``2026-12-01T09:00:00Z``); a string without an
    offset is taken as UTC, as Braze does. With ``in_local_time`` or ``at_optimal_time``, Braze
    reads ``time`` as each user's local wall clock and wants it without a zone designator: a
    naive datetime or a string without an offset is sent as it is (``2026-12-01T09:00:00``), and
    one with a zone is refused, since no single conversion could be what was meant.
    """
    if isinstance(value, dict):
        unknown = set(value) - {"time", *LOCAL_TIME_FLAGS}
        if unknown:
            raise BrazeValidationError(f"schedule has unknown field(s): {', '.join(sorted(unknown))}.")
        schedule = dict(value)
    else:
        schedule = {"time": value}
    if "time" not in schedule or schedule["time"] is None:
        raise BrazeValidationError("schedule needs a time (ISO-8601 string or timezone-aware datetime).")
    for key in LOCAL_TIME_FLAGS:
        if key in schedule and not isinstance(schedule[key], bool):
            raise BrazeValidationError(f"schedule.{key} must be true or false, got {schedule[key]!r}.")
    local = [key for key in LOCAL_TIME_FLAGS if schedule.get(key)]
    if len(local) > 1:
        raise BrazeValidationError(
            "schedule: in_local_time and at_optimal_time cannot both be true; choose one."
        )
    schedule["time"] = (
        to_wall_clock_iso(schedule["time"], flag=local[0]) if local else to_utc_iso(schedule["time"])
    )
    now = datetime.now(timezone.utc)
    if local:
        # Braze refuses a local-time send whose time has passed; it has passed everywhere once
        # it has in the westernmost zone (UTC-12). Refused here, before the first batch (an
        # optimal-time send is judged the same way). Under a company-zone reading Braze may
        # refuse earlier: schedule local-time sends at least a day ahead
        # (docs/operators/schedule_messages.md).
        wall_clock = datetime.fromisoformat(schedule["time"]).replace(tzinfo=timezone.utc)
        if wall_clock + timedelta(hours=12) < now:
            raise BrazeValidationError(
                f"schedule time {schedule['time']} with {local[0]} has already passed in every time "
                "zone; Braze refuses it. Give a time in the future."
            )
        latest = wall_clock + timedelta(hours=12)
    else:
        latest = parse_utc(schedule["time"], what="schedule time")
        if latest < now:
            raise BrazeValidationError(
                f"schedule time {schedule['time']} has passed; give a time in the future (this "
                "provider refuses a schedule in the past rather than let Braze decide)."
            )
    if latest - now > MAX_SCHEDULE_AHEAD:
        raise BrazeValidationError(
            f"schedule time {schedule['time']} is more than 90 days ahead; Braze schedules messages "
            "up to 90 days in the future."
        )
    return schedule


#: Braze's schedule endpoints take a time "up to 90 days in the future".
MAX_SCHEDULE_AHEAD = timedelta(days=90)


def _require_time_part(text: str, value: Any, what: str) -> None:
    """An ISO-8601 *date and time*: a date alone is refused (Braze asks for a datetime)."""
    if len(text) < 11 or text[10] not in "Tt ":
        raise BrazeValidationError(f"{what} {value!r} is a date without a time; give a date and time.")


def to_wall_clock_iso(value: Any, *, flag: str) -> str:
    """A local wall-clock time without zone (``YYYY-MM-DDTHH:MM:SS``) from a naive datetime or an
    ISO-8601 string without offset; a zone is refused (see :func:`normalize_schedule`)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise BrazeValidationError(f"schedule time {value!r} is not an ISO-8601 date and time.") from None
        _require_time_part(text, value, "schedule time")
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise BrazeValidationError(
            f"schedule time must be an ISO-8601 string or a datetime, got {type(value).__name__}."
        )
    if parsed.tzinfo is not None and parsed.utcoffset() is not None:
        raise BrazeValidationError(
            f"schedule time {value!s} has a time zone, but with {flag} Braze reads the time as each "
            "user's local wall clock and wants it without one: give the wall-clock time, e.g. "
            f"'{parsed.replace(tzinfo=None).isoformat(timespec='seconds')}' or a naive datetime."
        )
    return parsed.replace(tzinfo=None).isoformat(timespec="seconds")


def to_utc_iso(value: Any, *, what: str = "schedule time") -> str:
    """A timezone-aware datetime or an ISO-8601 string (UTC when it has no offset) as
    ``YYYY-MM-DDTHH:MM:SSZ``; anything else is a BrazeValidationError naming ``what``."""
    return parse_utc(value, what=what).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: Any, *, what: str) -> datetime:
    """Like :func:`to_utc_iso`, returning the aware datetime in UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise BrazeValidationError(f"{what} {value!r} is not an ISO-8601 date and time.") from None
        _require_time_part(text, value, what)
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if not isinstance(value, datetime):
        raise BrazeValidationError(
            f"{what} must be an ISO-8601 string or a datetime, got {type(value).__name__}."
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise BrazeValidationError(
            f"{what} {value.isoformat()} has no time zone; pass a timezone-aware datetime."
        )
    return value.astimezone(timezone.utc)


def validate_required_send_id(value: Any) -> str:
    """A send ID that must be given (analytics are fetched per send ID)."""
    if value is None or value == "":
        raise BrazeValidationError(
            "send_id is required: analytics are kept per send ID; pass the send ID the send was "
            "tagged with (or the one Braze generated and answered with)."
        )
    checked = validate_send_id(value)
    assert checked is not None
    return checked


#: Braze's bounds for ``length`` on /sends/data_series (days).
SERIES_LENGTH_RANGE = (1, 100)


def validate_series_length(value: Any) -> int:
    """``length`` of /sends/data_series: a whole number of days from 1 to 100."""
    low, high = SERIES_LENGTH_RANGE
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrazeValidationError(f"length must be a whole number of days ({low} to {high}), got {value!r}.")
    if not low <= value <= high:
        raise BrazeValidationError(f"length must be between {low} and {high} days, got {value}.")
    return value


# ------------------------------------------------------------------------- connected audiences

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
_SUBSCRIPTION_STATUSES = ("opted_in", "subscribed", "unsubscribed")


def validate_audience(value: Any, where: str = "audience") -> Any:
    """A connected audience object: one filter, or ``AND`` / ``OR`` of a non-empty list of them;
    the filters Braze documents (custom_attribute, push_subscription_status,
    email_subscription_status, last_used_app) with their comparisons and values."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise BrazeValidationError(
            f"{where} must be an object with one key: AND, OR or a filter, got {value!r}."
        )
    ((name, inner),) = value.items()
    if name in ("AND", "OR"):
        if not isinstance(inner, list) or not inner:
            raise BrazeValidationError(f"{where}.{name} must be a non-empty list of filters.")
        for position, item in enumerate(inner):
            validate_audience(item, f"{where}.{name}[{position}]")
        return value
    if not isinstance(inner, dict):
        raise BrazeValidationError(f"{where}.{name} must be an object (a dict).")
    comparison, given = inner.get("comparison"), inner.get("value")
    if name == "custom_attribute":
        if (
            not isinstance(inner.get("custom_attribute_name"), str)
            or not inner["custom_attribute_name"].strip()
        ):
            raise BrazeValidationError(f"{where}.custom_attribute needs a custom_attribute_name.")
        if comparison not in _CUSTOM_ATTRIBUTE_COMPARISONS:
            raise BrazeValidationError(f"{where}.custom_attribute: unknown comparison {comparison!r}.")
        if comparison in ("exists", "does_not_exist"):
            return value
        if "value" not in inner:
            raise BrazeValidationError(f"{where}.custom_attribute needs a value with {comparison}.")
        if comparison in ("after", "before"):
            parse_utc(given, what=f"{where}.custom_attribute.value")
        if comparison == "matches_regex" and not isinstance(given, str):
            raise BrazeValidationError(f"{where}.custom_attribute.value must be a string with matches_regex.")
        return value
    if name in ("push_subscription_status", "email_subscription_status"):
        if comparison not in ("is", "is_not"):
            raise BrazeValidationError(f"{where}.{name}.comparison must be is or is_not, got {comparison!r}.")
        if given not in _SUBSCRIPTION_STATUSES:
            raise BrazeValidationError(
                f"{where}.{name}.value must be one of {', '.join(_SUBSCRIPTION_STATUSES)}, got {given!r}."
            )
        return value
    if name == "last_used_app":
        if comparison not in ("after", "before"):
            raise BrazeValidationError(f"{where}.last_used_app.comparison must be after or before.")
        parse_utc(given, what=f"{where}.last_used_app.value")
        return value
    raise BrazeValidationError(
        f"{where}: {name!r} is not a connected audience filter; Braze documents custom_attribute, "
        "push_subscription_status, email_subscription_status and last_used_app."
    )


def check_duration(value: Any, name: str = "min_age") -> timedelta | None:
    """``min_age`` (or ``name``) as a timedelta: a timedelta, or seconds as a number or text."""
    if value is None or value == "" or isinstance(value, timedelta):
        if isinstance(value, timedelta) and value < timedelta(0):
            raise BrazeValidationError(f"{name} must not be negative, got {value!r}.")
        return value or None
    try:
        seconds = float(str(value))
    except ValueError:
        raise BrazeValidationError(f"{name} must be a timedelta or seconds, got {value!r}.") from None
    if not math.isfinite(seconds) or seconds > timedelta.max.total_seconds():
        raise BrazeValidationError(f"{name} must be a finite number of seconds, got {value!r}.")
    if seconds < 0:
        raise BrazeValidationError(f"{name} must not be negative, got {value!r}.")
    return timedelta(seconds=seconds)
