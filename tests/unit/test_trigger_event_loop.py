"""The trigger never does blocking set-up on the triggerer's event loop: importing httpx and the
hook, building the TLS context and compiling the key's redaction pattern happen in a worker
thread, even for the first trigger of a process (in a deployment, that first trigger's set-up
blocked the loop for 0.25 s, and Airflow's watchdog warned; a profile of the triggerer showed the
pattern's compile on the loop at the first answer). Checked by where the work runs, not by timing
it."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = r"""
import asyncio, importlib.abc, json, os, ssl, sys, threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def on_loop():
    # Whether this runs on a running event loop's thread (else before it, or in a worker).
    return asyncio._get_running_loop() is not None


# Ours, and the libraries a request or a connection lookup imports lazily: none of them may be
# first imported on the loop. (Airflow's own modules its lookup imports are loaded in a real
# triggerer already.)
WATCHED = ("airflow_provider_braze", "httpx", "httpcore", "h11", "anyio", "sniffio", "asgiref", "certifi")
where = {}


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in WATCHED and name not in where:
            where[name] = on_loop()
        return None


sys.meta_path.insert(0, Watch())
original = ssl.create_default_context


def create_default_context(*args, **kwargs):
    where.setdefault("ssl.create_default_context", on_loop())
    return original(*args, **kwargs)


ssl.create_default_context = create_default_context

# The key's redaction pattern (thousands of characters, 15-50 ms to compile) must be compiled
# off the loop too: wrapped before the async hook imports it.
from airflow_provider_braze.hooks import redaction

original_pattern = redaction.secret_pattern


def secret_pattern(*args, **kwargs):
    where.setdefault("secret_pattern", on_loop())
    return original_pattern(*args, **kwargs)


redaction.secret_pattern = secret_pattern
today = datetime.now(timezone.utc).strftime("%Y-%m-%dT00:00:00+00:00")
answer = json.dumps({"message": "success", "data": [
    {"time": today, "messages": {"email": [{"sent": 5, "delivered": 5}]}}
]}).encode()


class Braze(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Braze)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = json.dumps({
    "conn_type": "braze", "host": f"http://127.0.0.1:{server.server_address[1]}", "password": "k-1234567",
})
from airflow_provider_braze.triggers.send_analytics import SendAnalyticsTrigger

trigger = SendAnalyticsTrigger(
    campaign_id="c", send_id="s", length=14, min_sent=1, min_age_seconds=None, sent_at=None,
    poke_interval=60.0, end_at=(datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat(),
    braze_conn_id="braze_default",
)


async def main():
    events = [event async for event in trigger.run()]
    return events[0].payload["status"]


status = asyncio.run(main())
server.shutdown()
print("RESULT " + json.dumps({"status": status, "where": where}))
"""


def test_the_first_triggers_set_up_runs_off_the_event_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    outcome = json.loads(line[len("RESULT ") :])
    assert outcome["status"] == "done"
    where = outcome["where"]
    assert {
        "airflow_provider_braze.hooks.braze_async",
        "airflow_provider_braze.analytics_check",
        "anyio._backends._asyncio",
        "ssl.create_default_context",
        "secret_pattern",
    } <= set(where)
    on_the_loop = sorted(name for name, on_loop in where.items() if on_loop)
    assert on_the_loop == [], f"done on the event loop: {on_the_loop}"
