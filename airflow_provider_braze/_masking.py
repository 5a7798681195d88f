"""Keep the Braze API key out of log output, including under ``dag.test()``."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

_lock = threading.Lock()


def register_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's secret masker and make sure this process applies it."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
    _ensure_in_process_redaction()


class _RedactingFilter(logging.Filter):
    """Redacts registered secrets from stdlib log records: the message with its arguments
    formatted in (an argument may be an exception whose text holds a secret, which redacting
    the object would miss), and the traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        from airflow.sdk.log import redact  # type: ignore[attr-defined]  # public, re-exported

        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave its formatting to logging's own handling
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = str(redact(record.exc_text))
        if record.stack_info:
            record.stack_info = str(redact(record.stack_info))
        return True


_FILTER = _RedactingFilter()


def _ensure_in_process_redaction() -> None:
    """Add redaction to this process's log pipeline when nothing else redacts.

    A task run by a supervisor logs through it, and the supervisor redacts registered secrets.
    Under ``dag.test()`` and ``airflow dags test`` tasks run inside the CLI's own process, whose
    log pipeline has no redaction step, so a key logged by mistake would be printed in clear.
    Checked on every call (once per hook), since Airflow may reconfigure logging between tasks.
    """
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is not None and type(comms).__name__ != "InProcessSupervisorComms":
        return  # a real supervisor redacts what this process logs

    import structlog
    from airflow.sdk.log import mask_logs

    with _lock:
        # structlog-native loggers: cached loggers share this list, so inserting reaches them too.
        chain: Any = structlog.get_config()["processors"]
        if isinstance(chain, list) and chain and mask_logs not in chain:
            chain.insert(len(chain) - 1, mask_logs)  # before the renderer
        # stdlib loggers: every handler of the root logger, whatever its formatter.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_FILTER)  # a no-op when already added
