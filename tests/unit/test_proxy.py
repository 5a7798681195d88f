"""Plain http goes only to loopback, and never through a proxy from the environment: the proxy
would see the API key in clear (Bearer header), and a corporate proxy cannot reach this
machine's loopback anyway."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.hooks.braze_async import BrazeAsyncHook, aclose_shared_clients

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_braze.sandbox import BrazeSandbox


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A 'proxy' on loopback that records what reaches it (and answers 502)."""
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            seen.append(f"{self.path} {self.headers.get('Authorization')}")
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield seen
    server.shutdown()
    server.server_close()


def test_the_sync_hook_goes_to_loopback_directly(braze_sandbox: BrazeSandbox, proxy: list[str]) -> None:
    hook = BrazeHook()
    assert hook.campaign_exists("sandbox-api-campaign")
    hook.close()
    assert proxy == []


def test_the_async_hook_goes_to_loopback_directly(braze_sandbox: BrazeSandbox, proxy: list[str]) -> None:
    async def call() -> str:
        try:
            await BrazeAsyncHook().get_send_analytics("sandbox-api-campaign", "no-such-send", 1)
        except Exception as err:  # the sandbox may refuse an unknown send ID: the route matters
            return f"{type(err).__name__}: {err}"
        finally:
            await aclose_shared_clients()
        return "answered"

    outcome = asyncio.run(call())
    assert "502" not in outcome
    assert proxy == []
