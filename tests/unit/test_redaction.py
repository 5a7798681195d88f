"""The API key is redacted in every encoding an answer may echo it in (``secret_pattern``), and
nothing else is touched."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.hooks.redaction import redacted, secret_pattern
from airflow_provider_braze.sandbox import email_message
from tests.conftest import API_KEY, REST_ENDPOINT

if TYPE_CHECKING:
    import requests_mock as rm

UUID_KEY = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"  # what a Braze REST API key looks like
OTHER_UUID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e"  # differs in the last character only
KEYS = [API_KEY, UUID_KEY]


@functools.cache
def _pattern(key: str) -> re.Pattern[str]:
    return secret_pattern(key)


def redact(key: str, text: str) -> str:
    return _pattern(key).sub("***", text)


# ------------------------------------------------------------------ per-character encodings
def percent(char: str, *, lower: bool = False) -> str:
    text = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return text.lower() if lower else text


def html_decimal(char: str, *, zeros: int = 0, semicolon: bool = True) -> str:
    return f"&#{'0' * zeros}{ord(char)}{';' if semicolon else ''}"


def html_hex(char: str, *, x: str = "x", zeros: int = 0, lower: bool = False, semicolon: bool = True) -> str:
    digits = f"{ord(char):X}"
    return f"&#{x}{'0' * zeros}{digits.lower() if lower else digits}{';' if semicolon else ''}"


def json_escape(char: str, *, lower: bool = True) -> str:
    units = char.encode("utf-16-be")
    codes = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    return "".join(f"\\u{code:04x}" if lower else f"\\u{code:04X}" for code in codes)


def hex_bytes(key: str, *, prefix: str = "", separator: str = "", upper: bool = False) -> str:
    pairs = [f"{byte:02X}" if upper else f"{byte:02x}" for byte in key.encode("utf-8")]
    return separator.join(prefix + pair for pair in pairs)


ENCODERS = {
    "literal": lambda c: c,
    "upper": str.upper,
    "percent": percent,
    "percent-lower": functools.partial(percent, lower=True),
    "html-decimal": html_decimal,
    "html-decimal-zeros": functools.partial(html_decimal, zeros=3),
    "html-decimal-no-semicolon": functools.partial(html_decimal, semicolon=False),
    "html-hex": html_hex,
    "html-hex-X": functools.partial(html_hex, x="X"),
    "html-hex-lower-zeros": functools.partial(html_hex, lower=True, zeros=4),
    "html-hex-no-semicolon": functools.partial(html_hex, semicolon=False),
    "json": json_escape,
    "json-upper-hex": functools.partial(json_escape, lower=False),
    # Adversarial pass 2: a URL inside another URL's query, a UUID without its hyphens.
    "percent-twice": lambda c: percent(c).replace("%", "%25"),
    "hyphen-dropped": lambda c: "" if c == "-" else c,
    "hyphen-named": lambda c: "&hyphen;" if c == "-" else c,
}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_each_per_character_encoding_alone_is_redacted(key: str, encoding: str) -> None:
    encoded = "".join(ENCODERS[encoding](char) for char in key)
    assert redact(key, f"key={encoded} end") == "key=*** end"


@pytest.mark.parametrize("key", KEYS)
def test_per_character_encodings_mixed_in_one_key_are_redacted(key: str) -> None:
    names = sorted(ENCODERS)
    for start in range(len(names)):  # every encoding at every position, in turn
        encoded = "".join(ENCODERS[names[(start + i) % len(names)]](char) for i, char in enumerate(key))
        assert redact(key, f"<{encoded}>") == "<***>", encoded


def test_a_reference_without_semicolon_before_a_digit_is_redacted_too() -> None:
    """HTML would read ``&#971`` as one number; the text still carries the rest of the key."""
    encoded = html_decimal("a", semicolon=False) + UUID_KEY[1:]
    assert encoded.startswith("&#971b2c3d4")
    assert redact(UUID_KEY, encoded) == "***"


def test_the_key_inside_html_json_and_prose_is_redacted() -> None:
    html = "".join(html_hex(c) if i % 3 else c for i, c in enumerate(API_KEY))
    escaped = "".join(json_escape(c) if i % 2 else c for i, c in enumerate(API_KEY))
    texts = {
        f'<p title="{html}">Unauthorized: {html}</p>': '<p title="***">Unauthorized: ***</p>',
        f'{{"errors": ["bad key \\"{escaped}\\""]}}': '{"errors": ["bad key \\"***\\""]}',
        f"The header was Bearer {API_KEY.upper()}, refused.": "The header was Bearer ***, refused.",
    }
    for text, expected in texts.items():
        assert redact(API_KEY, text) == expected


def test_a_key_beyond_ascii_in_json_escapes_and_references_is_redacted() -> None:
    key = "clé-😀-0123456789"
    assert redact(key, json.dumps({"k": key})) == '{"k": "***"}'  # ensure_ascii: \u00e9, \ud83d\ude00
    assert redact(key, "".join(html_decimal(c) for c in key)) == "***"
    assert redact(key, "".join(percent(c) for c in key)) == "***"
    assert redact(key, hex_bytes(key, prefix="\\x")) == "***"


# ---------------------------------------------------------------------------------------- hex
HEX_STYLES = [("", ""), ("", ":"), ("", " "), ("", "-"), ("\\x", ""), ("0x", ", "), ("0x", ","), ("0x", " ")]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("prefix", "separator"), HEX_STYLES)
@pytest.mark.parametrize("upper", [False, True])
def test_hex_of_the_key_is_redacted(key: str, prefix: str, separator: str, upper: bool) -> None:
    encoded = hex_bytes(key, prefix=prefix, separator=separator, upper=upper)
    assert redact(key, f"bytes [{encoded}] sent") == "bytes [***] sent"
    assert redact(key, f'{{"dump": "{encoded}"}}') == '{"dump": "***"}'


def test_python_bytes_reprs_of_the_key_are_redacted() -> None:
    """``bytes.hex()``, plain or ``:``-separated, and a bytes repr."""
    raw = API_KEY.encode()
    assert redact(API_KEY, raw.hex()) == "***"
    assert redact(API_KEY, repr(raw)) == "b'***'"
    assert redact(API_KEY, raw.hex(":")) == "***"


# ------------------------------------------------------------------------------------- base64
def key_determined(prefix: bytes, key: str) -> tuple[int, int]:
    """The base64 characters of ``prefix + key + ...`` that carry any of the key's bits."""
    start, end = 8 * len(prefix), 8 * (len(prefix) + len(key.encode()))
    return start // 6, -(-end // 6)


def wrap(text: str, width: int, newline: str, indent: str = "") -> str:
    return (newline + indent).join(text[i : i + width] for i in range(0, len(text), width))


def squeeze(text: str) -> str:
    return re.sub(r"\s", "", text)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("shift", [0, 1, 2])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_line_wrapped_base64_is_redacted_at_every_width_and_alignment(
    key: str, shift: int, urlsafe: bool
) -> None:
    prefix, suffix = b"u:x"[:shift] + b"\xfb\xff\xfe" * 2, b"\xff\xfe?!"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(prefix + key.encode() + suffix).decode()
    first, end = key_determined(prefix, key)
    expected = encoded[:first] + "***" + encoded[end:]
    for width in range(1, 81):
        for newline, indent in (("\n", ""), ("\r\n", ""), ("\r\n", " "), ("\n", "\t"), (" ", "")):
            text = wrap(encoded, width, newline, indent)
            assert squeeze(redact(key, text)) == expected, (width, repr(newline), repr(indent))


@pytest.mark.parametrize("key", KEYS)
def test_mime_and_pem_base64_are_redacted(key: str) -> None:
    for shift in range(3):
        raw = b"user:"[: 3 + shift] + key.encode() + b" trailing bytes"
        first, end = key_determined(raw[: 3 + shift], key)
        flat = base64.b64encode(raw).decode()
        mime = base64.encodebytes(raw).decode()  # 76 columns, "\n"
        pem = "-----BEGIN KEY-----\r\n" + wrap(flat, 64, "\r\n") + "\r\n-----END KEY-----\r\n"
        assert squeeze(redact(key, mime)) == flat[:first] + "***" + flat[end:]
        redacted_pem = squeeze(redact(key, pem))
        assert redacted_pem == f"-----BEGINKEY-----{flat[:first]}***{flat[end:]}-----ENDKEY-----"


def test_base64_in_a_repr_is_redacted() -> None:
    """A repr (or JSON) shows a line break as ``\\n``."""
    raw = b"\xfb" + API_KEY.encode() + b"\xff"
    encoded = base64.b64encode(raw).decode()
    first, end = key_determined(b"\xfb", API_KEY)
    wrapped = repr(wrap(encoded, 8, "\n"))
    assert squeeze(redact(API_KEY, wrapped).replace("\\n", "")) == f"'{encoded[:first]}***{encoded[end:]}'"


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_base64_with_percent_encoded_plus_and_slash_is_redacted(shift: int) -> None:
    """Standard base64 in a URL has ``+`` and ``/`` percent-encoded (this key's base64 has both)."""
    key = "key?>~with-odd~chars?>~0123"

    def quote(text: str) -> str:
        return text.replace("+", "%2B").replace("/", "%2f")

    prefix = b"\x00" * shift
    encoded = base64.b64encode(prefix + key.encode() + b"\xff").decode()
    first, end = key_determined(prefix, key)
    assert "%2B" in quote(encoded[first:end])
    assert "%2f" in quote(encoded[first:end])
    assert (
        redact(key, f"?auth={quote(encoded)}") == f"?auth={quote(encoded[:first])}***{quote(encoded[end:])}"
    )


@pytest.mark.parametrize("length", [10, 11, 12, 36])
def test_base64_of_a_key_of_ten_bytes_or_more_is_redacted_at_every_alignment(length: int) -> None:
    key = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789"[: length - 4]
    for shift in range(3):
        prefix = b"\x00" * shift
        encoded = base64.b64encode(prefix + key.encode() + b"\x00").decode()
        first, end = key_determined(prefix, key)
        assert redact(key, encoded) == encoded[:first] + "***" + encoded[end:]


def test_base64_of_a_shorter_key_is_a_documented_limit() -> None:
    """A 9-byte key 1 byte past a 3-byte boundary determines only 11 base64 characters: too few
    to tell from other text, so that form is left (Braze's keys have 36)."""
    key = "k3y-abcde"
    assert redact(key, base64.b64encode(key.encode()).decode()).startswith("***")
    shifted = base64.b64encode(b"\x00" + key.encode()).decode()
    assert redact(key, shifted) == shifted


# ------------------------------------------------------------------- Braze's non-fatal errors
def echoed_forms(key: str) -> list[str]:
    raw = key.encode()
    return [
        hex_bytes(key),
        hex_bytes(key, prefix="\\x", upper=True),
        "".join(html_decimal(c, zeros=2) for c in key),
        "".join(html_hex(c, x="X", semicolon=False) for c in key),
        "".join(json_escape(c) if i % 2 else percent(c) for i, c in enumerate(key)),
        wrap(base64.b64encode(b"Bearer " + raw).decode(), 76, "\r\n"),
        wrap(base64.urlsafe_b64encode(b"::" + raw + b"::").decode(), 5, "\n", " "),
    ]


def assert_no_trace(key: str, value: Any) -> None:
    text = json.dumps(value)
    for form in echoed_forms(key):
        assert form not in text
    raw = key.encode()
    assert raw.hex() not in text.lower()
    flat = squeeze(text.replace("\\r", "").replace("\\n", ""))
    for shift in range(3):
        core = base64.b64encode(b"\0" * shift + raw).decode()[4:-4]
        assert core not in flat
        assert core.replace("+", "-").replace("/", "_") not in flat


@pytest.mark.parametrize("key", KEYS)
def test_non_fatal_errors_echoing_the_key_in_any_form_are_redacted(key: str) -> None:
    forms = echoed_forms(key)
    errors: list[Any] = [
        {"type": "invalid_header", "input_array": forms, "detail": {"echo": forms[-1], forms[0]: 1}},
        *(f"could not authorize {form}" for form in forms),
        [[{"nested": form}] for form in forms],
    ]
    clean = redacted(errors, functools.partial(redact, key))
    assert_no_trace(key, clean)
    assert clean[0]["type"] == "invalid_header"
    assert clean[0]["input_array"][0] == "***"
    assert clean[1] == "could not authorize ***"
    assert clean[0]["detail"] == {"echo": clean[0]["input_array"][-1], "***": 1}
    assert "***" in clean[0]["detail"]["echo"]  # base64 keeps what its neighbours determine


def test_the_hook_redacts_every_form_in_a_send_answer(
    braze_conn: str, sleeps: list[float], requests_mock: rm.Mocker
) -> None:
    forms = echoed_forms(API_KEY)
    requests_mock.post(
        f"{REST_ENDPOINT}/messages/send",
        status_code=201,
        json={"dispatch_id": "d", "errors": [*forms, {"header": forms}]},
    )
    answer = BrazeHook().send_messages("camp", external_user_ids=["u"], messages=email_message("camp"))
    assert_no_trace(API_KEY, answer)
    assert answer["errors"][:5] == ["***"] * 5  # the base64 forms keep what the neighbours determine
    assert answer["errors"][-1] == {"header": answer["errors"][:-1]}


# ------------------------------------------------------------------------- no false positives
def test_ordinary_text_is_left_alone() -> None:
    texts = [
        "Bearer *** was refused; use the REST API key of the workspace.",
        '{"message": "success", "dispatch_id": "0c6b3a1e2f4d5a6b7c8d9e0f1a2b3c4d", "errors": []}',
        "<p>caf&eacute; &#233; &#x41; &amp; %20 \\u00e9 \\x41 0x41, 0x42</p>",
        "canary-braze-key-5f1e9c3a7 canary braze key 5f1e9c3a7d",  # near misses of API_KEY
        "63 61 6e 61 72 79 2d 62 72 61 7a 65",  # a prefix of API_KEY's hex
    ]
    for key in KEYS:
        for text in texts:
            assert redact(key, text) == text


@pytest.mark.parametrize("seed", range(20))
def test_another_uuid_random_hex_and_random_base64_are_left_alone(seed: int) -> None:
    other = str(uuid.UUID(int=seed * 0x9E3779B97F4A7C15_F39CC0605CEDC834 % 2**128))
    raw = other.encode()
    texts = [
        other,
        other.upper(),
        raw.hex(),
        raw.hex(":"),
        "".join(f"&#{b};" for b in raw),
        "".join(f"\\u{b:04x}" for b in raw),
        wrap(base64.b64encode(b"Bearer " + raw).decode(), 64, "\r\n"),
        hashlib.sha512(bytes([seed])).hexdigest()[:72],  # random hex, as long as a UUID key's hex
    ]
    for text in texts:
        assert redact(UUID_KEY, text) == text
        assert redact(API_KEY, text) == text
    near = OTHER_UUID.encode()
    for text in (OTHER_UUID, near.hex(), base64.b64encode(near).decode()[:44]):
        assert redact(UUID_KEY, text) == text


# --------------------------------------------------------------------------- property tests
ENCODER_NAMES = sorted(ENCODERS)
SURROUNDING = st.text(alphabet=" <>{}[]|!?\"'.()\t\n", max_size=20)


@given(
    key=st.one_of(st.just(API_KEY), st.uuids().map(str)),
    choices=st.lists(st.sampled_from(ENCODER_NAMES), min_size=36, max_size=36),
    before=SURROUNDING,
    after=SURROUNDING,
)
@example(key=UUID_KEY, choices=["html-decimal-no-semicolon"] * 36, before="", after="")
def test_any_per_character_mix_is_redacted_exactly(
    key: str, choices: list[str], before: str, after: str
) -> None:
    encoded = "".join(ENCODERS[name](char) for name, char in zip(choices, key, strict=False))
    assert secret_pattern(key).sub("***", before + encoded + after) == before + "***" + after


@given(
    key=st.one_of(st.just(API_KEY), st.uuids().map(str)),
    before=st.binary(max_size=10),
    after=st.binary(max_size=10),
    width=st.integers(min_value=1, max_value=80),
    newline=st.sampled_from(["\n", "\r\n", "\r\n ", " ", "\\n"]),
    urlsafe=st.booleans(),
)
def test_any_wrapped_base64_is_redacted_exactly(
    key: str, before: bytes, after: bytes, width: int, newline: str, urlsafe: bool
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(before + key.encode() + after).decode()
    first, end = key_determined(before, key)
    text = secret_pattern(key).sub("***", wrap(encoded, width, newline))
    assert squeeze(text.replace("\\n", "")) == encoded[:first] + "***" + encoded[end:]


@given(data=st.one_of(st.text(max_size=200), st.binary(max_size=100).map(bytes.hex)))
def test_text_without_the_key_is_unchanged(data: str) -> None:
    assert redact(UUID_KEY, data) == data
    assert redact(API_KEY, data) == data
