"""BrazeAsyncHook against BrazeHook: the same answers give the same value or the same error (class,
attributes, message text), the same waits and the same request, whichever transport carries it.
The synchronous hook is answered by requests-mock, the async one by an httpx.MockTransport, from
one table of answers."""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import requests
import requests_mock as rm

from airflow_provider_braze.exceptions import BrazeError
from airflow_provider_braze.hooks import braze as braze_module
from airflow_provider_braze.hooks import braze_async, policy
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.hooks.braze_async import BrazeAsyncHook
from tests.conftest import API_KEY, FROZEN_NOW, REST_ENDPOINT, braze_connection

DATE = formatdate(FROZEN_NOW, usegmt=True)
OK = {"status": 200, "json": {"message": "success", "data": []}}
DOWN = {"status": 503, "text": "down", "headers": {"Content-Type": "text/plain"}}
RATE_LIMITED = {
    "status": 429,
    "json": {"message": "Too many requests"},
    "headers": {
        "Date": DATE,
        "X-RateLimit-Limit": "250000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(FROZEN_NOW) + 10),
    },
}

#: name -> (connection fields, answers in order)
SCENARIOS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "ok": ({}, [OK]),
    "401": ({}, [{"status": 401, "json": {"message": "Invalid API key"}}]),
    "403-names-the-permission": ({}, [{"status": 403, "json": {"message": "Forbidden"}}]),
    "404": ({}, [{"status": 404, "text": "<html>not here</html>", "headers": {"Content-Type": "text/html"}}]),
    "400-with-errors": (
        {},
        [{"status": 400, "json": {"message": "Invalid length", "errors": ["length must be 1-100"]}}],
    ),
    "429-waits-for-the-reset-then-succeeds": ({}, [RATE_LIMITED, OK]),
    "5xx-retried-then-succeeds": ({}, [DOWN, DOWN, OK]),
    "retry-budget-exhausted": ({"extra": {"retry_budget": 1}}, [DOWN, DOWN, DOWN, DOWN]),
    "no-retries-configured": ({"extra": {"max_retries": 0}}, [DOWN]),
    "read-timeout-on-a-get-is-retried": ({}, [{"exc": "read_timeout"}, OK]),
    "connect-timeouts-until-giving-up": ({"extra": {"max_retries": 2}}, [{"exc": "connect_timeout"}] * 3),
    "non-json-success": (
        {},
        [{"status": 200, "text": "<html>maintenance</html>", "headers": {"Content-Type": "text/html"}}],
    ),
    "empty-success": ({}, [{"status": 200, "text": ""}]),
    "key-echoed-in-the-body-is-redacted": (
        {},
        [{"status": 200, "json": {"message": "success", "data": [], "echo": f"Bearer {API_KEY}"}}],
    ),
    "key-echoed-in-an-error-is-redacted": (
        {},
        [{"status": 400, "json": {"message": f"bad header Authorization: Bearer {API_KEY}"}}],
    ),
    "key-echoed-in-a-redirect-is-redacted": (
        {},
        [{"status": 302, "text": "", "headers": {"Location": f"https://elsewhere.example/?k={API_KEY}"}}],
    ),
    "http-to-a-non-loopback-host-is-refused": ({"host": "http://rest.example.com"}, [OK]),
    "key-pasted-into-the-host-is-redacted": (
        {"host": f"{REST_ENDPOINT}/{API_KEY}"},
        [{"status": 404, "text": "<html>not here</html>", "headers": {"Content-Type": "text/html"}}],
    ),
    "instance-code-host": ({"host": "US-03"}, [OK]),
}


class _MidpointRandom:
    """The policy's jitter, made exact so both runs wait the same."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return (low + high) / 2


@pytest.fixture(autouse=True)
def exact_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "random", _MidpointRandom)


def _outcome(call: Any) -> dict[str, Any]:
    try:
        return {"value": call()}
    except BrazeError as err:
        attrs = {k: v for k, v in vars(err).items() if not k.startswith("_")}
        return {"error": type(err).__name__, "attrs": attrs, "text": str(err)}


def run_sync(answers: list[dict[str, Any]], url: str) -> tuple[dict[str, Any], list[float], list[Any]]:
    def spec(answer: dict[str, Any]) -> dict[str, Any]:
        if "exc" in answer:
            return {
                "exc": {
                    "read_timeout": requests.exceptions.ReadTimeout,
                    "connect_timeout": requests.exceptions.ConnectTimeout,
                }[answer["exc"]]
            }
        out: dict[str, Any] = {"status_code": answer["status"], "headers": answer.get("headers", {})}
        out["json" if "json" in answer else "text"] = answer.get("json", answer.get("text"))
        return out

    slept: list[float] = []
    with rm.Mocker() as mocker:
        mocker.get(url, [spec(a) for a in answers])
        braze_module._sleep, saved = slept.append, braze_module._sleep
        braze_module._wall_clock, saved_clock = (lambda: FROZEN_NOW + sum(slept)), braze_module._wall_clock
        try:
            outcome = _outcome(lambda: BrazeHook().get_send_analytics("c", "s", 14))
        finally:
            braze_module._sleep, braze_module._wall_clock = saved, saved_clock
        requests_seen = [(r.method, r.url, r.headers) for r in mocker.request_history]
    return outcome, slept, requests_seen


def run_async(answers: list[dict[str, Any]]) -> tuple[dict[str, Any], list[float], list[Any]]:
    queue = list(answers)
    seen: list[Any] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers))
        answer = queue.pop(0)
        if "exc" in answer:
            raise {"read_timeout": httpx.ReadTimeout, "connect_timeout": httpx.ConnectTimeout}[answer["exc"]](
                "timed out", request=request
            )
        headers = answer.get("headers", {})
        if "json" in answer:
            return httpx.Response(answer["status"], json=answer["json"], headers=headers)
        return httpx.Response(answer["status"], text=answer["text"], headers=headers)

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    async def call() -> dict[str, Any]:
        hook = BrazeAsyncHook()
        try:
            return await hook.get_send_analytics("c", "s", 14)
        finally:
            await hook.close()

    saved = (braze_async._asleep, braze_async._wall_clock, braze_async._transport_for_tests)
    braze_async._asleep = asleep
    braze_async._wall_clock = lambda: FROZEN_NOW + sum(slept)
    braze_async._transport_for_tests = httpx.MockTransport(handler)
    try:
        outcome = _outcome(lambda: asyncio.run(call()))
    finally:
        braze_async._asleep, braze_async._wall_clock, braze_async._transport_for_tests = saved
    return outcome, slept, seen


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_both_hooks_answer_alike(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fields, answers = SCENARIOS[name]
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(**fields))
    host = fields.get("host", "")
    base = {"US-03": "https://rest.iad-03.braze.com"}.get(
        host, host if host.startswith("https") else REST_ENDPOINT
    )
    sync, sync_slept, sync_seen = run_sync(answers, f"{base}/sends/data_series")
    async_, async_slept, async_seen = run_async(answers)

    assert async_ == sync
    assert async_slept == sync_slept
    assert [(m, u) for m, u, _ in async_seen] == [(m, u) for m, u, _ in sync_seen]
    for (_, _, sync_headers), (_, _, async_headers) in zip(sync_seen, async_seen, strict=True):
        for header in ("Authorization", "Accept", "Content-Type"):
            assert async_headers[header] == sync_headers[header]
        sync_agent, async_agent = sync_headers["User-Agent"], async_headers["User-Agent"]
        assert sync_agent.rsplit(" ", 1)[0] == async_agent.rsplit(" ", 1)[0]
        assert async_agent.rsplit(" ", 1)[1].startswith("python-httpx/")
    assert API_KEY not in repr(async_)


def test_the_scenarios_say_what_they_should(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few outcomes spelled out, so the parity above is not parity of two wrong answers."""
    expectations = {
        "403-names-the-permission": ("BrazeAuthError", "'sends.data_series' permission"),
        "429-waits-for-the-reset-then-succeeds": (None, None),
        "retry-budget-exhausted": ("BrazeServerError", "beyond the retry budget"),
        "read-timeout-on-a-get-is-retried": (None, None),
        "connect-timeouts-until-giving-up": ("BrazeTransportError", "Gave up after 3 attempts"),
        "non-json-success": ("BrazeUnexpectedResponseError", "not a JSON object"),
        "key-echoed-in-an-error-is-redacted": ("BrazeBadRequestError", "Bearer ***"),
        "http-to-a-non-loopback-host-is-refused": ("BrazeConfigurationError", "refusing plain http"),
    }
    for name, (error, text) in expectations.items():
        fields, answers = SCENARIOS[name]
        monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(**fields))
        outcome, slept, _ = run_async(answers)
        assert outcome.get("error") == error, (name, outcome)
        if text is not None:
            assert text in outcome["text"], (name, outcome["text"])
        if name.startswith("429"):
            assert slept == [10.5]  # the reset, 10 s after the answer's Date, plus the jitter
    fields, answers = SCENARIOS["key-echoed-in-the-body-is-redacted"]
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(**fields))
    assert run_async(answers)[0]["value"]["echo"] == "Bearer ***"


def test_tls_verification_failure_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection())
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        raise httpx.ConnectError(str(cause), request=request) from cause

    monkeypatch.setattr(braze_async, "_transport_for_tests", httpx.MockTransport(handler))
    outcome = _outcome(lambda: asyncio.run(BrazeAsyncHook().get_send_analytics("c", "s", 14)))
    assert outcome["error"] == "BrazeTransportError"
    assert (
        "failed before the request was sent: the certificate of rest.iad-01.braze.com could not be verified"
        in (outcome["text"])
    )
    assert len(calls) == 1


def test_one_client_and_one_lookup_serve_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection())
    monkeypatch.setattr(
        braze_async,
        "_transport_for_tests",
        httpx.MockTransport(lambda r: httpx.Response(200, json=OK["json"])),
    )
    lookups = []
    real = BrazeAsyncHook._aget_connection

    async def counted(self: BrazeAsyncHook) -> Any:
        lookups.append(1)
        return await real(self)

    monkeypatch.setattr(BrazeAsyncHook, "_aget_connection", counted)

    async def many() -> set[int]:
        hooks = [BrazeAsyncHook() for _ in range(50)]
        await asyncio.gather(*(h.get_send_analytics("c", "s", 14) for h in hooks))
        settings = [await h.get_settings() for h in hooks]
        clients = {id(lane.client) for h, s in zip(hooks, settings, strict=True) for lane in [h._lane(s)]}
        clients |= {
            id(lane.client)
            for lane in braze_async._loop_shared().lanes[next(iter(braze_async._loop_shared().lanes))]
        }
        await braze_async.aclose_shared_clients()
        return clients

    # One set of shared clients for the loop, not one per hook.
    assert len(asyncio.run(many())) == braze_async.MAX_CONNECTIONS // braze_async.CONNECTIONS_PER_CLIENT
    assert len(lookups) == 1


def test_request_starts_are_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of checks is given turns START_SPACING apart, not all the same millisecond. The
    turns are asserted, not wall-clock gaps (those depend on the machine's load)."""
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection())
    waits: list[float] = []
    answered = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        answered += 1
        return httpx.Response(200, json=OK["json"])

    async def wait_turn(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(braze_async, "_transport_for_tests", httpx.MockTransport(handler))
    monkeypatch.setattr(braze_async, "_wait_turn", wait_turn)
    # A frozen loop clock: every request asks for its turn at the same instant.
    monkeypatch.setattr(asyncio.BaseEventLoop, "time", lambda self: 1000.0)

    async def burst() -> None:
        await asyncio.gather(*(BrazeAsyncHook().get_send_analytics("c", "s", 14) for _ in range(5)))
        await braze_async.aclose_shared_clients()

    asyncio.run(burst())
    assert answered == 5
    spacing = braze_async.START_SPACING
    # The first goes at once (no wait); the others wait one, two, three, four spacings.
    assert waits == pytest.approx([spacing * n for n in range(1, 5)])


def test_an_empty_window_is_waited_out_before_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the synchronous hook: an answer that left no requests in the window makes the next
    call (of any hook of the loop with these settings) wait for the reset, not spend a 429."""
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection())
    slept: list[float] = []
    empty = {
        "Date": DATE,
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(FROZEN_NOW) + 3),
    }
    asked_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked_at.append(FROZEN_NOW + sum(slept))
        headers = empty if len(asked_at) == 1 else {"Date": DATE, "X-RateLimit-Remaining": "99"}
        return httpx.Response(200, json=OK["json"], headers=headers)

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(braze_async, "_asleep", asleep)
    monkeypatch.setattr(braze_async, "_wall_clock", lambda: FROZEN_NOW + sum(slept))
    monkeypatch.setattr(braze_async, "_transport_for_tests", httpx.MockTransport(handler))

    async def three_calls() -> None:
        await BrazeAsyncHook().get_send_analytics("c", "s", 14)
        await BrazeAsyncHook().get_send_analytics("c", "s", 14)
        await BrazeAsyncHook().get_send_analytics("c", "s", 14)
        await braze_async.aclose_shared_clients()

    asyncio.run(three_calls())
    assert slept == [pytest.approx(3.0)]
    assert asked_at == [FROZEN_NOW, pytest.approx(FROZEN_NOW + 3.0), pytest.approx(FROZEN_NOW + 3.0)]
