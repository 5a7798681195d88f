"""Braze campaigns as Airflow assets: ``braze://<instance>/campaigns/<campaign_id>``.

A send operator with such an asset among its ``outlets`` attaches its summary (send ID, counts,
``finished_at``) to the asset event, so a DAG scheduled on the asset runs after each send and
reads what was sent (``triggering_asset_events``, or ``inlet_events`` in a manual run).

The provider registers the ``braze`` scheme with :func:`sanitize_uri` as its normalizer, so the
same campaign always gets the same URI: the instance is its code in lower case (``us-03``; a
REST host of a known instance, such as ``rest.iad-03.braze.com``, becomes its code), ``sandbox``
for the local sandbox, or another Braze host (``*.braze.com``, ``*.braze.eu``) in lower case;
anything else is refused. Airflow itself drops credentials and fragments from a URI (with a
warning) before the normalizer sees it.

For OpenLineage, a campaign is the dataset its URI names, split as OpenLineage's naming spec
splits a URI: namespace ``braze://<instance>``, name ``campaigns/<campaign_id>``
(:func:`campaign_dataset_name`). The provider registers :func:`convert_asset_to_openlineage` for
the scheme, so a ``braze://`` asset in ``inlets`` or ``outlets`` becomes the same dataset.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.exceptions import BrazeValidationError

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

SCHEME = "braze"
SANDBOX_INSTANCE = "sandbox"
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
#: A campaign's API identifier (a UUID at Braze) as a path segment: unreserved URI characters
#: only, so one campaign has one URI (no percent-encodings, nothing a URI would cut at).
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


def _instances_by_host() -> dict[str, str]:
    from urllib.parse import urlsplit

    from airflow_provider_braze.hooks.connection import BRAZE_INSTANCES

    return {str(urlsplit(url).hostname): code.lower() for code, url in BRAZE_INSTANCES.items()}


def normalize_instance(instance: str) -> str:
    """``US-03``, ``us-03`` and ``rest.iad-03.braze.com`` all become ``us-03``."""
    from airflow_provider_braze.hooks.connection import BRAZE_INSTANCES

    text = instance.strip().lower()
    if text.upper() in BRAZE_INSTANCES:
        return text
    if text == SANDBOX_INSTANCE:
        return text
    known = _instances_by_host().get(text)
    if known is not None:
        return known
    # A Braze host this provider has no code for (a newer cluster) is kept as it is.
    if _HOST_NAME.match(text) and text.endswith((".braze.com", ".braze.eu")):
        return text
    codes = ", ".join(code.lower() for code in BRAZE_INSTANCES)
    raise BrazeValidationError(
        f"A braze:// asset names a Braze instance by its code ({codes}), a Braze REST host or "
        f"'sandbox', without a port or credentials; got {instance!r}."
    )


def instance_of(base_url: str) -> str:
    """The instance a connection's REST endpoint is, as braze:// URIs name it: the code of a
    known endpoint, ``sandbox`` for a loopback endpoint, else the host."""
    from urllib.parse import urlsplit

    from airflow_provider_braze.hooks.connection import is_loopback

    host = (urlsplit(base_url).hostname or "").lower()
    if is_loopback(host):
        return SANDBOX_INSTANCE
    return _instances_by_host().get(host, host)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normalizer for ``braze://`` asset URIs (registered in the provider's info).

    :raises ValueError: the URI is not ``braze://<instance>/campaigns/<campaign_id>``.
    """
    if uri.port is not None or uri.username or uri.password:
        raise BrazeValidationError(f"A braze:// asset URI has no port or credentials: {uri.geturl()!r}.")
    instance = normalize_instance(uri.hostname or "")
    parts = uri.path.strip("/").split("/")
    if len(parts) != 2 or parts[0] != "campaigns" or not _CAMPAIGN_ID.match(parts[1]):
        raise BrazeValidationError(
            f"A braze:// asset URI is braze://<instance>/campaigns/<campaign_id>; got {uri.geturl()!r}."
        )
    if uri.query:
        raise BrazeValidationError(f"A braze:// asset URI has no query: {uri.geturl()!r}.")
    return uri._replace(scheme=SCHEME, netloc=instance, path=f"/campaigns/{parts[1]}", fragment="")


def campaign_asset_uri(campaign_id: str, *, instance: str) -> str:
    """``braze://us-03/campaigns/<campaign_id>``, normalized."""
    from urllib.parse import urlsplit, urlunsplit

    if not isinstance(campaign_id, str) or not _CAMPAIGN_ID.match(campaign_id):
        raise BrazeValidationError(
            "A braze:// asset's campaign ID is 1 to 200 letters, digits, '.', '_', '~' or '-' "
            f"(Braze's API identifiers are UUIDs); got {campaign_id!r}."
        )
    return urlunsplit(sanitize_uri(urlsplit(f"{SCHEME}://{instance}/campaigns/{campaign_id}")))


def braze_campaign_asset(campaign_id: str, *, instance: str, name: str | None = None, **kwargs: Any) -> Any:
    """An ``Asset`` for a Braze campaign's sends, to put in a send operator's ``outlets`` and a
    downstream DAG's ``schedule``.

    :param campaign_id: The campaign's API identifier.
    :param instance: The Braze instance: its code (``US-03``), REST host, or ``sandbox``.
    :param name: The asset's name; by default its URI.
    :param kwargs: Passed to ``Asset`` (``group``, ``extra``...).
    """
    from airflow.sdk import Asset

    uri = campaign_asset_uri(campaign_id, instance=instance)
    return Asset(name=name or uri, uri=uri, **kwargs)


def campaign_of(uri: str) -> tuple[str, str] | None:
    """``(instance, campaign ID)`` of a ``braze://`` asset URI, or None for another scheme."""
    from urllib.parse import urlsplit

    parsed = urlsplit(uri)
    if parsed.scheme != SCHEME:
        return None
    normalized = sanitize_uri(parsed)
    return normalized.netloc, normalized.path.rsplit("/", 1)[1]


def campaign_dataset_name(uri: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of a ``braze://`` asset URI:
    ``("braze://us-03", "campaigns/<campaign_id>")``, so that ``namespace/name`` is the URI.

    :raises ValueError: ``uri`` is not a ``braze://`` campaign URI.
    """
    named = campaign_of(uri)
    if named is None:
        raise BrazeValidationError(f"Not a braze:// asset URI: {uri!r}.")
    instance, campaign_id = named
    return f"{SCHEME}://{instance}", f"campaigns/{campaign_id}"


def convert_asset_to_openlineage(asset: Any, lineage_context: Any) -> OpenLineageDataset:
    """The OpenLineage dataset of a ``braze://`` asset (registered in the provider's info as the
    scheme's ``to_openlineage_converter``; the OpenLineage provider calls it)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

    namespace, name = campaign_dataset_name(asset.uri)
    return OpenLineageDataset(namespace=namespace, name=name)
