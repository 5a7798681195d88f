"""BrazeHook: the request path (exact requests, error mapping, retries, rate limits, secrets)."""

from __future__ import annotations

import pickle
import socket
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
import requests_mock as rm
import urllib3
from urllib3.exceptions import NewConnectionError

from airflow_provider_braze import __version__
from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAPIError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeError,
    BrazeNotFoundError,
    BrazeRateLimitError,
    BrazeServerError,
    BrazeTransportError,
    BrazeUnexpectedResponseError,
    BrazeValidationError,
)
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks.braze import BrazeHook
from tests.conftest import API_KEY, FROZEN_NOW, REST_ENDPOINT, braze_connection

CREATE_URL = f"{REST_ENDPOINT}/sends/id/create"
LIST_URL = f"{REST_ENDPOINT}/campaigns/list"
NOW = FROZEN_NOW


@pytest.fixture
def hook(braze_conn: str, sleeps: list[float]) -> BrazeHook:
    return BrazeHook()


def rate_headers(limit: int, remaining: int, reset: float, *, lowercase: bool = False) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }
    return {k.lower(): v for k, v in headers.items()} if lowercase else headers


OK = {"json": {"message": "success", "send_id": "generated-1"}, "status_code": 201}


# ---------------------------------------------------------------------------- the exact request


def test_create_send_id_request(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, json={"message": "success", "send_id": "spring-sale"}, status_code=201)

    assert hook.create_send_id("c-123", "spring-sale") == "spring-sale"

    (req,) = requests_mock.request_history
    assert req.method == "POST"
    assert req.url == CREATE_URL
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith(f"airflow-provider-braze-rest/{__version__} apache-airflow/")
    assert req.json() == {"campaign_id": "c-123", "send_id": "spring-sale"}
    assert req.timeout == (10.0, 30.0)


def test_no_null_fields_are_sent(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, **OK)
    assert hook.create_send_id("c-123") == "generated-1"
    assert requests_mock.last_request.text == '{"campaign_id": "c-123"}'


def test_timeouts_reach_the_wire(braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, **OK)
    BrazeHook(connect_timeout=2, read_timeout=4.5).create_send_id("c")
    assert requests_mock.last_request.timeout == (2.0, 4.5)


def test_one_session_and_one_connection_lookup(
    hook: BrazeHook, requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    real = BrazeHook.get_connection

    def counting(conn_id: str) -> Any:
        lookups.append(conn_id)
        return real(conn_id)

    monkeypatch.setattr(BrazeHook, "get_connection", staticmethod(counting))
    requests_mock.post(CREATE_URL, **OK)
    session = hook.session
    for _ in range(3):
        hook.create_send_id("c")
    assert hook.session is session
    assert hook.get_conn() is session
    assert lookups == ["braze_default"]
    hook.close()
    assert "session" not in hook.__dict__


def test_instance_code_host(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(host="EU-02"))
    requests_mock.post("https://rest.fra-02.braze.eu/sends/id/create", **OK)
    assert BrazeHook().create_send_id("c") == "generated-1"


def test_rate_limit_status_is_kept(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, **OK, headers=rate_headers(100, 42, NOW + 3600, lowercase=True))
    hook.create_send_id("c")
    assert hook.last_rate_limit is not None
    assert (hook.last_rate_limit.limit, hook.last_rate_limit.remaining) == (100, 42)
    assert hook.last_rate_limit.reset_at == datetime.fromtimestamp(NOW + 3600, tz=timezone.utc)
    assert "42 of 100 left" in hook.last_rate_limit.describe()


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("campaign_id", "send_id", "message"),
    [
        ("", None, "campaign_id is empty"),
        ("  ", None, "campaign_id is empty"),
        (None, None, "campaign_id must be a string"),
        ("c", "x" * 65, "send_id is 65 characters long; Braze allows at most 64"),
        ("c", "café", "non-ASCII character 'é'"),
        ("c", "", "send_id is an empty string"),
        ("c", " padded", "leading or trailing whitespace"),
    ],
)
def test_invalid_input_sends_nothing(
    hook: BrazeHook, requests_mock: rm.Mocker, campaign_id: Any, send_id: Any, message: str
) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        hook.create_send_id(campaign_id, send_id)
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "body", "error_class", "expected_text"),
    [
        (
            400,
            {"message": "Invalid Campaign ID", "errors": ["no such campaign"]},
            BrazeBadRequestError,
            "Braze answered 400 Bad Request to POST /sends/id/create: Invalid Campaign ID. "
            "Errors: ['no such campaign'].",
        ),
        (
            401,
            {"message": "Invalid API key"},
            BrazeAuthError,
            "Braze answered 401 Unauthorized to POST /sends/id/create: Invalid API key. Braze did not "
            "accept the REST API key: check the key, and that https://rest.iad-01.braze.com is the "
            "REST endpoint of the key's workspace.",
        ),
        (
            403,
            {"message": "Access Denied"},
            BrazeAuthError,
            "The API key lacks the 'sends.id.create' permission this call needs",
        ),
        (404, {"message": "Not Found"}, BrazeNotFoundError, "Check the connection's REST endpoint"),
        (413, {"message": "Payload Too Large"}, BrazeBadRequestError, "413"),
        (418, None, BrazeBadRequestError, "an empty body"),
    ],
)
def test_client_errors_are_typed_and_never_retried(
    hook: BrazeHook,
    requests_mock: rm.Mocker,
    sleeps: list[float],
    status: int,
    body: dict[str, Any] | None,
    error_class: type[BrazeAPIError],
    expected_text: str,
) -> None:
    if body is None:
        requests_mock.post(CREATE_URL, status_code=status, text="")
    else:
        requests_mock.post(CREATE_URL, status_code=status, json=body)
    with pytest.raises(error_class) as err:
        hook.create_send_id("c-123", "s")
    assert type(err.value) is error_class
    assert expected_text in str(err.value)
    assert err.value.status_code == status
    assert err.value.endpoint == "POST /sends/id/create"
    assert err.value.attempts == 1
    if body is not None:
        assert err.value.message == body["message"]
        assert err.value.errors == body.get("errors", [])
    assert requests_mock.call_count == 1
    assert sleeps == []


def test_auth_error_names_the_permission(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, status_code=403, json={"message": "Access Denied"})
    with pytest.raises(BrazeAuthError) as err:
        hook.create_send_id("c")
    assert err.value.required_permission == "sends.id.create"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "text/html",
            "a non-JSON body (text/html): '<html>",
        ),
        ("", "text/plain", "an empty body"),
        ("upstream connect error " * 40, "text/plain", "connect error upstream…"),
    ],
)
def test_non_json_error_bodies(
    hook: BrazeHook, requests_mock: rm.Mocker, body: str, content_type: str, expected: str
) -> None:
    requests_mock.post(CREATE_URL, status_code=502, text=body, headers={"Content-Type": content_type})
    hook.settings  # noqa: B018 - read the connection before max_retries is changed below
    object.__setattr__(hook.settings, "max_retries", 0)
    with pytest.raises(BrazeServerError) as err:
        hook.create_send_id("c", "s")
    text = str(err.value)
    assert "Braze answered 502 Bad Gateway to POST /sends/id/create" in text
    assert expected in text
    assert len(text) < 600
    assert "JSONDecodeError" not in text


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"text": "<html>ok</html>", "headers": {"Content-Type": "text/html"}}, "a non-JSON body"),
        ({"text": ""}, "an empty body"),
        ({"json": ["success"]}, "not a JSON object"),
    ],
)
def test_unusable_success_bodies(
    hook: BrazeHook, requests_mock: rm.Mocker, kwargs: dict[str, Any], expected: str
) -> None:
    requests_mock.post(CREATE_URL, status_code=200, **kwargs)
    with pytest.raises(BrazeUnexpectedResponseError, match=expected):
        hook.create_send_id("c", "s")


def test_success_without_send_id(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, json={"message": "success"})
    with pytest.raises(BrazeUnexpectedResponseError, match="with success but without a send_id"):
        hook.create_send_id("c")


def test_redirect_is_not_followed(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        CREATE_URL, status_code=301, headers={"Location": "http://elsewhere.example/"}, text=""
    )
    with pytest.raises(BrazeAPIError, match=r"It redirects to http://elsewhere\.example/"):
        hook.create_send_id("c")
    assert requests_mock.call_count == 1


def test_non_fatal_errors_are_logged_and_returned(
    hook: BrazeHook, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"message": "success", "send_id": "s", "errors": ["minor problem"]}
    requests_mock.post(CREATE_URL, json=body)
    assert hook._request(braze_module.CREATE_SEND_ID, json={"campaign_id": "c"}, idempotent=True) == body
    assert (
        'Braze accepted POST /sends/id/create with non-fatal errors: ["minor problem"]'
        in capsys.readouterr().out
    )


def test_huge_non_fatal_errors_and_refusals_make_bounded_log_lines_and_messages(
    hook: BrazeHook, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adversarial pass 2: 100 KB non-fatal errors made 3.5 MB log lines, a 300 KB refusal a
    2.3 MB exception message. The answer is still returned (and the error's ``errors`` kept) whole."""
    big = ["x" * 100_000, {"detail": "y" * 100_000}]
    body = {"message": "success", "send_id": "s", "errors": big}
    requests_mock.post(CREATE_URL, json=body)
    assert hook._request(braze_module.CREATE_SEND_ID, json={"campaign_id": "c"}, idempotent=True) == body
    line = next(line for line in capsys.readouterr().out.splitlines() if "non-fatal errors" in line)
    assert len(line) < 1_500
    requests_mock.post(CREATE_URL, status_code=400, json={"message": "m" * 300_000, "errors": big})
    with pytest.raises(BrazeBadRequestError) as caught:
        hook.create_send_id("c", "s")
    assert len(str(caught.value)) < 2_500
    assert caught.value.errors == big


# ---------------------------------------------------------------------------- retries


def test_a_gateway_timeout_on_a_create_is_an_unknown_outcome(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, [{"status_code": 504, "text": "busy"}, OK])
    with pytest.raises(BrazeAmbiguousRequestError, match="Braze may have created send ID 's'"):
        hook.create_send_id("c", "s")
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_backoff(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float], status: int
) -> None:
    requests_mock.post(
        CREATE_URL, [{"status_code": status, "text": "busy"}, {"status_code": status, "text": ""}, OK]
    )
    assert hook.create_send_id("c", "s") == "generated-1"
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5  # first backoff: 0.5 s with jitter
    assert 0.5 <= sleeps[1] <= 1.0  # doubled


def test_5xx_gives_up_after_max_retries(
    braze_conn: str, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, status_code=503, json={"message": "Service Unavailable"})
    with pytest.raises(BrazeServerError, match="Gave up after 3 attempts") as err:
        BrazeHook(max_retries=2).create_send_id("c", "s")
    assert err.value.attempts == 3
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2


def test_5xx_stops_at_the_retry_budget(
    braze_conn: str, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, status_code=500, json={"message": "oops"})
    with pytest.raises(BrazeServerError, match="beyond the retry budget of 1 s"):
        BrazeHook(max_retries=50, retry_budget=1.0).create_send_id("c", "s")
    assert sum(sleeps) <= 1.0
    assert requests_mock.call_count == len(sleeps) + 1


def test_429_waits_until_the_reset_header(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(
        CREATE_URL,
        [
            {
                "status_code": 429,
                "json": {"message": "Rate limited"},
                "headers": rate_headers(100, 0, NOW + 20, lowercase=True),
            },
            OK,
        ],
    )
    assert hook.create_send_id("c", "s") == "generated-1"
    assert len(sleeps) == 1
    assert 20.0 <= sleeps[0] <= 21.0  # until the reset, plus up to 1 s of jitter


def test_429_without_reset_header_backs_off(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, [{"status_code": 429, "json": {"message": "Rate limited"}}, OK])
    assert hook.create_send_id("c", "s") == "generated-1"
    assert len(sleeps) == 1
    assert 0.25 <= sleeps[0] <= 0.5


def test_quota_exhausted_fails_at_once(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    reset = NOW + 10 * 3600 + 34 * 60
    requests_mock.post(
        CREATE_URL,
        status_code=429,
        json={"message": "Rate limit exceeded"},
        headers=rate_headers(100, 0, reset),
    )
    with pytest.raises(BrazeRateLimitError) as err:
        hook.create_send_id("c", "s")
    assert sleeps == []
    assert requests_mock.call_count == 1
    text = str(err.value)
    assert "Braze allows 100 custom send IDs per workspace per day" in text
    reset_at = datetime.fromtimestamp(reset, tz=timezone.utc)
    assert f"0 of 100 left, resets at {reset_at:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "The next retry would wait 10h 34m, beyond the retry budget of 120 s" in text
    assert err.value.reset_at == reset_at
    assert (err.value.limit, err.value.remaining, err.value.status_code) == (100, 0, 429)


def test_exhausted_window_is_paced_before_sending(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, **OK, headers=rate_headers(10, 0, NOW + 5))
    hook.create_send_id("c", "a")
    assert sleeps == []
    hook.create_send_id("c", "b")  # the last answer left 0 requests: wait for the reset first
    assert len(sleeps) == 1
    assert 5.05 <= sleeps[0] <= 5.25  # until the reset, plus a margin for clock differences
    assert requests_mock.call_count == 2


def test_connection_refused_is_retried(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    refused = requests.exceptions.ConnectionError(
        requests.packages.urllib3.exceptions.MaxRetryError(  # type: ignore[attr-defined]
            None, CREATE_URL, NewConnectionError(None, "Connection refused")
        )
    )
    requests_mock.post(CREATE_URL, [{"exc": refused}, {"exc": requests.exceptions.ConnectTimeout}, OK])
    assert hook.create_send_id("c") == "generated-1"  # safe even without a send_id: nothing was sent
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2


def test_connection_refused_gives_up_with_transport_error(
    braze_conn: str, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(CREATE_URL, exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(BrazeTransportError, match="failed before the request was sent") as err:
        BrazeHook(max_retries=1).create_send_id("c")
    assert not isinstance(err.value, BrazeAmbiguousRequestError)
    assert "Gave up after 2 attempts" in str(err.value)


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout,
        requests.exceptions.ConnectionError("Connection aborted.", "RemoteDisconnected"),
        requests.exceptions.ChunkedEncodingError,
    ],
)
@pytest.mark.parametrize("send_id", [None, "s-1"])
def test_an_unknown_outcome_of_a_create_is_reported_not_retried(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float], exc: Any, send_id: str | None
) -> None:
    """Braze does not document what re-creating an existing send ID does (it may count toward
    the quota again, or be refused), so a create is never repeated after a lost answer."""
    requests_mock.post(CREATE_URL, [{"exc": exc}, OK])
    with pytest.raises(BrazeAmbiguousRequestError) as err:
        hook.create_send_id("c-123", send_id)
    assert requests_mock.call_count == 1
    assert sleeps == []
    text = str(err.value)
    assert "the request was sent, so Braze may or may not have processed it" in text
    what = "a send ID" if send_id is None else f"send ID {send_id!r}"
    assert f"Braze may have created {what} for campaign 'c-123', so the call was not repeated" in text


def test_retry_after_unknown_outcome_warns_in_a_later_error(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    """Reads are repeated after a lost answer; an error after that says an attempt went unanswered."""
    requests_mock.get(
        f"{REST_ENDPOINT}/sends/data_series",
        [
            {"exc": requests.exceptions.ReadTimeout},
            {"status_code": 400, "json": {"message": "Invalid send_id"}},
        ],
    )
    with pytest.raises(
        BrazeBadRequestError, match="an earlier attempt of this call was sent but got no answer"
    ):
        hook.get_send_analytics("c", "s-1", 3)


def test_tls_errors_are_not_retried(hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float]) -> None:
    requests_mock.post(CREATE_URL, exc=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(BrazeTransportError, match=r"the TLS handshake with rest\.iad-01\.braze\.com failed"):
        hook.create_send_id("c", "s")
    assert requests_mock.call_count == 1


# ---------------------------------------------------------------------------- test_connection


def test_test_connection_ok(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    requests_mock.get(LIST_URL, json={"message": "success", "campaigns": []})
    assert hook.test_connection() == (
        True,
        "Braze connection 'braze_default': connected to Braze at https://rest.iad-01.braze.com; the "
        "REST API key was accepted.",
    )
    assert requests_mock.last_request.qs == {"page": ["0"]}
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Invalid API key", "did not accept the REST API key (401). Check the key"),
        (403, "Access Denied", "the key lacks the 'campaigns.list' permission this test uses (403)"),
        (500, "Internal error", "Internal error"),
    ],
)
def test_test_connection_failures(
    hook: BrazeHook, requests_mock: rm.Mocker, sleeps: list[float], status: int, message: str, expected: str
) -> None:
    requests_mock.get(LIST_URL, status_code=status, json={"message": message})
    ok, reason = hook.test_connection()
    assert ok is False
    assert expected in reason
    assert requests_mock.call_count == 1  # the form should answer fast: no retries
    assert sleeps == []
    if status == 401:
        assert "permission" not in reason  # a wrong key is not a missing permission
    if status == 403:
        assert "still works for sends in DAGs" in reason  # a send-only key is not wrong


def test_test_connection_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(host="US-42"))
    ok, reason = BrazeHook().test_connection()
    assert ok is False
    assert "unknown instance code 'US-42'" in reason


# ---------------------------------------------------------------------------- secrets


def test_key_never_in_errors_even_if_echoed(hook: BrazeHook, requests_mock: rm.Mocker) -> None:
    echo = {"message": f"Invalid API key: {API_KEY}", "errors": [f"Authorization: Bearer {API_KEY}"]}
    requests_mock.post(CREATE_URL, status_code=401, json=echo)
    with pytest.raises(BrazeAuthError) as err:
        hook.create_send_id("c")
    assert API_KEY not in str(err.value)
    assert API_KEY not in repr(err.value.args)
    assert API_KEY not in str(err.value.message)
    requests_mock.post(CREATE_URL, status_code=502, text=f"<html>proxy saw Bearer {API_KEY}</html>")
    with pytest.raises(BrazeServerError) as err2:
        BrazeHook(max_retries=0).create_send_id("c")
    assert API_KEY not in str(err2.value)


def test_key_never_in_logs_or_reprs(
    hook: BrazeHook, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.post(CREATE_URL, [{"status_code": 503, "text": ""}, {"status_code": 502, "text": ""}, OK])
    hook.create_send_id("c", "s")
    out = capsys.readouterr()
    assert "Retrying" in out.out
    assert API_KEY not in out.out + out.err
    assert API_KEY not in repr(hook.session.auth)
    assert API_KEY not in repr(hook.settings)


# ---------------------------------------------------------------------------- errors as values


def test_errors_pickle_with_their_attributes() -> None:
    err = BrazeRateLimitError(
        "limited",
        status_code=429,
        message="Rate limited",
        errors=["x"],
        endpoint="POST /x",
        reset_at=None,
        limit=5,
    )
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is BrazeRateLimitError
    assert (str(clone), clone.status_code, clone.errors, clone.limit) == ("limited", 429, ["x"], 5)
    assert isinstance(clone, BrazeError)
    # Airflow re-creates exceptions from their text alone.
    assert str(BrazeServerError(str(err))) == "limited"


@pytest.mark.parametrize("reset", ["253402300800", "-99999999999999", "1e300"])
def test_nonsense_reset_headers_are_ignored(hook: BrazeHook, requests_mock: rm.Mocker, reset: str) -> None:
    requests_mock.post(
        CREATE_URL, json={"message": "success", "send_id": "s"}, headers={"X-RateLimit-Reset": reset}
    )
    assert hook.create_send_id("c", "s") == "s"
    assert hook.last_rate_limit is None or hook.last_rate_limit.reset_at is None


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.NameResolutionError(
                    "rest.iad-01.braze.com", None, socket.gaierror(-3, "Temporary failure in name resolution")
                )
            ),
            "could not resolve rest.iad-01.braze.com: check the connection's host, and this machine's DNS "
            "and network access",
        ),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.NewConnectionError(
                    None, "Failed to establish a new connection: [Errno 111]"
                )  # type: ignore[arg-type]
            ),
            "could not reach rest.iad-01.braze.com",
        ),
        (
            requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused")),
            "rest.iad-01.braze.com refused the connection: check the host and port",
        ),
        (
            requests.exceptions.ConnectTimeout("timed out"),
            "could not connect to rest.iad-01.braze.com within",
        ),
    ],
)
def test_network_failures_read_as_one_plain_sentence(
    hook: BrazeHook, requests_mock: rm.Mocker, failure: Exception, expected: str
) -> None:
    requests_mock.get(LIST_URL, exc=failure)
    ok, reason = hook.test_connection()
    assert ok is False
    assert expected in reason
    assert "HTTPSConnectionPool" not in reason  # not urllib3's raw text
    assert reason.endswith(".")
