"""CreateSendIdOperator: validation, the hook call, XCom and logging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests_mock as rm

from airflow_provider_braze.exceptions import (
    BrazeAmbiguousRequestError,
    BrazeAuthError,
    BrazeBadRequestError,
    BrazeCheckpointError,
    BrazeRateLimitError,
    BrazeValidationError,
)
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.operators.send_id import CreateSendIdOperator
from airflow_provider_braze.sandbox import BrazeSandbox, email_message
from tests.conftest import API_KEY, REST_ENDPOINT

CREATE_URL = f"{REST_ENDPOINT}/sends/id/create"


def run(op: CreateSendIdOperator) -> tuple[Any, mock.MagicMock]:
    """Execute outside Airflow: no Variables, so what was created is kept in memory."""
    if op.checkpoint == "variable":
        op.checkpoint = None
    ti = mock.MagicMock()
    return op.execute({"ti": ti}), ti  # type: ignore[arg-type]


def test_template_fields() -> None:
    assert CreateSendIdOperator.template_fields == ("campaign_id", "send_id")


def test_defaults() -> None:
    op = CreateSendIdOperator(task_id="t", campaign_id="c")
    assert op.braze_conn_id == "braze_default"
    assert op.send_id is None


def test_init_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BRAZE_DEFAULT", raising=False)
    op = CreateSendIdOperator(task_id="t", campaign_id="{{ params.c }}", send_id="{{ ds }}")
    assert "hook" not in op.__dict__
    assert op.campaign_id == "{{ params.c }}"  # stored untouched, rendered later


def test_execute_creates_pushes_and_returns(
    braze_conn: str, requests_mock: rm.Mocker, capsys: pytest.CaptureFixture[str]
) -> None:
    requests_mock.post(
        CREATE_URL,
        json={"message": "success", "send_id": "spring-2026"},
        headers={
            "x-ratelimit-limit": "100",
            "x-ratelimit-remaining": "97",
            "x-ratelimit-reset": "1790035200",
        },
    )
    result, ti = run(CreateSendIdOperator(task_id="t", campaign_id="camp-1", send_id="spring-2026"))

    assert result == "spring-2026"
    assert requests_mock.last_request.json() == {"campaign_id": "camp-1", "send_id": "spring-2026"}
    assert ti.xcom_push.call_args_list == [
        mock.call(key="send_id", value="spring-2026"),
        mock.call(key="campaign_id", value="camp-1"),
    ]
    out = capsys.readouterr().out
    assert "Created Braze send ID 'spring-2026' for campaign 'camp-1'." in out
    assert "Daily send ID quota: 97 of 100 left, resets at 2026-09-22 00:00:00 UTC." in out
    assert API_KEY not in out


def test_execute_returns_the_generated_id(braze_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(CREATE_URL, json={"message": "success", "send_id": "braze-made-1"})
    result, ti = run(CreateSendIdOperator(task_id="t", campaign_id="camp-1"))
    assert result == "braze-made-1"
    assert requests_mock.last_request.json() == {"campaign_id": "camp-1"}
    ti.xcom_push.assert_any_call(key="send_id", value="braze-made-1")


@pytest.mark.parametrize(
    ("campaign_id", "send_id", "message"),
    [
        ("", None, "campaign_id is empty"),
        ("   ", None, "campaign_id is empty"),
        (123, None, "campaign_id must be a string"),
        ("c", "x" * 65, "send_id is 65 characters long; Braze allows at most 64"),
        ("c", "envoi-été", "non-ASCII character 'é'"),
        ("c", "emoji-\U0001f680", "non-ASCII"),
        ("c", "spring\n", "leading or trailing whitespace"),
        ("c", "a\tb", "control character"),
        ("c", 42, "send_id must be a string or None"),
    ],
)
def test_bad_input_fails_before_any_request(
    braze_conn: str, requests_mock: rm.Mocker, campaign_id: Any, send_id: Any, message: str
) -> None:
    op = CreateSendIdOperator(task_id="t", campaign_id=campaign_id, send_id=send_id)
    with pytest.raises(BrazeValidationError, match=message):
        run(op)
    assert requests_mock.call_count == 0


def test_validation_comes_before_the_connection(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BRAZE_DEFAULT", raising=False)
    with pytest.raises(BrazeValidationError, match="campaign_id is empty"):
        run(CreateSendIdOperator(task_id="t", campaign_id=""))


def test_64_ascii_characters_are_accepted(braze_conn: str, requests_mock: rm.Mocker) -> None:
    send_id = "A-z0_9.~:" * 7 + "x"
    assert len(send_id) == 64
    requests_mock.post(CREATE_URL, json={"message": "success", "send_id": send_id})
    assert run(CreateSendIdOperator(task_id="t", campaign_id="c", send_id=send_id))[0] == send_id


def test_quota_exhausted_fails_at_once_with_the_reset_time(
    braze_conn: str, requests_mock: rm.Mocker, sleeps: list[float]
) -> None:
    requests_mock.post(
        CREATE_URL,
        status_code=429,
        json={"message": "Rate limit exceeded"},
        headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"},
    )
    with pytest.raises(BrazeRateLimitError) as err:
        run(CreateSendIdOperator(task_id="t", campaign_id="c", send_id="s"))
    assert sleeps == []
    assert "resets at 2100-01-01 00:00:00 UTC" in str(err.value)
    assert "100 custom send IDs per workspace per day" in str(err.value)


def test_conn_id_is_used(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_EU", '{"conn_type": "braze", "host": "EU-01", "password": "eu-key-0123456"}'
    )
    requests_mock.post(
        "https://rest.fra-01.braze.eu/sends/id/create", json={"message": "success", "send_id": "s"}
    )
    run(CreateSendIdOperator(task_id="t", campaign_id="c", braze_conn_id="braze_eu"))
    assert requests_mock.last_request.headers["Authorization"] == "Bearer eu-key-0123456"


# ---------------------------------------------------------------------------- retries never create twice


BEHAVIOURS = ["count", "idempotent", "refuse"]


def task_instance(try_number: int) -> mock.MagicMock:
    return mock.MagicMock(dag_id="d", task_id="create", run_id="r", map_index=-1, try_number=try_number)


def create(tmp_path: Path, send_id: str | None, try_number: int) -> str:
    op = CreateSendIdOperator(
        task_id="create", campaign_id="sandbox-api-campaign", send_id=send_id, checkpoint=str(tmp_path)
    )
    return op.execute({"ti": task_instance(try_number)})  # type: ignore[arg-type,no-any-return]


def creations(sandbox: BrazeSandbox) -> int:
    return len(sandbox.ledger("POST /sends/id/create"))


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_a_retry_after_a_success_does_not_create_again(
    braze_sandbox: BrazeSandbox, tmp_path: Path, behaviour: str
) -> None:
    braze_sandbox.state.set_behaviours(send_id_recreate=behaviour)
    assert create(tmp_path, "spring", 1) == "spring"
    assert create(tmp_path, "spring", 2) == "spring"
    assert creations(braze_sandbox) == 1
    assert (
        braze_sandbox.state.send_id_quota.peek("sandbox-workspace", braze_sandbox.state.now()).remaining == 99
    )


#: What Braze may do when asked to create a send ID that exists: every re-creation setting, and
#: with ``refuse`` every wording of the refusal.
RECREATIONS = [
    {"send_id_recreate": "count"},
    {"send_id_recreate": "idempotent"},
    *(
        {"send_id_recreate": "refuse", "send_id_recreate_wording": wording}
        for wording in ("already_exists", "bad_request", "invalid_send_id")
    ),
]


def recreation_id(settings: dict[str, str]) -> str:
    return "-".join(settings.values())


@pytest.mark.parametrize("unknown_send_id", ["refuse", "accept"])
@pytest.mark.parametrize("recreation", RECREATIONS, ids=recreation_id)
def test_a_retry_after_a_lost_answer_ends_with_the_send_id_whatever_braze_does(
    braze_sandbox: BrazeSandbox,
    tmp_path: Path,
    recreation: dict[str, str],
    unknown_send_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first request created the ID, but its answer was lost. Whether Braze counts, ignores
    or refuses the second request for it, in whatever words, the retry ends with the ID, and
    sends with it work."""
    braze_sandbox.state.set_behaviours(**recreation, unknown_send_id=unknown_send_id)
    braze_sandbox.set_faults(drop_after=1.0, paths=["/sends/id/create"], max_faults=1)
    with pytest.raises(BrazeAmbiguousRequestError, match="Braze may have created send ID 'spring'"):
        create(tmp_path, "spring", 1)
    assert create(tmp_path, "spring", 2) == "spring"
    assert create(tmp_path, "spring", 3) == "spring"  # and later tries do not ask again
    if recreation["send_id_recreate"] == "refuse":
        assert (
            "An earlier try's identical request was in doubt; the send ID is valid and campaign "
            "'sandbox-api-campaign' exists, so Braze refused an ID that exists: the earlier request "
            "created it. Using it."
        ) in capsys.readouterr().out
    hook = BrazeHook()
    answer = hook.send_messages(
        "sandbox-api-campaign", send_id="spring", external_user_ids=["u1"], messages=email_message()
    )
    assert answer["dispatch_id"]
    assert braze_sandbox.state.deliveries("sandbox-api-campaign", "spring") == {"u1": 1}


@pytest.mark.parametrize("recreation", RECREATIONS, ids=recreation_id)
@pytest.mark.parametrize("fault", ["drop_before", "drop_after"])
def test_a_refusal_for_a_campaign_the_workspace_lacks_is_not_taken_for_a_creation(
    braze_sandbox: BrazeSandbox, tmp_path: Path, recreation: dict[str, str], fault: str
) -> None:
    """A mistyped campaign: the first answer is lost, the retry is refused. The campaign is not
    in the workspace's list, so the refusal is for the request: the task fails, the ID is never
    used, and a retry after the fix asks afresh."""
    braze_sandbox.state.set_behaviours(**recreation)
    braze_sandbox.set_faults(**{fault: 1.0}, paths=["/sends/id/create"], max_faults=1)
    op = CreateSendIdOperator(
        task_id="create", campaign_id="sandbox-api-campaing", send_id="spring", checkpoint=str(tmp_path)
    )
    with pytest.raises(BrazeAmbiguousRequestError):
        op.execute({"ti": task_instance(1)})  # type: ignore[arg-type]
    ti = task_instance(2)
    with pytest.raises(BrazeCheckpointError) as err:
        op.execute({"ti": ti})  # type: ignore[arg-type]
    assert str(err.value) == (
        "An earlier try asked Braze to create send ID 'spring' for campaign 'sandbox-api-campaing' and "
        "its answer was lost; asked again, Braze refused: Braze answered 400 Bad Request to POST "
        "/sends/id/create: Invalid Campaign ID. Errors: [\"no campaign with ID 'sandbox-api-campaing'\"]. "
        "Campaign 'sandbox-api-campaing' is not in the workspace's campaign list, so the earlier request "
        "was refused too and the send ID was not created: it is not used. Fix campaign_id, then retry."
    )
    ti.xcom_push.assert_not_called()
    assert creations(braze_sandbox) == 0
    # The campaign is added in Braze: the next try asks afresh (the refusal was remembered).
    braze_sandbox.state.add_campaign("sandbox-api-campaing")
    assert op.execute({"ti": task_instance(3)}) == "spring"  # type: ignore[arg-type]
    assert creations(braze_sandbox) == 1


#: Refusals in many words, and statuses: none of them decides anything.
REFUSALS = [
    (400, {"message": "Bad Request", "errors": ["send_id 'spring' already exists"]}),
    (400, {"message": "Invalid send_id"}),
    (400, {"message": "Invalid Campaign ID"}),
    (400, {"message": "Bad Request"}),
    (409, {"message": "Conflict"}),
    (422, {"message": "Unprocessable"}),
]


@pytest.mark.parametrize("listed", [True, False], ids=["campaign-listed", "campaign-unknown"])
@pytest.mark.parametrize(("status", "answer"), REFUSALS)
def test_after_a_lost_answer_a_refusal_is_settled_by_the_campaign_never_by_its_words(
    braze_conn: str,
    requests_mock: rm.Mocker,
    tmp_path: Path,
    status: int,
    answer: dict[str, Any],
    listed: bool,
) -> None:
    import requests

    requests_mock.post(
        CREATE_URL, [{"exc": requests.exceptions.ReadTimeout}, {"status_code": status, "json": answer}]
    )
    # Two pages: the campaign is on the second, after a full first page.
    first_page = [{"id": f"other-{n}"} for n in range(100)]
    second_page = [{"id": "sandbox-api-campaign" if listed else "another"}]
    requests_mock.get(
        f"{REST_ENDPOINT}/campaigns/list",
        [{"json": {"message": "success", "campaigns": page}} for page in (first_page, second_page)],
    )
    with pytest.raises(BrazeAmbiguousRequestError):
        create(tmp_path, "spring", 1)
    if listed:
        assert create(tmp_path, "spring", 2) == "spring"
        assert create(tmp_path, "spring", 3) == "spring"  # remembered: not asked again
    else:
        with pytest.raises(BrazeCheckpointError, match="is not in the workspace's campaign list"):
            create(tmp_path, "spring", 2)
    assert [r.qs.get("page") for r in requests_mock.request_history if r.method == "GET"] == [["0"], ["1"]]
    assert requests_mock.call_count == 4


def test_a_key_that_cannot_list_campaigns_settles_nothing(
    braze_sandbox: BrazeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    braze_sandbox.state.set_behaviours(send_id_recreate="refuse", send_id_recreate_wording="bad_request")
    braze_sandbox.state.add_key("create-only-key", permissions=["sends.id.create"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAZE_DEFAULT",
        json.dumps({"conn_type": "braze", "host": braze_sandbox.url, "password": "create-only-key"}),
    )
    braze_sandbox.set_faults(drop_after=1.0, paths=["/sends/id/create"], max_faults=1)
    with pytest.raises(BrazeAmbiguousRequestError):
        create(tmp_path, "spring", 1)
    with pytest.raises(BrazeCheckpointError) as err:
        create(tmp_path, "spring", 2)
    text = str(err.value)
    assert text.startswith(
        "An earlier try asked Braze to create send ID 'spring' for campaign 'sandbox-api-campaign' and its "
        "answer was lost; asked again, Braze refused: Braze answered 400 Bad Request to POST "
        "/sends/id/create: Bad Request. Braze documents no wording that tells a send ID that exists from "
        "a request that is wrong, so this task checks that the campaign exists (GET /campaigns/list), and "
        "it could not: "
    )
    assert "campaigns.list" in text.split("it could not: ")[1].split(" Give the API key", maxsplit=1)[0]
    assert text.endswith(
        "Give the API key the campaigns.list permission and retry this task, or give a new send_id."
    )


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        ({"status_code": 400, "json": {"message": "Invalid Campaign ID"}}, BrazeBadRequestError),
        ({"status_code": 403, "json": {"message": "Access Denied"}}, BrazeAuthError),
    ],
)
def test_a_definite_refusal_is_remembered_and_the_next_try_asks_afresh(
    braze_conn: str, requests_mock: rm.Mocker, tmp_path: Path, first: dict[str, Any], kind: type
) -> None:
    """Braze answered no: the ID was not created, so the retry is a first request again (its
    refusal, should it come, is Braze's own error, not a question about an earlier request)."""
    requests_mock.post(
        CREATE_URL,
        [
            first,
            {"status_code": 400, "json": {"message": "Bad Request"}},
            {"json": {"message": "success", "send_id": "spring"}},
        ],
    )
    with pytest.raises(kind):
        create(tmp_path, "spring", 1)
    with pytest.raises(BrazeBadRequestError, match="Braze answered 400 Bad Request to POST /sends/id/create"):
        create(tmp_path, "spring", 2)
    assert create(tmp_path, "spring", 3) == "spring"
    assert [r.method for r in requests_mock.request_history] == ["POST", "POST", "POST"]  # no campaign lookup


def test_a_lost_answer_for_a_generated_send_id_fails_clearly(
    braze_sandbox: BrazeSandbox, tmp_path: Path
) -> None:
    braze_sandbox.set_faults(drop_after=1.0, paths=["/sends/id/create"], max_faults=1)
    with pytest.raises(BrazeAmbiguousRequestError):
        create(tmp_path, None, 1)
    with pytest.raises(BrazeCheckpointError, match="Give a send_id so that retries are safe"):
        create(tmp_path, None, 2)
    assert creations(braze_sandbox) == 1  # the first, whose answer was lost; none after it


def test_an_unreadable_memory_creates_nothing(braze_sandbox: BrazeSandbox, tmp_path: Path) -> None:
    create(tmp_path, "spring", 1)
    for record in tmp_path.glob("*.json"):
        record.write_text("{damaged")
    with pytest.raises(BrazeCheckpointError, match="not valid JSON"):
        create(tmp_path, "spring", 2)
    assert creations(braze_sandbox) == 1


def test_send_id_records_follow_the_retention(braze_sandbox: BrazeSandbox, tmp_path: Path) -> None:
    """Issue 16, item 10: a send ID record used to be kept for ever, one per run."""
    from datetime import datetime, timedelta, timezone

    clock = {"now": datetime.now(timezone.utc) - timedelta(days=40)}

    def run_on(run_id: str, send_id: str, **kwargs: Any) -> None:
        op = CreateSendIdOperator(
            task_id="create",
            campaign_id="sandbox-api-campaign",
            send_id=send_id,
            checkpoint=str(tmp_path),
            **kwargs,
        )
        ti = mock.MagicMock(dag_id="d", task_id="create", run_id=run_id, map_index=-1, try_number=1)
        op.execute({"ti": ti})  # type: ignore[arg-type]

    with mock.patch("airflow_provider_braze.delivery.checkpoint.utcnow", side_effect=lambda: clock["now"]):
        run_on("old", "old-id")
        clock["now"] = datetime.now(timezone.utc) - timedelta(days=29)
        run_on("recent", "recent-id")
        clock["now"] = datetime.now(timezone.utc)
        from airflow_provider_braze.operators.send_id import _SendIdMemory

        # 35 days ago, a request whose answer was lost: kept until a retry settles it.
        memory = _SendIdMemory(
            mock.MagicMock(dag_id="d", task_id="create", run_id="lost", map_index=-1), str(tmp_path), None
        )
        with mock.patch(
            "airflow_provider_braze.delivery.checkpoint.utcnow",
            return_value=datetime.now(timezone.utc) - timedelta(days=35),
        ):
            memory.write("sandbox-api-campaign", "lost-id", state="attempted")
        run_on("today", "today-id")
        names = sorted(p.name for p in tmp_path.glob("braze_send_id__*.json"))
        assert [n.split("__")[4] for n in names] == ["lost", "recent", "today"]
        # None keeps every record.
        clock["now"] += timedelta(days=400)
        run_on("later", "later-id", checkpoint_retention=None)
        assert len(list(tmp_path.glob("braze_send_id__*.json"))) == 4


def test_campaign_exists_reads_page_after_page_and_never_guesses(
    braze_conn: str, requests_mock: rm.Mocker
) -> None:
    from airflow_provider_braze.exceptions import BrazeUnexpectedResponseError

    full = {"message": "success", "campaigns": [{"id": f"c-{n}"} for n in range(100)]}
    requests_mock.get(f"{REST_ENDPOINT}/campaigns/list", json=full)
    with pytest.raises(BrazeUnexpectedResponseError) as err:
        BrazeHook().campaign_exists("wanted", max_pages=2)
    assert str(err.value) == (
        "Campaign 'wanted' is not in the first 200 campaigns GET /campaigns/list lists, and the list goes "
        "on: whether it exists is not known."
    )
    assert requests_mock.call_count == 2
    assert BrazeHook().campaign_exists("c-99") is True
    requests_mock.get(f"{REST_ENDPOINT}/campaigns/list", json={"message": "success"})
    with pytest.raises(BrazeUnexpectedResponseError, match="without a campaigns list"):
        BrazeHook().campaign_exists("wanted")


def test_a_server_error_leaves_the_creation_in_doubt(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    """A 5xx may come after Braze created the ID: unlike a 4xx, it is not remembered as a
    refusal, so the retry's refusal is settled as one after a lost answer."""
    from airflow_provider_braze.exceptions import BrazeServerError
    from tests.conftest import braze_connection

    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_connection(extra={"max_retries": 0}))
    requests_mock.post(
        CREATE_URL,
        [
            {"status_code": 500, "json": {"message": "Internal Server Error"}},
            {"status_code": 400, "json": {}},
        ],
    )
    requests_mock.get(
        f"{REST_ENDPOINT}/campaigns/list",
        json={"message": "success", "campaigns": [{"id": "sandbox-api-campaign"}]},
    )
    with pytest.raises(BrazeServerError):
        create(tmp_path, "spring", 1)
    assert create(tmp_path, "spring", 2) == "spring"
    assert [(r.method, r.path) for r in requests_mock.request_history] == [
        ("POST", "/sends/id/create"),
        ("POST", "/sends/id/create"),
        ("GET", "/campaigns/list"),
    ]
