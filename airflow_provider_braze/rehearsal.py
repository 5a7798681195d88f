"""Rehearsals: a run that goes through every check and sends nothing.

A send operator's ``dry_run=True`` rehearses that task; a run whose ``braze_dry_run`` param (or
``dag_run.conf`` key) is true rehearses every Braze task of the run: sends and send ID creation
rehearse, and tasks that read a send's analytics are skipped (nothing was sent, so there is
nothing to read), which skips what depends on them.
"""

from __future__ import annotations

from typing import Any

#: The run-level switch: a param or ``dag_run.conf`` key that makes every send rehearse.
DRY_RUN_PARAM = "braze_dry_run"


def is_rehearsal(dry_run: bool, context: Any) -> bool:
    """Whether this task rehearses: its own ``dry_run``, or the run's ``braze_dry_run`` (in the
    DAG's params or the run's conf), which wins: a rehearsal run never sends."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    values = []
    params = context.get("params") if hasattr(context, "get") else None
    if params is not None and hasattr(params, "get"):
        value = params.get(DRY_RUN_PARAM)
        # A DAG may declare the param with no default (None): that is "not asked for".
        if value is not None:
            values.append(value)
    conf = getattr(context.get("dag_run") if hasattr(context, "get") else None, "conf", None)
    if isinstance(conf, dict) and DRY_RUN_PARAM in conf:
        values.append(conf[DRY_RUN_PARAM])  # given on purpose: null is not false
    for value in values:
        if not isinstance(value, bool):
            raise BrazeValidationError(
                f"The run's {DRY_RUN_PARAM} must be true or false, got {value!r}: nothing was sent."
            )
    return dry_run or any(values)


def skip_if_rehearsal(context: Any, what: str) -> None:
    """Skip a task that reads what a send produced when the run is a rehearsal."""
    if is_rehearsal(False, context):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            f"Rehearsal ({DRY_RUN_PARAM}): nothing was sent, so there is no {what} to read."
        )
