"""DAG files import our operator modules: importing them must not pull in HTTP or server stacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("requests", "urllib3", "fastapi", "uvicorn", "starlette", "httpx", "matplotlib")


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_braze",
        "airflow_provider_braze.operators.send_id",
        "airflow_provider_braze.operators.messages",
        "airflow_provider_braze.operators.analytics",
        "airflow_provider_braze.operators.experiments",
        "airflow_provider_braze.sensors.send_analytics",
        "airflow_provider_braze.hooks.braze",
        "airflow_provider_braze.hooks.braze_async",
        "airflow_provider_braze.hooks.policy",
        "airflow_provider_braze.analytics_check",
        "airflow_provider_braze.triggers.send_analytics",
        "airflow_provider_braze.sandbox",
        "airflow_provider_braze.sandbox.pytest_plugin",
    ],
)
def test_module_import_is_light(module: str) -> None:
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        f"heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("HEAVY:")]
    assert line == "HEAVY:", f"importing {module} also imports {line[6:]}"
