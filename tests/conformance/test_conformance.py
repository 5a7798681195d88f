"""The conformance table (``cases.json``): each request runs through the hook's local checks and
through the sandbox, and both must answer as Braze's docs say Braze does.

The hook is called through its public verbs with the transport mocked: a local refusal is a
``BrazeValidationError`` before any request; a local acceptance is a request on the wire. The
sandbox gets the request's body as JSON (the query, for ``GET``) from a fresh state.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.sandbox import BrazeSandbox
from airflow_provider_braze.sandbox.rules import RULES
from tests.conftest import sandbox_call

TABLE = json.loads((Path(__file__).parent / "cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = TABLE["cases"]
#: Cases Braze's docs decide, and cases where the docs are silent and the provider chose the
#: stricter answer (``"stricter"``: why), shown apart so that the two are never confused.
DOCUMENTED = [case for case in CASES if "stricter" not in case]
STRICTER = [case for case in CASES if "stricter" in case]
#: A page of braze-inc/braze-docs' API reference.
PAGE = re.compile(r"_docs/_api/[a-z_/]+\.md")

#: Each endpoint's hook verb, and the arguments it needs even when the body leaves them out (so
#: that leaving them out is the hook's local refusal, not a TypeError).
VERBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "POST /sends/id/create": ("create_send_id", ("campaign_id",)),
    "POST /messages/send": ("send_messages", ()),
    "POST /messages/schedule/create": ("schedule_messages", ("schedule",)),
    "POST /campaigns/trigger/send": ("send_triggered_campaign", ("campaign_id",)),
    "POST /campaigns/trigger/schedule/create": ("schedule_triggered_campaign", ("campaign_id", "schedule")),
    "GET /sends/data_series": ("get_send_analytics", ("campaign_id", "send_id", "length")),
}


def expand(value: Any, now: datetime) -> Any:
    """The table's markers, made concrete (long texts, many users, times relative to now)."""
    if isinstance(value, list):
        return [expand(item, now) for item in value]
    if not isinstance(value, dict):
        return value
    if "$text" in value:
        return value.get("char", "x") * value["$text"]
    if "$users" in value:
        return [f"u{i}" for i in range(value["$users"])]
    if "$recipients" in value:
        return [{"external_user_id": f"u{i}"} for i in range(value["$recipients"])]
    if "$hours_from_now" in value:
        rest = {key: item for key, item in value.items() if key != "$hours_from_now"}
        return expand({**rest, "$days_from_now": value["$hours_from_now"] / 24}, now)
    if "$days_from_now" in value:
        moment = (now + timedelta(days=value["$days_from_now"])).replace(microsecond=0)
        if value.get("naive"):
            return moment.replace(tzinfo=None).isoformat()
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {key: expand(item, now) for key, item in value.items()}


def braze_says(case: dict[str, Any], expected: dict[str, Any] | None = None) -> str:
    expected = case["braze"] if expected is None else expected
    return (
        "accepted" if expected.get("answer") == "accepted" else f"{expected['status']} {expected['message']}"
    )


def local_expected(case: dict[str, Any]) -> str:
    if case.get("local") == "accept":
        return "accepted"
    if case.get("local") == "refuse":  # the hook is stricter than Braze (a "stricter" case)
        return "refused"
    return "accepted" if case["braze"].get("answer") == "accepted" else "refused"


def hook_answer(endpoint: str, body: dict[str, Any]) -> str:
    """``accepted`` if the hook sent the request, ``refused: ...`` if its local checks refused."""
    verb, required = VERBS[endpoint]
    kwargs = {name: None for name in required} | body
    success = {"message": "success", "dispatch_id": "d", "schedule_id": "s", "send_id": "spring", "data": []}
    hook = BrazeHook()
    refusal: BrazeValidationError | None = None
    with rm.Mocker() as mocker:
        mocker.register_uri(rm.ANY, rm.ANY, status_code=201, json=success)
        try:
            getattr(hook, verb)(**kwargs)
        except BrazeValidationError as err:
            refusal = err
    # A local refusal sends nothing; an acceptance sends exactly the one request.
    assert mocker.call_count == (0 if refusal else 1), refusal
    return f"refused: {refusal}" if refusal else "accepted"


def sandbox_answer(sandbox: BrazeSandbox, endpoint: str, body: dict[str, Any]) -> str:
    method, path = endpoint.split(" ", 1)
    if method == "GET":
        response = sandbox_call(sandbox, path, method="GET", params=body)
    else:
        response = sandbox_call(sandbox, path, body)
    if 200 <= response.status_code < 300:
        return "accepted"
    return f"{response.status_code} {response.json().get('message')} {response.json().get('errors', [])}"


def check_case(sandbox: BrazeSandbox, case: dict[str, Any]) -> None:
    """The hook and the sandbox (under its default settings, then under each setting value the
    case names: ``"settings": {name: {value: braze answer}}``) answer as the case says."""
    now = datetime.now(timezone.utc)
    body = expand(json.loads(json.dumps(case["body"])), now)
    local = hook_answer(case["endpoint"], body)
    local_ok = local.split(":", 1)[0] == local_expected(case)
    assert local_ok, (
        f"{case['id']} ({case['page']}): the hook's local checks (expected: {local_expected(case)}) "
        f"said {local}"
    )
    runs: list[tuple[dict[str, str], dict[str, Any]]] = [({}, case["braze"])]
    for name, answers in case.get("settings", {}).items():
        runs += [({name: value}, answer) for value, answer in answers.items()]
    for settings, answer in runs:
        sandbox.reset()
        sandbox.state.set_behaviours(**settings)
        for step in case.get("setup", []):
            method, path = step["endpoint"].split(" ", 1)
            assert sandbox_call(sandbox, path, step["body"], method=method).ok
        remote = sandbox_answer(sandbox, case["endpoint"], body)
        expected = braze_says(case, answer)
        remote_ok = remote == "accepted" if expected == "accepted" else remote.startswith(expected + " ")
        assert remote_ok, (
            f"{case['id']} ({case['page']}), sandbox settings {settings or 'default'}: Braze answers "
            f"{expected}; the sandbox said {remote}"
        )
    sandbox.reset()


@pytest.mark.parametrize("case", DOCUMENTED, ids=[c["id"] for c in DOCUMENTED])
def test_hook_and_sandbox_answer_as_braze_documents(
    braze_sandbox: BrazeSandbox, case: dict[str, Any]
) -> None:
    check_case(braze_sandbox, case)


@pytest.mark.parametrize("case", STRICTER, ids=[c["id"] for c in STRICTER])
def test_stricter_choices_where_braze_docs_are_silent(
    braze_sandbox: BrazeSandbox, case: dict[str, Any]
) -> None:
    """Where Braze's docs do not decide, the provider's stricter choice, with its reason."""
    assert isinstance(case["stricter"], str), case["id"]
    assert len(case["stricter"]) > 20, case["id"]
    check_case(braze_sandbox, case)


def test_settings_named_by_cases_exist() -> None:
    from airflow_provider_braze.sandbox.state import UNDOCUMENTED_BEHAVIOURS

    for case in CASES:
        for name, answers in case.get("settings", {}).items():
            assert set(answers) <= set(UNDOCUMENTED_BEHAVIOURS[name]), case["id"]


def test_the_table_covers_every_endpoint_and_rule_kind() -> None:
    endpoints = {case["endpoint"] for case in CASES}
    assert endpoints == set(VERBS) == set(RULES)
    assert len(CASES) >= 80
    messages = {case["braze"].get("message") for case in CASES}
    for braze_message in (
        "Apple Push Length Exceeded",
        "Android Push Length Exceeded",
        "No Recipients",
        "Bad Request",
        "Request Entity Too Large",
        "Message Variant Unspecified",
        "Invalid Extra Push Payload",
        "The max number of external_ids and aliases per request was exceeded",
    ):
        assert braze_message in messages
    for case in CASES:
        assert PAGE.fullmatch(case["page"]), case["id"]


def test_every_rule_names_its_doc_page() -> None:
    for endpoint, rules in RULES.items():
        for rule in rules:
            assert PAGE.fullmatch(rule.page), (endpoint, rule.name)
            assert rule.message, (endpoint, rule.name)
            assert 400 <= rule.status < 500, (endpoint, rule.name)


def test_the_sandbox_loads_none_of_the_clients_checks() -> None:
    """The sandbox stands in for Braze: it must not share the client's checks, or a mistake in
    them would pass offline."""
    code = """
import json, sys, requests
from airflow_provider_braze.sandbox.server import BrazeSandbox
with BrazeSandbox() as sandbox:
    sandbox.state.add_campaign("conformance-campaign")  # variations from the sandbox's own table
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    email = {"app_id": "a", "from": "N <n@example.com>", "body": "b"}
    bodies = {
        "/messages/send": {"external_user_ids": ["u1"], "messages": {"email": email}},
        "/campaigns/trigger/send": {"campaign_id": "sandbox-api-triggered-campaign", "broadcast": True},
        "/sends/id/create": {"campaign_id": "conformance-campaign"},
    }
    for path, body in bodies.items():
        assert requests.post(sandbox.url + path, json=body, headers=headers, timeout=10).ok, path
mods = ("messaging", "validation", "recipients")
print(json.dumps([m for m in mods if "airflow_provider_braze." + m in sys.modules]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"  # Airflow may log a line first


def test_a_user_listed_twice_in_one_request_is_delivered_once(braze_sandbox: BrazeSandbox) -> None:
    """recipient_object.md: Braze dedupes a user listed twice in one request."""
    campaign = "sandbox-api-triggered-campaign"
    body = {
        "campaign_id": campaign,
        "recipients": [
            {"external_user_id": "u1", "trigger_properties": {"n": 1}},
            {"external_user_id": "u1", "trigger_properties": {"n": 2}},
            {"external_user_id": "u2"},
        ],
    }
    assert sandbox_call(braze_sandbox, "/campaigns/trigger/send", body).status_code == 201
    assert braze_sandbox.state.deliveries(campaign) == {"u1": 1, "u2": 1}
    users = {
        "external_user_ids": ["u3", "u3"],
        "messages": {"sms": {"subscription_group_id": "sg", "body": "b", "app_id": "a"}},
    }
    assert sandbox_call(braze_sandbox, "/messages/send", users).status_code == 201
    assert braze_sandbox.state.deliveries() == {"u1": 1, "u2": 1, "u3": 1}
