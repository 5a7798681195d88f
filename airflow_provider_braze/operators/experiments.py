"""SplitAudienceOperator: split an audience into content-experiment variants, one file each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_braze.exceptions import BrazeValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class SplitAudienceOperator(BaseOperator):
    """Split recipients into named variants by a stable, salted hash; one JSON-lines file each.

    The same recipient always lands in the same variant of the same ``experiment``, in any
    process and on any rerun. The audience is streamed (a list, an iterable, or a CSV / JSON-lines
    file at a local path or ObjectStoragePath URL, as the send operators take it) and memory
    stays flat whatever its size.

    The return value is one dict per variant, in the order of ``shares``, made for dynamic task
    mapping: ``{"recipients": <the variant's file>}`` plus ``variant_kwargs[variant]``, so
    ``SendMessagesOperator.partial(...).expand_kwargs(split.output)`` sends each variant with its
    own arguments (its own ``send_id``, ``messages``...); for ``.expand()``, take the files with
    ``split.output.map(lambda v: v["recipients"])``. ``{variant, share, recipients, count}`` per
    variant is pushed to XCom as ``variants`` (``count`` counts entries as read: a recipient
    listed twice counts twice, and the send operator sends it once). The shares as checked
    (variant -> share) are pushed as ``planned_shares`` (``XComArg(split, key="planned_shares")``
    in a DAG); they are not in the per-variant dicts, which must hold only the send operator's
    arguments.

    .. code-block:: python

        split = SplitAudienceOperator(
            task_id="split",
            recipients="s3://bucket/audiences/{{ dag_run.run_after | ds }}.csv",
            experiment="subject-line-2026-11",
            shares={"control": 0.1, "a": 0.45, "b": 0.45},
            output_path="s3://bucket/experiments/{{ run_id }}",
            variant_kwargs=variants_task.output,  # {"a": {"send_id": ..., "messages": ...}, ...}
        )
        SendMessagesOperator.partial(task_id="send", campaign_id="...").expand_kwargs(split.output)

    :param recipients: Who to split: any recipient source the send operators accept. (templated)
    :param experiment: The experiment's name: salts the hash, so each experiment splits
        independently and the same name always splits the same way. (templated)
    :param shares: Variant name -> share of the audience, adding up to 1. (templated)
    :param output_path: Folder for ``<variant>.jsonl``: local path or ObjectStoragePath URL.
        (templated)
    :param variant_kwargs: Optional. Variant name -> extra keyword arguments added to that
        variant's dict in the return value (e.g. ``send_id``, ``messages``). (templated)
    :param control: Optional. The control variant; it must be one of the shares' variants.
    :param recipient_kind: ``users`` (the default, for ``SendMessagesOperator`` and
        ``ScheduleMessagesOperator``: external user IDs and aliases) or ``recipients`` (for the
        triggered-campaign operators: recipient objects with their trigger properties).
    :param recipients_format: Optional. ``csv`` or ``jsonl`` when the file name does not say.
    :param allow_empty_variants: Succeed even when a variant gets nobody (by default a failure:
        the audience is too small for the shares).
    :param baseline_rate: Optional. The control's expected rate of the metric that matters (e.g.
        0.1 for a 10 % click rate): the task then logs each variant's minimum detectable effect
        for the audience it split (80 % power, 95 % confidence, Bonferroni over the non-control
        variants: :func:`~airflow_provider_braze.experiments.minimum_detectable_effect`). Needs
        ``control`` (or a variant named ``control``).
    """

    template_fields: Sequence[str] = ("recipients", "experiment", "shares", "output_path", "variant_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"shares": "json", "variant_kwargs": "json"}
    ui_color = "#ffd3a8"

    def __init__(
        self,
        *,
        recipients: Any,
        experiment: str,
        shares: Any,
        output_path: Any,
        variant_kwargs: Any = None,
        control: str | None = None,
        recipient_kind: str = "users",
        recipients_format: str | None = None,
        allow_empty_variants: bool = False,
        baseline_rate: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_braze.validation import is_number

        if baseline_rate is not None and (not is_number(baseline_rate) or not 0 < baseline_rate < 1):
            raise BrazeValidationError(f"baseline_rate must be above 0 and below 1, got {baseline_rate!r}.")
        if recipient_kind not in ("users", "recipients"):
            raise BrazeValidationError(
                f"recipient_kind must be 'users' or 'recipients', got {recipient_kind!r}."
            )
        from airflow_provider_braze.validation import check_flag

        check_flag(allow_empty_variants, "allow_empty_variants")
        if control is not None and not isinstance(control, str):
            raise BrazeValidationError(f"control must be a variant name, got {control!r}.")
        if isinstance(output_path, (bool, int, float, list, tuple, dict, set)) or output_path is None:
            raise BrazeValidationError(
                "output_path must be a folder path or URL (text, or an ObjectStoragePath), "
                f"got {output_path!r}."
            )
        self.recipients = recipients
        self.experiment = experiment
        self.shares = shares
        self.output_path = output_path
        self.variant_kwargs = variant_kwargs
        self.control = control
        self.recipient_kind = recipient_kind
        self.recipients_format = recipients_format
        self.allow_empty_variants = allow_empty_variants
        self.baseline_rate = baseline_rate

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_provider_braze._words import plural
        from airflow_provider_braze.experiments import check_shares, split_audience

        shares = check_shares(self.shares, control=self.control)
        extra = _checked_variant_kwargs(self.variant_kwargs, shares)
        variants = split_audience(
            self.recipients,
            experiment=self.experiment,
            shares=shares,
            output_path=self.output_path,
            recipient_kind=self.recipient_kind,  # type: ignore[arg-type]  # checked in __init__
            recipients_format=self.recipients_format,
            allow_empty_variants=self.allow_empty_variants,
        )
        total = sum(v.count for v in variants)
        self.log.info(
            "Split %s for experiment %r into %s:",
            plural(total, "recipient"),
            self.experiment,
            plural(len(variants), "variant"),
        )
        for v in variants:
            actual = v.count / total if total else 0.0
            self.log.info(
                "  %s: %s (%.1f%%, share %.1f%%) -> %s",
                v.variant,
                plural(v.count, "recipient"),
                100 * actual,
                100 * v.share,
                v.recipients,
            )
        if self.baseline_rate is not None:
            self._log_detectable_effects(total, shares)
        ti = context["ti"]
        ti.xcom_push(key="planned_shares", value=shares)
        ti.xcom_push(
            key="variants",
            value=[
                {"variant": v.variant, "share": v.share, "recipients": v.recipients, "count": v.count}
                for v in variants
            ],
        )
        return [{"recipients": v.recipients, **extra.get(v.variant, {})} for v in variants]

    def _log_detectable_effects(self, total: int, shares: dict[str, float]) -> None:
        from airflow_provider_braze.experiments import minimum_detectable_effect

        control = self.control or "control"
        if control not in shares or len(shares) < 2 or total == 0:
            self.log.info(
                "No detectable effects to plan: they need a control variant (%r is not one) and recipients.",
                control,
            )
            return
        effects = minimum_detectable_effect(total, shares, self.baseline_rate, control=control)
        self.log.info(
            "Minimum detectable effects against %s at a baseline rate of %.2f%% (80%% power, 95%% "
            "confidence, Bonferroni over %d comparison(s)):",
            control,
            100 * float(self.baseline_rate or 0),
            len(effects),
        )
        for name, effect in effects.items():
            if effect is None:
                self.log.info("  %s: none: too few recipients to detect any effect", name)
            else:
                self.log.info(
                    "  %s: +%.2f points (%.2f%% -> %.2f%%, +%.0f%% relative)",
                    name,
                    100 * effect,
                    100 * float(self.baseline_rate or 0),
                    100 * (float(self.baseline_rate or 0) + effect),
                    100 * effect / float(self.baseline_rate or 1),
                )


def _checked_variant_kwargs(value: Any, shares: dict[str, float]) -> dict[str, dict[str, Any]]:
    from collections.abc import Mapping

    from airflow_provider_braze.exceptions import BrazeValidationError

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BrazeValidationError(
            f"variant_kwargs must map variant names to keyword arguments, got {type(value).__name__}."
        )
    unknown = [name for name in value if name not in shares]
    if unknown:
        raise BrazeValidationError(
            f"variant_kwargs names variant(s) {', '.join(map(repr, unknown))} that the shares do not: "
            f"{', '.join(shares)}."
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, kwargs in value.items():
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise BrazeValidationError(f"variant_kwargs[{name!r}] must be an object of keyword arguments.")
        if "recipients" in kwargs:
            raise BrazeValidationError(
                f"variant_kwargs[{name!r}] sets recipients: the split decides each variant's recipients."
            )
        checked[name] = dict(kwargs)
    return checked
