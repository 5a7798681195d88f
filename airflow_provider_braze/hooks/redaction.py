"""Keeping the REST API key out of everything shown or kept: the auth header that never shows it,
and redaction of text (in any letter case, with or without its hyphens, percent-encoded once or
twice, as HTML character references or JSON escapes, in hex, or base64-encoded, line-wrapped or
not)."""

from __future__ import annotations

import re
import string
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


# A form of the secret: its pattern, and a pattern for the one character a match starts with.
_Form = tuple[str, str]


def secret_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` as text could carry it: character by character, in any letter case and
    each character also percent-encoded, as an HTML numeric character reference or as JSON
    ``\\uXXXX`` escapes (:func:`_text_form`); as hex of its UTF-8 bytes (:func:`_hex_form`); and
    the part of its base64 encodings that the secret determines, line-wrapped or not
    (:func:`_base64_form`).

    Every form is a fixed sequence whose only repetitions (leading zeros, spaces at a line break)
    each stand between two fixed characters, so matching stays linear in the text's length: it
    runs on every line a send keeps or logs. The lookahead on the first character lets most
    positions fail at once (Python's ``re`` cannot skip ahead through an alternation)."""
    forms = [_text_form(secret), _hex_form(secret)]
    forms += filter(None, (_base64_form(secret, shift) for shift in range(3)))
    starts = "|".join(start for _, start in forms)
    return re.compile(f"(?=(?:{starts}))(?:{'|'.join(pattern for pattern, _ in forms)})")


def _text_form(secret: str) -> _Form:
    """The secret character by character (:func:`_character`), in any letter case."""
    first = f"(?i:[{re.escape(secret[0])}%&\\\\])" if secret else ""
    return "(?i:" + "".join(_character(char) for char in secret) + ")", first


def _character(char: str) -> str:
    """One character of the secret: itself, percent-encoded, an HTML decimal or hex character
    reference (any leading zeros; ``;`` optional, as HTML parsers read it without one, and even
    where HTML would read a next digit into the number: over-redacting is the safe side), or its
    JSON ``\\u`` escapes (two for a character beyond U+FFFF). Case is left to :func:`_text_form`."""
    code = ord(char)
    # Percent-encoded once, or twice (``%252D``: a URL carried inside another URL's query).
    percent = "".join(f"%(?:25)?{byte:02X}" for byte in char.encode("utf-8"))
    html = f"&#(?:0*{code}|x0*{code:X});?"
    utf16 = char.encode("utf-16-be")
    json = "".join(f"\\\\u{int.from_bytes(utf16[i : i + 2], 'big'):04X}" for i in range(0, len(utf16), 2))
    form = f"(?:{re.escape(char)}|{percent}|{html}|{json})"
    # A UUID key is often shown without its hyphens (or with HTML's named hyphen).
    return f"(?:{form}|&(?:hyphen|dash);)?" if char == "-" else form


def _hex_form(secret: str) -> _Form:
    """The secret's UTF-8 bytes in hex, any letter case, each byte optionally ``\\x`` or
    ``0x``-prefixed and separated by nothing, ``:``, ``-``, a space, ``,`` or ``, `` (as dumps and
    byte-array literals write them)."""
    digits = [f"{byte:02X}" for byte in secret.encode("utf-8")]
    pattern = "(?:, |[ :,-])?".join(f"(?:\\\\x|0x)?{pair}" for pair in digits)
    return f"(?i:{pattern})", f"(?i:[\\\\0{digits[0][0]}])" if digits else ""


_BASE64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
# Between two base64 characters: spaces, and at most one line break (LF, CRLF, or as a repr or
# JSON escapes them) with indentation after it: MIME wraps at 76 columns, PEM at 64.
_BASE64_GAP = r"[ \t]*(?:(?:\r?\n|\\r\\n|\\n)[ \t]*)?"
# Shorter than this (72 bits), what the secret alone determines could be other text's.
_MIN_BASE64_CORE = 12


def _base64_form(secret: str, shift: int) -> _Form | None:
    """The secret's base64 characters when it starts ``shift`` bytes past a 3-byte boundary (as in
    a ``Basic`` header or a re-encoded ``Bearer`` one), standard or URL-safe, line-wrapped or not:
    every character it wholly determines, plus the one each side that it partly determines (a
    class of the characters the neighbouring bytes allow). ``None`` when fewer than
    ``_MIN_BASE64_CORE`` characters are wholly determined."""
    bits = "?" * 8 * shift + "".join(f"{byte:08b}" for byte in secret.encode("utf-8"))
    bits += "?" * (-len(bits) % 6)  # the bits after it belong to whatever follows
    sextets = [bits[i : i + 6] for i in range(0, len(bits), 6) if bits[i : i + 6] != "??????"]
    choices = [_base64_choices(sextet) for sextet in sextets]
    partial_first = bool(choices) and len(choices[0]) > 1
    partial_last = bool(choices) and len(choices[-1]) > 1
    core = choices[int(partial_first) : len(choices) - int(partial_last)]
    if len(core) < _MIN_BASE64_CORE:
        return None
    pattern = _BASE64_GAP.join(_base64_character(chars) for chars in core)
    if partial_first:
        pattern = f"(?:{_base64_character(choices[0])}{_BASE64_GAP})?{pattern}"
    if partial_last:
        pattern = f"{pattern}(?:{_BASE64_GAP}{_base64_character(choices[-1])})?"
    starts = _base64_character(choices[0] + core[0])
    return pattern, starts


def _base64_choices(sextet: str) -> str:
    """The base64 characters whose six bits agree with ``sextet`` (``?`` for a bit not known)."""
    return "".join(
        char
        for value, char in enumerate(_BASE64_ALPHABET)
        if all(known in ("?", bit) for known, bit in zip(sextet, f"{value:06b}", strict=True))
    )


def _base64_character(chars: str) -> str:
    """One base64 position that may hold any of ``chars``: in the standard or URL-safe alphabet,
    ``+`` and ``/`` also percent-encoded (base64 in a URL)."""
    variants = set(chars)
    percent = []
    if "+" in variants:
        variants.add("-")
        percent.append("%2[Bb]")
    if "/" in variants:
        variants.add("_")
        percent.append("%2[Ff]")
    one = "[" + "".join(map(re.escape, sorted(variants))) + "]"
    return f"(?:{'|'.join([one, *percent])})" if percent else one


def redacted(value: Any, redact: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {redacted(k, redact): redacted(v, redact) for k, v in value.items()}
    return value
