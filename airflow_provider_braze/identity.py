"""Who a recipient is: the one definition of a recipient's identity, shared by the client (the
duplicate pass, ``exclude_recipients``, the experiment split) and the sandbox's ledger. It holds
no checks: the sandbox stands in for Braze and must not load the client's."""

from __future__ import annotations

import string
from typing import Any

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

#: Identities are text, and a lone surrogate is never in a recipient (:func:`iter_recipients`
#: refuses it, and the spool is strictly UTF-8): so it marks an alias, an email or a Braze ID
#: apart from an external user ID, one to one.
IDENTITY_MARK = "\ud800"


def recipient_identity(recipient: Any) -> str:
    """Who a recipient is: the one definition, used wherever two entries must be told apart or
    found the same (the duplicate pass, ``exclude_recipients``, the experiment split, the
    sandbox's ledger). Two entries with the same identity are the same person, whatever else
    they carry (such as different ``trigger_properties``).

    An external user ID is itself; an alias, an email or a Braze ID starts with
    :data:`IDENTITY_MARK` and a letter. Email addresses are compared without regard to ASCII case
    or surrounding spaces: one inbox, however its address is capitalised. Only A-Z: Unicode case
    folding would also merge addresses that are not the same (``straße`` and ``strasse``, a Kelvin
    sign and ``k``), and a person merged away is never sent to.
    """
    if type(recipient) is str:
        return recipient
    if "user_alias" in recipient:
        alias = recipient["user_alias"]
    elif "alias_name" in recipient:
        alias = recipient
    elif "email" in recipient:
        return f"{IDENTITY_MARK}e{str(recipient['email']).strip().translate(_ASCII_LOWER)}"
    elif "braze_id" in recipient:
        return f"{IDENTITY_MARK}b{recipient['braze_id']}"
    else:
        return str(recipient["external_user_id"])
    return f"{IDENTITY_MARK}a{alias['alias_label']}{IDENTITY_MARK}{alias['alias_name']}"


def recipient_key(recipient: Any) -> str:
    """:func:`recipient_identity` written to be read, for logs, reports and the sandbox's ledger:
    ``u1``, ``alias:<label>:<name>``, ``email:<address, lower case>``, ``braze_id:<id>``."""
    identity = recipient_identity(recipient)
    if not identity.startswith(IDENTITY_MARK):
        return identity
    kind, rest = identity[1], identity[2:]
    if kind == "a":
        label, name = rest.split(IDENTITY_MARK, 1)
        return f"alias:{label}:{name}"
    return f"{'email' if kind == 'e' else 'braze_id'}:{rest}"


__all__ = ["IDENTITY_MARK", "recipient_identity", "recipient_key"]
