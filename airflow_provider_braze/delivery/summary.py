"""The summary of a send: the only home of its keys.

Every way a send ends produces one :class:`SendSummary`: the delivery engine's own (complete or
not), a try that stopped before it knew anything (the counts are None), a rehearsal, a send
already complete. The operators push it to XCom (key ``summary``) as :meth:`SendSummary.to_json`,
the failure carries it (``BrazeDeliveryIncompleteError.summary``) and a ``braze://`` outlet's
asset event carries part of it (:data:`EVENT_KEYS`). It reads like the dict it becomes
(``summary["accepted"]``), but a key that is not a field cannot be added.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

#: The keys whose values are counts or lists of what was sent: None when a try ended before it
#: could know them.
COUNT_KEYS = (
    "recipients",
    "recipients_read",
    "duplicates",
    "duplicates_skipped",
    "batches",
    "accepted",
    "accepted_batches",
    "excluded",
    "in_doubt",
    "in_doubt_batches",
    "in_doubt_details",
    "in_doubt_ranges",
    "not_sent",
    "refused",
    "not_sent_details",
    "not_sent_ranges",
    "not_sent_batches",
    "ranges_truncated",
    "resent_in_doubt",
    "skipped_already_sent",
    "non_fatal_errors",
    "batches_with_non_fatal_errors",
    "dispatch_ids",
    "dispatch_count",
    "schedule_ids",
    "tries",
)

#: The keys a send's asset event carries: small, and what a downstream DAG needs.
EVENT_KEYS = (
    "endpoint",
    "campaign_id",
    "send_id",
    "broadcast",
    "complete",
    "dry_run",
    "recipients",
    "accepted",
    "in_doubt",
    "not_sent",
    "dispatch_count",
    "schedule_ids",
    "finished_at",
)


def _now() -> str:
    from airflow_provider_braze.delivery.checkpoint import utcnow

    return utcnow().isoformat(timespec="seconds")


@dataclass(frozen=True)
class SendSummary(Mapping[str, Any]):
    """What one try of a send did (see the module docstring). Counts are None when unknown."""

    # What the send is.
    endpoint: str | None = None
    campaign_id: str | None = None
    send_id: str | None = None
    broadcast: bool = False
    #: Every batch confirmed by Braze (by this try or earlier ones).
    complete: bool = False
    # Counts and lists (COUNT_KEYS).
    recipients: int | None = None
    recipients_read: int | None = None
    duplicates: int | None = None
    duplicates_skipped: int | None = None
    batches: int | None = None
    accepted: int | None = None
    accepted_batches: int | None = None
    excluded: int | None = None
    in_doubt: int | None = None
    in_doubt_batches: int | None = None
    in_doubt_details: list[dict[str, Any]] | None = None
    in_doubt_ranges: list[list[int]] | None = None
    not_sent: int | None = None
    refused: int | None = None
    not_sent_details: list[dict[str, Any]] | None = None
    not_sent_ranges: list[list[int]] | None = None
    not_sent_batches: int | None = None
    ranges_truncated: bool | None = None
    resent_in_doubt: int | None = None
    skipped_already_sent: int | None = None
    non_fatal_errors: list[Any] | None = None
    batches_with_non_fatal_errors: int | None = None
    dispatch_ids: list[str] | None = None
    dispatch_count: int | None = None
    schedule_ids: list[str] | None = None
    tries: int | None = None
    # How it ended.
    stopped_early: str | None = None
    error: str | None = None
    try_number: int | None = None
    checkpoint: str | None = None
    #: When this try stopped sending: a send's time for SendAnalyticsSensor(sent_at=...).
    finished_at: str = field(default_factory=_now)
    #: The send had completed in an earlier try (or run of this task instance): nothing was sent.
    already_complete: bool = False
    #: A rehearsal (True), a real send (False), or not known when it failed (None).
    dry_run: bool | None = None
    # A rehearsal's findings (None for a real send).
    batches_to_send: int | None = None
    recipients_to_send: int | None = None
    estimated_seconds: float | None = None
    rate_limit: str | None = None
    first_request: Any = None

    # ------------------------------------------------------------------ reading like a dict

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    # ------------------------------------------------------------------ building

    def but(self, **changes: Any) -> SendSummary:
        """A copy with these fields changed (an unknown one is an error)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """As pushed to XCom."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SendSummary:
        """A summary kept in a done record (keys this version does not know are left out)."""
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    @classmethod
    def unknown(
        cls, identity: Mapping[str, Any], *, error: str | None, try_number: int | None, checkpoint: str | None
    ) -> SendSummary:
        """A try that ended before it could know what was sent: the counts are None."""
        return cls(
            **{k: v for k, v in identity.items() if k in _IDENTITY},
            error=error,
            try_number=try_number,
            checkpoint=checkpoint,
        )

    def nothing_sent(self) -> SendSummary:
        """A copy that says nothing was sent (a rehearsal, a send already complete): what was
        sent is known, and zero; its lists are empty."""
        return replace(self, **_NOTHING_SENT)

    def event_extra(self) -> dict[str, Any]:
        """What a ``braze://`` outlet's asset event carries."""
        return {key: getattr(self, key) for key in EVENT_KEYS}


_FIELDS = tuple(f.name for f in fields(SendSummary))
_IDENTITY = ("endpoint", "campaign_id", "send_id", "broadcast")
#: What was sent, when nothing was.
_NOTHING_SENT: dict[str, Any] = {
    **{
        key: 0
        for key in (
            "accepted",
            "accepted_batches",
            "in_doubt",
            "in_doubt_batches",
            "not_sent",
            "not_sent_batches",
            "refused",
            "dispatch_count",
        )
    },
    **{
        key: []
        for key in (
            "in_doubt_details",
            "in_doubt_ranges",
            "not_sent_details",
            "not_sent_ranges",
            "dispatch_ids",
            "schedule_ids",
        )
    },
}
