"""CreateSendIdOperator: create a Braze send ID and hand it to downstream tasks."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_braze.delivery.checkpoint import DEFAULT_RETENTION, retention_of
from airflow_provider_braze.exceptions import BrazeValidationError
from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.validation import validate_campaign_id, validate_send_id

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from airflow.sdk import Context

    from airflow_provider_braze.exceptions import BrazeAPIError
    from airflow_provider_braze.lineage import Lineage


#: What a rehearsal hands downstream when Braze would have generated the send ID.
REHEARSAL_SEND_ID = "dry-run-send-id"


class CreateSendIdOperator(BaseOperator):
    """Create a Braze send identifier for a campaign (``POST /sends/id/create``).

    The send ID Braze answers with is the task's return value (so ``op.output`` works) and is
    also pushed to XCom under the key ``send_id``; the campaign ID is pushed under
    ``campaign_id``. Downstream tasks send messages tagged with it and later fetch that send's
    analytics.

    Braze allows 100 custom send IDs per workspace per day; the task logs how many are left.
    When the quota is used up the task fails at once, saying when it resets.

    A retry never asks again for an ID the task knows it created: what the task asked for and
    what Braze answered are remembered in ``checkpoint`` (an Airflow Variable by default), so a
    retry after a success returns the ID without calling Braze, and a retry after a definite
    refusal (a 4xx) asks afresh. Only after a lost answer (Braze may or may not have created it)
    does the retry ask again for the same ``send_id``: Braze offers no way to look a send ID up,
    and whether re-creating one is free, counts toward the daily quota once more, or is refused
    is undocumented, so each lost answer may cost one more unit of the quota.

    If Braze refuses that second request (any 4xx), the task never reads the refusal's words,
    which Braze does not document. The same request was sent before; the send ID is valid (it
    was checked before either request); so if the campaign exists (``GET /campaigns/list``,
    permission ``campaigns.list``) the only refusal left is the one for an ID that exists, and
    the earlier request created it: the task uses it (logged as a warning). If the campaign is
    not in the workspace's list, the earlier request was refused as well and the task fails with
    ``BrazeCheckpointError``; if the list cannot be read, it fails saying how to proceed.
    Without a ``send_id`` (Braze generates one) such a retry cannot know the ID and fails with a
    clear error: give one.

    .. code-block:: python

        create_send_id = CreateSendIdOperator(
            task_id="create_send_id",
            campaign_id="{{ params.campaign_id }}",
            # newsletter-20261203-3f9a1c2b: unique to the DAG run, with or without a logical
            # date (the DAG has user_defined_macros=airflow_provider_braze.send_ids.MACROS)
            send_id="{{ run_send_id('newsletter', dag_run) }}",
        )

    .. seealso::
        https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_create_send_ids/

    :param campaign_id: The API identifier of the campaign. (templated)
    :param send_id: Optional. The send ID to create: ASCII, at most 64 characters. Braze
        generates one when omitted; giving one makes a retry after a timeout safe. (templated)
    :param checkpoint: Where what was created is remembered across task retries: ``"variable"``
        (the default), an absolute folder or ObjectStoragePath URL, or None (nothing is).
    :param checkpoint_retention: How long the record of a created send ID is kept (a timedelta,
        or seconds; default 30 days; None keeps them forever): when this task creates one, the
        records of its other runs whose send ID was created longer ago are deleted. A record of a
        request whose answer was lost is kept until a retry settles it.
    :param dry_run: Rehearse: check the arguments and return the placeholder
        ``dry-run-send-id`` (which a real send refuses) without calling Braze or using the daily
        quota. A run whose ``braze_dry_run`` param (or conf key) is true rehearses too.
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = ("campaign_id", "send_id")
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str | None = None,
        checkpoint: Any = "variable",
        checkpoint_retention: timedelta | float | None = DEFAULT_RETENTION,
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
        self.checkpoint = checkpoint
        self.checkpoint_retention = checkpoint_retention
        self.braze_conn_id = braze_conn_id
        #: (campaign ID, send ID) once a real run has the send ID, for OpenLineage.
        self._created: tuple[str, str] | None = None

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    def execute(self, context: Context) -> str:
        # Validate the rendered values before the connection is even read.
        campaign_id = validate_campaign_id(self.campaign_id)
        send_id = validate_send_id(self.send_id)
        ti = context["ti"]
        from airflow_provider_braze.rehearsal import is_rehearsal

        if is_rehearsal(self._dry_run, context):
            # Always the placeholder, even when a send_id is given: a real send downstream
            # refuses it, so a rehearsal can never tag real messages with an ID never created.
            self.log.info(
                "Rehearsal (dry run): send ID %s for campaign %r is not created; downstream tasks get "
                "the placeholder %r.",
                repr(send_id) if send_id else "(generated by Braze)",
                campaign_id,
                REHEARSAL_SEND_ID,
            )
            ti.xcom_push(key="send_id", value=REHEARSAL_SEND_ID)
            ti.xcom_push(key="campaign_id", value=campaign_id)
            return REHEARSAL_SEND_ID
        memory = _SendIdMemory(ti, self.checkpoint, self.log)
        record = memory.read()
        same_request = (
            record is not None
            and record.get("campaign_id") == campaign_id
            and record.get("requested") == send_id
        )
        if same_request and record is not None and record.get("state") == "created":
            created = str(record["send_id"])
            self.log.info(
                "Braze send ID %r was created by an earlier try (%s); it is not created again.",
                created,
                memory.describe(),
            )
        else:
            if same_request and record is not None and record.get("state") == "attempted":
                # An earlier try asked and its answer was lost (or it stopped before knowing).
                created = self._create_after_unknown_outcome(campaign_id, send_id, memory)
            else:
                memory.write(campaign_id, send_id, state="attempted")
                created = self._create(campaign_id, send_id, memory)
            memory.write(campaign_id, send_id, state="created", created=created)
            retention = retention_of(self.checkpoint_retention)
            if retention is not None:
                memory.prune(retention)
            self.log.info("Created Braze send ID %r for campaign %r.", created, campaign_id)
            quota = self.hook.last_rate_limit
            if quota is not None:
                self.log.info("Daily send ID quota: %s.", quota.describe())
        self._created = (campaign_id, created)
        ti.xcom_push(key="send_id", value=created)
        ti.xcom_push(key="campaign_id", value=campaign_id)
        return created

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """For OpenLineage: the campaign's ``braze://`` dataset as the output (the send ID is
        created in it, and the sends and analytics tagged with it are the campaign's), and the
        send ID in the ``externalQuery`` run facet. A rehearsal creates nothing and reports
        nothing. None without the OpenLineage provider."""
        from airflow_provider_braze.lineage import campaign_dataset, operator_lineage

        if self._created is None:
            return operator_lineage()
        campaign_id, send_id = self._created
        campaign = campaign_dataset(campaign_id, self.hook, self.log)
        return operator_lineage(outputs=[campaign], send_id=send_id, campaign=campaign)

    def _create(self, campaign_id: str, send_id: str | None, memory: _SendIdMemory) -> str:
        """Ask Braze for the send ID; a definite refusal is remembered as such, so the next try
        asks afresh instead of taking it for a lost answer."""
        from airflow_provider_braze.exceptions import BrazeError

        try:
            return self.hook.create_send_id(campaign_id, send_id)
        except BrazeError as err:
            if not _may_have_created(err):
                memory.write(campaign_id, send_id, state="refused")
            raise

    def _create_after_unknown_outcome(
        self, campaign_id: str, send_id: str | None, memory: _SendIdMemory
    ) -> str:
        from airflow_provider_braze.exceptions import BrazeBadRequestError, BrazeCheckpointError

        if send_id is None:
            raise BrazeCheckpointError(
                f"An earlier try asked Braze to generate a send ID for campaign {campaign_id!r} and "
                "its answer was lost: Braze may have created one (it counts toward the daily quota), "
                "and there is no way to learn which. Nothing was created again. Give a send_id so "
                f"that retries are safe, or delete {memory.describe()} to ask for a new one."
            )
        try:
            return self.hook.create_send_id(campaign_id, send_id)
        except BrazeBadRequestError as err:
            # Braze documents no answer, and no wording, for re-creating an existing ID: the
            # refusal is judged by what the task knows, never by its words.
            refusal = err
        return self._settle_refusal(campaign_id, send_id, refusal, memory)

    def _settle_refusal(
        self, campaign_id: str, send_id: str, refusal: BrazeAPIError, memory: _SendIdMemory
    ) -> str:
        """Braze refused (4xx) a request whose identical twin, sent by an earlier try, was in
        doubt. Braze refuses a request that is wrong, and may refuse an ID that exists.
        The send ID passed the documented rules (ASCII, at most 64 characters) before either was
        sent, so what is left to check is the campaign: if the workspace has it, the refusal is
        for an ID that exists, created by the earlier request."""
        from airflow_provider_braze.exceptions import (
            BrazeAuthError,
            BrazeCheckpointError,
            BrazeUnexpectedResponseError,
        )

        lost = (
            f"An earlier try asked Braze to create send ID {send_id!r} for campaign {campaign_id!r} "
            f"and its answer was lost; asked again, Braze refused: {refusal}"
        )
        try:
            exists = self.hook.campaign_exists(campaign_id)
        except (BrazeAuthError, BrazeUnexpectedResponseError) as err:
            raise BrazeCheckpointError(
                f"{lost} Braze documents no wording that tells a send ID that exists from a request "
                "that is wrong, so this task checks that the campaign exists (GET /campaigns/list), "
                f"and it could not: {err} Give the API key the campaigns.list permission and retry "
                "this task, or give a new send_id."
            ) from refusal
        if not exists:
            memory.write(campaign_id, send_id, state="refused")
            raise BrazeCheckpointError(
                f"{lost} Campaign {campaign_id!r} is not in the workspace's campaign list, so the "
                "earlier request was refused too and the send ID was not created: it is not used. "
                "Fix campaign_id, then retry."
            ) from refusal
        self.log.warning(
            "Braze refused to create send ID %r again (%s). An earlier try's identical request was in "
            "doubt; the send ID is valid and campaign %r exists, so Braze refused an ID that "
            "exists: the earlier request created it. Using it.",
            send_id,
            refusal,
            campaign_id,
        )
        return send_id


def _may_have_created(err: Exception) -> bool:
    """Whether Braze may have created the send ID although the call failed: its answer was lost
    or unreadable, a server error, or a success without the ID. A 4xx answer is a definite no;
    so are a connection that never carried the request and an error raised before any request
    (a missing connection, an invalid argument)."""
    from airflow_provider_braze.exceptions import BrazeAmbiguousRequestError, BrazeAPIError, BrazeServerError

    if isinstance(err, (BrazeAmbiguousRequestError, BrazeServerError)):
        return True
    if isinstance(err, BrazeAPIError):
        return not (err.status_code is not None and 400 <= err.status_code < 500)
    return False


class _SendIdMemory:
    """What one task instance asked Braze for and what it created, across its tries."""

    def __init__(self, ti: Any, location: Any, log: Any) -> None:
        from airflow_provider_braze.delivery.checkpoint import checkpoint_name, checkpoint_store, task_prefix

        self.log = log
        self.prefix = task_prefix(str(ti.dag_id), str(ti.task_id), kind="send_id")
        map_index = getattr(ti, "map_index", -1)
        self.name = checkpoint_name(
            str(ti.dag_id),
            str(ti.task_id),
            str(ti.run_id),
            map_index if isinstance(map_index, int) else -1,
            kind="send_id",
        )
        self.store = checkpoint_store(location, log)
        self._key: str | None = None

    def describe(self) -> str:
        return self.store.describe(self._key) if self._key else f"{self.store.describe()} ({self.name})"

    def read(self) -> dict[str, Any] | None:
        keys = self.store.keys(f"{self.name}__")  # a listing fails loudly; a read may not
        if not keys:
            return None
        self._key = sorted(keys)[-1]
        return self.store.read(self._key)

    def write(
        self, campaign_id: str, requested: str | None, *, state: str, created: str | None = None
    ) -> None:
        from airflow_provider_braze.delivery.checkpoint import utcnow

        now = utcnow()
        if self._key is None:
            self._key = f"{self.name}__{now:%Y%m%d}"
        self.store.write(
            self._key,
            {
                "format": 1,
                "kind": "send_id",
                "campaign_id": campaign_id,
                "requested": requested,
                "state": state,
                "send_id": created,
                "at": now.isoformat(timespec="seconds"),
            },
        )

    def prune(self, retention: timedelta, *, limit: int = 100) -> None:
        """Delete the records of this task's other runs whose send ID was created more than
        ``retention`` ago (a request with a lost answer is kept: a retry still needs it). Never
        fails the task: what cannot be pruned now is pruned by a later run."""
        from airflow_provider_braze.delivery.checkpoint import utcnow
        from airflow_provider_braze.exceptions import BrazeCheckpointError

        cutoff = (utcnow() - retention).isoformat(timespec="seconds")
        pruned = 0
        try:
            for key in self.store.keys(self.prefix):
                if key.startswith(f"{self.name}__") or key[-8:] >= cutoff[:10].replace("-", ""):
                    continue  # this run's, or written within the retention (the key has its first day)
                record = self.store.read(key)
                # A lost answer is kept (a retry settles it); a creation or a refusal is done with.
                settled = record is not None and record.get("state") in ("created", "refused")
                if not settled or record is None or str(record.get("at")) >= cutoff:
                    continue
                self.store.delete(key)
                pruned += 1
                if pruned >= limit:
                    break
        except BrazeCheckpointError as err:
            self.log.warning("Could not prune old send ID records: %s", err)
            return
        if pruned:
            self.log.info(
                "Pruned the send ID records of %d earlier run%s of this task, created more than %d days ago.",
                pruned,
                "" if pruned == 1 else "s",
                retention.days,
            )
