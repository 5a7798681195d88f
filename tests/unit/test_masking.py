"""The hook's key is redacted from log output even where no supervisor redacts (dag.test())."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator

import airflow.sdk.log  # noqa: F401 - Airflow sets up root logging on import; do it before the fixture
import pytest

from airflow_provider_braze import _masking


@pytest.fixture
def handler() -> Iterator[logging.Handler]:
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_stdlib_records_are_redacted_after_registration(handler: logging.Handler) -> None:
    secret = "unit-masking-secret-7c1d9e"
    _masking.register_secret(secret)
    record = logging.LogRecord("lib", logging.INFO, __file__, 1, "key=%s and %s", (secret, "other"), None)
    assert all(f.filter(record) for f in handler.filters)
    assert record.getMessage() == "key=*** and other"


def test_nothing_is_added_under_a_real_supervisor(
    handler: logging.Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    class SocketComms:  # what a supervised task process has
        pass

    fake_runner = types.SimpleNamespace(SUPERVISOR_COMMS=SocketComms())
    monkeypatch.setitem(sys.modules, "airflow.sdk.execution_time.task_runner", fake_runner)
    _masking.register_secret("supervised-secret-1234")
    assert handler.filters == []


def test_secrets_in_exception_arguments_and_tracebacks_are_redacted(handler: logging.Handler) -> None:
    """urllib3 logs a header it cannot parse (which may echo the key) as an exception argument,
    with the traceback."""
    secret = "unit-masking-secret-9f2b4a"
    _masking.register_secret(secret)
    try:
        raise ValueError(f"unparsed data: 'X-Echo Bearer {secret}'")
    except ValueError as err:
        record = logging.LogRecord(
            "urllib3", logging.WARNING, __file__, 1, "Failed to parse headers: %s", (err,), sys.exc_info()
        )
    assert all(f.filter(record) for f in handler.filters)
    text = logging.Formatter().format(record)
    assert secret not in text
    assert "Bearer ***" in text
