"""run_send_id / run_key: send IDs from what every DAG run has (run_id, run_after)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.send_ids import MACROS, MAX_PREFIX_LENGTH, run_key, run_send_id
from airflow_provider_braze.validation import validate_send_id


def dag_run(run_id: str, run_after: datetime) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, run_after=run_after)


RUN_AFTER = datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc)


def test_the_day_run_after_falls_on_and_a_digest_of_the_run_id() -> None:
    run = dag_run("manual__2026-12-03T23:30:00+00:00", RUN_AFTER)
    digest = hashlib.sha256(b"manual__2026-12-03T23:30:00+00:00").hexdigest()[:8]
    assert run_key(run) == f"20261203-{digest}"
    assert run_send_id("picks", run) == f"picks-20261203-{digest}"
    # The task context works as well as the DAG run; the macros are the same functions.
    assert run_send_id("picks", {"dag_run": run, "run_id": run.run_id}) == run_send_id("picks", run)
    assert MACROS["run_send_id"] is run_send_id
    assert MACROS["run_key"] is run_key


def test_two_runs_on_the_same_day_get_different_ids_and_a_retry_the_same() -> None:
    first = dag_run("manual__2026-12-03T08:00:00.123+00:00", RUN_AFTER - timedelta(hours=15))
    second = dag_run("api__2026-12-03T09:00:00.456+00:00", RUN_AFTER - timedelta(hours=14))
    assert run_send_id("picks", first) != run_send_id("picks", second)
    assert run_send_id("picks", first).split("-")[1] == run_send_id("picks", second).split("-")[1]
    assert run_send_id("picks", first) == run_send_id("picks", dag_run(first.run_id, first.run_after))


def test_run_after_is_read_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    run = dag_run("r", datetime(2026, 12, 4, 7, 0, tzinfo=tokyo))  # 2026-12-03 22:00 UTC
    assert run_key(run).startswith("20261203-")


def test_the_longest_prefix_makes_a_valid_64_character_id() -> None:
    send_id = run_send_id("p" * MAX_PREFIX_LENGTH, dag_run("r", RUN_AFTER))
    assert len(send_id) == 64
    assert validate_send_id(send_id) == send_id


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("p" * (MAX_PREFIX_LENGTH + 1), "at most 46"),
        ("", "non-empty"),
        ("pické", "non-ASCII"),
        (" picks", "whitespace"),
        ("pi\ncks", "control character"),
    ],
)
def test_a_prefix_that_cannot_make_a_valid_send_id_is_refused(prefix: str, message: str) -> None:
    with pytest.raises(BrazeValidationError, match=message):
        run_send_id(prefix, dag_run("r", RUN_AFTER))
