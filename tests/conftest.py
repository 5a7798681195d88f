"""Test set-up shared by unit and integration tests.

Airflow reads its configuration when first imported, so the environment is fixed here, before
any test module imports it: a throwaway AIRFLOW_HOME, unit-test mode, no example DAGs.

Everything the suite writes stays under pytest's own temporary folder (``pytest-of-<user>/
pytest-<N>``, of which pytest keeps the last three): AIRFLOW_HOME, and the temporary folder of
this process and of every process it starts (``tempfile.tempdir`` and ``TMPDIR``), which is where
spool files and the test DAGs' files go. They are set in ``pytest_configure``, once pytest knows
that folder and before it collects (imports) any test module.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

    from airflow_provider_braze.sandbox import BrazeSandbox

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The tests' AIRFLOW_HOME, under pytest's temporary folder (set by pytest_configure).
AIRFLOW_HOME = Path()


@pytest.hookimpl(trylast=True)  # after pytest's own tmpdir plugin has made its factory
def pytest_configure(config: pytest.Config) -> None:
    global AIRFLOW_HOME  # noqa: PLW0603  (read by tests as tests.conftest.AIRFLOW_HOME)
    factory = getattr(config, "_tmp_path_factory", None) or pytest.TempPathFactory.from_config(
        config, _ispytest=True
    )
    session = factory.mktemp("session", numbered=False)
    AIRFLOW_HOME = session / "airflow-home"
    AIRFLOW_HOME.mkdir()
    os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
    temp = session / "tmp"
    temp.mkdir()
    os.environ["TMPDIR"] = str(temp)
    tempfile.tempdir = str(temp)


os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "example_dags")
# dag.test() runs only DAGs it finds in a bundle: the examples, and DAGs made for the tests.
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "provider_examples",
            "classpath": _LOCAL_BUNDLE,
            "kwargs": {"path": str(REPO_ROOT / "example_dags")},
        },
        {
            "name": "provider_test_dags",
            "classpath": _LOCAL_BUNDLE,
            "kwargs": {"path": str(REPO_ROOT / "tests" / "integration" / "dags")},
        },
    ]
)
os.environ.pop("AIRFLOW_CONN_BRAZE_DEFAULT", None)

# Property-based tests give the same answer on every run: a fixed, derandomized search with no
# example database (a failure found once cannot make a clone fail for ever). HYPOTHESIS_PROFILE=
# explore searches further at random; turn what it finds into an explicit @example.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=100, print_blob=True
)
_hypothesis_settings.register_profile("explore", derandomize=False, max_examples=2_000)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: A distinctive key: tests search logs, XComs and error texts for it.
API_KEY = "canary-braze-key-5f1e9c3a7d"
REST_ENDPOINT = "https://rest.iad-01.braze.com"


def braze_connection(**fields: object) -> str:
    """A Braze connection in Airflow's JSON form, with the test key and US-01 by default."""
    conn: dict[str, object] = {"conn_type": "braze", "host": REST_ENDPOINT, "password": API_KEY}
    conn.update(fields)
    return json.dumps(conn)


@pytest.fixture
def braze_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """``braze_default`` pointing at US-01 with the test key."""
    value = braze_connection()
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", value)
    return value


#: A messaging object Braze would accept, per channel (without message_variation_id).
VALID_OBJECTS: dict[str, dict[str, Any]] = {
    "email": {"app_id": "sandbox-app", "from": "Sandbox News <news@example.com>", "body": "<p>Hi</p>"},
    "apple_push": {"alert": {"title": "Hi", "body": "New picks"}},
    "android_push": {"alert": "New picks", "title": "Hi"},
    "kindle_push": {"alert": "New picks", "title": "Hi"},
    "web_push": {"alert": "New picks", "title": "Hi"},
    "content_card": {"type": "CLASSIC", "title": "Hi", "description": "New picks", "time_to_live": 86_400},
    "sms": {"subscription_group_id": "sg", "body": "New picks", "app_id": "sandbox-app"},
    "webhook": {"url": "https://example.com/hook", "request_method": "POST"},
    "whats_app": {
        "app_id": "sandbox-app",
        "subscription_group_id": "sg",
        "message_type": "text_response_message",
        "message": {"body": "New picks"},
    },
    "windows_phone8_push": {"toast_content": "New picks"},
    "windows_universal_push": {"push_type": "toast_text_01", "toast_text1": "New picks"},
}


def messages_for(*channels: str, campaign_id: str | None = "sandbox-api-campaign") -> dict[str, Any]:
    """``messages`` Braze would accept for these channels (with the sandbox's variation IDs,
    ``<campaign>-<channel>``, when a campaign is given)."""
    messages: dict[str, Any] = {}
    for channel in channels:
        obj = dict(VALID_OBJECTS[channel])
        if campaign_id is not None:
            obj["message_variation_id"] = f"{campaign_id}-{channel.replace('_', '-')}"
        messages[channel] = obj
    return messages


#: The "current time" (UTC epoch seconds) the hook sees at the start of a ``sleeps`` test.
#: A day a few days ahead (YYYY-MM-DD), for schedules: Braze schedules up to 90 days ahead, and
#: the provider refuses a schedule in the past, so tests must not use fixed dates.
SOON = (datetime.now(timezone.utc) + timedelta(days=5)).strftime("%Y-%m-%d")
FROZEN_NOW = 1_790_000_000.0


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Record the hook's sleeps instead of sleeping; its clock starts at FROZEN_NOW and moves
    only by the time slept, so waits are exact and tests take no time."""
    import random

    from airflow_provider_braze.hooks import braze as braze_module

    # Jitter and backoff draw from random: seed it, so a test's waits are the same every run.
    state = random.getstate()
    random.seed(20261126)
    recorded: list[float] = []
    monkeypatch.setattr(braze_module, "_sleep", recorded.append)
    monkeypatch.setattr(braze_module, "_wall_clock", lambda: FROZEN_NOW + sum(recorded))
    yield recorded
    random.setstate(state)


def sandbox_call(
    sandbox: BrazeSandbox,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    key: str | None = None,
    params: dict[str, Any] | None = None,
) -> requests.Response:
    """Call the sandbox with its API key (or ``key``); ``body`` text is sent as is, else as JSON."""
    import requests

    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return requests.request(
        method,
        sandbox.url + path,
        data=data,
        params=params,
        headers={"Authorization": f"Bearer {key or sandbox.api_key}", "Content-Type": "application/json"},
        timeout=10,
    )


@pytest.fixture
def httpx_via_requests_mock(requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The async hook's requests (httpx, in triggers) answered by this test's ``requests_mock``,
    as the synchronous hook's are: one table of answers, one count of calls, for both hooks."""
    import httpx
    import requests

    from airflow_provider_braze.hooks import braze_async

    def forward(request: httpx.Request) -> httpx.Response:
        try:
            answer = requests.request(
                request.method,
                str(request.url),
                headers=dict(request.headers),
                data=request.content or None,
                allow_redirects=False,
                timeout=5,
            )
        except requests.exceptions.ConnectTimeout as err:
            raise httpx.ConnectTimeout(str(err), request=request) from err
        except requests.exceptions.ReadTimeout as err:
            raise httpx.ReadTimeout(str(err), request=request) from err
        except requests.exceptions.ConnectionError as err:
            raise httpx.ConnectError(str(err), request=request) from err
        return httpx.Response(
            answer.status_code,
            headers=[(k, v) for k, v in answer.headers.items() if k.lower() != "content-encoding"],
            content=answer.content,
            request=request,
        )

    monkeypatch.setattr(braze_async, "_transport_for_tests", httpx.MockTransport(forward))
    return requests_mock
