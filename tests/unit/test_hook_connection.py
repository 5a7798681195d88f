"""BrazeHook: reading the connection (host forms, instance codes, key, extras, masking)."""

from __future__ import annotations

import inspect
import os
import socket
from typing import Any
from unittest import mock

import pytest

from airflow_provider_braze.exceptions import BrazeConfigurationError
from airflow_provider_braze.hooks.braze import BRAZE_INSTANCES, BrazeHook, resolve_base_url
from tests.conftest import API_KEY, braze_connection

CONN = "braze_default"

# ---------------------------------------------------------------------------- host forms


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://rest.iad-03.braze.com", "https://rest.iad-03.braze.com"),
        ("https://rest.iad-03.braze.com/", "https://rest.iad-03.braze.com"),
        ("  https://rest.iad-03.braze.com  ", "https://rest.iad-03.braze.com"),
        ("rest.iad-03.braze.com", "https://rest.iad-03.braze.com"),
        ("HTTPS://REST.FRA-01.BRAZE.EU", "https://rest.fra-01.braze.eu"),
        ("https://braze-proxy.example.com:8443/braze/", "https://braze-proxy.example.com:8443/braze"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_host_urls(host: str, expected: str) -> None:
    assert resolve_base_url(host, conn_id=CONN) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("US-01", "https://rest.iad-01.braze.com"),
        ("us-03", "https://rest.iad-03.braze.com"),
        ("Us-08", "https://rest.iad-08.braze.com"),
        ("US-10", "https://rest.us-10.braze.com"),
        ("EU-01", "https://rest.fra-01.braze.eu"),
        ("eu-02", "https://rest.fra-02.braze.eu"),
        ("AU-01", "https://rest.au-01.braze.com"),
        ("ID-01", "https://rest.id-01.braze.com"),
        ("JP-01", "https://rest.jp-01.braze.com"),
        ("KR-01", "https://rest.kr-01.braze.com"),
        (" US-02 ", "https://rest.iad-02.braze.com"),
    ],
)
def test_instance_codes(code: str, expected: str) -> None:
    assert resolve_base_url(code, conn_id=CONN) == expected


def test_instance_table_is_complete() -> None:
    expected = {f"US-0{n}" for n in range(1, 9)} | {
        "US-10",
        "EU-01",
        "EU-02",
        "AU-01",
        "ID-01",
        "JP-01",
        "KR-01",
    }
    assert set(BRAZE_INSTANCES) == expected
    assert all(url.startswith("https://rest.") for url in BRAZE_INSTANCES.values())


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (None, "Braze connection 'braze_default' has no host"),
        ("   ", "Braze connection 'braze_default' has no host"),
        ("US-09", "unknown instance code 'US-09'. Known codes: US-01"),
        ("XX-01", "unknown instance code 'XX-01'"),
        ("http://rest.iad-01.braze.com", "refusing plain http to rest.iad-01.braze.com"),
        ("http://10.0.0.5:8080", "refusing plain http to 10.0.0.5"),
        ("http://localhost.evil.com", "refusing plain http to localhost.evil.com"),
        ("ftp://rest.iad-01.braze.com", "the scheme must be https"),
        ("https://", "is not a valid REST endpoint URL"),
        ("https://rest iad.braze.com", "is not a valid REST endpoint URL"),
        ("https://rest.iad-01.braze.com:99999", "is not a valid REST endpoint URL"),
        ("https://rest.iad-01.braze.com:abc", "is not a valid REST endpoint URL"),
        ("https://rest_iad.braze.com", "is not a valid REST endpoint URL"),
        ("https://rest.iad-01.braze.com/?x=1", "must not contain a query"),
        ("https://user:pw@rest.iad-01.braze.com", "must not contain credentials"),
        ("https://dashboard-01.braze.com", "is a dashboard or SDK address"),
        ("sdk.iad-01.braze.com", "is a dashboard or SDK address"),
    ],
)
def test_bad_hosts_are_clear_errors(host: str | None, message: str) -> None:
    with pytest.raises(BrazeConfigurationError, match="Braze connection 'braze_default'") as err:
        resolve_base_url(host, conn_id=CONN)
    assert message in str(err.value)


def test_port_field_and_schema() -> None:
    assert resolve_base_url("127.0.0.1", conn_id=CONN, port=8080, schema="http") == "http://127.0.0.1:8080"
    # The scheme's own port adds nothing; port 0 (what Airflow 3.3.2's UI sends for "no port")
    # is no port.
    assert (
        resolve_base_url("rest.iad-01.braze.com", conn_id=CONN, port=443) == "https://rest.iad-01.braze.com"
    )
    assert resolve_base_url("rest.iad-01.braze.com", conn_id=CONN, port=0) == "https://rest.iad-01.braze.com"
    assert resolve_base_url("https://rest.iad-01.braze.com:443", conn_id=CONN, port=443) == (
        "https://rest.iad-01.braze.com"
    )
    assert (
        resolve_base_url("rest.iad-01.braze.com", conn_id=CONN, port=8443)
        == "https://rest.iad-01.braze.com:8443"
    )
    assert resolve_base_url("US-03", conn_id=CONN, port=443) == "https://rest.iad-03.braze.com"
    with pytest.raises(BrazeConfigurationError, match="instance code 'US-03' is served on port 443"):
        resolve_base_url("US-03", conn_id=CONN, port=8080)
    with pytest.raises(BrazeConfigurationError, match="port 8080 but the port field says 9090"):
        resolve_base_url("http://127.0.0.1:8080", conn_id=CONN, port=9090)
    with pytest.raises(BrazeConfigurationError, match="refusing plain http"):
        resolve_base_url("rest.iad-01.braze.com", conn_id=CONN, schema="http")
    with pytest.raises(BrazeConfigurationError, match="schema 'braze' is not a URL scheme"):
        resolve_base_url("rest.iad-01.braze.com", conn_id=CONN, schema="braze")


# ---------------------------------------------------------------------------- hook settings


def _hook(monkeypatch: pytest.MonkeyPatch, conn_id: str = CONN, **fields: object) -> BrazeHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", braze_connection(**fields))
    return BrazeHook(braze_conn_id=conn_id)


def test_hook_attributes() -> None:
    assert BrazeHook.conn_type == "braze"
    assert BrazeHook.conn_name_attr == "braze_conn_id"
    assert BrazeHook.default_conn_name == "braze_default"
    assert BrazeHook.hook_name == "Braze"
    assert BrazeHook().braze_conn_id == "braze_default"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _hook(monkeypatch, host="eu-01").settings
    assert settings.base_url == "https://rest.fra-01.braze.eu"
    assert settings.api_key == API_KEY
    assert (settings.connect_timeout, settings.read_timeout) == (10.0, 30.0)
    assert (settings.max_retries, settings.retry_budget) == (5, 120.0)
    assert API_KEY not in repr(settings)


def test_extras_then_arguments_override(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"connect_timeout": 3, "read_timeout": "7.5", "max_retries": "2", "retry_budget": 9}
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(extra=extra))
    settings = BrazeHook().settings
    assert (settings.connect_timeout, settings.read_timeout, settings.max_retries, settings.retry_budget) == (
        3.0,
        7.5,
        2,
        9.0,
    )
    settings = BrazeHook(read_timeout=1, max_retries=0).settings
    assert (settings.connect_timeout, settings.read_timeout, settings.max_retries) == (3.0, 1.0, 0)


def test_uri_form_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_URI", f"braze://:{API_KEY}@rest.iad-05.braze.com?read_timeout=12&max_retries=1"
    )
    settings = BrazeHook(braze_conn_id="braze_uri").settings
    assert settings.base_url == "https://rest.iad-05.braze.com"
    assert (settings.read_timeout, settings.max_retries) == (12.0, 1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"read_timeout": "soon"}, "connection extra read_timeout='soon' is not a number"),
        ({"connect_timeout": 0}, "connection extra connect_timeout=0 is out of range"),
        ({"read_timeout": -1}, "out of range"),
        ({"max_retries": 1.5}, "max_retries=1.5 must be a whole number"),
        ({"retry_budget": "inf"}, "retry_budget='inf' is out of range"),
        ({"max_retries": True}, "is not a number"),
    ],
)
def test_bad_extras(monkeypatch: pytest.MonkeyPatch, extra: dict[str, object], message: str) -> None:
    with pytest.raises(BrazeConfigurationError, match="Braze connection 'braze_default'") as err:
        _ = _hook(monkeypatch, extra=extra).settings
    assert message in str(err.value)


def test_unknown_extras_are_warned(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Airflow 3 logs through structlog to stdout, so the log is read from there.
    _ = _hook(monkeypatch, extra={"timeout": 5}).settings
    assert "extra fields this hook does not use: timeout" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (None, "has no REST API key: put the key in the connection's password field"),
        ("", "has no REST API key"),
        ("   ", "has no REST API key"),
        ('"abc-123-def"', "wrapped in quotes"),
        ("abc 123", "contains spaces, control or non-ASCII characters"),
        ("abc\n123", "contains spaces"),
        ("clé-123", "non-ASCII"),
        ("x7", "the REST API key has 2 characters; Braze's keys are 36 (a UUID)"),
        ("abc-123", "a key shorter than 8 cannot be masked"),
    ],
)
def test_bad_keys(monkeypatch: pytest.MonkeyPatch, password: str | None, message: str) -> None:
    with pytest.raises(BrazeConfigurationError, match="Braze connection 'braze_default'") as err:
        _ = _hook(monkeypatch, password=password).settings
    assert message in str(err.value)
    if password and password.strip():
        assert password.strip().strip('"') not in str(err.value)


def test_key_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _hook(monkeypatch, password=f"  {API_KEY}\n").settings.api_key == API_KEY


def test_key_is_registered_with_the_secret_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import redact

    key = "fresh-never-seen-key-81f2e0"
    assert key in str(redact(f"token {key}"))  # not masked before the hook reads it
    _ = _hook(monkeypatch, password=key).settings
    assert key not in str(redact(f"token {key}"))


def test_missing_connection_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    monkeypatch.delenv("AIRFLOW_CONN_BRAZE_NOPE", raising=False)
    with pytest.raises(AirflowNotFoundException, match="braze_nope"):
        _ = BrazeHook(braze_conn_id="braze_nope").settings


def test_constructor_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BRAZE_DEFAULT", raising=False)
    hook = BrazeHook()  # no connection defined: building the hook must still work
    assert "settings" not in hook.__dict__
    assert "session" not in hook.__dict__


def form_test(monkeypatch: pytest.MonkeyPatch, random_id: str, **fields: Any) -> dict[str, Any]:
    """Airflow's own ``POST /connections/test`` function (3.3.x), its random ID chosen: it makes
    a transient connection under that ID, exports it and calls the hook's test_connection."""
    from unittest.mock import MagicMock

    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody
    from airflow.api_fastapi.core_api.routes.public import connections as route
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    def not_stored(*args: Any, **kwargs: Any) -> Any:
        raise AirflowNotFoundException("not stored")

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setattr(route, "get_random_string", lambda: random_id)
    monkeypatch.setattr(Connection, "get_team_name", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(Connection, "get_connection_from_secrets", classmethod(not_stored))
    body = ConnectionBody(connection_id="braze_in_the_form", conn_type="braze", **fields)
    # 3.3.0's route takes only the body; later 3.3.x also take the user and the auth manager.
    accepted = inspect.signature(route.test_connection).parameters
    extra = {k: MagicMock() for k in ("user", "auth_manager") if k in accepted}
    answer = route.test_connection(body, **extra)
    assert f"AIRFLOW_CONN_{random_id.upper()}" not in os.environ
    return answer.model_dump()


@pytest.mark.parametrize("random_id", ["vkQS3iIp", "rm7zg2ph", "K2J9QX0A", "12345678"])
def test_a_connection_under_test_in_the_form_is_not_named_by_its_random_id(
    monkeypatch: pytest.MonkeyPatch, random_id: str
) -> None:
    """Whatever the random ID Airflow gives the form's transient connection looks like."""
    answer = form_test(monkeypatch, random_id, host="US-42", password=API_KEY)
    assert answer["status"] is False
    # (Airflow exports the form as a URI, which lower-cases the host.)
    assert answer["message"].startswith("This Braze connection: unknown instance code 'us-42'")
    assert random_id not in answer["message"]


def test_a_chosen_id_is_named_even_when_it_looks_random(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_braze.hooks.connection import connection_label

    for conn_id in ("vkQS3iIp", "rm7zg2ph", "brazeprd", "BRAZEPRD", "braze_eu"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", braze_connection(host="US-42"))
        assert connection_label(conn_id) == f"Braze connection {conn_id!r}"
    # `airflow connections test` and a direct call name the connection too.
    ok, reason = BrazeHook(braze_conn_id="rm7zg2ph").test_connection()
    assert ok is False
    assert reason.startswith("Braze connection 'rm7zg2ph': unknown instance code 'US-42'")


KEY_LIKE = "9f1c2d3e-aaaa-bbbb-cccc-0123456789ab"


@pytest.mark.parametrize(
    "fields",
    [
        {"host": f"https://rest.iad-01.braze.com?api_key={KEY_LIKE}"},
        {"host": f"https://rest.iad-01.braze.com/{KEY_LIKE}"},
        {"host": KEY_LIKE},
        {"host": "https://rest.iad-01.braze.com", "schema": KEY_LIKE},
        {"host": "https://rest.iad-01.braze.com", "extra": {"read_timeout": KEY_LIKE}},
        {"host": "https://rest.iad-01.braze.com", "extra": {"ca_bundle": f"/etc/{KEY_LIKE}.pem"}},
    ],
)
def test_a_key_pasted_into_another_field_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]
) -> None:
    """Whether the field is refused (a query, an unreadable number) or accepted and then fails
    (a host nobody can resolve), the key is never in the message."""
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(password=KEY_LIKE, **fields))
    with mock.patch("socket.getaddrinfo", side_effect=socket.gaierror(-2, "Name or service not known")):
        ok, reason = BrazeHook().test_connection()
    assert ok is False
    assert KEY_LIKE not in reason
    assert KEY_LIKE.upper() not in reason.upper()
    refused = None
    try:
        BrazeHook().settings  # noqa: B018
    except BrazeConfigurationError as err:
        refused = str(err)
    if refused is not None:
        assert KEY_LIKE not in refused
        assert "***" in refused


def test_a_mixed_case_key_pasted_into_the_host_is_not_in_the_errors_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adversarial pass 2, finding 4: the error's text was redacted, but the urllib3 error chained
    under it held the host lowercased, and a traceback (the task log's) showed it."""
    import traceback

    from airflow_provider_braze.exceptions import BrazeTransportError

    key = "9F1C2D3E-AaAa-BbBb-CcCc-0123456789AB"
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_DEFAULT",
        braze_connection(password=key, host=f"https://{key}", extra={"max_retries": 0}),
    )
    with (
        mock.patch("socket.getaddrinfo", side_effect=socket.gaierror(-2, "Name or service not known")),
        pytest.raises(BrazeTransportError) as caught,
    ):
        BrazeHook().create_send_id("campaign", "send-1")
    shown = "".join(traceback.format_exception(caught.value))
    assert "not resolve ***" in shown  # the reason is still told
    assert key.lower() not in shown.lower()
    assert caught.value.__cause__ is None
