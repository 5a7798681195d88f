"""GetSendAnalyticsOperator: a send ID's analytics as tidy rows, in XCom or in storage."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_braze.hooks.braze import BrazeHook
from airflow_provider_braze.validation import (
    to_utc_iso,
    validate_campaign_id,
    validate_required_send_id,
    validate_series_length,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class GetSendAnalyticsOperator(BaseOperator):
    """Fetch a send ID's daily analytics (``GET /sends/data_series``) as tidy rows.

    One row per (day, channel, variation) with every statistic Braze returns (``sent``,
    ``delivered``, opens, clicks, conversions, ``revenue``...) and the day's totals as
    ``day_conversions``, ``day_unique_recipients``, ``day_revenue``... (README.md lists the
    columns). The rows are the return value; with ``output_path`` they are written there as CSV
    or JSON lines instead, and the path is returned, so XCom stays small. Per-channel totals are
    logged and pushed to XCom as ``channel_totals``; the row count as ``row_count``.

    Braze keeps send analytics for 14 days after the send.

    .. code-block:: python

        GetSendAnalyticsOperator(
            task_id="analytics",
            campaign_id="{{ params.campaign_id }}",
            send_id=create_send_id.output,
            output_path="s3://my-bucket/braze/send_stats/{{ ds }}.csv",
        )

    .. seealso::
        https://www.braze.com/docs/api/endpoints/export/campaigns/get_send_analytics/

    :param campaign_id: The campaign the send ID belongs to. (templated)
    :param send_id: The send ID. (templated)
    :param length: Days before ``ending_at`` to include, 1 to 100 (default 14, Braze's retention).
    :param ending_at: Optional. End of the series: ISO-8601 or a timezone-aware datetime;
        Braze's default is now. (templated)
    :param output_path: Optional. Where to write the rows: a local path or an ObjectStoragePath
        URL (``file://``, ``s3://``...). (templated)
    :param output_format: Optional. ``csv`` or ``jsonl``; by default from the path's suffix.
    :param max_xcom_rows: Without ``output_path``, fail rather than push more rows than this.
    :param braze_conn_id: The Braze connection to use.
    """

    template_fields: Sequence[str] = ("campaign_id", "send_id", "ending_at", "output_path")
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        campaign_id: str,
        send_id: str,
        length: int = 14,
        ending_at: Any = None,
        output_path: Any = None,
        output_format: str | None = None,
        max_xcom_rows: int = 200,
        braze_conn_id: str = BrazeHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.send_id = send_id
        self.length = length
        self.ending_at = ending_at
        self.output_path = output_path
        self.output_format = output_format
        self.max_xcom_rows = max_xcom_rows
        self.braze_conn_id = braze_conn_id

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    def execute(self, context: Context) -> list[dict[str, Any]] | str:
        from airflow_provider_braze._words import plural
        from airflow_provider_braze.analytics import (
            describe_totals,
            output_format_for,
            rows_to_text,
            send_analytics_rows,
            totals_by_channel,
        )
        from airflow_provider_braze.exceptions import BrazeError

        campaign_id = validate_campaign_id(self.campaign_id)
        send_id = validate_required_send_id(self.send_id)
        length = validate_series_length(self.length)
        ending_at = to_utc_iso(self.ending_at, what="ending_at") if self.ending_at else None
        file_format = (
            output_format_for(str(self.output_path), self.output_format) if self.output_path else None
        )

        answer = self.hook.get_send_analytics(campaign_id, send_id, length, ending_at)
        rows = send_analytics_rows(answer, campaign_id=campaign_id, send_id=send_id)
        totals = totals_by_channel(rows)
        days = len({row["date"] for row in rows})
        self.log.info(
            "Send %r of campaign %r: %s over %s.",
            send_id,
            campaign_id,
            plural(len(rows), "row"),
            plural(days, "day"),
        )
        for line in describe_totals(totals):
            self.log.info("  %s", line)
        if not rows:
            self.log.warning(
                "Braze returned no analytics for send %r: it keeps them for 14 days after the send, "
                "and only for API campaigns.",
                send_id,
            )
        ti = context["ti"]
        ti.xcom_push(key="channel_totals", value=totals)
        ti.xcom_push(key="row_count", value=len(rows))

        if self.output_path and file_format:
            path = _write(self.output_path, rows_to_text(rows, file_format))
            self.log.info("Wrote %s to %s.", plural(len(rows), "row"), path)
            return path
        if len(rows) > self.max_xcom_rows:
            raise BrazeError(
                f"{len(rows)} rows are too many for XCom (max_xcom_rows={self.max_xcom_rows}); set "
                "output_path to write them to storage and pass the path downstream."
            )
        return rows


def _write(location: Any, text: str) -> str:
    """Write ``text`` to a local path or an ObjectStoragePath (URL); return where it went."""
    import os

    from airflow_provider_braze.storage import storage_path

    location = storage_path(location)
    if isinstance(location, (str, os.PathLike)):
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        with open(location, "w", encoding="utf-8") as fh:
            fh.write(text)
        return str(location)
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_text(text, encoding="utf-8")
    return str(location)
