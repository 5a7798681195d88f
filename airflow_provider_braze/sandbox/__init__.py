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

__all__ = ["BrazeSandbox", "Faults", "SandboxState"]


def __getattr__(name: str) -> Any:
    if name == "BrazeSandbox":
        from airflow_provider_braze.sandbox.server import BrazeSandbox

        return BrazeSandbox
    if name in ("Faults", "SandboxState"):
        from airflow_provider_braze.sandbox import state

        return getattr(state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
