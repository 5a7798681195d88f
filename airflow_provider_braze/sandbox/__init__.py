"""A local, Braze-compatible REST API server for running and testing pipelines without Braze.

Start it with ``python -m airflow_provider_braze.sandbox --port 8080``, use
:class:`~airflow_provider_braze.sandbox.server.BrazeSandbox` in Python, or the ``braze_sandbox``
pytest fixture. FastAPI and uvicorn are imported only when a sandbox starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_braze.sandbox.server import BrazeSandbox
    from airflow_provider_braze.sandbox.state import Faults, SandboxState

__all__ = ["BrazeSandbox", "Faults", "SandboxState", "email_message"]

#: The campaign every sandbox workspace has (``python -m airflow_provider_braze.sandbox``).
DEFAULT_CAMPAIGN = "sandbox-api-campaign"


def email_message(campaign_id: str | None = DEFAULT_CAMPAIGN, **fields: Any) -> dict[str, Any]:
    """``messages`` with one email the sandbox (and Braze) accepts, for tests, benchmarks and
    examples that need a send but are not about its content.

    :param campaign_id: The campaign whose email variation the message names (the sandbox names
        a campaign's variations ``<campaign>-<channel>``); ``None`` for a send without a campaign.
    :param fields: Fields of the email object to set or override, such as ``subject``.
    """
    email: dict[str, Any] = {
        "app_id": "sandbox-app",
        "from": "Sandbox News <news@example.com>",
        "subject": "Hi",
        "body": "<p>Hello</p>",
    }
    if campaign_id is not None:
        email["message_variation_id"] = f"{campaign_id}-email"
    email.update(fields)
    return {"email": email}


def __getattr__(name: str) -> Any:
    if name == "BrazeSandbox":
        from airflow_provider_braze.sandbox.server import BrazeSandbox

        return BrazeSandbox
    if name in ("Faults", "SandboxState"):
        from airflow_provider_braze.sandbox import state

        return getattr(state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
