"""The comparison chart: each metric's rates per variant, with their confidence intervals.

Drawn with matplotlib, an optional dependency (``pip install airflow-provider-braze-rest[charts]``);
without it :func:`draw_comparison` raises :class:`ChartUnavailable` and the comparison goes on
without a chart. The figure is built without pyplot (no global state, no display needed) and
saved without dates, so the same comparison always gives the same SVG.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from airflow_provider_braze.exceptions import BrazeValidationError

if TYPE_CHECKING:
    from airflow_provider_braze.comparison import Comparison

#: Formats the chart can be saved in.
CHART_FORMATS = ("svg", "png")


class ChartUnavailable(ImportError):
    """matplotlib is not installed."""


def draw_comparison(comparison: Comparison, chart_format: str = "svg") -> bytes:
    """The chart as SVG or PNG bytes: one bar group (panel, on its own scale) per metric, one
    bar per variant (the control first), error bars for each rate's interval, significant
    differences from the control starred."""
    if chart_format not in CHART_FORMATS:
        raise BrazeValidationError(f"chart_format must be 'svg' or 'png', got {chart_format!r}")
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ChartUnavailable(
            "matplotlib is not installed: install airflow-provider-braze-rest[charts] for charts."
        ) from err

    rows = [r for r in comparison.rows if r["rate"] is not None]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in comparison.rows))
    colours = {variant: f"C{index % 10}" for index, variant in enumerate(variants)}
    names = [f"{v} (control)" if v == comparison.control and v != "control" else v for v in variants]
    # One panel per metric, each on its own scale: a 99 % delivery rate next to a 3 % click
    # rate would flatten the differences that matter.
    figure = Figure(figsize=(max(4.0, 2.4 * len(metrics)), 3.6))
    panels = figure.subplots(1, max(1, len(metrics)), squeeze=False)[0]
    for axes, metric in zip(panels, metrics, strict=False):
        for position, variant in enumerate(variants):
            row = next((r for r in rows if r["variant"] == variant and r["metric"] == metric), None)
            if row is None:
                continue
            height = 100 * row["rate"]
            # max(0, ...): at a rate of 0 or 1 the interval's end is the rate, give or take a rounding.
            low = max(0.0, 100 * (row["rate"] - row["rate_low"]))
            high = max(0.0, 100 * (row["rate_high"] - row["rate"]))
            axes.bar(position, height, 0.7, yerr=[[low], [high]], capsize=3, color=colours[variant])
            if row["significant"]:
                axes.annotate("*", (position, height + high), ha="center", va="bottom")
        axes.set_title(metric, fontsize=9)
        axes.set_xticks(range(len(variants)), names, fontsize=8)
        axes.margins(y=0.15)
    panels[0].set_ylabel("rate (%)")
    adjusted = "" if comparison.correction == "none" else f", {comparison.correction}-adjusted"
    figure.suptitle(
        f"{comparison.channel}: rates with {comparison.confidence:.0%} intervals "
        f"(* differs from {comparison.control}{adjusted})",
        fontsize=9,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    # No creation date and a fixed id salt: the same comparison gives the same file.
    metadata = {"Date": None} if chart_format == "svg" else {"Software": None}
    with rc_context({"svg.hashsalt": "airflow-provider-braze"}):
        figure.savefig(buffer, format=chart_format, metadata=metadata)
    return buffer.getvalue()
