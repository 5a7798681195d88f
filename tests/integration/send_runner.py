"""Run a SendMessagesOperator as its own process, so tests can SIGKILL it mid-send.

Usage: python send_runner.py SPEC_JSON, where the spec gives the connection JSON, the checkpoint
folder, the number of recipients, concurrency, at_least_once and where to write the summary.
Exit codes: 0 complete, 3 incomplete (summary written), anything else an error.
"""

from __future__ import annotations

import json
import os
import sys
from unittest import mock


def main() -> int:
    spec = json.loads(sys.argv[1])
    os.environ["AIRFLOW_CONN_BRAZE_DEFAULT"] = spec["connection"]
    from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError
    from airflow_provider_braze.operators.messages import SendMessagesOperator
    from airflow_provider_braze.sandbox import email_message

    op = SendMessagesOperator(
        task_id="send",
        campaign_id="sandbox-api-campaign",
        send_id="kill-test",
        recipients=[f"user-{i}" for i in range(spec["recipients"])],
        messages=email_message(),
        checkpoint=spec["checkpoint"],
        concurrency=spec["concurrency"],
        at_least_once=spec.get("at_least_once", False),
        progress_interval=1,
    )
    ti = mock.MagicMock(dag_id="kill_test", task_id="send", run_id="run", map_index=-1)
    code = 0
    try:
        summary = op.execute({"ti": ti})
    except BrazeDeliveryIncompleteError as err:
        summary, code = err.summary, 3
    with open(spec["summary"], "w") as fh:
        json.dump(summary, fh)
    return code


if __name__ == "__main__":
    sys.exit(main())
