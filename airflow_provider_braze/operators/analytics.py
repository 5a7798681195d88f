"""GetSendAnalyticsOperator: a send ID's analytics as tidy rows, in XCom or in storage;
CompareSendsOperator: several sends' (or variations') analytics compared, for content experiments."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_braze.exceptions import BrazeValidationError
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

    from airflow_provider_braze.lineage import Lineage


class GetSendAnalyticsOperator(BaseOperator):
    """Fetch a send ID's daily analytics (``GET /sends/data_series``) as tidy rows.

    One row per (day, channel, variation) with every statistic Braze returns (``sent``,
    ``delivered``, opens, clicks, conversions, ``revenue``...) and the day's totals as
    ``day_conversions``, ``day_unique_recipients``, ``day_revenue``... (docs/analytics.md lists the
    columns). The rows are the return value; with ``output_path`` they are written there as CSV
    or JSON lines instead, and the path is returned, so XCom stays small. Per-channel totals are
    logged and pushed to XCom as ``channel_totals``; the row count as ``row_count``.

    Braze keeps send analytics for 14 days after the send.

    .. code-block:: python

        GetSendAnalyticsOperator(
            task_id="analytics",
            campaign_id="{{ params.campaign_id }}",
            send_id=create_send_id.output,
            output_path="s3://my-bucket/braze/send_stats/{{ ti.xcom_pull(task_ids='create_send_id') }}.csv",
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
        if isinstance(max_xcom_rows, bool) or not isinstance(max_xcom_rows, int) or max_xcom_rows < 0:
            raise BrazeValidationError(
                f"max_xcom_rows must be a whole number, not negative, got {max_xcom_rows!r}."
            )
        self.max_xcom_rows = max_xcom_rows
        self.braze_conn_id = braze_conn_id
        #: For OpenLineage: (campaign ID, send ID) once read, and the file written.
        self._read: tuple[str, str] | None = None
        self._written: str | None = None

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    def execute(self, context: Context) -> list[dict[str, Any]] | str:
        from airflow_provider_braze.rehearsal import skip_if_rehearsal

        skip_if_rehearsal(context, "send analytics")
        from airflow_provider_braze._words import plural
        from airflow_provider_braze.analytics import (
            describe_totals,
            output_format_for,
            rows_to_text,
            send_analytics_rows,
            totals_by_channel,
        )
        from airflow_provider_braze.exceptions import BrazeError
        from airflow_provider_braze.storage import write_file

        campaign_id = validate_campaign_id(self.campaign_id)
        send_id = validate_required_send_id(self.send_id)
        length = validate_series_length(self.length)
        ending_at = to_utc_iso(self.ending_at, what="ending_at") if self.ending_at else None
        if self.output_format is not None and not self.output_path:
            from airflow_provider_braze.exceptions import BrazeValidationError

            raise BrazeValidationError("output_format applies to output_path, which is not set.")
        file_format = (
            output_format_for(str(self.output_path), self.output_format) if self.output_path else None
        )

        answer = self.hook.get_send_analytics(campaign_id, send_id, length, ending_at)
        self._read = (campaign_id, send_id)
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
            path = write_file(self.output_path, rows_to_text(rows, file_format))
            self._written = self.output_path
            self.log.info("Wrote %s to %s.", plural(len(rows), "row"), path)
            return path
        if len(rows) > self.max_xcom_rows:
            raise BrazeError(
                f"{len(rows)} rows are too many for XCom (max_xcom_rows={self.max_xcom_rows}); set "
                "output_path to write them to storage and pass the path downstream."
            )
        return rows

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """For OpenLineage: the campaign's ``braze://`` dataset as the input (its analytics were
        read), the ``output_path`` file as the output, and the send ID in the ``externalQuery``
        run facet. A rehearsal skips the task: nothing read, nothing reported. None without the
        OpenLineage provider."""
        from airflow_provider_braze.lineage import campaign_dataset, location_dataset, operator_lineage

        if self._read is None:
            return operator_lineage()
        campaign_id, send_id = self._read
        campaign = campaign_dataset(campaign_id, self.hook, self.log)
        return operator_lineage(
            [campaign], [location_dataset(self._written)], send_id=send_id, campaign=campaign
        )


class CompareSendsOperator(BaseOperator):
    """Compare the analytics of several sends (or message variations) of a content experiment.

    For each variant: recipients, deliveries, the channel's own engagement (opens and clicks
    for email, direct opens for push...), conversions and revenue; each rate with its
    confidence interval; and against the control, the difference with its interval, a
    two-proportion z-test's p-value adjusted for the number of comparisons (Holm by default),
    the relative lift with its interval, and a verdict ("b beats control on clicks: +0.9 points,
    +9 % [+3 %, +15 %] (p = 0.003, holm-adjusted)", or "no significant difference from control
    yet at this sample size" with the effects the data rule out). With ``primary_metric`` that
    one metric decides, with ``guardrails`` a variant that worsens one is named; each interval is
    at the level its test was judged at, so it agrees with the verdict. docs/experiments.md says
    how to read it and what the statistics assume.

    The table goes to the task log and, with ``output_path``, to CSV and JSON lines (same name,
    both suffixes) with a chart next to them (``chart_format``: a forest plot of each variant's
    difference from the control with its interval, one panel per metric; needs the ``charts``
    extra, otherwise skipped and said so). The return value is a small summary: the verdicts, each
    variant's recipients and significant metrics, and where the files went.

    .. code-block:: python

        CompareSendsOperator(
            task_id="compare",
            campaign_id="{{ params.campaign_id }}",
            sends={"control": "picks-control-20261126", "a": "picks-a-20261126"},
            output_path="s3://bucket/experiments/{{ run_id }}/comparison.csv",
        )

    :param sends: Which send each variant is: ``{variant: send_id}``, or ``{variant: {"send_id":
        ..., "message_variation_id": ... or "variation_name": ..., "campaign_id": ...}}`` to
        compare variations within one send ID, or a list of such objects each with a
        ``variant`` key (e.g. the output of a mapped task). (templated)
    :param campaign_id: The campaign of every send that does not name its own. (templated)
    :param control: The variant the others are compared with.
    :param channel: Optional. The channel to compare (``email``, ``ios_push``...); by default
        the one channel the sends used (several is an error that lists them).
    :param confidence: Confidence level of intervals and tests (default 0.95: alpha 0.05).
    :param correction: ``holm`` (default), ``bonferroni`` or ``none``: how the p-values of all
        comparisons in the table are adjusted together.
    :param allow_mixed_campaigns: Compare sends of different campaigns (by default an error:
        their audiences and content usually differ in more than the variant).
    :param length: Days of analytics before ``ending_at`` to include, 1 to 100 (default 14).
    :param ending_at: Optional. End of the series; Braze's default is now. (templated)
    :param output_path: Optional. Where to write the table: a ``.csv`` or ``.jsonl`` path (local
        or ObjectStoragePath URL); both formats are written, and the chart. (templated)
    :param chart_format: ``svg`` (default), ``png``, or None for no chart.
    :param braze_conn_id: The Braze connection to use.
    :param planned_shares: Optional. Variant -> planned share of the audience, one per compared
        variant, adding up to 1: typically ``XComArg(split, key="planned_shares")`` from
        ``SplitAudienceOperator``. The variants' recipients are then tested against it
        (chi-square goodness of fit); on a sample ratio mismatch (p < 0.001) every verdict says
        so and no variant is called better or worse. (templated)
    :param primary_metric: Optional. The one metric that decides the verdicts, e.g. ``clicks`` or
        ``conversions``: its tests of the variants are adjusted among themselves only, and the
        other metrics are reported beside it. Without it every metric but e-mail opens decides,
        all adjusted together.
    :param guardrails: Optional. Metrics no variant may worsen, e.g. ``["unsubscribes",
        "bounces", "reported_spam"]``: a one-sided test each (towards harm), and a variant that
        harms one has it named in its verdict.
    :param min_age: Optional. The planned analysis time: how old the sends must be (a timedelta,
        or seconds), as given to ``SendAnalyticsSensor``. A comparison of younger sends says its
        verdicts are provisional. (templated)
    :param sent_at: Optional. When the sends went out (ISO-8601 or a timezone-aware datetime),
        to measure ``min_age`` from; without it, from the latest moment the youngest send's
        first day of analytics can have started (never early). (templated)
    :param checkpoint: Where the comparison records that it looked at these sends, so that a
        later comparison of the same sends (another look) says its verdicts are provisional:
        ``"variable"`` (Airflow Variables, the default), an absolute folder or an
        ObjectStoragePath URL, as for the send operators; None records nothing (every comparison
        then takes itself for the first look, and says so in a warning).
    """

    template_fields: Sequence[str] = (
        "sends",
        "campaign_id",
        "ending_at",
        "output_path",
        "planned_shares",
        "primary_metric",
        "guardrails",
        "min_age",
        "sent_at",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"sends": "json", "planned_shares": "json"}
    ui_color = "#ffa45c"

    def __init__(
        self,
        *,
        sends: Any,
        campaign_id: str | None = None,
        control: str = "control",
        channel: str | None = None,
        confidence: float = 0.95,
        correction: str = "holm",
        allow_mixed_campaigns: bool = False,
        length: int = 14,
        ending_at: Any = None,
        output_path: Any = None,
        chart_format: str | None = "svg",
        braze_conn_id: str = BrazeHook.default_conn_name,
        planned_shares: Any = None,
        primary_metric: str | None = None,
        guardrails: Any = (),
        min_age: Any = None,
        sent_at: Any = None,
        checkpoint: Any = "variable",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from collections.abc import Mapping

        from airflow_provider_braze.comparison import check_confidence, check_correction, check_metric_choice
        from airflow_provider_braze.delivery.checkpoint import checkpoint_store
        from airflow_provider_braze.experiments import check_shares
        from airflow_provider_braze.validation import check_duration

        # Literal values are checked at parse time; templates and XComArgs once rendered.
        if _literal(primary_metric) and _literal(guardrails):
            check_metric_choice(primary_metric, guardrails)
        if _literal(min_age):
            check_duration(min_age)
        if checkpoint is not None:
            checkpoint_store(checkpoint)  # a bad location fails the DAG at parse time

        if isinstance(planned_shares, Mapping):
            check_shares(planned_shares)  # a literal mapping is checked at parse time
        from airflow_provider_braze.validation import check_flag

        check_flag(allow_mixed_campaigns, "allow_mixed_campaigns")
        if not isinstance(control, str) or not control:
            raise BrazeValidationError(f"control must be a variant name, got {control!r}.")
        if channel is not None and (not isinstance(channel, str) or not channel):
            raise BrazeValidationError(f"channel must be a channel name such as 'email', got {channel!r}.")

        # At parse time, so a DAG with a typo fails to load instead of at the end of a run.
        check_correction(correction)
        if chart_format not in (None, "svg", "png"):
            raise BrazeValidationError(f"chart_format must be 'svg', 'png' or None, got {chart_format!r}.")
        check_confidence(confidence)
        self.sends = sends
        self.campaign_id = campaign_id
        self.control = control
        self.channel = channel
        self.confidence = confidence
        self.correction = correction
        self.allow_mixed_campaigns = allow_mixed_campaigns
        self.length = length
        self.ending_at = ending_at
        self.output_path = output_path
        self.chart_format = chart_format
        self.braze_conn_id = braze_conn_id
        self.planned_shares = planned_shares
        self.primary_metric = primary_metric
        self.guardrails = guardrails
        self.min_age = min_age
        self.sent_at = sent_at
        self.checkpoint = checkpoint
        #: For OpenLineage: the campaigns whose analytics were read, and the files written.
        self._read: list[str] = []
        self._written: list[str] = []

    @cached_property
    def hook(self) -> BrazeHook:
        return BrazeHook(braze_conn_id=self.braze_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_braze.rehearsal import skip_if_rehearsal

        skip_if_rehearsal(context, "experiment's analytics")
        from airflow_provider_braze.analytics import send_analytics_rows
        from airflow_provider_braze.comparison import (
            check_metric_choice,
            check_no_overlap,
            check_table_path,
            compare,
            describe_table,
            experiment_sends,
            only_channel,
            variant_totals,
        )

        specs = experiment_sends(self.sends, self.campaign_id, self.control, self.allow_mixed_campaigns)
        length = validate_series_length(self.length)
        ending_at = to_utc_iso(self.ending_at, what="ending_at") if self.ending_at else None
        if self.output_path is not None:
            check_table_path(self.output_path)  # a bad name fails before any request

        rows_by_send: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for spec in specs:
            key = (spec["campaign_id"], spec["send_id"])
            if key not in rows_by_send:
                answer = self.hook.get_send_analytics(*key, length, ending_at)
                rows_by_send[key] = send_analytics_rows(answer, campaign_id=key[0], send_id=key[1])
                if key[0] not in self._read:
                    self._read.append(key[0])
        channel = self.channel or only_channel(rows_by_send)
        check_no_overlap(specs, rows_by_send, channel)
        totals = [
            variant_totals(
                rows_by_send[(spec["campaign_id"], spec["send_id"])],
                variant=spec["variant"],
                campaign_id=spec["campaign_id"],
                send_id=spec["send_id"],
                channel=channel,
                message_variation_id=spec.get("message_variation_id"),
                variation_name=spec.get("variation_name"),
            )
            for spec in specs
        ]
        primary_metric, guardrails = check_metric_choice(self.primary_metric, _listed(self.guardrails))
        early = self._too_early(rows_by_send)

        def judged(provisional: str | None) -> Any:
            return compare(
                totals,
                control=self.control,
                confidence=self.confidence,
                correction=self.correction,
                planned_shares=self.planned_shares,
                primary_metric=primary_metric,
                guardrails=guardrails,
                provisional=provisional,
            )

        comparison = judged(early)
        repeated = self._record_look(specs, context, final=early is None)
        if repeated:
            comparison = judged("; ".join([*([early] if early else []), *repeated]))

        self.log.info(
            "Content experiment on %s, %s against %r:", channel, _variants_text(totals), self.control
        )
        for line in describe_table(comparison):
            self.log.info("  %s", line)
        for verdict in comparison.verdicts.values():
            self.log.info("Verdict: %s", verdict)
        for note in comparison.notes:
            self.log.warning("%s", note)

        files = self._write(comparison) if self.output_path is not None else {}
        if self.output_path is None:
            context["ti"].xcom_push(key="table", value=comparison.rows)
        return {
            "channel": channel,
            "control": self.control,
            "confidence": self.confidence,
            "correction": self.correction,
            "verdicts": comparison.verdicts,
            "variants": {
                t.variant: {
                    "campaign_id": t.campaign_id,
                    "send_id": t.send_id,
                    "variation": t.variation,
                    "recipients": t.recipients,
                    "significant": comparison.significant(t.variant),
                }
                for t in totals
            },
            "notes": comparison.notes,
            "primary_metric": comparison.primary_metric,
            "guardrails": list(comparison.guardrails),
            "harmed": {t.variant: comparison.harmed(t.variant) for t in totals if t.variant != self.control},
            "provisional": comparison.provisional,
            "sample_ratio": _sample_ratio_summary(comparison.sample_ratio),
            **files,
        }

    def _too_early(self, rows_by_send: dict[tuple[str, str], list[dict[str, Any]]]) -> str | None:
        """Why the sends are too young for the planned analysis time (``min_age``), or None."""
        from airflow_provider_braze.validation import check_duration, parse_utc

        min_age = check_duration(self.min_age)
        sent_at = parse_utc(self.sent_at, what="sent_at") if self.sent_at else None
        return _too_young(rows_by_send, min_age, sent_at)

    def _record_look(self, specs: list[dict[str, Any]], context: Context, *, final: bool) -> list[str]:
        """Record this look at each control-variant pair in ``checkpoint`` (a retry of this task
        is the same look, not another) and say which pairs already had a final look. Called once
        the comparison is made, so a comparison that fails (a typo in a metric) is no look."""
        from airflow_provider_braze.comparison import looks_prefix, record_looks

        if self.checkpoint is None:
            self.log.warning(
                "checkpoint=None: earlier comparisons of these sends are not looked up, so a repeated "
                "look is not flagged as provisional."
            )
            return []
        ti = context["ti"]
        control = specs[0]  # experiment_sends puts the control first
        pairs = {spec["variant"]: looks_prefix([control, spec]) for spec in specs[1:]}
        earlier = record_looks(
            self.checkpoint,
            pairs,
            (ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1)),
            final=final,
        )
        return [
            f"{control['variant']} and {name} were already compared {_times(len(times))} with final "
            f"verdicts (first at {times[0]}): this is another look"
            for name, times in earlier.items()
        ]

    def _write(self, comparison: Any) -> dict[str, Any]:
        from airflow_provider_braze.analytics import rows_to_text
        from airflow_provider_braze.charts import ChartUnavailable, draw_comparison
        from airflow_provider_braze.comparison import TABLE_FIELDS
        from airflow_provider_braze.storage import sibling

        base = str(self.output_path)
        rows = comparison.rows
        files: dict[str, Any] = {
            "table": self._write_file(sibling(base, ".csv"), rows_to_text(rows, "csv", fields=TABLE_FIELDS)),
            "table_jsonl": self._write_file(sibling(base, ".jsonl"), rows_to_text(rows, "jsonl")),
            "chart": None,
        }
        self.log.info("Wrote the comparison to %s and %s.", files["table"], files["table_jsonl"])
        if self.chart_format is None:
            return files
        try:
            image = draw_comparison(comparison, self.chart_format)
        except ChartUnavailable as err:
            files["chart_skipped"] = str(err)
            self.log.warning("Chart skipped: %s", err)
            return files
        files["chart"] = self._write_file(sibling(base, f".{self.chart_format}"), image)
        self.log.info("Drew the chart: %s.", files["chart"])
        return files

    def _write_file(self, location: str, data: str | bytes) -> str:
        from airflow_provider_braze.storage import write_file

        written = write_file(location, data)
        self._written.append(location)
        return written

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """For OpenLineage: the ``braze://`` dataset of each campaign whose analytics were read
        as inputs, and the table and chart files written as outputs (none without
        ``output_path``). A rehearsal skips the task: nothing read, nothing reported. None
        without the OpenLineage provider."""
        from airflow_provider_braze.lineage import campaign_dataset, location_dataset, operator_lineage

        inputs = [campaign_dataset(campaign_id, self.hook, self.log) for campaign_id in self._read]
        return operator_lineage(inputs, [location_dataset(path) for path in self._written])


def _literal(value: Any) -> bool:
    """Whether ``value`` is given as is, not as a template or an upstream task's output."""
    from datetime import timedelta

    if isinstance(value, str):
        return "{{" not in value
    return value is None or isinstance(value, (list, tuple, int, float, timedelta))


def _listed(value: Any) -> Any:
    """A rendered template's list (``'["unsubscribes"]'``) as a list; anything else as given."""
    import json

    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _times(count: int) -> str:
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"


def _too_young(
    rows_by_send: dict[tuple[str, str], list[dict[str, Any]]], min_age: Any, sent_at: Any
) -> str | None:
    """``the sends are 3:00:00 old, younger than min_age 1 day, 0:00:00``, or None. Without
    ``sent_at`` the age is the least the youngest send can have: Braze reports days in an
    unnamed time zone, so from the end of its first day of analytics in UTC-12."""
    from datetime import datetime, timedelta, timezone

    from airflow_provider_braze.analytics import activity_days
    from airflow_provider_braze.analytics_check import _utcnow
    from airflow_provider_braze.exceptions import BrazeValidationError

    now = _utcnow()
    if sent_at is not None and sent_at > now + timedelta(minutes=5):
        raise BrazeValidationError(
            f"sent_at {sent_at.isoformat()} is in the future (now {now.isoformat(timespec='seconds')}): "
            "pass when the sends finished, e.g. the send summary's finished_at."
        )
    if not min_age:
        return None
    measured_from_sent_at = sent_at is not None
    if sent_at is None:
        firsts = [activity_days(rows) for rows in rows_by_send.values()]
        latest_first = max((days[0] for days in firsts if days), default=None)
        if latest_first is None:
            return f"the sends' age is unknown (no analytics yet), so min_age {min_age} cannot be confirmed"
        midnight = datetime.fromisoformat(latest_first).replace(tzinfo=timezone.utc)
        sent_at = min(now, midnight + timedelta(days=1, hours=12))
    age = now - sent_at
    if age >= min_age:
        return None
    shown = max(age, timedelta(0))
    shown -= timedelta(microseconds=shown.microseconds)
    measured = "the sends are" if measured_from_sent_at else "the youngest send may be only"
    return f"{measured} {shown} old, younger than the planned min_age {min_age}"


def _sample_ratio_summary(ratio: Any) -> dict[str, Any] | None:
    from dataclasses import asdict

    return None if ratio is None else asdict(ratio)


def _variants_text(totals: list[Any]) -> str:
    from airflow_provider_braze._words import plural

    return plural(len(totals), "variant")
