"""The sandbox's made-up engagement for experiments: driven by content and audience, by seed;
and a content experiment compared end to end on it, by send ID and by message variation."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.analytics import CHANNEL_METRICS, send_analytics_rows
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.operators.analytics import CompareSendsOperator
from airflow_provider_braze.sandbox import BrazeSandbox, SandboxState
from airflow_provider_braze.sandbox.analytics import audience_print, content_lifts, variation_stats
from tests.conftest import VALID_OBJECTS, messages_for

CAMPAIGN = "sandbox-api-campaign"


def email(subject: str, variation: str = f"{CAMPAIGN}-email") -> dict[str, Any]:
    return {"email": {**VALID_OBJECTS["email"], "subject": subject, "message_variation_id": variation}}


def send(hook: BrazeHook, send_id: str | None, users: list[str], messages: dict[str, Any]) -> None:
    for start in range(0, len(users), 50):
        hook.send_messages(
            CAMPAIGN, messages=messages, external_user_ids=users[start : start + 50], send_id=send_id
        )


def email_row(hook: BrazeHook, send_id: str, **match: Any) -> dict[str, Any]:
    rows = send_analytics_rows(
        hook.get_send_analytics(CAMPAIGN, send_id, 1), campaign_id=CAMPAIGN, send_id=send_id
    )
    (row,) = [r for r in rows if r["channel"] == "email" and all(r[k] == v for k, v in match.items())]
    return row


@pytest.mark.parametrize("channel", sorted({*CHANNEL_METRICS} - {"in_app_message", "trigger_in_app_message"}))
def test_every_channels_counts_are_consistent(channel: str) -> None:
    for seed in range(30):
        stats = variation_stats(f"seed-{seed}", channel, 5_000, content_lifts(seed, f"content-{seed}"))
        assert set(CHANNEL_METRICS[channel]) <= set(stats)
        assert all(isinstance(v, (int, float)) and v >= 0 for v in stats.values())
        assert stats.get("delivered", 0) <= stats["sent"]
        for part, whole in (
            ("unique_opens", "delivered"),
            ("unique_clicks", "unique_opens"),
            ("direct_opens", "delivered"),
            ("body_clicks", "direct_opens"),
            ("read", "delivered"),
            ("unique_clicks", "unique_impressions"),
            ("unique_opens", "opens"),
            ("unique_clicks", "clicks"),
        ):
            if part in stats and whole in stats:
                assert stats[part] <= stats[whole], (part, whole, stats)
        assert stats["conversions"] <= stats["unique_recipients"] == stats["sent"]


def test_content_decides_performance_the_seed_decides_how() -> None:
    assert content_lifts(None, "abc") == content_lifts(None, "abc")
    assert content_lifts(None, "abc") != content_lifts(None, "abd")
    assert content_lifts(1, "abc") != content_lifts(2, "abc")
    lifts = [content_lifts(None, f"content-{n}")[0] for n in range(2000)]
    assert all(0.6 <= lift <= 1.7 for lift in lifts)
    assert 0.95 < sorted(lifts)[1000] < 1.05  # centred on the channel's typical rate


def test_audience_print_is_order_free_and_adds_up_batch_by_batch() -> None:
    users = [f"u{n}" for n in range(100)]
    assert audience_print(users) == audience_print(reversed(users))
    assert audience_print(users[:40]) ^ audience_print(users[40:]) == audience_print(users)
    assert audience_print(users[:99]) != audience_print(users)


def test_same_content_and_audience_give_the_same_numbers_across_sandboxes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = [f"user-{n}" for n in range(500)]
    rows = []
    for _ in range(2):
        with BrazeSandbox(state=SandboxState(seed=7)) as sandbox:
            monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", sandbox.connection_json())
            hook = BrazeHook()
            hook.create_send_id(CAMPAIGN, "exp-1")
            send(hook, "exp-1", users, email("Hello"))
            rows.append(email_row(hook, "exp-1"))
    assert rows[0] == rows[1]


def test_variants_differ_by_content_not_by_chance(braze_sandbox: BrazeSandbox) -> None:
    hook = BrazeHook()
    users = [f"user-{n}" for n in range(4000)]
    for send_id, subject, group in (
        ("same-1", "Hello", users[:2000]),
        ("same-2", "Hello", users[2000:]),
        ("other", "Hand-picked for you: 3 new arrivals", users[:2000]),
    ):
        hook.create_send_id(CAMPAIGN, send_id)
        send(hook, send_id, group, email(subject))
    same_1, same_2, other = (email_row(hook, s) for s in ("same-1", "same-2", "other"))
    # Same content, other people: close (binomial noise only). Other content: its own rate.
    lift_hello = content_lifts(None, _fingerprint("Hello"))[0]
    lift_other = content_lifts(None, _fingerprint("Hand-picked for you: 3 new arrivals"))[0]
    for row in (same_1, same_2):
        assert abs(row["unique_opens"] / row["delivered"] - 0.25 * lift_hello) < 0.04
    assert abs(other["unique_opens"] / other["delivered"] - 0.25 * lift_other) < 0.04
    assert same_1["unique_opens"] != same_2["unique_opens"]  # other people, other draws


def _fingerprint(subject: str) -> str:
    from airflow_provider_braze.sandbox.analytics import content_of

    (fingerprint,) = content_of(email(subject)).values()
    return fingerprint


@pytest.mark.parametrize("variation_key", ["variation_name", "variation_api_id"])
def test_variations_within_one_send_id_compared_end_to_end(
    braze_sandbox: BrazeSandbox, variation_key: str
) -> None:
    """One send ID, each variant its own message variation: Braze reports them per variation,
    by name (its docs) or by API ID (the sandbox offers both), and the comparison finds them."""
    braze_sandbox.state.set_behaviours(analytics_variation_key=variation_key)
    hook = BrazeHook()
    hook.create_send_id(CAMPAIGN, "one-send")
    # 6,000 a variant: the open rates differ by about 3.7 points, which 1,500 a variant showed
    # on some days only (the sandbox's draws are seeded by the day).
    users = [f"user-{n}" for n in range(12_000)]
    variations = {"control": f"{CAMPAIGN}-email", "b": f"{CAMPAIGN}-email-2"}
    send(hook, "one-send", users[:6000], email("Hello", variations["control"]))
    send(hook, "one-send", users[6000:], email("Hand-picked for you: 3 new arrivals", variations["b"]))
    if variation_key == "variation_api_id":
        sends = {n: {"send_id": "one-send", "message_variation_id": v} for n, v in variations.items()}
    else:
        names = {n: braze_sandbox.state.variation_name(CAMPAIGN, v) for n, v in variations.items()}
        sends = {n: {"send_id": "one-send", "variation_name": name} for n, name in names.items()}
    op = CompareSendsOperator(
        task_id="compare", campaign_id=CAMPAIGN, sends=sends, primary_metric="opens", checkpoint=None
    )
    summary = op.execute({"ti": mock.MagicMock()})
    assert {n: v["recipients"] for n, v in summary["variants"].items()} == {"control": 6000, "b": 6000}
    assert summary["verdicts"]["b"].startswith("b beats control on opens")


def test_messages_of_other_channels_still_have_their_statistics(braze_sandbox: BrazeSandbox) -> None:
    hook = BrazeHook()
    hook.create_send_id(CAMPAIGN, "push")
    send(hook, "push", [f"u{n}" for n in range(300)], messages_for("apple_push", "sms"))
    rows = send_analytics_rows(
        hook.get_send_analytics(CAMPAIGN, "push", 1), campaign_id=CAMPAIGN, send_id="push"
    )
    by_channel = {r["channel"]: r for r in rows if r["sent"]}
    assert set(by_channel) == {"ios_push", "sms"}
    assert by_channel["ios_push"]["direct_opens"] <= by_channel["ios_push"]["delivered"] <= 300
