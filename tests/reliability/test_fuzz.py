"""Bad input, fuzzed: whatever arguments, connection fields or server answers, only the provider's
typed errors come out, with the key nowhere in them, and invalid local input sends nothing."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_braze.analytics import send_analytics_rows
from airflow_provider_braze.exceptions import (
    BrazeConfigurationError,
    BrazeError,
    BrazeUnexpectedResponseError,
    BrazeValidationError,
)
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.recipients import iter_recipients
from tests.conftest import API_KEY, REST_ENDPOINT, braze_connection

# How many examples: the profile decides (tests/conftest.py).
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CREATE_URL = f"{REST_ENDPOINT}/sends/id/create"

NASTY_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(min_size=60, max_size=70, alphabet=st.characters(min_codepoint=32, max_codepoint=126)),
    st.sampled_from(
        ["", " ", "\n", "a" * 10_000, "'; DROP TABLE sends; --", "{{ 7 * 7 }}", "${jndi:x}", "é", "\x00"]
    ),
)
ANY_VALUE = st.one_of(
    NASTY_TEXT, st.none(), st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=5))
)


def is_valid_send_id(value: Any) -> bool:
    return value is None or (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and value.isascii()
        and value.isprintable()
        and value == value.strip()
    )


@FUZZ
@given(campaign_id=ANY_VALUE, send_id=ANY_VALUE)
def test_operator_arguments(campaign_id: Any, send_id: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection())
    with rm.Mocker() as mocker:
        mocker.post(CREATE_URL, json={"message": "success", "send_id": "ok"})
        op = CreateSendIdOperator(task_id="t", campaign_id=campaign_id, send_id=send_id, checkpoint=None)
        valid = (
            isinstance(campaign_id, str)
            and campaign_id.strip() == campaign_id != ""
            and is_valid_send_id(send_id)
        )
        if valid:
            assert op.execute({"ti": mock.MagicMock()}) == "ok"  # type: ignore[arg-type]
            assert mocker.call_count == 1
        else:
            with pytest.raises(BrazeValidationError) as err:
                op.execute({"ti": mock.MagicMock()})  # type: ignore[arg-type]
            assert mocker.call_count == 0
            assert str(err.value)


@FUZZ
@given(
    host=st.one_of(NASTY_TEXT, st.sampled_from(["us-01", "EU-9", "http://10.1.1.1", "https://x:0", "[::1]"])),
    password=st.one_of(st.none(), NASTY_TEXT),
    extra=st.dictionaries(
        st.sampled_from(["read_timeout", "max_retries", "retry_budget", "ca_bundle", "x"]), ANY_VALUE
    ),
)
def test_connection_fields(
    host: str, password: str | None, extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "braze", "host": host, "password": password, "extra": json.dumps(extra)}
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_FUZZ", json.dumps(conn))
    try:
        settings_ = BrazeHook(braze_conn_id="braze_fuzz").settings
    except BrazeConfigurationError as err:
        key = (password or "").strip()
        # Errors rightly echo the bad value they name (repr'd): the key may appear only if the
        # input itself contains it, as text or as the repr an error would show.
        given = [host, *map(str, extra), *map(str, extra.values()), *map(repr, extra.values())]
        if len(key) >= 5 and not any(key in text for text in given):
            assert key not in str(err)
        return
    assert settings_.base_url.startswith(("https://", "http://127.", "http://localhost", "http://[::1]"))


STATUSES = st.sampled_from(
    [200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 405, 413, 422, 429, 500, 502, 503, 504]
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    JSONISH.map(json.dumps),
    st.text(max_size=300),
    st.sampled_from(
        ["", "<html><body>502 Bad Gateway</body></html>", "x" * 100_000, '{"message": "success"']
    ),
    st.dictionaries(st.sampled_from(["message", "send_id", "errors"]), JSONISH).map(json.dumps),
)
HEADER_VALUES = st.one_of(
    st.none(), st.integers(-5, 10**12).map(str), st.sampled_from(["", "soon", "1e9", "-"])
)


@FUZZ
@given(status=STATUSES, body=BODIES, remaining=HEADER_VALUES, reset=HEADER_VALUES)
def test_server_answers(
    status: int, body: str, remaining: str | None, reset: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(extra={"max_retries": 0}))
    monkeypatch.setattr(braze_module, "_sleep", lambda seconds: None)
    headers = {
        k: v
        for k, v in {"X-RateLimit-Remaining": remaining, "x-ratelimit-reset": reset}.items()
        if v is not None
    }
    with rm.Mocker() as mocker:
        mocker.post(
            CREATE_URL, status_code=status, text=body + f" {API_KEY}" * (status == 401), headers=headers
        )
        try:
            answer = BrazeHook().create_send_id("campaign", "send")
        except BrazeError as err:
            assert API_KEY not in str(err)
            assert "JSONDecodeError" not in str(err)
            assert len(str(err)) < 2_000
        else:
            assert isinstance(answer, str)
            assert answer


@FUZZ
@given(answer=JSONISH)
def test_analytics_answers(answer: Any) -> None:
    try:
        rows = send_analytics_rows(
            answer if isinstance(answer, dict) else {"data": answer}, campaign_id="c", send_id="s"
        )
    except BrazeUnexpectedResponseError:
        return
    assert isinstance(rows, list)


@FUZZ
@given(items=st.lists(JSONISH, max_size=8), kind=st.sampled_from(["users", "recipients"]))
def test_recipient_items(items: list[Any], kind: str) -> None:
    try:
        list(iter_recipients(items, kind))  # type: ignore[arg-type]
    except BrazeValidationError as err:
        assert "recipient" in str(err)


@FUZZ
@given(
    campaign_id=ANY_VALUE,
    send_id=ANY_VALUE,
    recipients=st.one_of(st.none(), ANY_VALUE, st.lists(JSONISH, max_size=5)),
    broadcast=st.booleans(),
    concurrency=st.one_of(st.integers(-2, 40), st.just(4)),
)
def test_send_operator_arguments(
    campaign_id: Any, send_id: Any, recipients: Any, broadcast: bool, concurrency: int, tmp_path_factory: Any
) -> None:
    """Whatever the arguments, the send operator either sends or fails with a typed error; a
    local error sends nothing."""
    from airflow_provider_braze.operators.messages import SendMessagesOperator

    checkpoint = tmp_path_factory.mktemp("cp")
    with (
        mock.patch.dict("os.environ", {"AIRFLOW_CONN_BRAZE_DEFAULT": braze_connection()}),
        rm.Mocker() as mocker,
    ):
        mocker.post(f"{REST_ENDPOINT}/messages/send", json={"message": "success", "dispatch_id": "d"})
        op = SendMessagesOperator(
            task_id="t",
            campaign_id=campaign_id,
            send_id=send_id,
            recipients=recipients,
            broadcast=broadcast,
            concurrency=concurrency,
            messages={"email": {"body": "x"}},
            checkpoint=str(checkpoint),
        )
        try:
            op.execute({"ti": mock.MagicMock(dag_id="d", task_id="t", run_id="r", map_index=-1)})
        except BrazeValidationError:
            assert mocker.call_count == 0
        except BrazeError:
            pass
