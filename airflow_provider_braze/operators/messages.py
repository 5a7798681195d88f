"""Operators that send, trigger and schedule Braze messages tagged with a send ID.

Each sends its recipients in batches of at most 50 (Braze's limit), several at a time, paced by
Braze's rate-limit headers, and exactly once across task retries: see
:mod:`airflow_provider_braze.delivery` for how, and docs/delivery.md for the guarantee in plain words.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_braze._words import clip, plural
from airflow_provider_braze.delivery.checkpoint import DEFAULT_RETENTION, retention_of
from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.hooks.endpoints import (
    SCHEDULE_MESSAGES,
    SCHEDULE_TRIGGERED_CAMPAIGN,
    SEND_MESSAGES,
    SEND_TRIGGERED_CAMPAIGN,
)
from airflow_provider_braze.validation import (
    MAX_RECIPIENTS_PER_REQUEST,
    check_broadcast,
    check_flag,
)

#: How long a send's checkpoint records are kept by default.
DEFAULT_CHECKPOINT_RETENTION = DEFAULT_RETENTION

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

    from airflow_provider_braze.delivery import Audience, BatchDelivery, Checkpoint
    from airflow_provider_braze.delivery.summary import SendSummary
    from airflow_provider_braze.hooks.braze import BrazeHook as _Hook
    from airflow_provider_braze.hooks.braze import PreparedSend
    from airflow_provider_braze.lineage import Lineage
    from airflow_provider_braze.recipients import RecipientKind


class _BrazeSendOperator(BaseOperator):
    """What the four send operators share: recipients, batching, delivery and reporting.

    :param campaign_id: The campaign to send for. (templated)
    :param send_id: Optional. A send ID created for this campaign (e.g. by
        ``CreateSendIdOperator``), so the send's analytics can be fetched later. (templated)
    :param recipients: Optional. Who to send to: a list or any iterable, or the path or URL
        (``file://``, ``s3://``, any ObjectStoragePath) of a CSV or JSON-lines file. Sent in
        batches of at most 50. Omit it for a broadcast. (templated)
    :param recipients_format: Optional. ``csv`` or ``jsonl`` when the file name does not say.
    :param broadcast: Send to the campaign's segment, a ``segment_id`` or an ``audience``
        without listing recipients: one request, no batching.
    :param concurrency: Batches in flight at once (1 to 32).
    :param at_least_once: Resend batches in doubt (read timeout, dropped
        connection) instead of reporting them; such recipients may get the message twice.
    :param checkpoint: Where progress is kept across task retries: ``"variable"`` (Airflow
        Variables, the default), a folder path or ObjectStoragePath URL (``s3://bucket/prefix``),
        or None to keep nothing (a retried task then sends everything again).
    :param checkpoint_retention: How long a send's checkpoint records are kept (a timedelta, or
        seconds; default 30 days; None keeps them forever). Records of the task's runs older
        than this are deleted when a later run of the task completes its send.
    :param allow_duplicate_recipients: Send to a recipient listed more than once as many times
        as listed. By default each is sent once and the summary counts the entries skipped.
        Braze delivers a user listed twice in one request (50 entries) once, so a repeat within
        one request is refused before anything is sent.
    :param exclude_recipients: Optional. Recipients to leave out of every batch still to send,
        without changing ``recipients`` (which a retry must read unchanged): the way to send the
        rest of a batch Braze refused because of some of its recipients. Given in the same forms
        as ``recipients`` (a list, or a file path or URL); a recipient in a batch already sent is
        not affected. The summary counts them as ``excluded``. (templated)
    :param progress_interval: Seconds between progress lines in the task log.
    :param max_refused_batches: Stop after Braze refuses (4xx) more than this many batches.
    :param dry_run: Rehearse instead of sending: render, check every recipient and messaging
        object, the send ID and the checkpoint store, log the first request body exactly as it
        would go out, the number of requests and an estimated duration, and send nothing. A
        run whose ``braze_dry_run`` param (or conf key) is true rehearses every send, whatever
        this says.
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = ("campaign_id", "send_id", "recipients", "exclude_recipients")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "messages": "json",
        "trigger_properties": "json",
        "audience": "json",
        "schedule": "json",
    }
    ui_color = "#ffa45c"

    #: How recipients are checked and shaped, and which hook verb sends them.
    _recipient_kind: ClassVar[RecipientKind]
    _endpoint: ClassVar[str]

    def __init__(
        self,
        *,
        campaign_id: str | None = None,
        send_id: str | None = None,
        recipients: Any = None,
        recipients_format: str | None = None,
        broadcast: bool = False,
        concurrency: int = 4,
        at_least_once: bool = False,
        checkpoint: Any = "variable",
        checkpoint_retention: timedelta | float | None = DEFAULT_CHECKPOINT_RETENTION,
        allow_duplicate_recipients: bool = False,
        exclude_recipients: Any = None,
        progress_interval: float = 15.0,
        max_refused_batches: int = 10,
        dry_run: bool = False,
        braze_conn_id: str = BrazeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(dry_run, bool):
            raise BrazeValidationError(f"dry_run must be True or False, got {dry_run!r}.")
        # Not self.dry_run: BaseOperator.dry_run() renders the templates (``airflow tasks render``).
        self._dry_run = dry_run
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.recipients = recipients
        self.recipients_format = recipients_format
        self.broadcast = broadcast
        self.concurrency = concurrency
        self.at_least_once = at_least_once
        self.checkpoint = checkpoint
        self.checkpoint_retention = checkpoint_retention
        self.allow_duplicate_recipients = allow_duplicate_recipients
        self.exclude_recipients = exclude_recipients
        self.progress_interval = progress_interval
        self.max_refused_batches = max_refused_batches
        self.braze_conn_id = braze_conn_id
        self._delivery: BatchDelivery | None = None
        self._prepared: PreparedSend | None = None

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    # ------------------------------------------------------------------ subclass hooks

    def _checked_prepare(self) -> PreparedSend:
        """The prepared send, which must go to this operator's own endpoint: a schedule operator
        whose ``schedule`` rendered to None must not send at once."""
        from airflow_provider_braze.exceptions import BrazeValidationError

        prepared = self._prepare()
        if str(prepared.endpoint) != self._endpoint:
            raise BrazeValidationError(
                f"{type(self).__name__} calls {self._endpoint}, but its arguments make a request for "
                f"{prepared.endpoint}; nothing was sent."
            )
        return prepared

    def _prepare(self) -> PreparedSend:
        """The send's request without recipients, checked once, before anything is read or
        sent (the hook's ``prepare_*``); each batch then only adds its recipients."""
        raise NotImplementedError

    def _send_batch(self, batch: list[Any]) -> dict[str, Any]:
        assert self._prepared is not None  # made in _deliver, before the first batch
        return self.hook.send_prepared(self._prepared, batch)

    # ------------------------------------------------------------------ execution

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_braze.delivery import BrazeDeliveryIncompleteError
        from airflow_provider_braze.rehearsal import is_rehearsal

        ti = context["ti"]
        # The summary is pushed on every way a send ends, failures and kills included.
        rehearsing: bool | None = None  # unknown until the run's braze_dry_run is read
        try:
            rehearsing = is_rehearsal(self._dry_run, context)
            outlets = self._braze_outlets()
            if rehearsing:
                summary = self._rehearse(context)
                self._push_summary(ti, summary)
                self._announce(context, outlets, summary)
                return summary.to_json()
            summary = self._deliver(context).but(dry_run=False)
        except BaseException as err:
            delivery = self._delivery
            failed = delivery.result if delivery is not None and delivery.result else None
            self._push_summary(ti, (failed or self._failure_summary(err)).but(dry_run=rehearsing))
            raise
        if not summary.complete:
            text = _incomplete_message(summary, self.at_least_once)
            summary = summary.but(
                error=clip(str(self.hook.redact(f"BrazeDeliveryIncompleteError: {text}")), 1000)
            )
            self._push_summary(ti, summary)
            raise BrazeDeliveryIncompleteError(text, summary=summary.to_json())
        self._push_summary(ti, summary)
        self._announce(context, outlets, summary)
        return summary.to_json()

    def _braze_outlets(self) -> list[Any]:
        """This task's ``braze://`` outlets, checked before anything is sent: each must be this
        send's campaign (an event on another campaign's asset would misinform its consumers)."""
        from airflow_provider_braze.assets import campaign_of, instance_of
        from airflow_provider_braze.exceptions import BrazeValidationError

        found = []
        for outlet in getattr(self, "outlets", None) or []:
            uri = getattr(outlet, "uri", None)
            if not isinstance(uri, str):
                continue
            named = campaign_of(uri)
            if named is None:
                continue
            instance, campaign = named
            if campaign != self.campaign_id:
                raise BrazeValidationError(
                    f"The outlet {uri} is the asset of campaign {campaign!r}, but this task sends "
                    f"for campaign {self.campaign_id!r}: nothing was sent."
                )
            ours = instance_of(self.hook.settings.base_url)
            if instance != ours:
                raise BrazeValidationError(
                    f"The outlet {uri} is on instance {instance!r}, but this task's connection "
                    f"{self.braze_conn_id!r} sends to {ours!r}: nothing was sent."
                )
            found.append(outlet)
        return found

    def _announce(self, context: Context, outlets: list[Any], summary: SendSummary) -> None:
        """Attach the send's summary to each ``braze://`` outlet's asset event."""
        if not outlets:
            return
        extra = summary.event_extra()
        events = context["outlet_events"]
        for outlet in outlets:
            events[outlet].extra.update(extra)
        self.log.info(
            "Asset event%s for %s carr%s the send's summary.",
            "" if len(outlets) == 1 else "s",
            ", ".join(o.uri for o in outlets),
            "ies" if len(outlets) == 1 else "y",
        )

    def _push_summary(self, ti: Any, summary: SendSummary) -> None:
        try:
            ti.xcom_push(key="summary", value=summary.to_json())
        except Exception as push_error:
            self.log.error("Could not push the send's summary to XCom: %s", push_error)

    def _check_options(self) -> None:
        """The operator's own options, checked before anything is read or sent: an option given
        as text (``"false"``) or one that cannot apply is refused, never guessed at or dropped."""
        from airflow_provider_braze.delivery.engine import check_delivery_options
        from airflow_provider_braze.exceptions import BrazeValidationError
        from airflow_provider_braze.recipients import is_path

        for name in ("broadcast", "at_least_once", "allow_duplicate_recipients"):
            check_flag(getattr(self, name), name)
        check_delivery_options(self.concurrency, self.progress_interval, self.max_refused_batches)
        if self.recipients_format is not None and not is_path(self.recipients):
            raise BrazeValidationError(
                "recipients_format applies to a recipient file; the recipients are not a file path."
            )
        retention = self.checkpoint_retention
        if (
            self.checkpoint is None
            and retention is not None
            and retention is not DEFAULT_CHECKPOINT_RETENTION
        ):
            raise BrazeValidationError(
                "checkpoint_retention has nothing to prune with checkpoint=None (nothing is kept)."
            )
        check_broadcast(self.broadcast, self.recipients is not None)

    def _check_real_send_id(self) -> None:
        """A real send never goes out under a rehearsal's placeholder send ID: it would tag real
        messages with an ID Braze never created, and their analytics could not be found."""
        from airflow_provider_braze.exceptions import BrazeValidationError
        from airflow_provider_braze.operators.send_id import REHEARSAL_SEND_ID

        if self.send_id == REHEARSAL_SEND_ID:
            raise BrazeValidationError(
                f"send_id is {REHEARSAL_SEND_ID!r}, the placeholder a rehearsing "
                "CreateSendIdOperator (dry_run=True) hands downstream, but this send is real: nothing "
                "was sent. Rehearse the whole run (braze_dry_run), or let CreateSendIdOperator create "
                "a real send ID."
            )

    def _deliver(self, context: Context) -> SendSummary:
        # The checkpoint first: a first try creates its folder even if it fails on what follows.
        checkpoint = self._checkpoint(context["ti"])
        self._check_options()
        self._check_real_send_id()
        self._prepared = self._checked_prepare()
        retention = retention_of(self.checkpoint_retention)

        audience = self._read_audience(context["ti"])
        with audience:
            if audience.duplicates:
                self.log.warning(
                    "%d recipient entr%s repeat an earlier one (e.g. %s): %s.",
                    audience.duplicates,
                    "y" if audience.duplicates == 1 else "ies",
                    ", ".join(audience.duplicate_examples),
                    "sent as many times as listed (allow_duplicate_recipients=True)"
                    if self.allow_duplicate_recipients
                    else "each recipient is sent once; the summary counts the entries skipped",
                )
            self._delivery = delivery = self._new_delivery(context, audience, checkpoint, retention)
            self.log.info(
                "Sending %s to %s (campaign %r, send ID %r) in batches of %d, %d at a time.",
                self._endpoint,
                "the broadcast audience" if self.broadcast else f"{audience.sent:,} recipients",
                self.campaign_id,
                self.send_id,
                MAX_RECIPIENTS_PER_REQUEST,
                self.concurrency,
            )
            return delivery.run()

    def _send_identity(self) -> dict[str, Any]:
        """What names this send in summaries and checkpoints."""
        return {
            "endpoint": self._endpoint,
            "campaign_id": self.campaign_id,
            "send_id": self.send_id,
            "broadcast": bool(self.broadcast),
        }

    def _read_audience(self, ti: Any) -> Audience:
        """The recipients, read once and checked (or the broadcast's one empty batch)."""
        from airflow_provider_braze.delivery import Audience, read_audience, spool_folder

        if self.broadcast:
            return Audience.broadcast_audience()
        audience = read_audience(
            self.recipients,
            self._recipient_kind,
            file_format=self.recipients_format,
            deduplicate=not self.allow_duplicate_recipients,
            # Named after the task instance: a retry removes what a killed try left there.
            spool_dir=spool_folder(
                str(ti.dag_id), str(ti.task_id), str(ti.run_id), _int_or(getattr(ti, "map_index", -1), -1)
            ),
        )
        repeats = audience.repeats_within_a_batch()
        if repeats:
            audience.close()
            raise _repeats_in_one_request(repeats)
        return audience

    def _new_delivery(
        self, context: Context, audience: Any, checkpoint: Checkpoint, retention: timedelta | None
    ) -> BatchDelivery:
        """The delivery engine for this send: the same for a send and for its rehearsal."""
        from airflow_provider_braze.delivery import BatchDelivery

        return BatchDelivery(
            send_batch=self._send_batch,
            audience=audience,
            checkpoint=checkpoint,
            identity={
                **self._send_identity(),
                "batch_size": MAX_RECIPIENTS_PER_REQUEST,
                "deduplicate": not self.allow_duplicate_recipients,
            },
            log=self.log,
            concurrency=self.concurrency,
            at_least_once=self.at_least_once,
            try_number=_int_or(getattr(context["ti"], "try_number", 1), 1),
            run_after=_run_after(context),
            retention=retention,
            progress_interval=self.progress_interval,
            max_refused_batches=self.max_refused_batches,
            rate_limit_status=self._rate_limit_status,
            redact=_redactor(self.hook),
            excluded=self._excluded(),
        )

    def _excluded(self) -> frozenset[Any]:
        """The identities of ``exclude_recipients``, checked like recipients, each named in the log."""
        from airflow_provider_braze.exceptions import BrazeValidationError
        from airflow_provider_braze.identity import recipient_identity, recipient_key
        from airflow_provider_braze.recipients import iter_recipients

        if self.exclude_recipients is None:
            return frozenset()
        if self.broadcast:
            raise BrazeValidationError("exclude_recipients applies to a list of recipients, not a broadcast.")
        found = iter_recipients(self.exclude_recipients, self._recipient_kind, argument="exclude_recipients")
        distinct = {recipient_identity(r): r for r in found}
        if distinct:
            # Listed, not matched: how many were found in a batch is the summary's ``excluded``.
            self.log.warning(
                "exclude_recipients lists %s (strings are external user IDs), each left out of every "
                "batch still to send: %s. The summary's 'excluded' counts those found in a batch.",
                plural(len(distinct), "recipient", "recipients"),
                ", ".join(recipient_key(r) for r in list(distinct.values())[:20])
                + (", ..." if len(distinct) > 20 else ""),
            )
        return frozenset(distinct)

    def _rehearse(self, context: Context) -> SendSummary:
        """Everything a send does before its first request, then a report instead of sending
        (:func:`~airflow_provider_braze.rehearsal.rehearse_send`)."""
        from airflow_provider_braze.rehearsal import rehearse_send

        checkpoint = self._checkpoint(context["ti"])
        self._check_options()
        prepared = self._checked_prepare()
        retention = retention_of(self.checkpoint_retention)
        return rehearse_send(
            hook=self.hook,
            log=self.log,
            endpoint=self._endpoint,
            broadcast=bool(self.broadcast),
            concurrency=self.concurrency,
            prepared=prepared,
            audience=self._read_audience(context["ti"]),
            checkpoint=checkpoint,
            plan=lambda audience: self._new_delivery(context, audience, checkpoint, retention).plan(),
            identity=self._send_identity(),
            redact=_redactor(self.hook),
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """What the send read and wrote, for OpenLineage (also called when the task fails): the
        recipient files (``recipients``, ``exclude_recipients``) as inputs; once sending started,
        the campaign's ``braze://`` dataset as the output and the send ID in the ``externalQuery``
        run facet. A rehearsal sends nothing, so it has no output; a list of recipients is no
        dataset. None without the OpenLineage provider.

        (When an operator reports no dataset at all, the OpenLineage provider reports the task's
        declared ``inlets``/``outlets`` instead: a rehearsal from a list with a ``braze://``
        outlet shows that outlet, as Airflow records its asset event, marked ``dry_run``.)"""
        from airflow_provider_braze.lineage import campaign_dataset, location_dataset, operator_lineage

        inputs = [location_dataset(self.recipients), location_dataset(self.exclude_recipients)]
        # _delivery is made only by a real send, after every check passed and the recipients were read.
        campaign = (
            campaign_dataset(self.campaign_id, self.hook, self.log) if self._delivery is not None else None
        )
        return operator_lineage(inputs, [campaign], send_id=self.send_id, campaign=campaign)

    def on_kill(self) -> None:
        """Stop dispatching; batches in flight finish and the checkpoint records them."""
        if self._delivery is not None:
            self._delivery.stop()

    def _failure_summary(self, err: BaseException) -> SendSummary:
        """The summary of a send that ended before its delivery started (bad arguments, bad rows)."""
        from airflow_provider_braze.delivery.summary import SendSummary

        return SendSummary.unknown(
            self._send_identity(),
            error=clip(str(_redactor(self.hook)(f"{type(err).__name__}: {err}")), 1000),
            try_number=None,
            checkpoint=None,
        )

    def _checkpoint(self, ti: Any) -> Checkpoint:
        """This task instance's checkpoint. A first try creates a missing local folder before
        anything else (a rehearsal too: on a first try there is nothing earlier to hide), so that
        a retry can tell "no earlier try sent anything" from "the folder is not there"; a retry
        never creates it (it may be unmounted)."""
        from airflow_provider_braze.delivery import Checkpoint, checkpoint_name, task_prefix
        from airflow_provider_braze.delivery.checkpoint import checkpoint_store

        dag_id, task_id = str(ti.dag_id), str(ti.task_id)
        name = checkpoint_name(dag_id, task_id, str(ti.run_id), _int_or(getattr(ti, "map_index", -1), -1))
        store = checkpoint_store(self.checkpoint, self.log)
        if _int_or(getattr(ti, "try_number", 1), 1) <= 1:
            store.create_location()
        return Checkpoint(store, name, prune_prefix=task_prefix(dag_id, task_id))

    def _rate_limit_status(self) -> str:
        rate = self.hook.last_rate_limit
        return rate.describe() if rate is not None else "no headers yet"


def _repeats_in_one_request(repeats: list[tuple[int, Any]]) -> Exception:
    """allow_duplicate_recipients=True with a recipient twice in one request: Braze would deliver
    it once (it dedupes a request's recipients), and the second entry would be lost unreported."""
    from airflow_provider_braze.delivery.audience import BATCH_SIZE
    from airflow_provider_braze.exceptions import BrazeValidationError
    from airflow_provider_braze.identity import recipient_key

    named = ", ".join(
        f"{recipient_key(r)} (entries {i * BATCH_SIZE + 1:,} to {(i + 1) * BATCH_SIZE:,})" for i, r in repeats
    )
    return BrazeValidationError(
        "allow_duplicate_recipients=True, but some recipients are listed twice within one request "
        f"of {BATCH_SIZE} (entries 1 to {BATCH_SIZE}, then {BATCH_SIZE + 1} to {2 * BATCH_SIZE}, and so "
        f"on): {named}. Braze delivers a user listed twice in one request once, so the second entry "
        "would be lost. Order the recipients so that a repeat falls in another request, or send the "
        "repeats in another task. Nothing was sent."
    )


def _require_schedule(schedule: Any) -> None:
    """A schedule operator needs a schedule: None (or a template that rendered to None) would
    otherwise make the request a send now."""
    from airflow_provider_braze.exceptions import BrazeValidationError

    if schedule is None or (isinstance(schedule, str) and schedule.strip() in ("", "None")):
        raise BrazeValidationError(
            f"schedule is required (got {schedule!r}): Braze's schedule endpoints need a "
            "schedule.time, and without one the request would be a send now. Nothing was sent."
        )


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _run_after(context: Any) -> datetime | None:
    """When the DAG run was due (``run_after``, else its logical date), if the context says."""
    dag_run = context.get("dag_run") if hasattr(context, "get") else None
    for name in ("run_after", "logical_date"):
        value = getattr(dag_run, name, None)
        if isinstance(value, datetime):
            return value
    return None


def _redactor(hook: _Hook) -> Callable[[Any], Any]:
    """The hook's key redaction, then Airflow's masker (every secret registered in this process)."""
    from airflow.sdk.log import redact as airflow_redact  # type: ignore[attr-defined]

    def redact(value: Any) -> Any:
        return airflow_redact(hook.redact(value))

    return redact


def _incomplete_message(summary: SendSummary, at_least_once: bool) -> str:
    if summary.get("broadcast"):
        lines = [
            "The broadcast request "
            + (
                "is in doubt: Braze may or may not have processed it."
                if summary["in_doubt_batches"]
                else "was not sent."
            )
        ]
    else:
        lines = [
            f"{summary['accepted']} recipients accepted by Braze, but {summary['in_doubt']} (in "
            f"{plural(summary['in_doubt_batches'], 'batch', 'batches')}) are in doubt and "
            f"{summary['not_sent']} (in {plural(summary['not_sent_batches'], 'batch', 'batches')}) were "
            "not sent."
        ]
    if summary.get("stopped_early"):
        lines.append(f"The send stopped early: {summary['stopped_early']}.")
    for record in summary["in_doubt_details"]:
        who = ", ".join(record.get("recipients", [])[:5])
        lines.append(
            f"  in doubt, batch {record['batch']} ({record['count']} recipients: {who}...): "
            f"{record['reason']}"
        )
    for record in summary["not_sent_details"]:
        lines.append(f"  not sent, batch {record['batch']} ({record['count']} recipients): {record['error']}")
    if summary["in_doubt_batches"] > len(summary["in_doubt_details"]):
        lines.append("  (the task log names every recipient in doubt)")
    if summary.get("refused"):
        lines.append(
            "Braze refused some batches (4xx): nothing of them was sent. If some of their "
            "recipients are the cause, leave them out with exclude_recipients (keep recipients "
            "as it is) and clear this task: the rest of those batches is then sent once."
        )
    lines.append(
        "A retry of this task sends the batches that were not sent and skips everything Braze "
        "confirmed. Batches in doubt may or may not have reached the users: they "
        + (
            "were sent again (at_least_once=True) as often as this try allows, and are listed here "
            "because they stayed in doubt."
            if at_least_once
            else "are not resent, so nobody gets the message twice. Check in Braze, then mark the task "
            "successful to accept the loss, or set at_least_once=True to resend them (those Braze did "
            "get would get the message twice)."
        )
    )
    return "\n".join(lines)


class SendMessagesOperator(_BrazeSendOperator):
    """Send an API campaign's message now, tagged with a send ID (``POST /messages/send``).

    .. code-block:: python

        SendMessagesOperator(
            task_id="send",
            campaign_id="{{ params.campaign_id }}",
            send_id=create_send_id.output,
            recipients="s3://my-bucket/audiences/{{ dag_run.run_after | ds }}.csv",
            messages={
                "email": {
                    "app_id": "...",
                    "from": "Newsletter <news@example.com>",
                    "subject": "Hi",
                    "body": "<p>...</p>",
                    "message_variation_id": "{{ params.email_variation_id }}",
                }
            },
        )

    Recipients are external user ID strings or user aliases (``{"alias_name", "alias_label"}``);
    in files, an ``external_user_id`` or ``alias_name`` + ``alias_label`` column (CSV) or such a
    value per line (JSON lines). Returns the delivery summary (see docs/operators/send_messages.md).

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_messages/

    :param messages: The messaging objects by channel (``email``, ``apple_push``, ...), checked
        against Braze's documented required fields before anything is sent (see
        :mod:`airflow_provider_braze.messaging`); with a ``campaign_id``, each needs the
        ``message_variation_id`` it is tracked under. (templated)
    :param segment_id: Optional. Send to this segment (with ``broadcast=True``), or restrict the
        listed recipients to it. (templated)
    :param audience: Optional. A connected audience object. (templated)
    :param recipient_subscription_state: Optional. ``opted_in``, ``subscribed`` or ``all``.
    :param override_frequency_capping: Optional. Ignore frequency capping.

    The other parameters are described on the shared base, ``_BrazeSendOperator``.
    """

    template_fields: Sequence[str] = (
        *_BrazeSendOperator.template_fields,
        "messages",
        "segment_id",
        "audience",
    )
    _recipient_kind = "users"
    _endpoint = str(SEND_MESSAGES)

    def __init__(
        self,
        *,
        messages: dict[str, Any],
        segment_id: str | None = None,
        audience: dict[str, Any] | None = None,
        recipient_subscription_state: str | None = None,
        override_frequency_capping: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.messages = messages
        self.segment_id = segment_id
        self.audience = audience
        self.recipient_subscription_state = recipient_subscription_state
        self.override_frequency_capping = override_frequency_capping

    def _message_arguments(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "segment_id": self.segment_id,
            "audience": self.audience,
            "broadcast": self.broadcast or None,
            "messages": self.messages,
            "recipient_subscription_state": self.recipient_subscription_state,
        }

    def _prepare(self) -> PreparedSend:
        return self.hook.prepare_messages(
            self.campaign_id,
            override_frequency_capping=self.override_frequency_capping,
            **self._message_arguments(),
        )


class SendTriggeredCampaignOperator(_BrazeSendOperator):
    """Trigger an API-triggered campaign now, tagged with a send ID (``POST /campaigns/trigger/send``).

    .. code-block:: python

        SendTriggeredCampaignOperator(
            task_id="trigger",
            campaign_id="{{ params.triggered_campaign_id }}",
            send_id=create_send_id.output,
            recipients=[{"external_user_id": "u1", "trigger_properties": {"coupon": "X1"}}, "u2"],
            trigger_properties={"season": "spring"},
        )

    Recipients are recipient objects with exactly one of ``external_user_id``, ``user_alias`` or
    ``email`` (with ``prioritization``), and optionally their own ``trigger_properties``; a plain
    string means an external user ID. CSV files use the columns ``external_user_id``,
    ``alias_name``/``alias_label``, ``email``, ``prioritization`` (``|``-separated),
    ``trigger_properties`` (JSON), ``trigger_properties.<name>``, ``send_to_existing_only`` and
    ``attributes`` (JSON). Returns the delivery summary (see docs/operators/send_messages.md).

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_campaigns/

    :param trigger_properties: Optional. Personalization for every recipient. (templated)
    :param audience: Optional. A connected audience object, with ``broadcast=True``. (templated)
    :param attachments: Optional. Email attachments: ``[{"file_name", "url"}]``.

    The other parameters are described on the shared base, ``_BrazeSendOperator``.
    """

    template_fields: Sequence[str] = (*_BrazeSendOperator.template_fields, "trigger_properties", "audience")
    _recipient_kind = "recipients"
    _endpoint = str(SEND_TRIGGERED_CAMPAIGN)

    def __init__(
        self,
        *,
        campaign_id: str,
        trigger_properties: dict[str, Any] | None = None,
        audience: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(campaign_id=campaign_id, **kwargs)
        self.trigger_properties = trigger_properties
        self.audience = audience
        self.attachments = attachments

    def _trigger_arguments(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "trigger_properties": self.trigger_properties,
            "broadcast": self.broadcast or None,
            "audience": self.audience,
        }

    def _prepare(self) -> PreparedSend:
        return self.hook.prepare_triggered_campaign(
            self.campaign_id or "", attachments=self.attachments, **self._trigger_arguments()
        )


class ScheduleMessagesOperator(SendMessagesOperator):
    """Schedule an API campaign's message, tagged with a send ID (``POST /messages/schedule/create``).

    Takes the arguments of :class:`SendMessagesOperator`, except that the frequency flag is
    ``override_messaging_limits`` (as in Braze's API), plus ``schedule``. Each batch of up to 50
    recipients becomes one schedule; the summary lists the ``schedule_ids`` (bounded).

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/schedule_messages/post_schedule_messages/

    :param schedule: ``{"time": ..., "in_local_time": bool, "at_optimal_time": bool}``, or just the
        time: an ISO-8601 string (UTC when it has no offset) or a timezone-aware datetime. With
        ``in_local_time`` or ``at_optimal_time`` the time is each user's wall clock and must have no
        zone (``"2026-12-01T09:00:00"`` or a naive datetime). (templated)
    :param override_messaging_limits: Optional. Ignore global rate limits for campaigns.
    """

    template_fields: Sequence[str] = (*SendMessagesOperator.template_fields, "schedule")
    _endpoint = str(SCHEDULE_MESSAGES)

    def __init__(
        self, *, schedule: Any, override_messaging_limits: bool | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("override_frequency_capping") is not None:
            # Braze's /messages/schedule/create has no such field: refused, never dropped.
            from airflow_provider_braze.exceptions import BrazeValidationError

            raise BrazeValidationError(
                "ScheduleMessagesOperator takes override_messaging_limits (Braze's name for it on "
                "/messages/schedule/create), not override_frequency_capping."
            )
        super().__init__(**kwargs)
        self.schedule = schedule
        self.override_messaging_limits = override_messaging_limits

    def _prepare(self) -> PreparedSend:
        _require_schedule(self.schedule)
        return self.hook.prepare_messages(
            self.campaign_id,
            schedule=self.schedule,
            override_messaging_limits=self.override_messaging_limits,
            **self._message_arguments(),
        )


class ScheduleTriggeredCampaignOperator(SendTriggeredCampaignOperator):
    """Schedule an API-triggered campaign, tagged with a send ID
    (``POST /campaigns/trigger/schedule/create``).

    Takes the arguments of :class:`SendTriggeredCampaignOperator` (without ``attachments``) plus
    ``schedule`` (see :class:`ScheduleMessagesOperator`). Each batch becomes one schedule.

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/schedule_messages/post_schedule_triggered_campaigns/
    """

    template_fields: Sequence[str] = (*SendTriggeredCampaignOperator.template_fields, "schedule")
    _endpoint = str(SCHEDULE_TRIGGERED_CAMPAIGN)

    def __init__(self, *, schedule: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schedule = schedule

    def _prepare(self) -> PreparedSend:
        _require_schedule(self.schedule)
        return self.hook.prepare_triggered_campaign(
            self.campaign_id or "",
            schedule=self.schedule,
            attachments=self.attachments,
            **self._trigger_arguments(),
        )
