"""Shared helpers for the benchmarks: servers in their own processes, and the machine's name."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ECHO_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Braze's servers
    disable_nagle_algorithm = True  # else every keep-alive request stalls about 40 ms

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        body = json.dumps({"message": "success", "send_id": request.get("send_id", "generated")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-RateLimit-Limit", "250000")
        self.send_header("X-RateLimit-Remaining", "249000")
        self.send_header("X-RateLimit-Reset", "4102444800")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # one thread per keep-alive client
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def machine() -> str:
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


@contextmanager
def echo_server() -> Iterator[str]:
    """A minimal keep-alive HTTP server answering every POST with success, in its own process."""
    process = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def sandbox(*args: str, launcher: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The Braze sandbox in its own process (so its work is not counted); yields url and api_key.
    ``launcher`` replaces ``python -m airflow_provider_braze.sandbox`` (a benchmark's wrapper)."""
    with tempfile.TemporaryDirectory(prefix="braze-bench-") as folder:
        ready = Path(folder) / "ready.json"
        process = subprocess.Popen(
            [
                *(launcher or [sys.executable, "-m", "airflow_provider_braze.sandbox"]),
                "--port",
                "0",
                "--ready-file",
                str(ready),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not (ready.exists() and ready.read_text()):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the Braze sandbox did not start")
                time.sleep(0.05)
            yield json.loads(ready.read_text())
        finally:
            process.terminate()
            process.wait(timeout=30)


def write_audience(path: Path, count: int) -> None:
    """A JSON-lines audience of ``count`` external user IDs (``bench-user-0000000``...)."""
    with path.open("w") as fh:
        for number in range(count):
            fh.write(f'"bench-user-{number:07d}"\n')


def connection(info: dict[str, Any], **extra: Any) -> str:
    conn: dict[str, Any] = {"conn_type": "braze", "host": info["url"], "password": info["api_key"]}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def quiet_airflow(home: str) -> None:
    """Set up Airflow for running hooks and operators directly, without a database."""
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
