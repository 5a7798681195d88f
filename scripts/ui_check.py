"""Click the Test button of Braze connections in Airflow's own UI, in a real (headless) browser.

Used by scripts/ui-check. It starts the Braze sandbox and `airflow api-server` in a throwaway
AIRFLOW_HOME under .ui-check/, adds connections with `airflow connections add`, then drives
Debian's Chromium through Playwright, as a user would:

1. a connection without a port: Airflow 3.3.0-3.3.2's UI sends ``port: 0`` and its API answers
   400 "The host or port to test differs from the stored connection" (apache/airflow#73298); on
   a fixed Airflow the test runs. Reported, either way;
2. a connection with a port: the test runs and passes;
3. the fix a user makes in the form: open "Edit Connection" on the first one, type the port in
   the Port field this provider's form shows, save, click Test: it passes;
4. an instance code (``US-03``) with port 443: the test runs (no 400) and reports what it found
   (with no network here, that the host cannot be resolved, in one sentence);
5. (after the browser) `airflow connections test` on the first one passes.

It exits 0 when steps 2 to 5 pass and the answers in the browser name the connection "This
Braze connection" (never Airflow's random ID for it), and prints one line per step.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".ui-check"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
KEY = "ui-check-key-0123456789abcdef"
#: Chromium on a machine with no internet: no background traffic, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "airflow"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=300)


def wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return True
        except OSError:
            time.sleep(0.5)
    return False


def click_test(page: Any, connection_id: str) -> tuple[int, dict[str, Any]]:
    """Click the row's Test button; return the status and body of the API's answer."""
    row = page.locator("tr", has_text=connection_id)
    page.mouse.move(0, 0)  # a tooltip left open by an earlier hover would take the click
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test"), timeout=60_000) as info:
        row.get_by_role("button", name="Test Connection").click()
    response = info.value
    try:
        body = response.json()
    except ValueError:
        body = {"text": response.text()}
    return response.status, body


def set_port_in_the_form(page: Any, connection_id: str, port: int) -> None:
    """Edit Connection -> type the port -> Save, as a user would."""
    page.mouse.move(0, 0)
    page.locator("tr", has_text=connection_id).get_by_role("button", name="Edit Connection").click()
    field = page.get_by_label("Port", exact=False).first
    field.fill(str(port))
    with page.expect_response(lambda r: "/api/v2/connections/" in r.url and r.request.method == "PATCH"):
        page.get_by_role("button", name="Save").click()
    page.wait_for_timeout(500)
    page.keyboard.press("Escape")


def main() -> int:
    from playwright.sync_api import sync_playwright

    from airflow_provider_braze.sandbox import BrazeSandbox

    if not Path(CHROMIUM).exists():
        print(f"scripts/ui-check: no Chromium at {CHROMIUM}; install Debian's (apt-get install chromium).")
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    home = WORK / "airflow-home"
    home.mkdir(parents=True)
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
    }
    print("==> creating the Airflow metadata database (SQLite, in .ui-check/)", flush=True)
    migrated = airflow(env, "db", "migrate")
    if migrated.returncode != 0:
        (WORK / "db-migrate.log").write_text(migrated.stdout + migrated.stderr)
        print(f"scripts/ui-check: 'airflow db migrate' failed; see {WORK / 'db-migrate.log'}.")
        return 1

    results: dict[str, bool] = {}
    with BrazeSandbox(api_key=KEY) as sandbox:
        sandbox_port = int(sandbox.url.rsplit(":", 1)[1])
        for conn_id, host, port in (
            ("braze_no_port", sandbox.url, None),
            ("braze_with_port", "http://127.0.0.1", sandbox_port),
            ("braze_us03", "US-03", 443),
        ):
            args = ["connections", "add", conn_id, "--conn-type", "braze", "--conn-host", host]
            args += ["--conn-password", KEY] + (["--conn-port", str(port)] if port else [])
            added = airflow(env, *args)
            if added.returncode != 0:
                print(f"scripts/ui-check: could not add connection {conn_id}: {added.stderr.strip()[-300:]}")
                return 1

        print(f"==> airflow api-server on 127.0.0.1:{api_port}", flush=True)
        log = (WORK / "api-server.log").open("w")
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "airflow"),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not wait_for(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", 180):
                print(f"scripts/ui-check: the API server did not start; see {WORK / 'api-server.log'}.")
                return 1
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{api_port}/connections", wait_until="networkidle")

                status, body = click_test(page, "braze_no_port")
                if status == 400 and "differs from the stored connection" in str(body):
                    print("1. no port:   400 from Airflow's API, as apache/airflow#73298 says (set a port).")
                else:
                    print(f"1. no port:   {status} {json.dumps(body)} (this Airflow has the fix).")

                status, body = click_test(page, "braze_with_port")
                results["with port"] = status == 200 and body.get("status") is True
                # The form's connection is tested under a random ID: the answer never shows it.
                results["named 'This Braze connection'"] = str(body.get("message", "")).startswith(
                    "This Braze connection: "
                )
                print(f"2. with port: {status} {json.dumps(body)}")

                set_port_in_the_form(page, "braze_no_port", sandbox_port)
                page.goto(f"http://127.0.0.1:{api_port}/connections", wait_until="networkidle")
                status, body = click_test(page, "braze_no_port")
                results["port set in the form"] = status == 200 and body.get("status") is True
                print(f"3. port typed in the form, saved, tested: {status} {json.dumps(body)}")
                # A real instance code with port 443: the test runs (no 400); with no network here
                # it reports, in one sentence, that the host cannot be resolved.
                status, body = click_test(page, "braze_us03")
                results["instance code with port 443"] = status == 200 and isinstance(
                    body.get("message"), str
                )
                print(f"4. US-03 with port 443: {status} {json.dumps(body)}")
                page.screenshot(path=str(WORK / "connections.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

        cli = airflow(env, "connections", "test", "braze_no_port")
        results["airflow connections test"] = cli.returncode == 0 and "Connection success" in cli.stdout
        last = (cli.stdout.strip().splitlines() or [cli.stderr.strip()])[-1]
        print(f"5. airflow connections test braze_no_port: {last}")

    failed = [name for name, ok in results.items() if not ok]
    if failed:
        print(f"scripts/ui-check: FAILED: {', '.join(failed)}; logs and a screenshot are in {WORK}.")
        return 1
    print(
        f"UI check passed: Test works once the connection has a port. Screenshot: {WORK / 'connections.png'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
