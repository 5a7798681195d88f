"""Send IDs unique to a DAG run, from what every run has: its ``run_id`` and ``run_after``.

A run triggered from the CLI or the REST API without a logical date has no ``logical_date``,
``ds`` or ``ts_nodash``, and two runs on the same day share a ``ds``. Every run has a ``run_id``
(unique within its DAG) and ``dag_run.run_after``, so :func:`run_send_id` builds the ID from
those: ``picks-20261203-3f9a1c2b`` is the prefix, the day the run was due (UTC) and a short
digest of the run ID. A retry of the same run gets the same ID; another run, even on the same
day, a different one.

In task code pass the context (``run_send_id("picks", context)``); in templates, add
:data:`MACROS` to the DAG's ``user_defined_macros`` and pass ``dag_run``:
``send_id="{{ run_send_id('picks', dag_run) }}"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_braze.validation import SEND_ID_MAX_LENGTH, validate_send_id

__all__ = ["MACROS", "run_key", "run_send_id"]

#: ``-YYYYMMDD-`` and 8 hex digits: what :func:`run_send_id` adds to the prefix.
_SUFFIX_LENGTH = 1 + 8 + 1 + 8
#: The longest prefix that keeps the ID within Braze's 64 characters.
MAX_PREFIX_LENGTH = SEND_ID_MAX_LENGTH - _SUFFIX_LENGTH


def run_key(run: Any) -> str:
    """``YYYYMMDD-<8 hex digits>``: the day the run was due (``run_after``, in UTC) and a digest
    of its ``run_id``. The same for every try of a run, different for another run of the DAG.

    :param run: The task context (a mapping with ``dag_run``), or the DAG run itself (anything
        with ``run_id`` and ``run_after``, as ``dag_run`` in a template).
    """
    from airflow_provider_braze.exceptions import BrazeValidationError

    dag_run = run.get("dag_run") if isinstance(run, Mapping) else run
    run_after = getattr(dag_run, "run_after", None)
    run_id = getattr(dag_run, "run_id", None)
    if not isinstance(run_after, datetime) or run_id is None:
        raise BrazeValidationError(
            "run_key and run_send_id need the task context or its dag_run (with run_id and "
            f"run_after), got {run!r}."
        )
    if run_after.tzinfo is not None:
        run_after = run_after.astimezone(timezone.utc)
    digest = hashlib.sha256(str(run_id).encode()).hexdigest()[:8]
    return f"{run_after:%Y%m%d}-{digest}"


def run_send_id(prefix: str, run: Any) -> str:
    """A send ID for this DAG run: ``<prefix>-YYYYMMDD-<8 hex digits>`` (see :func:`run_key`),
    such as ``picks-20261203-3f9a1c2b``. ASCII and at most 64 characters, as Braze requires.

    :param prefix: What the send is, e.g. ``"picks"``: ASCII, printable, at most
        :data:`MAX_PREFIX_LENGTH` (46) characters, no surrounding whitespace.
    :param run: The task context, or ``dag_run`` (see :func:`run_key`).
    :raises BrazeValidationError: the prefix cannot make a valid send ID.
    """
    from airflow_provider_braze.exceptions import BrazeValidationError

    if not isinstance(prefix, str) or not prefix:
        raise BrazeValidationError(f"The send ID prefix must be a non-empty string, got {prefix!r}.")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise BrazeValidationError(
            f"The send ID prefix {prefix!r} is {len(prefix)} characters long; at most "
            f"{MAX_PREFIX_LENGTH} leave room for the run's day and digest within Braze's "
            f"{SEND_ID_MAX_LENGTH}."
        )
    send_id = f"{prefix}-{run_key(run)}"
    validate_send_id(send_id)  # ASCII, printable, no surrounding whitespace: names what is wrong
    return send_id


#: For a DAG's ``user_defined_macros``: ``{{ run_send_id('picks', dag_run) }}`` and
#: ``{{ run_key(dag_run) }}`` in templates.
MACROS: dict[str, Any] = {"run_send_id": run_send_id, "run_key": run_key}
