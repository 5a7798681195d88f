"""Rehearsals: a run that goes through every check and sends nothing.

A send operator's ``dry_run=True`` rehearses that task; a run whose ``braze_dry_run`` param (or
``dag_run.conf`` key) is true rehearses every Braze task of the run: sends and send ID creation
rehearse, and tasks that read a send's analytics are skipped (nothing was sent, so there is
nothing to read), which skips what depends on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_braze.delivery.audience import Audience
    from airflow_provider_braze.delivery.checkpoint import Checkpoint
    from airflow_provider_braze.delivery.summary import SendSummary
    from airflow_provider_braze.hooks.braze import BrazeHook, PreparedSend

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


def rehearse_send(
    *,
    hook: BrazeHook,
    log: Any,
    endpoint: str,
    broadcast: bool,
    concurrency: int,
    prepared: PreparedSend,
    audience: Audience,
    checkpoint: Checkpoint,
    plan: Callable[[Audience], dict[str, Any]],
    identity: dict[str, Any],
    redact: Callable[[Any], Any],
) -> SendSummary:
    """A send operator's rehearsal: everything a send does before its first request (the
    options, the prepared body and the audience are checked by the caller), then a report
    instead of sending: the delivery engine's own plan (what the checkpoint says is left), the
    first request of it exactly as it would go out, how many, and how long they should take.

    :param plan: The delivery engine's plan for this audience (``BatchDelivery.plan``).
    :param identity: What the send is (endpoint, campaign, send ID, broadcast), for the summary.
    :param redact: Applied to the first request before it is logged or kept.
    """
    import json

    from airflow_provider_braze._words import plural
    from airflow_provider_braze.delivery.engine import audience_counts
    from airflow_provider_braze.delivery.summary import SendSummary
    from airflow_provider_braze.rate_limit import estimate_send_seconds

    with audience:
        planned = plan(audience)
        # After the plan: it refuses a missing folder on a retry, before anything creates it.
        store_note = check_checkpoint_store(checkpoint)
        to_send = planned["to_send"]
        first = None
        if to_send:
            batches = audience.batches()
            try:
                for index, batch in enumerate(batches):
                    if index == to_send[0]:
                        first = batch
                        break
            finally:
                batches.close()
        requests = len(to_send)
        recipients = audience.recipients_in(to_send)
        body = prepared.request_body(first) if first is not None else None
        status, latency, source = hook.rate_limit_now()
        seconds, how = estimate_send_seconds(
            requests,
            concurrency=concurrency,
            status=status,
            now=hook.server_clock.now(),
            latency=latency,
        )
        counts = audience_counts(audience)
    if planned["already_complete"]:
        checkpoint_note = (
            f"{checkpoint.describe()}: this send is already complete, a real run would send nothing"
        )
    elif planned["earlier_tries"]:
        checkpoint_note = (
            f"{checkpoint.describe()}: a real run resumes from "
            f"{plural(planned['earlier_tries'], 'earlier try', 'earlier tries')}: "
            f"{plural(planned['done'], 'batch', 'batches')} done, {planned['in_doubt']} in doubt "
            f"(not resent), {requests} to send"
        )
    else:
        checkpoint_note = f"{store_note}, no earlier tries"
    shown = redact(json.dumps(body, ensure_ascii=False)) if body is not None else "(none)"
    log.info("Rehearsal (dry run): nothing is sent to Braze.")
    if requests:
        log.info(
            "It would send %s to %s in %d request%s, %d at a time; estimated at least %s (%s).",
            endpoint,
            "the broadcast audience" if broadcast else f"{recipients:,} recipients",
            requests,
            "" if requests == 1 else "s",
            concurrency,
            _duration(seconds),
            how,
        )
    else:
        log.info(
            "It would send nothing: %s.",
            "the send is complete" if planned["already_complete"] else "no recipients are left to send",
        )
    log.info("Rate limit from %s%s.", source, f": {status.describe()}" if status else "")
    log.info("Checkpoint: %s.", checkpoint_note)
    log.info(
        "The first request, as it would go out (Authorization: Bearer ***): %s %s",
        endpoint,
        shown,
    )
    summary = SendSummary.unknown(identity, error=None, try_number=None, checkpoint=checkpoint.describe())
    return summary.nothing_sent().but(
        **counts,
        dry_run=True,
        batches_to_send=requests,
        recipients_to_send=recipients,
        already_complete=planned["already_complete"],
        estimated_seconds=round(seconds, 1),
        rate_limit=status.describe() if status is not None else None,
        first_request=redact(body),
    )


def check_checkpoint_store(checkpoint: Any) -> str:
    """Write then delete a probe (the engine's plan has read this send's records): a store a
    real run could not use fails the rehearsal the same way. Returns what was found."""
    from airflow_provider_braze.exceptions import BrazeCheckpointError

    probe = checkpoint.probe_key
    try:
        checkpoint.store.write(probe, {"kind": "rehearsal"})
        checkpoint.store.delete(probe)
    except BrazeCheckpointError:
        raise
    except Exception as err:
        raise BrazeCheckpointError(
            f"The checkpoint store cannot be written ({checkpoint.describe()}): {err}. A real run "
            "would refuse to send."
        ) from err
    return f"{checkpoint.describe()}: readable and writable"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
