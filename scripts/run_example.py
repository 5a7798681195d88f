"""Run the example pipeline with `airflow dags test` against a local Braze sandbox.

Used by scripts/demo. Everything happens in a throwaway AIRFLOW_HOME under .demo/, so it never
touches a real Airflow installation or a real Braze workspace.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".demo"
DAG_ID = "braze_send_id_pipeline"


def main() -> int:
    from airflow_provider_braze.sandbox import BrazeSandbox

    shutil.rmtree(WORK, ignore_errors=True)
    home = WORK / "airflow-home"
    home.mkdir(parents=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
    }

    print("==> creating the Airflow metadata database (SQLite, in .demo/)", flush=True)
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    if migrate.returncode != 0:
        print(migrate.stdout[-4000:], migrate.stderr[-4000:], sep="\n")
        return migrate.returncode

    with BrazeSandbox(api_key=f"sandbox-demo-{secrets.token_hex(12)}") as sandbox:
        print(f"==> Braze sandbox listening on {sandbox.url}", flush=True)
        env["AIRFLOW_CONN_BRAZE_DEFAULT"] = sandbox.connection_json()
        print(f"==> airflow dags test {DAG_ID}", flush=True)
        log_path = WORK / "dags-test.log"
        with log_path.open("w") as log:
            conf = json.dumps({"analytics_path": f"file://{WORK / 'analytics'}"})
            run = subprocess.run(
                [airflow, "dags", "test", DAG_ID, "--conf", conf],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        output = log_path.read_text()
        in_channel_summary = False
        for line in output.splitlines():
            # The per-channel summary is printed as an indented block under its title line.
            if in_channel_summary and line.startswith("  "):
                print("   ", line.rstrip())
                continue
            in_channel_summary = line.startswith("Braze analytics for send ID")
            if "Braze" in line or "send ID" in line or "ERROR" in line:
                print("   ", line.strip()[:300])
        with urllib.request.urlopen(f"{sandbox.url}/_sandbox/ledger") as answer:  # noqa: S310 - loopback
            ledger = json.load(answer)
        deliveries = sandbox.state.deliveries()

    if run.returncode != 0:
        print(f"\nThe pipeline FAILED (exit {run.returncode}); full log: {log_path}")
        return run.returncode
    created = [e for e in ledger if e["endpoint"] == "POST /sends/id/create"]
    if len(created) != 1:
        print(f"\nExpected one created send ID, the sandbox recorded {len(created)}; full log: {log_path}")
        return 1
    entry = created[0]
    sends = [e for e in ledger if e["endpoint"] == "POST /messages/send"]
    print(
        f"\nExample pipeline succeeded. Created send ID: {entry['response']['send_id']} "
        f"(campaign {entry['request']['campaign_id']}); the sandbox received {len(sends)} send requests "
        f"for {len(deliveries)} distinct recipients, {sum(deliveries.values())} messages in all."
        f"\nAnalytics rows: {', '.join(str(p) for p in sorted((WORK / 'analytics').glob('*.csv')))}"
        f"\nFull log: {log_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
