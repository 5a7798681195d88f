"""Apache Airflow provider for the Braze REST API.

This module is imported by Airflow's provider discovery and by every DAG file that uses the
provider, so it must stay cheap: no imports beyond the standard library.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: The distribution name on PyPI; Airflow requires ``package-name`` to match it exactly.
DISTRIBUTION_NAME = "airflow-provider-braze-rest"

_BRAZE_API_DOCS = "https://www.braze.com/docs/api/basics/"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": DISTRIBUTION_NAME,
        "name": "Braze",
        "description": (
            # Plain text: Airflow's Providers page drops the space after an RST link.
            "Braze REST API (https://www.braze.com/): create send IDs, send messages tagged "
            "with them and fetch their analytics."
        ),
        "integrations": [
            {
                "integration-name": "Braze",
                "external-doc-url": _BRAZE_API_DOCS,
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Braze",
                "python-modules": ["airflow_provider_braze.hooks.braze"],
            }
        ],
        "operators": [
            {
                "integration-name": "Braze",
                "python-modules": [
                    "airflow_provider_braze.operators.send_id",
                    "airflow_provider_braze.operators.messages",
                    "airflow_provider_braze.operators.analytics",
                    "airflow_provider_braze.operators.experiments",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Braze",
                "python-modules": ["airflow_provider_braze.sensors.send_analytics"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Braze",
                "python-modules": ["airflow_provider_braze.triggers.send_analytics"],
            }
        ],
        # Asset("braze://<instance>/campaigns/<campaign_id>"): a campaign's sends as an asset, and
        # as an OpenLineage dataset (namespace braze://<instance>, name campaigns/<campaign_id>).
        "asset-uris": [
            {
                "schemes": ["braze"],
                "handler": "airflow_provider_braze.assets.sanitize_uri",
                "to_openlineage_converter": "airflow_provider_braze.assets.convert_asset_to_openlineage",
            }
        ],
        # Declared here (not with the deprecated Python form methods) so that the Airflow 3 UI
        # can render the form without importing the hook.
        "connection-types": [
            {
                "connection-type": "braze",
                "hook-class-name": "airflow_provider_braze.hooks.braze.BrazeHook",
                "hook-name": "Braze",
                "conn-fields": {
                    "connect_timeout": {
                        "label": "Connect timeout (seconds)",
                        "description": "Time allowed to open a connection to Braze.",
                        "schema": {"type": ["number", "null"], "default": 10, "exclusiveMinimum": 0},
                    },
                    "read_timeout": {
                        "label": "Read timeout (seconds)",
                        "description": "Time allowed for Braze to answer a request once sent.",
                        "schema": {"type": ["number", "null"], "default": 30, "exclusiveMinimum": 0},
                    },
                    "max_retries": {
                        "label": "Maximum retries",
                        "description": (
                            "Retries after a connection failure, 429 or 5xx answer "
                            "(never after 400, 401, 403 or 404)."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0},
                    },
                    "retry_budget": {
                        "label": "Retry budget (seconds)",
                        "description": (
                            "Longest total time one call may spend waiting between retries, "
                            "including waits for a rate-limit reset."
                        ),
                        "schema": {"type": ["number", "null"], "default": 120, "minimum": 0},
                    },
                    "ca_bundle": {
                        "label": "CA bundle (path)",
                        "description": (
                            "A PEM file with a private certificate authority to trust (e.g. a TLS "
                            "proxy). Certificates are always verified."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    # The port is shown: Airflow 3.3.0-3.3.2's Test button refuses a connection
                    # without one (apache/airflow#73298); 443 makes it work.
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"host": "REST endpoint", "password": "REST API key"},
                    "placeholders": {
                        "host": "https://rest.iad-01.braze.com or US-01",
                        "password": "Braze REST API key",
                        "port": "443 (lets the Test button work in Airflow 3.3.0-3.3.2)",
                    },
                },
            }
        ],
    }
