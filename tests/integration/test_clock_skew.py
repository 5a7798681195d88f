"""A worker whose clock is 30 s off Braze's paces a send right (the sandbox runs the skewed clock)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from unittest import mock

import pytest

from airflow_provider_braze.operators.messages import SendMessagesOperator
from airflow_provider_braze.sandbox import BrazeSandbox, email_message

pytestmark = pytest.mark.integration

USERS = [f"user-{i}" for i in range(6_000)]


@pytest.mark.parametrize("braze_behind_by", [30.0, -30.0])
def test_pacing_corrects_for_clock_skew_and_stays_exactly_once(
    braze_sandbox: BrazeSandbox, tmp_path: Path, braze_behind_by: float
) -> None:
    state = braze_sandbox.state
    state.clock_offset = -braze_behind_by  # the worker is ahead of (or behind) Braze by 30 s
    state.set_rate_limit("shared", 30, 2)  # 120 requests: four windows and more
    state.send_ids[("sandbox-workspace", "sandbox-api-campaign", "skew")] = 0.0
    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        send_id="skew",
        recipients=USERS,
        messages=email_message(),
        checkpoint=str(tmp_path),
        concurrency=4,
    )
    summary = op.execute({"ti": mock.MagicMock(dag_id="skew", task_id="send", run_id="r", map_index=-1)})
    assert summary["complete"] is True
    assert state.deliveries("sandbox-api-campaign", "skew") == Counter(USERS)
    statuses = state.statuses()["/messages/send"]
    share = statuses.get("429", 0) / sum(statuses.values())
    assert share < 0.05, statuses


@pytest.mark.parametrize(("limit", "window", "concurrency"), [(5, 1, 32), (30, 2, 32)])
def test_a_small_limit_and_a_large_concurrency_draw_no_burst(
    braze_sandbox: BrazeSandbox, tmp_path: Path, limit: int, window: int, concurrency: int
) -> None:
    """No burst before the first answer (one request until the limits are known), none when a
    window resets (windows are told apart by Braze's reset epoch, whatever Date's rounding)."""
    state = braze_sandbox.state
    state.set_rate_limit("shared", limit, window)
    braze_sandbox.set_faults(latency_ms=50)
    users = USERS[: 30 * limit // window * 50 // 10]
    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        recipients=users,
        messages=email_message(),
        checkpoint=str(tmp_path),
        concurrency=concurrency,
    )
    summary = op.execute({"ti": mock.MagicMock(dag_id="burst", task_id="send", run_id="r", map_index=-1)})
    assert summary["complete"] is True
    assert state.deliveries("sandbox-api-campaign") == Counter(users)
    statuses = state.statuses()["/messages/send"]
    assert statuses.get("429", 0) / sum(statuses.values()) < 0.05, statuses
