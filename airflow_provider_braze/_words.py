"""Small helpers for log and error text."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``; ``many`` for irregular plurals (``1 day``, ``3 days``)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def clip(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, cut between words with an ellipsis, never mid-word."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"
