"""Keeping the REST API key out of everything shown or kept: the auth header that never shows it,
and redaction of text (in any letter case, percent-encoded or base64-encoded)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


class BearerAuth:
    """``Authorization: Bearer <key>`` that never shows the key in its repr."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def secret_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` in any letter case, each character also as its percent-encoding, and
    the part of its base64 encodings (standard or URL-safe, at any alignment, as in a ``Basic``
    or re-encoded ``Bearer`` header) that only the secret determines (base64 keeps its case)."""
    import base64

    plain = "".join(
        f"(?:{re.escape(char)}|{re.escape(''.join(f'%{byte:02X}' for byte in char.encode('utf-8')))})"
        for char in secret
    )
    alternatives = [f"(?i:{plain})"]
    raw = secret.encode("utf-8")
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        core = encoded[(4 * shift + 2) // 3 : len(encoded) - 4]  # drop what neighbours also shape
        if len(core) >= 12:
            alternatives += [re.escape(core), re.escape(core.replace("+", "-").replace("/", "_"))]
    return re.compile("|".join(alternatives))


def redacted(value: Any, redact: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {redacted(k, redact): redacted(v, redact) for k, v in value.items()}
    return value
