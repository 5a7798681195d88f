"""Where a Braze connection points and how it is set: instance codes and the REST endpoint URL
rules, the API key, and the connection's options, read and checked once per hook."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_braze.exceptions import BrazeConfigurationError

if TYPE_CHECKING:
    from types import FrameType

    from airflow.sdk import Connection


class _Log(Protocol):
    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...


#: Braze instance codes and their REST endpoints (braze-docs ``_includes/data_centers.md``).
BRAZE_INSTANCES: dict[str, str] = {
    **{f"US-0{n}": f"https://rest.iad-0{n}.braze.com" for n in range(1, 9)},
    "US-10": "https://rest.us-10.braze.com",
    "EU-01": "https://rest.fra-01.braze.eu",
    "EU-02": "https://rest.fra-02.braze.eu",
    "AU-01": "https://rest.au-01.braze.com",
    "ID-01": "https://rest.id-01.braze.com",
    "JP-01": "https://rest.jp-01.braze.com",
    "KR-01": "https://rest.kr-01.braze.com",
}

_INSTANCE_CODE = re.compile(r"^[A-Za-z]{2,3}-\d{1,3}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class BrazeConnectionSettings:
    """Everything the hook reads from its Airflow connection, checked and with defaults applied."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_retries: int = 5
    retry_budget: float = 120.0
    #: A CA bundle (PEM file) to trust for the endpoint's TLS certificate, besides the system's.
    ca_bundle: str | None = None


#: Extras that are not numbers.
_TEXT_OPTIONS = ("ca_bundle",)

_OPTION_DEFAULTS: dict[str, float] = {
    "connect_timeout": BrazeConnectionSettings.connect_timeout,
    "read_timeout": BrazeConnectionSettings.read_timeout,
    "max_retries": BrazeConnectionSettings.max_retries,
    "retry_budget": BrazeConnectionSettings.retry_budget,
}


#: Where Airflow tests a connection form (``POST /connections/test``): the function makes a
#: transient connection with a random ID (8 letters and digits, any case: ``vkQS3iIp``,
#: ``rm7zg2ph``), exports it as ``AIRFLOW_CONN_<ID>`` and calls the hook's ``test_connection``
#: in the same thread. Its local ``transient_conn_id`` holds that ID.
_FORM_TEST_MODULE = "airflow.api_fastapi.core_api.routes.public.connections"
_FORM_TEST_FUNCTION = "test_connection"


def connection_label(conn_id: str) -> str:
    """How messages name the connection: ``Braze connection 'braze_default'``; a connection being
    tested from Airflow's form has a random ID nobody chose, so it is "This Braze connection"."""
    if f"AIRFLOW_CONN_{conn_id.upper()}" in os.environ and _under_form_test(conn_id):
        return "This Braze connection"
    return f"Braze connection {conn_id!r}"


def _under_form_test(conn_id: str) -> bool:
    """Whether this thread is inside Airflow's form test, testing ``conn_id``: known from the
    call stack, not guessed from what the random ID looks like (it may be all lower case)."""
    import sys

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if (
            frame.f_code.co_name == _FORM_TEST_FUNCTION
            and frame.f_globals.get("__name__") == _FORM_TEST_MODULE
        ):
            # Every connection that function tests is its transient one; where it says which,
            # it must be this one (a hook for another connection, built while testing, is not).
            transient = frame.f_locals.get("transient_conn_id")
            return transient is None or transient == conn_id
        frame = frame.f_back
    return False


def read_settings(
    conn: Connection, conn_id: str, overrides: dict[str, float | None], log: _Log
) -> BrazeConnectionSettings:
    """The connection's settings, checked: hook arguments (``overrides``) win over extras.

    An error names the offending value, with the key redacted wherever it appears (a key
    pasted into the host, an extra or the schema must not be echoed)."""
    api_key = _check_api_key(conn.password, conn_id)
    try:
        return _read_settings(conn, conn_id, api_key, overrides, log)
    except BrazeConfigurationError as err:
        from airflow_provider_braze.hooks.redaction import secret_pattern

        text = secret_pattern(api_key).sub("***", str(err))
        raise BrazeConfigurationError(text) from None


def _read_settings(
    conn: Connection, conn_id: str, api_key: str, overrides: dict[str, float | None], log: _Log
) -> BrazeConnectionSettings:
    base_url = resolve_base_url(conn.host, conn_id=conn_id, port=conn.port, schema=conn.schema)
    extras = conn.extra_dejson or {}
    known = (*_OPTION_DEFAULTS, *_TEXT_OPTIONS)
    unknown = sorted(set(extras) - set(known))
    if unknown:
        log.warning(
            "%s has extra fields this hook does not use: %s (known: %s).",
            connection_label(conn_id),
            ", ".join(unknown),
            ", ".join(known),
        )
    options = {
        name: _option(conn_id, name, overrides.get(name), extras.get(name), default)
        for name, default in _OPTION_DEFAULTS.items()
    }
    return BrazeConnectionSettings(
        conn_id=conn_id,
        base_url=base_url,
        api_key=api_key,
        connect_timeout=options["connect_timeout"],
        read_timeout=options["read_timeout"],
        max_retries=int(options["max_retries"]),
        retry_budget=options["retry_budget"],
        ca_bundle=_check_ca_bundle(extras.get("ca_bundle"), conn_id),
    )


def _option(conn_id: str, name: str, override: float | None, extra_value: Any, default: float) -> float:
    """Hook argument, else connection extra, else default; checked to be a sane number."""
    source = "argument" if override is not None else "connection extra"
    value: Any = override if override is not None else extra_value
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: {source} {name}={value!r} is not a number."
        ) from None
    minimum_ok = number >= 0 if name in ("max_retries", "retry_budget") else number > 0
    if not minimum_ok or not math.isfinite(number):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: {source} {name}={value!r} is out of range."
        )
    if name == "max_retries" and not number.is_integer():
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: {source} max_retries={value!r} must be a whole number."
        )
    return number


def resolve_base_url(
    host: str | None, *, conn_id: str, port: int | None = None, schema: str | None = None
) -> str:
    """Turn a connection's host (a URL or an instance code like ``US-03``) into a base URL.

    A host without a scheme gets https (or the connection's schema, when that is http/https).
    Plain http is accepted only for loopback hosts, so the API key never crosses a network in
    clear text.
    """
    raw = (host or "").strip()
    if not raw:
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)} has no host: set it to your REST endpoint "
            "(e.g. https://rest.iad-01.braze.com) or an instance code such as US-01."
        )
    if _INSTANCE_CODE.match(raw):
        if port not in (None, 0, 443):
            raise BrazeConfigurationError(
                f"{connection_label(conn_id)}: instance code {raw!r} is served on port 443, but the port "
                f"field says {port}; set the port to 443 or leave it empty."
            )
        try:
            return BRAZE_INSTANCES[raw.upper()]
        except KeyError:
            raise BrazeConfigurationError(
                f"{connection_label(conn_id)}: unknown instance code {raw!r}. Known codes: "
                f"{', '.join(BRAZE_INSTANCES)}. For another instance, set the host to its REST "
                "endpoint URL."
            ) from None

    if "://" not in raw:
        default_scheme = (schema or "").strip().lower() or "https"
        if default_scheme not in ("http", "https"):
            raise BrazeConfigurationError(
                f"{connection_label(conn_id)}: schema {schema!r} is not a URL scheme; leave it "
                "empty or use https."
            )
        raw = f"{default_scheme}://{raw}"
    malformed = (
        f"{connection_label(conn_id)}: host {host!r} is not a valid REST endpoint URL "
        "(expected e.g. https://rest.iad-01.braze.com or an instance code such as US-01)"
    )
    try:
        parts = urlsplit(raw)
        url_port = parts.port
    except ValueError:
        raise BrazeConfigurationError(f"{malformed}.") from None
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    if scheme not in ("http", "https"):
        raise BrazeConfigurationError(f"{malformed}: the scheme must be https.")
    if parts.username is not None or parts.password is not None:
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: the host must not contain credentials; put the REST "
            "API key in the connection's password field."
        )
    if parts.query or parts.fragment or any(ch.isspace() for ch in raw):
        raise BrazeConfigurationError(f"{malformed}: it must not contain a query, fragment or spaces.")
    is_ip = _is_ip(hostname)
    if not hostname or not (is_ip or _HOSTNAME.match(hostname)):
        raise BrazeConfigurationError(f"{malformed}.")
    if re.match(r"^(dashboard|sdk)[.-]", hostname) and hostname.endswith((".braze.com", ".braze.eu")):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: {hostname} is a dashboard or SDK address, not a REST "
            "endpoint. Use the REST endpoint shown under Settings > APIs and Identifiers, e.g. "
            "https://rest.iad-01.braze.com, or an instance code such as US-01."
        )
    if scheme == "http" and not is_loopback(hostname):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: refusing plain http to {hostname}; the API key would "
            "travel unencrypted. Use https (plain http is allowed only for loopback hosts such as "
            "the local Braze sandbox)."
        )
    # Airflow 3.3.2's UI sends port 0 for a connection without one (Number(null)): no port.
    port = port or None
    if url_port is not None and port is not None and url_port != port:
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: the host says port {url_port} but the port field says "
            f"{port}; set only one."
        )
    final_port = url_port if url_port is not None else port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if final_port is not None and final_port != {"https": 443, "http": 80}[scheme]:
        netloc = f"{netloc}:{final_port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _check_ca_bundle(value: Any, conn_id: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not os.path.isfile(value):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: ca_bundle {value!r} is not a readable file; it must be the "
            "path of a PEM file with the certificate authority to trust."
        )
    return value


def _check_api_key(password: str | None, conn_id: str) -> str:
    key = (password or "").strip()
    if not key:
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)} has no REST API key: put the key in the connection's "
            "password field."
        )
    if key[0] in "\"'" and key[-1] in "\"'":
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: the REST API key is wrapped in quotes; store it without them."
        )
    # A header value with whitespace or control characters would make requests raise an error
    # whose text contains the header, i.e. the key.
    if not key.isascii() or not key.isprintable() or any(ch.isspace() for ch in key):
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: the REST API key contains spaces, control or non-ASCII "
            "characters; copy it again from Braze."
        )
    # The key is masked wherever it appears, answers included: a key of a few characters would
    # also match inside field names ("unique_clicks" with the key "k") and corrupt the data.
    if len(key) < MIN_API_KEY_LENGTH:
        raise BrazeConfigurationError(
            f"{connection_label(conn_id)}: the REST API key has {len(key)} characters; Braze's keys "
            f"are 36 (a UUID), and a key shorter than {MIN_API_KEY_LENGTH} cannot be masked without "
            "masking parts of Braze's answers too. Copy it again from Braze (for the sandbox, choose "
            "a longer key)."
        )
    return key


#: The shortest REST API key accepted (Braze's are 36 characters).
MIN_API_KEY_LENGTH = 8


def host_of(base_url: str) -> str:
    """``rest.iad-01.braze.com`` (with ``:port`` when there is one) from a base URL, for messages."""
    parts = urlsplit(base_url)
    return parts.netloc or base_url
