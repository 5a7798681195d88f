"""Braze's messaging objects (the ``messages`` of ``/messages/send`` and
``/messages/schedule/create``) and their documented rules, in one place.

The send operators and the hook check ``messages`` with :func:`validate_messages` before the
first request, so a message Braze would refuse fails the task at once, naming the channel and
the field, and sends nothing. The sandbox refuses such messages too, from its own rule table
(``sandbox/rules.py``), never from this module: a mistake here must show up against it.

Sources: braze-docs ``_docs/_api/objects_filters/messaging/*.md`` (one page per object) and
``_docs/_api/errors.md`` (the fatal errors: ``Message Variant Unspecified``, ``Invalid Extra
Push Payload``...). Fields the rules do not name are passed through: Braze adds optional fields
over time, and refusing them here would refuse valid messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_braze.exceptions import BrazeValidationError

#: Braze's 400 message when a campaign ID is given and a messaging object has no variation.
VARIANT_UNSPECIFIED = "Message Variant Unspecified"
#: Braze's 400 message when ``extra`` of a push object is not a dictionary.
INVALID_EXTRA = "Invalid Extra Push Payload"
#: Braze's generic 400 message.
BAD_REQUEST = "Bad Request"
#: Braze's 400 messages for push payloads over the size Apple and Google allow (errors page).
APPLE_TOO_LONG = "Apple Push Length Exceeded"
ANDROID_TOO_LONG = "Android Push Length Exceeded"
APPLE_MAX_BYTES = 1_912
ANDROID_MAX_BYTES = 4_000
#: Content cards expire at most 30 days ahead (content_cards_object).
CONTENT_CARD_MAX_AGE = timedelta(days=30)

#: An email address, checked no more strictly than "something@something".
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")
_BUTTON_ACTIONS = ("OPEN_APP", "URI", "DEEP_LINK", "CLOSE")
_FROM = re.compile(r"^\s*[^<>]*\S[^<>]*<[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+>\s*$")
_EXTRA_FORBIDDEN_KEYS = ("ab", "aps")


@dataclass(frozen=True)
class Problem:
    """One way a messaging object breaks Braze's rules."""

    channel: str
    field: str | None
    text: str
    #: The ``message`` Braze answers with (a fatal error's name, or ``Bad Request``).
    braze_message: str = BAD_REQUEST

    def __str__(self) -> str:
        where = f"messages.{self.channel}" + (f".{self.field}" if self.field else "")
        return f"{where}: {self.text}"


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _required(obj: dict[str, Any], channel: str, *fields: str, unless: str | None = None) -> list[Problem]:
    return [
        Problem(
            channel,
            name,
            "is required" + (f" (unless {unless})" if unless else "") + ", as a non-empty string",
        )
        for name in fields
        if not _text(obj.get(name))
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(
    obj: dict[str, Any], channel: str, kind: type | tuple[type, ...], what: str, *names: str
) -> list[Problem]:
    """Optional fields that, when given, must be of ``kind`` (a bool is no number here)."""
    return [
        Problem(channel, name, f"must be {what}, got {obj[name]!r}")
        for name in names
        if obj.get(name) is not None
        and (not isinstance(obj[name], kind) or (kind is not bool and isinstance(obj[name], bool)))
    ]


def _one_of(
    obj: dict[str, Any], channel: str, name: str, choices: tuple[str, ...], *, required: bool
) -> list[Problem]:
    value = obj.get(name)
    if value is None and not required:
        return []
    if value not in choices:
        return [Problem(channel, name, f"must be one of {', '.join(choices)}, got {value!r}")]
    return []


def _extra(obj: dict[str, Any], channel: str, name: str = "extra") -> list[Problem]:
    if name not in obj or obj[name] is None:
        return []
    value = obj[name]
    if not isinstance(value, dict):
        return [Problem(channel, name, "must be an object (a dict)", INVALID_EXTRA)]
    forbidden = [key for key in _EXTRA_FORBIDDEN_KEYS if key in value]
    if channel == "apple_push" and forbidden:
        return [Problem(channel, name, f"must not contain the key(s) {', '.join(forbidden)}", INVALID_EXTRA)]
    return []


def _email(obj: dict[str, Any]) -> list[Problem]:
    problems = _required(obj, "email", "app_id")
    sender = obj.get("from")
    if not isinstance(sender, str) or not _FROM.match(sender):
        problems.append(
            Problem("email", "from", f'is required, as "Display Name <address@example.com>", got {sender!r}')
        )
    if not _text(obj.get("email_template_id")):
        problems += _required(obj, "email", "body", unless="email_template_id is given")
    attachments = obj.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list):
            problems.append(Problem("email", "attachments", "must be a list of {file_name, url} objects"))
        else:
            for position, item in enumerate(attachments):
                if not isinstance(item, dict) or not (
                    _text(item.get("file_name")) and _text(item.get("url"))
                ):
                    problems.append(
                        Problem("email", f"attachments[{position}]", "needs a file_name and a url")
                    )
    reply_to = obj.get("reply_to")
    if reply_to is not None and not (
        reply_to == "NO_REPLY_TO" or (isinstance(reply_to, str) and ADDRESS.match(reply_to.strip()))
    ):
        problems.append(
            Problem("email", "reply_to", f'must be an email address or "NO_REPLY_TO", got {reply_to!r}')
        )
    problems += _typed(obj, "email", dict, "an object (a dict)", "extras", "headers")
    return problems + _typed(obj, "email", bool, "true or false", "should_inline_css")


def _apple_push(obj: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    silent = obj.get("content-available") is True
    alert = obj.get("alert")
    if isinstance(alert, dict):
        if not silent and not _text(alert.get("body")):
            problems.append(
                Problem("apple_push", "alert.body", "is required unless content-available is true")
            )
    elif not silent and not _text(alert):
        problems.append(
            Problem(
                "apple_push",
                "alert",
                "is required (a string or an alert object) unless content-available is true",
            )
        )
    if obj.get("asset_url") is not None:
        problems += _one_of(
            obj,
            "apple_push",
            "asset_file_type",
            ("aif", "gif", "jpg", "m4a", "mp3", "mp4", "png", "wav"),
            required=True,
        )
    problems += _one_of(
        obj,
        "apple_push",
        "interruption_level",
        ("passive", "active", "time-sensitive", "critical"),
        required=False,
    )
    problems += _typed(obj, "apple_push", int, "an integer", "badge")
    if obj.get("expiry") is not None and _iso_time(obj["expiry"]) is None:
        problems.append(Problem("apple_push", "expiry", "must be an ISO-8601 date string"))
    if isinstance(alert, dict):
        for name in ("loc_args", "title_loc_args"):
            args = alert.get(name)
            if args is not None and not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
                problems.append(Problem("apple_push", f"alert.{name}", "must be a list of strings"))
    priority = obj.get("apns_priority")
    if priority is not None and not (_is_int(priority) and 1 <= priority <= 10):
        problems.append(
            Problem("apple_push", "apns_priority", f"must be an integer from 1 to 10, got {priority!r}")
        )
    score = obj.get("relevance_score")
    if score is not None and not (
        isinstance(score, (int, float)) and not isinstance(score, bool) and 0.0 <= score <= 1.0
    ):
        problems.append(
            Problem("apple_push", "relevance_score", f"must be a number from 0.0 to 1.0, got {score!r}")
        )
    problems += _apple_buttons(obj)
    return (
        problems
        + _extra(obj, "apple_push")
        + _payload_size(obj, "apple_push", APPLE_MAX_BYTES, APPLE_TOO_LONG)
    )


def _apple_buttons(obj: dict[str, Any]) -> list[Problem]:
    """Push action buttons need the ``category`` that shows them; each needs an ``action_id``;
    for a category the app defines (not Braze's ``ab_cat_...``), ``action`` URI or DEEP_LINK and
    a ``uri`` too (apple_object)."""
    buttons = obj.get("buttons")
    if buttons is None:
        return []
    if not isinstance(buttons, list):
        return [Problem("apple_push", "buttons", "must be a list of button objects")]
    category = obj.get("category")
    if not _text(category):
        return [Problem("apple_push", "category", "is required to use buttons")]
    problems: list[Problem] = []
    for position, button in enumerate(buttons):
        where = f"buttons[{position}]"
        if not isinstance(button, dict) or not _text(button.get("action_id")):
            problems.append(Problem("apple_push", where, "needs an action_id"))
        elif str(category).startswith("ab_cat_"):
            problems += _one_of(button, "apple_push", "action", _BUTTON_ACTIONS, required=False)
        else:
            if button.get("action") not in ("URI", "DEEP_LINK"):
                problems.append(
                    Problem(
                        "apple_push",
                        f"{where}.action",
                        "must be URI or DEEP_LINK for a category your app defines",
                    )
                )
            if not _text(button.get("uri")):
                problems.append(
                    Problem("apple_push", f"{where}.uri", "is required for a category your app defines")
                )
    return problems


def _android_extras(obj: dict[str, Any]) -> list[Problem]:
    """Android push action buttons (each a ``text``) and conversation push data."""
    problems: list[Problem] = []
    buttons = obj.get("buttons")
    if buttons is not None:
        if not isinstance(buttons, list):
            problems.append(Problem("android_push", "buttons", "must be a list of button objects"))
        else:
            for position, button in enumerate(buttons):
                if not isinstance(button, dict) or not _text(button.get("text")):
                    problems.append(Problem("android_push", f"buttons[{position}]", "needs a text"))
                else:
                    problems += _one_of(button, "android_push", "action", _BUTTON_ACTIONS, required=False)
    data = obj.get("conversation_data")
    if data is None:
        return problems
    if not isinstance(data, dict):
        return [*problems, Problem("android_push", "conversation_data", "must be an object (a dict)")]
    problems += [
        Problem("android_push", f"conversation_data.{name}", "is required, as a non-empty string")
        for name in ("shortcut_id", "reply_person_id")
        if not _text(data.get(name))
    ]
    messages, persons = data.get("messages"), data.get("persons")
    if not (
        isinstance(messages, list)
        and all(
            isinstance(m, dict)
            and _text(m.get("text"))
            and _is_int(m.get("timestamp"))
            and _text(m.get("person_id"))
            for m in messages
        )
    ):
        problems.append(
            Problem(
                "android_push",
                "conversation_data.messages",
                "is required: each with text, timestamp (an integer) and person_id",
            )
        )
    if not (
        isinstance(persons, list)
        and all(isinstance(p, dict) and _text(p.get("id")) and _text(p.get("name")) for p in persons)
    ):
        problems.append(
            Problem("android_push", "conversation_data.persons", "is required: each with id and name")
        )
    return problems


def _payload_size(obj: dict[str, Any], channel: str, limit: int, braze_message: str) -> list[Problem]:
    """Braze refuses a push object whose JSON payload is over ``limit`` bytes. Counted as the
    object's compact UTF-8 JSON, the fewest bytes it can take, so never more leniently than Braze."""
    size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size <= limit:
        return []
    return [Problem(channel, None, f"is {size} bytes as JSON; Braze allows at most {limit}", braze_message)]


def _android_push(obj: dict[str, Any]) -> list[Problem]:
    size = _payload_size(obj, "android_push", ANDROID_MAX_BYTES, ANDROID_TOO_LONG) + _android_extras(obj)
    if obj.get("send_to_sync") is True:
        return (
            [
                Problem("android_push", name, "must not be set when send_to_sync is true")
                for name in ("alert", "title")
                if obj.get(name) is not None
            ]
            + _extra(obj, "android_push")
            + size
        )
    return _required(obj, "android_push", "alert", "title") + _extra(obj, "android_push") + size


def _alert_and_title(channel: str) -> Any:
    def check(obj: dict[str, Any]) -> list[Problem]:
        return _required(obj, channel, "alert", "title") + _extra(obj, channel)

    return check


def _content_card(obj: dict[str, Any]) -> list[Problem]:
    problems = _one_of(obj, "content_card", "type", ("CLASSIC", "CAPTIONED_IMAGE", "BANNER"), required=True)
    problems += _required(obj, "content_card", "title", "description")
    if obj.get("type") in ("CAPTIONED_IMAGE", "BANNER"):
        problems += _required(obj, "content_card", "image_url")
    if obj.get("time_to_live") is None and obj.get("expire_at") is None:
        problems.append(Problem("content_card", "time_to_live", "or expire_at is required"))
    problems += _typed(obj, "content_card", bool, "true or false", "pinned")
    return problems + _card_expiry(obj) + _extra(obj, "content_card")


def _iso_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None


def _card_expiry(obj: dict[str, Any]) -> list[Problem]:
    """Braze supports a content card expiry of at most 30 days ahead."""
    problems: list[Problem] = []
    ttl = obj.get("time_to_live")
    if ttl is not None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
            problems.append(
                Problem("content_card", "time_to_live", "must be a positive whole number of seconds")
            )
        elif ttl > CONTENT_CARD_MAX_AGE.total_seconds():
            problems.append(
                Problem("content_card", "time_to_live", "is more than 30 days; Braze's maximum is 30")
            )
    expire_at = obj.get("expire_at")
    if expire_at is None:
        return problems
    expires = _iso_time(expire_at)
    if expires is None:
        return [*problems, Problem("content_card", "expire_at", "must be an ISO-8601 date string")]
    expires = expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)
    local = obj.get("expire_in_local_time") is True
    # A local wall clock is reached last in UTC-12 and first in UTC+14.
    latest = expires + timedelta(hours=12) if local else expires
    earliest = expires - timedelta(hours=14) if local else expires
    now = datetime.now(timezone.utc)
    if latest - now > CONTENT_CARD_MAX_AGE:
        problems.append(
            Problem("content_card", "expire_at", "is more than 30 days away; Braze's maximum is 30")
        )
    elif earliest <= now:
        problems.append(Problem("content_card", "expire_at", "has passed (somewhere, for a local time)"))
    return problems


def _sms(obj: dict[str, Any]) -> list[Problem]:
    problems = _required(obj, "sms", "subscription_group_id", "body", "app_id")
    return problems + _typed(obj, "sms", list, "a list", "media_items")


def _webhook(obj: dict[str, Any]) -> list[Problem]:
    problems = _required(obj, "webhook", "url")
    problems += _one_of(obj, "webhook", "request_method", ("POST", "PUT", "DELETE", "GET"), required=True)
    headers = obj.get("request_headers")
    if headers is not None and not isinstance(headers, dict):
        problems.append(Problem("webhook", "request_headers", "must be an object (a dict)"))
    return problems + _typed(obj, "webhook", str, "a string", "body")


def _whats_app(obj: dict[str, Any]) -> list[Problem]:
    problems = _required(obj, "whats_app", "app_id", "subscription_group_id")
    problems += _one_of(
        obj,
        "whats_app",
        "message_type",
        (
            "template_message",
            "text_response_message",
            "text_image_response_message",
            "quick_reply_response_message",
            "list_response_message",
            "flow_response_message",
        ),
        required=True,
    )
    if not isinstance(obj.get("message"), dict):
        problems.append(Problem("whats_app", "message", "is required, as an object for the message_type"))
        return problems
    return problems + _whats_app_message(obj["message"], obj.get("message_type"))


#: The fields each WhatsApp message_type requires in ``message`` (whats_app_object).
_WHATS_APP_FIELDS = {
    "template_message": ("template_name", "template_language_code"),
    "text_response_message": ("body",),
    "text_image_response_message": ("image_uri",),
    "quick_reply_response_message": ("body",),
    "list_response_message": ("body",),
    "flow_response_message": ("body",),
}
#: A WhatsApp flow button's caption is at most this long (whats_app_object).
FLOW_CAPTION_MAX = 20


def _whats_app_message(message: dict[str, Any], kind: Any) -> list[Problem]:
    problems = [
        Problem("whats_app", f"message.{name}", f"is required for {kind}, as a non-empty string")
        for name in _WHATS_APP_FIELDS.get(kind, ())
        if not _text(message.get(name))
    ]
    if kind == "quick_reply_response_message":
        buttons = message.get("buttons")
        if not (
            isinstance(buttons, list)
            and buttons
            and all(isinstance(b, dict) and _text(b.get("text")) for b in buttons)
        ):
            problems.append(Problem("whats_app", "message.buttons", "is required: buttons, each with a text"))
        if message.get("header_image_uri") is not None and message.get("header_text") is not None:
            problems.append(
                Problem("whats_app", "message", "takes header_image_uri or header_text, not both")
            )
    if kind == "list_response_message":
        problems += _whats_app_list(message.get("list"))
    if kind == "flow_response_message":
        button = message.get("flow_button")
        if not (isinstance(button, dict) and _text(button.get("caption")) and _text(button.get("flow_id"))):
            problems.append(
                Problem("whats_app", "message.flow_button", "is required, with a caption and a flow_id")
            )
        elif len(button["caption"]) > FLOW_CAPTION_MAX:
            problems.append(
                Problem(
                    "whats_app", "message.flow_button.caption", f"is at most {FLOW_CAPTION_MAX} characters"
                )
            )
    if kind == "template_message":
        # "only zero or one header variables"; "only one button variable can be specified".
        for name in ("header_variables", "button_variables"):
            variables = message.get(name)
            if variables is None:
                continue
            if not isinstance(variables, dict):
                problems.append(Problem("whats_app", f"message.{name}", "must be an object (a dict)"))
            elif len(variables) > 1:
                problems.append(
                    Problem(
                        "whats_app",
                        f"message.{name}",
                        f"has {len(variables)} variables; Braze takes at most one",
                    )
                )
    return problems


def _whats_app_list(value: Any) -> list[Problem]:
    """A list message: a button text and at least one section; at most 10 rows in all."""
    if not isinstance(value, dict):
        return [Problem("whats_app", "message.list", "is required, as a list object")]
    problems = (
        []
        if _text(value.get("list_button_text"))
        else [Problem("whats_app", "message.list.list_button_text", "is required")]
    )
    sections = value.get("list_sections")
    if not isinstance(sections, list) or not sections:
        return [*problems, Problem("whats_app", "message.list.list_sections", "needs at least one section")]
    rows = 0
    for position, section in enumerate(sections):
        where = f"message.list.list_sections[{position}]"
        section_rows = section.get("list_rows") if isinstance(section, dict) else None
        if not (
            isinstance(section, dict)
            and _text(section.get("section_title"))
            and isinstance(section_rows, list)
        ):
            problems.append(Problem("whats_app", where, "needs a section_title and list_rows"))
            continue
        rows += len(section_rows)
        if not all(isinstance(row, dict) and _text(row.get("row_title")) for row in section_rows):
            problems.append(Problem("whats_app", where, "needs a row_title in every row"))
    if rows > 10:
        problems.append(Problem("whats_app", "message.list", f"has {rows} rows; Braze allows at most 10"))
    return problems


def _windows_phone8(obj: dict[str, Any]) -> list[Problem]:
    problems = _required(obj, "windows_phone8_push", "toast_content")
    return problems + _one_of(obj, "windows_phone8_push", "push_type", ("toast",), required=False)


def _windows_universal(obj: dict[str, Any]) -> list[Problem]:
    problems = _one_of(
        obj,
        "windows_universal_push",
        "push_type",
        tuple(f"toast_text_0{n}" for n in range(1, 5))
        + tuple(f"toast_image_and_text_0{n}" for n in range(1, 5)),
        required=True,
    )
    return problems + _required(obj, "windows_universal_push", "toast_text1")


#: Every messaging object Braze documents, and the check of its required fields.
CHANNELS = {
    "email": _email,
    "apple_push": _apple_push,
    "android_push": _android_push,
    "kindle_push": _alert_and_title("kindle_push"),
    "web_push": _alert_and_title("web_push"),
    "content_card": _content_card,
    "sms": _sms,
    "webhook": _webhook,
    "whats_app": _whats_app,
    "windows_phone8_push": _windows_phone8,
    "windows_universal_push": _windows_universal,
}

#: Messaging objects Braze has that this provider does not check yet (their required fields are
#: not in the documentation it was built from): refused, by name, rather than sent unchecked.
NOT_YET_CHECKED: dict[str, str] = {"line": "LINE", "kakao": "KakaoTalk"}


def message_problems(messages: Any, *, campaign_id: str | None) -> list[Problem]:
    """Every way ``messages`` breaks Braze's documented rules (empty if none)."""
    if not isinstance(messages, dict) or not messages:
        return [
            Problem(
                "*",
                None,
                "messages must be a non-empty object of messaging objects by channel",
                "No message to send",
            )
        ]
    problems: list[Problem] = []
    for channel, obj in messages.items():
        check = CHANNELS.get(channel)
        if check is None and channel in NOT_YET_CHECKED:
            problems.append(
                Problem(
                    channel,
                    None,
                    f"is Braze's {NOT_YET_CHECKED[channel]} object, which this provider cannot check "
                    f"against Braze's required fields yet, so it does not send it; supported: "
                    f"{', '.join(CHANNELS)}",
                )
            )
            continue
        if check is None:
            problems.append(
                Problem(
                    str(channel),
                    None,
                    f"is not a Braze messaging object; known: {', '.join(CHANNELS)}",
                )
            )
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(channel, None, "must be an object (a dict)"))
            continue
        problems += check(obj)
        variation = obj.get("message_variation_id")
        if campaign_id is not None and not _text(variation):
            problems.append(
                Problem(
                    channel,
                    "message_variation_id",
                    "is required with a campaign_id: the variation of the campaign this message is "
                    "tracked under (Braze answers 400 Message Variant Unspecified without it)",
                    VARIANT_UNSPECIFIED,
                )
            )
        elif variation is not None and not _text(variation):
            problems.append(Problem(channel, "message_variation_id", "must be a non-empty string"))
    return problems


def validate_messages(messages: Any, *, campaign_id: str | None) -> dict[str, Any]:
    """Return ``messages`` if Braze would accept it, else raise BrazeValidationError listing
    every problem (channel and field)."""
    problems = message_problems(messages, campaign_id=campaign_id)
    if problems:
        raise BrazeValidationError(
            "Braze would refuse these messages: " + "; ".join(str(p) for p in problems) + "."
        )
    return dict(messages)
