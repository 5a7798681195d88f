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


def test_no_names_are_kept_for_an_unreleased_version() -> None:
    """0.1.0 is the first release: nothing warns of a deprecation (there is nothing earlier to be
    compatible with), and the names an unreleased draft used are gone."""
    import ast
    from pathlib import Path

    import airflow_provider_braze

    package = Path(airflow_provider_braze.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Name, ast.Attribute)):
                name = node.id if isinstance(node, ast.Name) else node.attr
                if "Deprecat" in name:
                    found.append(f"{path.relative_to(package)}:{node.lineno}: {name}")
    assert found == []
    from airflow_provider_braze import delivery
    from airflow_provider_braze.delivery import engine
    from airflow_provider_braze.hooks.braze import BrazeHook
    from airflow_provider_braze.operators import messages

    for owner, name in [
        (messages, "TriggerCampaignSendOperator"),
        (messages, "ScheduleCampaignTriggerOperator"),
        (delivery, "DeliveryIncomplete"),
        (engine, "DeliveryStopped"),
        (BrazeHook, "get_send_data_series"),
        (BrazeHook, "trigger_campaign_send"),
        (BrazeHook, "schedule_campaign_trigger"),
    ]:
        assert not hasattr(owner, name), f"{owner.__name__}.{name} still exists"


def test_endpoints_are_named_only_in_their_module() -> None:
    """The client names each Braze endpoint once (``hooks/endpoints.py``); the rest of it uses
    those constants. Docstrings and the sandbox (Braze's side, with its own routes) aside."""
    import ast
    import re
    from pathlib import Path

    import airflow_provider_braze

    package = Path(airflow_provider_braze.__file__).parent
    endpoint = re.compile(r"^((GET|POST) )?/(messages|campaigns|sends)/[a-z_/]+$")
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative == "hooks/endpoints.py" or relative.startswith("sandbox/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and id(node) not in docstrings and endpoint.match(text):
                found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert found == []
