"""OpenLineage: the datasets each operator read and wrote, for its
``get_openlineage_facets_on_complete``.

The OpenLineage provider (``apache-airflow-providers-openlineage``) calls that method after
``execute``, in the task's process. Nothing here imports OpenLineage until then, and without the
provider :func:`operator_lineage` returns None: the operators work the same either way.

Datasets are named as OpenLineage's naming spec names them, and as the OpenLineage provider
names the same things given as Airflow assets:

- a local file: namespace ``file``, name its absolute path (``/data/audience.csv``), as a
  ``file://`` asset is;
- an ObjectStoragePath or its URL (``s3://bucket/audiences/x.csv``): namespace
  ``<protocol>://<bucket>`` (``s3://bucket``), name the key (``audiences/x.csv``), as
  ``ObjectStoragePath.namespace`` and ``.key`` say (a connection ID in the URL is no part of it);
- a Braze campaign: its ``braze://`` asset URI, split into namespace ``braze://<instance>`` and
  name ``campaigns/<campaign_id>`` (:func:`airflow_provider_braze.assets.campaign_dataset_name`).

An in-memory list of recipients is no dataset. No facet carries a recipient or the API key: only
the names of files and campaigns, and a send ID (which Braze shows in its dashboard).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    #: What the operators' ``get_openlineage_facets_on_complete`` return.
    Lineage = OperatorLineage[Dataset, Any]

#: An OpenLineage dataset as ``(namespace, name)``.
DatasetName = tuple[str, str]

#: The namespace of local files in OpenLineage's naming spec.
LOCAL_FILES = "file"


def location_dataset(location: Any) -> DatasetName | None:
    """The dataset of a file location (a local path, an ObjectStoragePath or its URL), or None
    for anything else (a list of recipients)."""
    from airflow_provider_braze.recipients import is_path
    from airflow_provider_braze.storage import is_url, storage_path

    if location is None or not is_path(location):
        return None
    if is_url(location):
        try:
            location = storage_path(location)
        except Exception:  # a protocol this installation cannot name: read it from the URL
            return _url_dataset(str(location))
    namespace, key = getattr(location, "namespace", None), getattr(location, "key", None)
    if isinstance(namespace, str) and isinstance(key, str):  # an ObjectStoragePath
        if getattr(location, "protocol", None) in ("file", "local"):
            # Local files keep their absolute path, as a file:// asset's dataset does.
            return namespace, "/" + key.lstrip("/")
        return namespace, key
    if isinstance(location, (str, os.PathLike)):
        return LOCAL_FILES, os.path.abspath(os.fspath(location))
    return None


def _url_dataset(url: str) -> DatasetName:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # without a connection ID
    if parts.scheme == "file":
        return (f"file://{host}" if host else LOCAL_FILES), parts.path
    return f"{parts.scheme}://{host}", parts.path.lstrip("/")


def campaign_dataset(campaign_id: Any, hook: Any, log: Any) -> DatasetName | None:
    """The dataset of a campaign on the hook's Braze instance: its ``braze://`` asset URI, split.

    None when there is no campaign, or its URI cannot be made (the connection cannot be read, or
    its endpoint is no Braze instance: a braze:// URI names only those); the reason is logged.
    """
    from airflow_provider_braze.assets import campaign_asset_uri, campaign_dataset_name, instance_of

    if not campaign_id:
        return None
    try:
        uri = campaign_asset_uri(str(campaign_id), instance=instance_of(hook.settings.base_url))
    except Exception as err:
        log.warning("OpenLineage: campaign %r is not reported as a dataset: %s", campaign_id, err)
        return None
    return campaign_dataset_name(uri)


def operator_lineage(
    inputs: Iterable[DatasetName | None] = (),
    outputs: Iterable[DatasetName | None] = (),
    *,
    send_id: str | None = None,
    campaign: DatasetName | None = None,
) -> Lineage | None:
    """The ``OperatorLineage`` of these datasets (Nones and repeats left out), or None when the
    OpenLineage provider is not installed.

    :param send_id: Optional. The one send ID the run created, sent with or read, reported in
        OpenLineage's standard ``externalQuery`` run facet (the ID of the run's work in another
        system), with the Braze instance as its ``source`` (``braze://us-03``).
    :param campaign: The dataset of the campaign the send ID belongs to; without it, the send ID
        is not reported.
    """
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet

    run_facets: dict[str, Any] = {}
    if send_id and campaign is not None:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=send_id, source=campaign[0])
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name) for ns, name in _unique(inputs)],
        outputs=[Dataset(namespace=ns, name=name) for ns, name in _unique(outputs)],
        run_facets=run_facets,
    )


def _unique(datasets: Iterable[DatasetName | None]) -> list[DatasetName]:
    found: list[DatasetName] = []
    for dataset in datasets:
        if dataset is not None and dataset not in found:
            found.append(dataset)
    return found
