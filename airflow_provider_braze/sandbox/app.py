"""The Braze sandbox's HTTP layer: a FastAPI app that speaks Braze's REST API on loopback.

Braze endpoints answer in Braze's shapes (``{"message": ..., "errors": [...]}``) with its
status codes and ``X-RateLimit-*`` headers. Control endpoints under ``/_sandbox`` let tests read
the ledger and change faults, keys and campaigns at run time.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_braze.sandbox.state import ApiKey, Faults, SandboxState, Window

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SEND_ID_MAX_LENGTH = 64
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

    # ----------------------------------------------------------------- Braze endpoints

    @app.post("/sends/id/create")
    async def create_send_id(request: Request) -> JSONResponse:
        key = _authorize(state, request, "sends.id.create")
        now = state.now()
        quota = state.send_id_quota.peek(key.workspace, now)
        body = await _json_object(request, quota)
        campaign_id = body.get("campaign_id")
        send_id = body.get("send_id")
        if not isinstance(campaign_id, str) or not campaign_id:
            raise _bad_request("campaign_id is required and must be a string", quota)
        if campaign_id not in state.campaigns:
            raise _bad_request("Invalid Campaign ID", quota, [f"no campaign with ID {campaign_id!r}"])
        if send_id is not None:
            if not isinstance(send_id, str) or not send_id:
                raise _bad_request("send_id must be a non-empty string", quota)
            if not send_id.isascii():
                raise _bad_request("send_id must contain only ASCII characters", quota)
            if len(send_id) > SEND_ID_MAX_LENGTH:
                raise _bad_request(f"send_id must be at most {SEND_ID_MAX_LENGTH} characters", quota)
        created, window, _new = state.create_send_id(key.workspace, campaign_id, send_id)
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
        window = _consume_shared(state, key)
        page_text = request.query_params.get("page", "0")
        if not page_text.isdigit():
            raise _bad_request("page must be a non-negative integer", window)
        page = int(page_text)
        ids = sorted(state.campaigns)[page * CAMPAIGNS_PAGE_SIZE : (page + 1) * CAMPAIGNS_PAGE_SIZE]
        campaigns = [
            {"id": cid, "name": cid, "is_api_campaign": state.campaigns[cid] == "api", "tags": []}
            for cid in ids
        ]
        return JSONResponse({"message": "success", "campaigns": campaigns}, headers=window.headers())

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

    @app.post("/_sandbox/campaigns")
    async def add_campaign(request: Request) -> Response:
        data = await request.json()
        try:
            state.add_campaign(data["campaign_id"], data.get("kind", "api"))
        except (KeyError, ValueError, TypeError) as err:
            return JSONResponse({"error": str(err)}, status_code=422)
        return JSONResponse({"campaign_id": data["campaign_id"]})

    return FaultInjector(app, state)


def _authorize(state: SandboxState, request: Request, permission: str) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = state.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise BrazeAPIFailure(401, "Invalid API key")
    if permission not in key.permissions:
        raise BrazeAPIFailure(
            403, "Access Denied", [f"this API key does not have the {permission} permission"]
        )
    return key


def _consume_shared(state: SandboxState, key: ApiKey) -> Window:
    """Count a call against the workspace's shared hourly limit; 429 past it."""
    now = state.now()
    window = state.shared_hourly.peek(key.workspace, now)
    if window.remaining <= 0:
        raise BrazeAPIFailure(429, "API rate limit exceeded", headers=window.headers())
    return state.shared_hourly.consume(key.workspace, now)


def _bad_request(message: str, window: Window, errors: list[str] | None = None) -> BrazeAPIFailure:
    return BrazeAPIFailure(400, message, errors, headers=window.headers())


async def _json_object(request: Request, window: Window) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _bad_request("Bad Request: the body is not valid JSON", window) from None
    if not isinstance(body, dict):
        raise _bad_request("Bad Request: the body must be a JSON object", window)
    return body


class FaultInjector:
    """ASGI middleware that adds latency and faults to Braze endpoints (not to ``/_sandbox``)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        state = self.state
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.drop_before and state.draw() < faults.drop_before:
            await _drop_connection(send)
            return
        if faults.rate_limit and state.draw() < faults.rate_limit:
            reset = int(state.now() + faults.rate_limit_reset_seconds) + 1
            headers = {
                "X-RateLimit-Limit": "1",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            await _respond(send, 429, b'{"message":"API rate limit exceeded"}', "application/json", headers)
            return
        if faults.server_error and state.draw() < faults.server_error:
            status = state.choose(faults.server_error_statuses)
            await _respond(send, status, *_server_error_body(status))
            return
        if faults.drop_after and state.draw() < faults.drop_after:

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop_connection(send)
            return
        await self.app(scope, receive, send)


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


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection without answering (what a crashed server or proxy looks like)."""
    # uvicorn's ``send`` is a bound method of its request cycle, which holds the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping connections needs the sandbox to be served by uvicorn")
    transport.abort()
    # Let uvicorn see the disconnect before we return, so it does not try to answer 500.
    await asyncio.sleep(0)
