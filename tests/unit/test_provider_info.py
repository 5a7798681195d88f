"""Provider registration: entry point, metadata, connection form, Airflow's own discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import airflow_provider_braze
from airflow_provider_braze import get_provider_info
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.hooks.connection import _OPTION_DEFAULTS

DIST = "airflow-provider-braze-rest"


def test_entry_point_points_at_get_provider_info() -> None:
    (entry,) = [ep for ep in metadata.entry_points(group="apache_airflow_provider") if ep.dist.name == DIST]
    assert entry.value == "airflow_provider_braze:get_provider_info"
    assert entry.load() is get_provider_info


def test_package_name_is_the_distribution_name() -> None:
    info = get_provider_info()
    assert info["package-name"] == DIST == airflow_provider_braze.DISTRIBUTION_NAME
    assert canonicalize_name(metadata.distribution(DIST).metadata["Name"]) == info["package-name"]
    assert metadata.version(DIST) == airflow_provider_braze.__version__


def test_matches_airflows_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_and_form() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == BrazeHook.conn_type == "braze"
    assert conn["hook-class-name"] == "airflow_provider_braze.hooks.braze.BrazeHook"
    assert conn["hook-name"] == BrazeHook.hook_name == "Braze"
    # Every form field is an extra the hook reads, with the hook's own default, and vice versa.
    assert set(conn["conn-fields"]) == {*_OPTION_DEFAULTS, "ca_bundle"}
    for name, field in conn["conn-fields"].items():
        if name in _OPTION_DEFAULTS:
            assert field["schema"]["default"] == _OPTION_DEFAULTS[name]
        assert field["label"]
    behaviour = conn["ui-field-behaviour"]
    # The port stays visible: Airflow 3.3.0-3.3.2's Test button needs one (apache/airflow#73298).
    assert set(behaviour["hidden-fields"]) == {"schema", "login"}
    assert behaviour["placeholders"]["port"].startswith("443")
    assert behaviour["relabeling"] == {"host": "REST endpoint", "password": "REST API key"}
    assert "https://rest.iad-01.braze.com" in behaviour["placeholders"]["host"]
    assert "US-01" in behaviour["placeholders"]["host"]


def test_modules_listed_exist() -> None:
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_providers_manager_sees_the_hook_and_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert DIST in manager.providers
    assert manager.providers[DIST].version == airflow_provider_braze.__version__
    hook_info = ProvidersManagerTaskRuntime().hooks["braze"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_braze.hooks.braze.BrazeHook"
    assert hook_info.connection_id_attribute_name == "braze_conn_id"
    assert "extra__braze__read_timeout" in manager.connection_form_widgets
    assert manager.field_behaviours["braze"]["relabeling"]["password"] == "REST API key"


@pytest.mark.parametrize("command", [["providers", "list"], ["providers", "hooks"]])
def test_airflow_cli_lists_the_provider(command: list[str]) -> None:
    airflow_cli = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow_cli), *command, "--output", "plain"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW__CORE__UNIT_TEST_MODE": "False"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if command[1] == "list":
        assert DIST in result.stdout
    else:
        assert "airflow_provider_braze.hooks.braze.BrazeHook" in result.stdout


def test_the_description_reads_well_as_plain_text() -> None:
    """Airflow's Providers page shows the description as text: no RST link markup to mangle."""
    from airflow_provider_braze import get_provider_info

    description = get_provider_info()["description"]
    assert "`" not in description
    assert description.startswith("Braze REST API (https://www.braze.com/): create send IDs")
