"""pytest fixtures for testing DAGs against the Braze sandbox (registered via ``pytest11``).

``braze_sandbox`` gives each test a clean, running sandbox and points the ``braze_default``
connection at it:

.. code-block:: python

    def test_my_dag(braze_sandbox):
        my_dag.test()
        assert len(braze_sandbox.ledger("POST /sends/id/create")) == 1

This module is loaded by every pytest run in an environment with the provider installed, so it
imports nothing heavy at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_braze.sandbox.server import BrazeSandbox


@pytest.fixture(scope="session")
def braze_sandbox_server() -> Iterator[BrazeSandbox]:
    """One sandbox for the whole test session (state is shared; prefer ``braze_sandbox``)."""
    from airflow_provider_braze.sandbox.server import BrazeSandbox

    with BrazeSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def braze_sandbox(braze_sandbox_server: BrazeSandbox, monkeypatch: pytest.MonkeyPatch) -> BrazeSandbox:
    """A reset sandbox, with ``AIRFLOW_CONN_BRAZE_DEFAULT`` pointing at it for this test."""
    braze_sandbox_server.reset()
    monkeypatch.setenv("AIRFLOW_CONN_BRAZE_DEFAULT", braze_sandbox_server.connection_json())
    return braze_sandbox_server
