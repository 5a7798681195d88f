"""Braze's messaging objects: what Braze documents as required is checked before anything is
sent, and the sandbox refuses the same messages with Braze's wording."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.messaging import CHANNELS, message_problems, validate_messages
from airflow_provider_braze.operators.messages import ScheduleMessagesOperator, SendMessagesOperator
from airflow_provider_braze.sandbox import BrazeSandbox
from tests.conftest import SOON, VALID_OBJECTS, messages_for, sandbox_call

CAMPAIGN = "sandbox-api-campaign"


def without(channel: str, *fields: str, campaign_id: str | None = CAMPAIGN) -> dict[str, Any]:
    messages = messages_for(channel, campaign_id=campaign_id)
    for field in fields:
        messages[channel].pop(field, None)
    return messages


def changed(channel: str, **fields: Any) -> dict[str, Any]:
    messages = messages_for(channel)
    messages[channel].update(fields)
    return messages


#: Messages Braze would refuse, the channel and field the error must name, and Braze's message.
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("email without app_id", without("email", "app_id"), "email.app_id", "Bad Request"),
    ("email without from", without("email", "from"), "email.from", "Bad Request"),
    (
        "email from without a display name",
        changed("email", **{"from": "news@example.com"}),
        "email.from",
        "Bad Request",
    ),
    (
        "email from without brackets",
        changed("email", **{"from": "News news@example.com"}),
        "email.from",
        "Bad Request",
    ),
    ("email without body or template", without("email", "body"), "email.body", "Bad Request"),
    (
        "email attachment without url",
        changed("email", attachments=[{"file_name": "a.pdf"}]),
        "email.attachments[0]",
        "Bad Request",
    ),
    ("apple push without alert", without("apple_push", "alert"), "apple_push.alert", "Bad Request"),
    (
        "apple push alert without body",
        changed("apple_push", alert={"title": "t"}),
        "apple_push.alert.body",
        "Bad Request",
    ),
    (
        "apple push asset without type",
        changed("apple_push", asset_url="https://x/a.png"),
        "apple_push.asset_file_type",
        "Bad Request",
    ),
    (
        "apple push extra not an object",
        changed("apple_push", extra=["x"]),
        "apple_push.extra",
        "Invalid Extra Push Payload",
    ),
    (
        "apple push extra with aps",
        changed("apple_push", extra={"aps": {}}),
        "apple_push.extra",
        "Invalid Extra Push Payload",
    ),
    ("android push without title", without("android_push", "title"), "android_push.title", "Bad Request"),
    (
        "android push send_to_sync with alert",
        changed("android_push", send_to_sync=True),
        "android_push.alert",
        "Bad Request",
    ),
    (
        "android push extra not an object",
        changed("android_push", extra="x"),
        "android_push.extra",
        "Invalid Extra Push Payload",
    ),
    ("kindle push without alert", without("kindle_push", "alert"), "kindle_push.alert", "Bad Request"),
    ("web push without title", without("web_push", "title"), "web_push.title", "Bad Request"),
    (
        "content card of an unknown type",
        changed("content_card", type="POPUP"),
        "content_card.type",
        "Bad Request",
    ),
    (
        "captioned image card without image",
        changed("content_card", type="CAPTIONED_IMAGE"),
        "content_card.image_url",
        "Bad Request",
    ),
    (
        "content card without expiry",
        without("content_card", "time_to_live"),
        "content_card.time_to_live",
        "Bad Request",
    ),
    (
        "sms without subscription group",
        without("sms", "subscription_group_id"),
        "sms.subscription_group_id",
        "Bad Request",
    ),
    ("webhook without url", without("webhook", "url"), "webhook.url", "Bad Request"),
    (
        "webhook with PATCH",
        changed("webhook", request_method="PATCH"),
        "webhook.request_method",
        "Bad Request",
    ),
    ("whats_app without message", without("whats_app", "message"), "whats_app.message", "Bad Request"),
    (
        "windows universal without text",
        without("windows_universal_push", "toast_text1"),
        "windows_universal_push.toast_text1",
        "Bad Request",
    ),
    ("a channel Braze does not have", {"carrier_pigeon": {"body": "coo"}}, "carrier_pigeon", "Bad Request"),
    ("a LINE message, not checked yet", {"line": {"messages": []}}, "line", "Bad Request"),
    (
        "a campaign without a variation",
        without("email", "message_variation_id"),
        "email.message_variation_id",
        "Message Variant Unspecified",
    ),
    ("no messages at all", {}, "messages", "No message to send"),
]


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_every_documented_channel_has_a_valid_form(channel: str) -> None:
    assert message_problems(messages_for(channel), campaign_id=CAMPAIGN) == []
    assert message_problems(messages_for(channel, campaign_id=None), campaign_id=None) == []


def test_the_valid_forms_cover_every_channel() -> None:
    assert set(VALID_OBJECTS) == set(CHANNELS)


@pytest.mark.parametrize(("case", "messages", "where", "braze"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_message_braze_would_refuse_fails_before_anything_is_sent(
    case: str, messages: dict[str, Any], where: str, braze: str
) -> None:
    with pytest.raises(BrazeValidationError) as err:
        validate_messages(messages, campaign_id=CAMPAIGN)
    assert f"messages.{where}" in str(err.value) or where == "messages"
    assert message_problems(messages, campaign_id=CAMPAIGN)[0].braze_message == braze


def test_exceptions_braze_documents_are_accepted() -> None:
    silent_push = {"apple_push": {"content-available": True, "message_variation_id": "v"}}
    templated_email = without("email", "body")
    templated_email["email"]["email_template_id"] = "tpl-1"
    sync_push = {"android_push": {"send_to_sync": True, "message_variation_id": "v"}}
    # Braze supports an expiry at most 30 days ahead (content_cards_object).
    soon = (datetime.now(timezone.utc) + timedelta(days=29)).isoformat(timespec="seconds")
    expiring_card = changed("content_card", time_to_live=None, expire_at=soon)
    for messages in (silent_push, templated_email, sync_push, expiring_card):
        assert message_problems(messages, campaign_id=CAMPAIGN) == []
    # Without a campaign, no variation is needed; fields Braze may add later pass through.
    assert message_problems(changed("email", future_field=1), campaign_id=None) == []


@pytest.mark.parametrize(("channel", "name"), [("line", "LINE"), ("kakao", "KakaoTalk")])
def test_braze_channels_not_checked_yet_are_refused_by_name(channel: str, name: str) -> None:
    with pytest.raises(BrazeValidationError) as err:
        validate_messages({channel: {"any": "thing"}}, campaign_id=None)
    assert f"is Braze's {name} object, which this provider cannot check" in str(err.value)
    assert "is not a Braze messaging object" not in str(err.value)


def test_every_problem_is_named_at_once() -> None:
    messages = {**without("email", "from", "app_id"), **without("sms", "body")}
    with pytest.raises(BrazeValidationError) as err:
        validate_messages(messages, campaign_id=CAMPAIGN)
    for where in ("messages.email.from", "messages.email.app_id", "messages.sms.body"):
        assert where in str(err.value)


# ---------------------------------------------------------------------------- the operators


@pytest.mark.parametrize("operator", [SendMessagesOperator, ScheduleMessagesOperator])
def test_the_operators_refuse_before_reading_recipients_or_sending(
    braze_sandbox: BrazeSandbox, tmp_path: Any, operator: Any
) -> None:
    extra = {"schedule": f"{SOON}T00:00:00Z"} if operator is ScheduleMessagesOperator else {}
    op = operator(
        task_id="send",
        campaign_id=CAMPAIGN,
        recipients=str(tmp_path / "does-not-exist.csv"),  # never read: the messages fail first
        messages=without("email", "from"),
        checkpoint=str(tmp_path),
        **extra,
    )
    with pytest.raises(BrazeValidationError, match=r"messages\.email\.from"):
        op.execute({"ti": mock.MagicMock(dag_id="d", task_id="send", run_id="r", map_index=-1)})
    assert braze_sandbox.ledger() == []


# ---------------------------------------------------------------------------- the sandbox


def send(sandbox: BrazeSandbox, messages: dict[str, Any], campaign_id: str | None = CAMPAIGN) -> Any:
    body: dict[str, Any] = {"external_user_ids": ["u1"], "messages": messages}
    if campaign_id is not None:
        body["campaign_id"] = campaign_id
    return sandbox_call(sandbox, "/messages/send", body)


@pytest.mark.parametrize(("case", "messages", "where", "braze"), REFUSED, ids=[c[0] for c in REFUSED])
def test_the_sandbox_refuses_what_braze_would(
    braze_sandbox: BrazeSandbox, case: str, messages: dict[str, Any], where: str, braze: str
) -> None:
    answer = send(braze_sandbox, copy.deepcopy(messages))
    assert answer.status_code == 400
    assert answer.json()["message"] == braze
    assert braze_sandbox.state.deliveries() == {}


def test_the_sandbox_accepts_every_valid_channel(braze_sandbox: BrazeSandbox) -> None:
    answer = send(braze_sandbox, messages_for(*CHANNELS))
    assert answer.status_code == 201, answer.text


def test_the_sandbox_checks_variations_against_the_campaign(braze_sandbox: BrazeSandbox) -> None:
    unknown = changed("email", message_variation_id="no-such-variation")
    assert send(braze_sandbox, unknown).json()["message"] == "Invalid Message Variant"
    crossed = changed("email", message_variation_id=f"{CAMPAIGN}-apple-push")
    assert send(braze_sandbox, crossed).json()["message"] == "Mismatched Message Type"
    braze_sandbox.state.add_campaign(
        "spring", variations={"spring-email-a": "email", "spring-email-b": "email"}
    )
    braze_sandbox.state.send_ids[("sandbox-workspace", "spring", "s")] = 0.0
    ok = changed("email", message_variation_id="spring-email-b")
    assert send(braze_sandbox, ok, campaign_id="spring").status_code == 201
    assert send(braze_sandbox, messages_for("email", campaign_id=None), campaign_id=None).status_code == 201
