"""Every bad argument raises BrazeValidationError (a ValueError that fails the task without
retries), whichever operator or helper is given it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_braze.exceptions import BrazeValidationError


def _send_messages_dry_run() -> Any:
    from airflow_provider_braze.operators.messages import SendMessagesOperator

    return SendMessagesOperator(task_id="t", recipients=["u"], messages={}, dry_run="yes")


def _create_send_id_dry_run() -> Any:
    from airflow_provider_braze.operators.send_id import CreateSendIdOperator

    return CreateSendIdOperator(task_id="t", campaign_id="c", dry_run="yes")


def _split_recipient_kind() -> Any:
    from airflow_provider_braze.operators.experiments import SplitAudienceOperator

    return SplitAudienceOperator(
        task_id="t",
        recipients=["u"],
        experiment="e",
        shares={"a": 0.5, "b": 0.5},
        output_path="/tmp/x",
        recipient_kind="emails",
    )


def _compare_chart_format() -> Any:
    from airflow_provider_braze.operators.analytics import CompareSendsOperator

    sends = {"a": "s1", "b": "s2"}
    return CompareSendsOperator(task_id="t", sends=sends, campaign_id="c", chart_format="gif")


def _chart_format() -> Any:
    from airflow_provider_braze.charts import draw_comparison

    return draw_comparison(None, chart_format="gif")  # type: ignore[arg-type]


def _asset_uri() -> Any:
    from airflow_provider_braze.assets import sanitize_uri

    return sanitize_uri(urlsplit("braze://user:pw@us-01/campaigns/c"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_send_messages_dry_run, "dry_run must be True or False"),
        (_create_send_id_dry_run, "dry_run must be True or False"),
        (_split_recipient_kind, "recipient_kind must be 'users' or 'recipients'"),
        (_compare_chart_format, "chart_format must be 'svg', 'png' or None"),
        (_chart_format, "chart_format must be 'svg' or 'png'"),
        (_asset_uri, "no port or credentials"),
    ],
)
def test_a_bad_argument_raises_braze_validation_error(make: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        make()


def _get_analytics_max_rows(value: Any) -> Any:
    from airflow_provider_braze.operators.analytics import GetSendAnalyticsOperator

    return GetSendAnalyticsOperator(task_id="t", campaign_id="c", send_id="s", max_xcom_rows=value)


def _sensor_deferrable(value: Any) -> Any:
    from airflow_provider_braze.sensors.send_analytics import SendAnalyticsSensor

    return SendAnalyticsSensor(task_id="t", campaign_id="c", send_id="s", deferrable=value)


def _send_id_retention(value: Any) -> Any:
    from airflow_provider_braze.operators.send_id import CreateSendIdOperator

    op = CreateSendIdOperator(task_id="t", campaign_id="c", checkpoint_retention=value)
    from airflow_provider_braze.delivery.checkpoint import retention_of

    return retention_of(op.checkpoint_retention)


def _run_send_id(run: Any) -> Any:
    from airflow_provider_braze.send_ids import run_send_id

    return run_send_id("p", run)


@pytest.mark.parametrize(
    ("make", "value", "message"),
    [
        *[
            (_get_analytics_max_rows, v, "max_xcom_rows must be a whole number")
            for v in (-1, 1.5, True, "", None)
        ],
        *[(_sensor_deferrable, v, "deferrable must be True or False") for v in ("yes", 1, "false")],
        *[(_send_id_retention, v, "checkpoint_retention must be") for v in (-1, float("nan"), "1d")],
        *[
            (_run_send_id, v, "need the task context or its dag_run")
            for v in (None, "x", {}, {"dag_run": None})
        ],
    ],
)
def test_more_bad_arguments_raise_braze_validation_error(make: Any, value: Any, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        make(value)


def test_a_transport_error_has_no_http_status() -> None:
    """No answer came back, so no status: not AirflowException's default 500."""
    from airflow_provider_braze.exceptions import BrazeAmbiguousRequestError, BrazeTransportError

    assert BrazeTransportError("x").status_code is None
    assert BrazeAmbiguousRequestError("x").status_code is None


def _split(**kwargs: Any) -> Any:
    from airflow_provider_braze.operators.experiments import SplitAudienceOperator

    arguments: dict[str, Any] = {"recipients": ["u"], "experiment": "e", "shares": {"a": 0.5, "b": 0.5}}
    arguments.setdefault("output_path", "/tmp/x")
    return SplitAudienceOperator(task_id="t", **{**arguments, **kwargs})


def _compare(**kwargs: Any) -> Any:
    from airflow_provider_braze.operators.analytics import CompareSendsOperator

    return CompareSendsOperator(task_id="t", sends={"control": "s1", "b": "s2"}, campaign_id="c", **kwargs)


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (_split, {"allow_empty_variants": "yes"}, "allow_empty_variants must be True or False"),
        (_split, {"control": {"a": 1}}, "control must be a variant name"),
        (_split, {"output_path": 3}, "output_path must be a folder path or URL"),
        (_split, {"output_path": ["x"]}, "output_path must be a folder path or URL"),
        (_compare, {"allow_mixed_campaigns": 1}, "allow_mixed_campaigns must be True or False"),
        (_compare, {"control": ["control"]}, "control must be a variant name"),
        (_compare, {"channel": {"email": 1}}, "channel must be a channel name"),
    ],
)
def test_experiment_operators_refuse_bad_arguments(make: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        make(**kwargs)
