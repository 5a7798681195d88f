"""Checks on user input that run before any request is sent.

Operators call these in ``execute`` (after templates are rendered) and the hook calls them
again in its public verbs, so direct hook users get the same errors.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_braze.exceptions import BrazeValidationError

#: Braze's documented limit on a send identifier's length.
SEND_ID_MAX_LENGTH = 64


def validate_campaign_id(value: Any, *, argument: str = "campaign_id") -> str:
    """Return ``value`` if it is a usable Braze campaign ID, else raise BrazeValidationError."""
    if not isinstance(value, str):
        raise BrazeValidationError(
            f"{argument} must be a string (a Braze campaign API identifier), got {type(value).__name__}."
        )
    if not value.strip():
        raise BrazeValidationError(f"{argument} is empty; pass the API identifier of a Braze campaign.")
    if value != value.strip():
        raise BrazeValidationError(f"{argument} {value!r} has leading or trailing whitespace.")
    return value


def validate_send_id(value: Any) -> str | None:
    """Return ``value`` if it is None or a valid send identifier, else raise BrazeValidationError.

    Braze requires send IDs to be ASCII and at most 64 characters long; we also refuse control
    characters and surrounding whitespace, which can only be mistakes (e.g. a stray newline from
    a rendered template).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise BrazeValidationError(f"send_id must be a string or None, got {type(value).__name__}.")
    if value == "":
        raise BrazeValidationError("send_id is an empty string; pass None to let Braze generate one.")
    if not value.isascii():
        bad = next(ch for ch in value if not ch.isascii())
        raise BrazeValidationError(
            f"send_id {value!r} contains the non-ASCII character {bad!r}; Braze send IDs must be ASCII."
        )
    if len(value) > SEND_ID_MAX_LENGTH:
        raise BrazeValidationError(
            f"send_id is {len(value)} characters long; Braze allows at most {SEND_ID_MAX_LENGTH}."
        )
    if value != value.strip():
        raise BrazeValidationError(f"send_id {value!r} has leading or trailing whitespace.")
    if not value.isprintable():
        raise BrazeValidationError(f"send_id {value!r} contains a control character.")
    return value
