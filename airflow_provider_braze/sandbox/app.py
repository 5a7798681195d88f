"""The Braze sandbox's HTTP layer: a FastAPI app that speaks Braze's REST API on loopback.

Braze endpoints answer in Braze's shapes (``{"message": ..., "errors": [...]}``) with its
status codes and ``X-RateLimit-*`` headers. Control endpoints under ``/_sandbox`` let tests read
the ledger and change faults, keys and campaigns at run time.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, TypeGuard

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_braze.identity import recipient_key
from airflow_provider_braze.sandbox import rules
from airflow_provider_braze.sandbox.analytics import (
    TRIGGERED_CAMPAIGN_CHANNEL,
    content_of,
    data_series,
    lines_of,
    trigger_content,
)
from airflow_provider_braze.sandbox.state import DEFAULT_WORKSPACE, ApiKey, Faults, SandboxState, Window

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CAMPAIGNS_PAGE_SIZE = 100


class BrazeAPIFailure(Exception):
    """Raised by a handler to answer with Braze's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def create_app(state: SandboxState) -> ASGIApp:
    """Build the sandbox application around ``state``."""
    app = FastAPI(
        title="Braze sandbox",
        description="A local Braze-compatible REST API for testing airflow-provider-braze.",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state

    @app.exception_handler(BrazeAPIFailure)
    async def _braze_failure(request: Request, exc: BrazeAPIFailure) -> JSONResponse:
        body: dict[str, Any] = {"message": exc.message}
        if exc.errors:
            body["errors"] = exc.errors
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_failure(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # An unknown path (404) or method (405) answers in Braze's shape too, not FastAPI's.
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    # ----------------------------------------------------------------- Braze endpoints

    @app.post("/sends/id/create")
    async def create_send_id(request: Request) -> JSONResponse:
        key = _authorize(state, request, "sends.id.create")
        # With send_id_quota="attempts", this request counts before anything in it is checked.
        quota, allowed = state.count_send_id_attempt(key.workspace)
        if not allowed:
            raise BrazeAPIFailure(
                429,
                f"Rate limit exceeded: at most {quota.limit} send identifiers per workspace per day",
                headers=quota.headers(),
            )
        body = await _json_object(request, quota)
        _apply_rules(state, "POST /sends/id/create", body, quota)
        campaign_id = body["campaign_id"]
        send_id = body.get("send_id")
        if campaign_id not in state.campaigns:
            raise _bad_request("Invalid Campaign ID", quota, [f"no campaign with ID {campaign_id!r}"])
        created, window, new = state.create_send_id(key.workspace, campaign_id, send_id)
        if created is not None and not new and state.behaviours["send_id_recreate"] == "refuse":
            # Braze documents no wording for this refusal: the words are a setting.
            message, errors = state.recreate_refusal(campaign_id, created)
            raise _bad_request(message, window, errors)
        if created is None:
            raise BrazeAPIFailure(
                429,
                f"Rate limit exceeded: at most {window.limit} send identifiers per workspace per day",
                headers=window.headers(),
            )
        answer = {"message": "success", "send_id": created}
        state.record("POST /sends/id/create", key.workspace, body, answer)
        return JSONResponse(answer, headers=window.headers())

    @app.get("/campaigns/list")
    async def list_campaigns(request: Request) -> JSONResponse:
        key = _authorize(state, request, "campaigns.list")
        window = _consume(state, key)
        page_text = request.query_params.get("page", "0")
        if not page_text.isdigit():
            raise _bad_request("page must be a non-negative integer", window)
        page = int(page_text)
        ids = sorted(state.campaigns)[page * CAMPAIGNS_PAGE_SIZE : (page + 1) * CAMPAIGNS_PAGE_SIZE]
        campaigns = [
            {
                "id": cid,
                "name": cid,
                "is_api_campaign": state.campaigns[cid] == "api",
                "tags": [],
                "last_edited": state.campaign_edited_at(cid),
            }
            for cid in ids
        ]
        return JSONResponse({"message": "success", "campaigns": campaigns}, headers=window.headers())

    @app.post("/messages/send")
    async def send_messages(request: Request) -> JSONResponse:
        return await _message_send(state, request, "messages.send", scheduled=False)

    @app.post("/messages/schedule/create")
    async def schedule_messages(request: Request) -> JSONResponse:
        return await _message_send(state, request, "messages.schedule.create", scheduled=True)

    @app.post("/campaigns/trigger/send")
    async def trigger_campaign(request: Request) -> JSONResponse:
        return await _trigger_send(state, request, "campaigns.trigger.send", scheduled=False)

    @app.post("/campaigns/trigger/schedule/create")
    async def schedule_trigger(request: Request) -> JSONResponse:
        return await _trigger_send(state, request, "campaigns.trigger.schedule.create", scheduled=True)

    @app.get("/sends/data_series")
    async def send_data_series(request: Request) -> JSONResponse:
        key = _authorize(state, request, "sends.data_series")
        window = _consume(state, key)
        query = request.query_params
        _apply_rules(state, "GET /sends/data_series", dict(query), window)
        campaign_id, send_id, length_text = query["campaign_id"], query["send_id"], query["length"]
        now = datetime.fromtimestamp(state.now(), tz=timezone.utc)
        end = _parse_time(query["ending_at"]) if query.get("ending_at") else now
        if state.campaigns.get(campaign_id) is None:
            raise _bad_request("Invalid Campaign ID", window, [f"no campaign {campaign_id!r}"])
        if state.campaigns[campaign_id] != "api":
            # Braze: "This endpoint is for API campaigns only" (how it says so: a setting).
            triggered = state.behaviours["data_series_triggered_campaign"]
            if triggered == "empty":
                return JSONResponse({"message": "success", "data": []}, headers=window.headers())
            if triggered == "refuse":
                raise _bad_request(
                    "Invalid Campaign ID",
                    window,
                    [f"{campaign_id!r} is not an API campaign; send analytics are for API campaigns only"],
                )
        daily = state.daily_sends(campaign_id, send_id)
        if not daily and not state.check_send_id(key.workspace, campaign_id, send_id):
            if state.behaviours["data_series_unknown_send_id"] == "empty":
                return JSONResponse({"message": "success", "data": []}, headers=window.headers())
            raise _bad_request(
                "Invalid send_id",
                window,
                [f"send_id {send_id!r} was not created for campaign {campaign_id!r}"],
            )
        by_api_id = state.behaviours["analytics_variation_key"] == "variation_api_id"

        def variation_label(variation_id: str | None) -> dict[str, Any]:
            if by_api_id:
                return {"variation_api_id": variation_id}
            return {"variation_name": state.variation_name(campaign_id, variation_id)}

        contents, audience_prints = state.send_profile(campaign_id, send_id)
        data = data_series(
            daily,
            contents=contents,
            audience_prints=audience_prints,
            seed=state.seed,
            campaign_id=campaign_id,
            send_id=send_id,
            end=end.date(),
            length=int(length_text),
            today=now.date(),
            variation_label=variation_label,
            whole_window=state.behaviours["analytics_series"] == "window",
        )
        return JSONResponse({"message": "success", "data": data}, headers=window.headers())

    # ----------------------------------------------------------------- control endpoints

    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sandbox/ledger")
    async def ledger(endpoint: str | None = None) -> list[dict[str, Any]]:
        return state.ledger(endpoint)

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.get("/_sandbox/faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.to_dict()

    @app.put("/_sandbox/faults")
    async def put_faults(request: Request) -> Response:
        try:
            faults = Faults.from_dict(await request.json())
        except (ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        state.set_faults(faults)
        return JSONResponse(faults.to_dict())

    @app.post("/_sandbox/keys")
    async def add_key(request: Request) -> Response:
        data = await request.json()
        try:
            api_key = state.add_key(
                data["key"],
                workspace=data.get("workspace", "sandbox-workspace"),
                permissions=data.get("permissions"),
            )
        except (KeyError, ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        return JSONResponse({"workspace": api_key.workspace, "permissions": sorted(api_key.permissions)})

    @app.put("/_sandbox/rate_limits/{name}")
    async def put_rate_limit(name: str, request: Request) -> Response:
        data = await request.json()
        try:
            state.set_rate_limit(name, int(data["limit"]), int(data["window_seconds"]))
        except (KeyError, ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        return JSONResponse({"name": name, "limit": data["limit"], "window_seconds": data["window_seconds"]})

    @app.get("/_sandbox/statuses")
    async def statuses() -> dict[str, dict[str, int]]:
        return state.statuses()

    @app.get("/_sandbox/deliveries")
    async def deliveries(campaign_id: str | None = None, send_id: str | None = None) -> dict[str, int]:
        return dict(state.deliveries(campaign_id, send_id))

    @app.get("/_sandbox/behaviours")
    async def get_behaviours() -> dict[str, str]:
        return dict(state.behaviours)

    @app.put("/_sandbox/behaviours")
    async def put_behaviours(request: Request) -> Response:
        try:
            state.set_behaviours(**(await request.json()))
        except (ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        return JSONResponse(dict(state.behaviours))

    @app.post("/_sandbox/campaigns")
    async def add_campaign(request: Request) -> Response:
        data = await request.json()
        try:
            state.add_campaign(data["campaign_id"], data.get("kind", "api"), data.get("variations"))
        except (KeyError, ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        return JSONResponse({"campaign_id": data["campaign_id"]})

    return FaultInjector(app, state)


def _authorize(state: SandboxState, request: Request, permission: str) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = state.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise BrazeAPIFailure(401, rules.UNAUTHORIZED)
    if permission not in key.permissions:
        raise BrazeAPIFailure(
            403, "Access Denied", [f"this API key does not have the {permission} permission"]
        )
    return key


def _consume(state: SandboxState, key: ApiKey, bucket: str = "shared") -> Window:
    """Count a call against one of the workspace's rate limits; 429 past it."""
    now = state.now()
    limits = state.buckets[bucket]
    window = limits.peek(key.workspace, now)
    if window.remaining <= 0:
        raise BrazeAPIFailure(429, rules.RATE_LIMITED, headers=window.headers())
    return limits.consume(key.workspace, now)


def _consume_send(
    state: SandboxState, key: ApiKey, body: dict[str, Any], *, broadcast_limits: bool
) -> Window:
    """Count a send: against the shared hourly pool, or against both broadcast limits, 250 a
    minute and 10 a minute per unique audience (campaign, segment and audience object), "whichever
    is reached first"; the answer's headers show the tighter one."""
    if not broadcast_limits:
        return _consume(state, key, "shared")
    audience = json.dumps(
        [body.get("campaign_id"), body.get("segment_id"), body.get("audience")], sort_keys=True
    )
    scope = f"{key.workspace}\x00{audience}"
    now = state.now()
    overall, per_audience = state.buckets["broadcast"], state.buckets["broadcast_audience"]
    for bucket, owner in ((overall, key.workspace), (per_audience, scope)):
        window = bucket.peek(owner, now)
        if window.remaining <= 0:
            raise BrazeAPIFailure(429, rules.RATE_LIMITED, headers=window.headers())
    windows = [overall.consume(key.workspace, now), per_audience.consume(scope, now)]
    return min(windows, key=lambda w: w.remaining)


def _bad_request(message: str, window: Window, errors: list[str] | None = None) -> BrazeAPIFailure:
    return BrazeAPIFailure(400, message, errors, headers=window.headers())


def _refused(refusal: rules.Refusal, window: Window) -> BrazeAPIFailure:
    return BrazeAPIFailure(refusal.status, refusal.message, list(refusal.errors), headers=window.headers())


def _apply_rules(state: SandboxState, endpoint: str, body: dict[str, Any], window: Window) -> None:
    """Refuse ``body`` as Braze does if it breaks one of the endpoint's documented rules."""
    now = datetime.fromtimestamp(state.now(), tz=timezone.utc)
    refusal = rules.refusal_for(endpoint, body, now, state.behaviours)
    if refusal is not None:
        raise _refused(refusal, window)


async def _json_object(request: Request, window: Window) -> dict[str, Any]:
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        # Braze documents "Content-Type: application/json"; other types are refused (stricter).
        raise _bad_request(rules.BAD_REQUEST, window, ["the Content-Type must be application/json"])
    too_large = rules.body_too_large(raw)
    if too_large is not None:
        raise _refused(too_large, window)
    try:
        body = json.loads(raw)
    except ValueError:
        raise _bad_request(rules.BAD_REQUEST, window, ["the body is not valid JSON"]) from None
    if not isinstance(body, dict):
        raise _bad_request(rules.BAD_REQUEST, window, ["the body must be a JSON object"])
    return body


ENDPOINT_PATHS = {
    "messages.send": "POST /messages/send",
    "messages.schedule.create": "POST /messages/schedule/create",
    "campaigns.trigger.send": "POST /campaigns/trigger/send",
    "campaigns.trigger.schedule.create": "POST /campaigns/trigger/schedule/create",
}


async def _message_send(
    state: SandboxState, request: Request, permission: str, *, scheduled: bool
) -> JSONResponse:
    """``/messages/send`` and ``/messages/schedule/create``."""
    key = _authorize(state, request, permission)
    body = await _json_object(request, state.buckets["shared"].peek(key.workspace, state.now()))
    broadcast = body.get("broadcast") is True
    # Braze's broadcast limits count immediate broadcast sends; /messages/schedule/create is in
    # the shared hourly pool.
    window = _consume_send(state, key, body, broadcast_limits=broadcast and not scheduled)
    _apply_rules(state, ENDPOINT_PATHS[permission], body, window)
    aliases = [recipient_key({"user_alias": a}) for a in body.get("user_aliases") or []]
    keys = _once_each([*(body.get("external_user_ids") or []), *aliases])
    campaign_id, send_id = _campaign_and_send_id(state, key, body, "api", broadcast, window)
    _check_variations(state, body["messages"], campaign_id, window)
    return _accept(state, key, permission, body, campaign_id, send_id, keys, window, scheduled)


def _once_each(keys: list[str]) -> list[str]:
    """Recipients as Braze delivers them: a user listed twice in one request gets one message
    (``recipient_object.md``, "Recipient object deduping")."""
    return list(dict.fromkeys(keys))


def _check_variations(
    state: SandboxState, messages: dict[str, Any], campaign_id: str | None, window: Window
) -> None:
    """Each object's ``message_variation_id`` must be a variation of the campaign, of the
    object's channel (the rule table has already required one per object)."""
    if campaign_id is None:
        return
    variations = state.variations.get(campaign_id, {})
    for channel, obj in messages.items():
        variation = obj["message_variation_id"]
        if variation not in variations:
            raise _bad_request(
                "Invalid Message Variant",
                window,
                [f"{channel}.message_variation_id {variation!r}: no such variation of {campaign_id!r}"],
            )
        if variations[variation] != channel:
            raise _bad_request(
                "Mismatched Message Type",
                window,
                [f"variation {variation!r} is a {variations[variation]} message, not {channel}"],
            )


async def _trigger_send(
    state: SandboxState, request: Request, permission: str, *, scheduled: bool
) -> JSONResponse:
    """``/campaigns/trigger/send`` and ``/campaigns/trigger/schedule/create``."""
    key = _authorize(state, request, permission)
    body = await _json_object(request, state.buckets["shared"].peek(key.workspace, state.now()))
    broadcast = body.get("broadcast") is True
    # Scheduled broadcasts: Braze's endpoint page says the shared pool, its rate-limits page the
    # broadcast limits (a setting).
    scheduled_as_broadcast = state.behaviours["scheduled_broadcast_pool"] == "broadcast"
    window = _consume_send(
        state, key, body, broadcast_limits=broadcast and (not scheduled or scheduled_as_broadcast)
    )
    _apply_rules(state, ENDPOINT_PATHS[permission], body, window)
    keys = _once_each([recipient_key(r) for r in body.get("recipients") or []])
    campaign_id, send_id = _campaign_and_send_id(state, key, body, "api_triggered", broadcast, window)
    return _accept(state, key, permission, body, campaign_id, send_id, keys, window, scheduled)


def _campaign_and_send_id(
    state: SandboxState, key: ApiKey, body: dict[str, Any], kind: str, broadcast: bool, window: Window
) -> tuple[str | None, str | None]:
    campaign_id = body.get("campaign_id")
    send_id = body.get("send_id")
    if campaign_id is not None and state.campaigns.get(campaign_id) != kind:
        raise _bad_request(
            "Invalid Campaign ID", window, [f"no {kind.replace('_', '-')} campaign {campaign_id!r}"]
        )
    if send_id is not None and campaign_id is not None:  # the rule table refused the rest
        known = state.check_send_id(key.workspace, campaign_id, send_id)
        if not known and state.behaviours["unknown_send_id"] == "refuse":
            raise _bad_request(
                "Invalid send_id",
                window,
                [f"send_id {send_id!r} was not created for campaign {campaign_id!r}"],
            )
    elif broadcast and campaign_id is not None:
        send_id = state.new_id()  # Braze generates a send ID for broadcasts of API campaigns
    return campaign_id, send_id


def _accept(
    state: SandboxState,
    key: ApiKey,
    permission: str,
    body: dict[str, Any],
    campaign_id: str | None,
    send_id: str | None,
    recipient_keys: list[str],
    window: Window,
    scheduled: bool,
) -> JSONResponse:
    answer: dict[str, Any] = {"dispatch_id": state.new_id(), "message": "success"}
    if state.nonfatal_error_due(ENDPOINT_PATHS[permission].split(" ", 1)[1]):
        # Braze: "If your message is successful but has non-fatal errors" -> success plus errors.
        answer["errors"] = [f"{recipient_keys[0] if recipient_keys else 'a recipient'} could not be messaged"]
    due = None
    if scheduled:
        due = _check_schedule(state, body.get("schedule"), window)
        answer["schedule_id"] = state.new_id()
    if send_id is not None:
        answer["send_id"] = send_id
    state.record(ENDPOINT_PATHS[permission], key.workspace, body, answer)
    messages = body.get("messages")
    if isinstance(messages, dict):
        lines, contents = lines_of(messages), content_of(messages)
    else:
        lines = [(TRIGGERED_CAMPAIGN_CHANNEL, None)]
        contents = trigger_content(campaign_id, body.get("trigger_properties"))
    state.record_deliveries(
        campaign_id,
        send_id,
        recipient_keys,
        scheduled=scheduled,
        lines=lines,
        contents=contents,
        broadcast=body.get("broadcast") is True,
        due=due,
    )
    return JSONResponse(answer, status_code=201, headers=window.headers())


def _check_schedule(state: SandboxState, schedule: Any, window: Window) -> float:
    """Braze's schedule object: with local or optimal time, ``time`` is the users' wall clock with
    no zone designator, and a local-time send whose time has passed is refused (in all time zones
    or in the company's: ``local_time_passed``). Returns when the send is due (UTC epoch seconds;
    a wall clock read as UTC)."""
    if not isinstance(schedule, dict):
        raise _bad_request(rules.BAD_REQUEST, window, ["schedule must be an object"])
    for flag in ("in_local_time", "at_optimal_time"):
        if flag in schedule and not isinstance(schedule[flag], bool):
            raise _bad_request("Bad Request", window, [f"schedule.{flag} must be true or false"])
    local = schedule.get("in_local_time") is True
    optimal = schedule.get("at_optimal_time") is True
    if local and optimal:
        raise _bad_request("Bad Request", window, ["in_local_time and at_optimal_time cannot both be true"])
    text = schedule.get("time")
    if (local or optimal) and isinstance(text, str) and text.endswith(("Z", "z")):
        text = text[:-1]  # checked as a time below, then refused for its zone designator
        zone_designator = True
    else:
        zone_designator = False
    if not _is_iso_time(text):
        raise _bad_request(rules.BAD_REQUEST, window, ["schedule.time must be an ISO-8601 date and time"])
    if not local and not optimal:
        return _parse_time(text).timestamp()
    if zone_designator or datetime.fromisoformat(text).tzinfo is not None:
        raise _bad_request(
            "Bad Request",
            window,
            ["When using local or optimal time sending, do not provide time zone designators in the time"],
        )
    wall_clock = datetime.fromisoformat(text)
    # Optimal time is judged as local time is (the docs are silent on a passed optimal date).
    refusal = state.local_time_refusal(wall_clock) if local or optimal else None
    if refusal is not None:
        raise _bad_request("Bad Request", window, [refusal])
    return wall_clock.replace(tzinfo=timezone.utc).timestamp()


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _is_iso_time(value: Any) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    try:
        _parse_time(value)
    except ValueError:
        return False
    return True


class FaultInjector:
    """ASGI middleware that adds latency and faults to Braze endpoints (not to ``/_sandbox``)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, raw_send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(
                scope, receive, _dated(raw_send, self.state) if scope["type"] == "http" else raw_send
            )
            return
        state = self.state
        send = _counting(_dated(raw_send, state, scope), state, scope["path"])
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.paths is not None and scope["path"] not in faults.paths:
            await self.app(scope, receive, send)
            return

        def strikes(probability: float) -> bool:
            return bool(probability) and state.draw() < probability and state.fault_allowed()

        if strikes(faults.slow):
            # Take the whole request first, as a server does before it starts working on it, so
            # it is processed even if the client gives up waiting (that is the point of the fault).
            receive = await _buffered(receive)
            await asyncio.sleep(faults.slow_ms / 1000)
        if strikes(faults.drop_before):
            await _drop_connection(raw_send, state, scope["path"])
            return
        if strikes(faults.rate_limit):
            reset = int(state.now() + faults.rate_limit_reset_seconds) + 1
            headers = {
                "X-RateLimit-Limit": "1",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            await _respond(send, 429, b'{"message":"Rate Limited"}', "application/json", headers)
            return
        if strikes(faults.server_error):
            status = state.choose(faults.server_error_statuses)
            await _respond(send, status, *_server_error_body(status))
            return
        if strikes(faults.drop_after):

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop_connection(raw_send, state, scope["path"])
            return
        if faults.unreadable_success:
            await self.app(
                scope, receive, _unreadable_success(send, state, strikes(faults.unreadable_success))
            )
            return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive) -> Receive:
    """Read the request body now; return a ``receive`` that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replay


def _unreadable_success(send: Send, state: SandboxState, strike: bool) -> Send:
    """Wrap ``send`` so that, when ``strike``, a 2xx answer goes out with an empty or HTML body."""
    if not strike:
        return send
    replacement: bytes | None = None  # set once a 2xx answer has started

    async def garbling_send(message: Message) -> None:
        nonlocal replacement
        if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
            as_page = state.choose((0, 1)) == 1
            replacement = b"<html><body>OK</body></html>" if as_page else b""
            dropped = (b"content-length", b"content-type")
            headers = [(k, v) for k, v in message["headers"] if k.lower() not in dropped]
            headers.append((b"content-type", b"text/html" if as_page else b"text/plain"))
            headers.append((b"content-length", str(len(replacement)).encode()))
            await send({**message, "headers": headers})
        elif message["type"] == "http.response.body" and replacement is not None:
            if not message.get("more_body"):
                await send({"type": "http.response.body", "body": replacement})
        else:
            await send(message)

    return garbling_send


def _dated(send: Send, state: SandboxState, scope: Scope | None = None) -> Send:
    """Wrap ``send`` so every answer has a ``Date`` header from the sandbox's clock (whole
    seconds, as HTTP servers write it), which clients use to learn the server's time; and, on
    Braze endpoints (``scope`` given), ``X-RateLimit-*`` headers even when the handler set none
    (401, 403, 404): Braze sends them "on every single API request"."""

    async def dated_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            stamp = formatdate(state.now(), usegmt=True).encode()
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
            headers.append((b"date", stamp))
            if scope is not None and not any(k.lower() == b"x-ratelimit-limit" for k, _ in headers):
                window = state.buckets["shared"].peek(_workspace_of(state, scope), state.now())
                headers += [(k.lower().encode(), v.encode()) for k, v in window.headers().items()]
            message = {**message, "headers": headers}
        await send(message)

    return dated_send


def _workspace_of(state: SandboxState, scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            token = value.decode("latin-1").partition(" ")[2].strip()
            key = state.authenticate(token)
            if key is not None:
                return key.workspace
    return DEFAULT_WORKSPACE


def _counting(send: Send, state: SandboxState, path: str) -> Send:
    """Wrap ``send`` so every answer's status is counted (benchmarks report the share of 429s)."""

    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            state.count_status(path, message["status"])
        await send(message)

    return counting_send


def _server_error_body(status: int) -> tuple[bytes, str]:
    if status == 500:
        return b'{"message":"Internal Server Error"}', "application/json"
    # Gateways in front of an API answer with HTML pages, which clients must cope with.
    page = f"<html><head><title>{status}</title></head><body><h1>{status} gateway error</h1></body></html>"
    return page.encode(), "text/html"


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send, state: SandboxState, path: str) -> None:
    """Close the TCP connection without answering (what a crashed server or proxy looks like).

    Counted as status 0 in the sandbox's status counts.
    """
    state.count_status(path, 0)
    # uvicorn's ``send`` is a bound method of its request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping connections needs the sandbox to be served by uvicorn")
    transport.abort()
    # Let uvicorn see the disconnect before we return, so it does not try to answer 500.
    await asyncio.sleep(0)
