"""The comparison chart: a forest plot of the tested differences from the control.

One panel per tested metric, one row per variant: the difference from the control in
percentage points with its interval (the one at the level the row was judged at), a zero line,
filled markers where the difference is significant, and each variant's n (the rate's
denominator) in its label.

Drawn with matplotlib, an optional dependency (``pip install airflow-provider-braze-rest[charts]``);
without it :func:`draw_comparison` raises :class:`ChartUnavailable` and the comparison goes on
without a chart. The figure is built without pyplot (no global state, no display needed) and
saved without dates, so the same comparison always gives the same file.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from airflow_provider_braze.exceptions import BrazeValidationError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from airflow_provider_braze.comparison import Comparison

#: Formats the chart can be saved in.
CHART_FORMATS = ("svg", "png")

#: One colour per variant (the same in every panel): matplotlib's ``tab20`` with its ten strong
#: colours (``tab10``) first and their light companions after, so up to 20 variants never
#: share a colour and up to 10 get a strong one.
VARIANT_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)

# Layout, in inches: each variant's row, each panel's title and axis, the figure's title lines.
_ROW_HEIGHT = 0.3
_PANEL_EXTRA = 1.0
_TITLE_LINE = 0.22
_WIDTH = 8.0


class ChartUnavailable(ImportError):
    """matplotlib is not installed."""


def draw_comparison(comparison: Comparison, chart_format: str = "svg") -> bytes:
    """The chart (:func:`comparison_figure`: a forest plot of each variant's difference from the
    control, one panel per metric) as SVG or PNG bytes; the same comparison gives the same bytes."""
    if chart_format not in CHART_FORMATS:
        raise BrazeValidationError(f"chart_format must be 'svg' or 'png', got {chart_format!r}")
    figure = comparison_figure(comparison)
    from matplotlib import rc_context

    buffer = io.BytesIO()
    # No creation date and a fixed id salt: the same comparison gives the same file.
    metadata = {"Date": None} if chart_format == "svg" else {"Software": None}
    with rc_context({"svg.hashsalt": "airflow-provider-braze"}):
        figure.savefig(buffer, format=chart_format, metadata=metadata)
    return buffer.getvalue()


def comparison_figure(comparison: Comparison) -> Figure:
    """The comparison as a forest plot (a matplotlib :class:`~matplotlib.figure.Figure`).

    One panel per metric with at least one tested difference, stacked, each on its own scale;
    in each, one row per variant other than the control (in the table's order, labelled with
    the variant's n, the rate's denominator), its difference from the control in percentage
    points as a marker (filled when significant, hollow when not) on its interval, and a
    vertical line at zero. Each variant keeps its colour in every panel. The title names the
    interval level (or says the levels differ by row), what a filled marker means, and a
    sample ratio mismatch. The figure grows with the variants and metrics, so labels do not
    overlap.
    """
    try:
        # The package first: without matplotlib this fails even when a submodule was imported.
        from matplotlib import lines
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ChartUnavailable(
            "matplotlib is not installed: install airflow-provider-braze-rest[charts] for charts."
        ) from err

    control = comparison.control
    plotted = [r for r in comparison.rows if r["difference"] is not None]
    tested = {r["metric"] for r in plotted}
    metrics = [m for m in dict.fromkeys(r["metric"] for r in comparison.rows) if m in tested]
    others = [v for v in dict.fromkeys(r["variant"] for r in comparison.rows) if v != control]
    # Colours by the variants' order (those never plotted too), so a variant keeps its colour
    # whatever else is tested.
    colours = {variant: VARIANT_COLOURS[index % len(VARIANT_COLOURS)] for index, variant in enumerate(others)}
    title = _title(comparison, plotted)
    panels = [[r for r in plotted if r["metric"] == metric] for metric in metrics]
    heights = [_ROW_HEIGHT * len(rows) + _PANEL_EXTRA for rows in panels]
    figure = Figure(
        figsize=(_WIDTH, sum(heights) + _TITLE_LINE * (len(title) + 1) + 0.3),
        layout="constrained",
    )
    mismatch = comparison.sample_ratio is not None and comparison.sample_ratio.mismatch
    figure.suptitle("\n".join(title), fontsize=9, color="#b00000" if mismatch else "black", linespacing=1.4)
    if not panels:
        figure.set_size_inches(_WIDTH, 2.0)
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(
            0.5, 0.5, "No difference from the control was tested (see the notes).", ha="center", fontsize=9
        )
        return figure
    grid = figure.subplots(len(panels), 1, squeeze=False, height_ratios=[len(rows) for rows in panels])
    for axes, rows in zip(grid[:, 0], panels, strict=True):
        metric = rows[0]["metric"]
        positions = list(range(len(rows)))
        labels = []
        for position, row in zip(positions, rows, strict=True):
            colour = colours[row["variant"]]
            difference = 100 * row["difference"]
            if row["difference_low"] is not None and row["difference_high"] is not None:
                axes.plot(
                    [100 * row["difference_low"], 100 * row["difference_high"]],
                    [position, position],
                    color=colour,
                    linewidth=2,
                    solid_capstyle="butt",
                    label="_interval",
                )
            axes.plot(
                [difference],
                [position],
                linestyle="none",
                marker="o",
                markersize=6,
                markeredgewidth=1.5,
                markeredgecolor=colour,
                markerfacecolor=colour if row["significant"] else "white",
                label="_estimate",
            )
            labels.append(_row_label(row, rows))
        axes.axvline(0, color="0.2", linewidth=1, zorder=1.5, label="_zero")
        axes.set_yticks(positions, labels, fontsize=8)
        # The first variant at the top, half a row of room above and below.
        axes.set_ylim(len(rows) - 0.5, -0.5)
        axes.margins(x=0.08)
        axes.tick_params(axis="x", labelsize=8)
        axes.grid(axis="x", color="0.9", linewidth=0.6)
        axes.set_axisbelow(True)
        axes.set_title(_panel_title(comparison, metric, rows), fontsize=9, loc="left")
    grid[-1, 0].set_xlabel(f"difference from {control}, percentage points", fontsize=8)
    handles = [
        lines.Line2D([], [], linestyle="none", marker="o", color="0.3", markerfacecolor="0.3"),
        lines.Line2D([], [], linestyle="none", marker="o", color="0.3", markerfacecolor="white"),
    ]
    figure.legend(
        handles,
        [f"differs from {control}", "no significant difference"],
        loc="outside lower center",
        ncols=2,
        fontsize=8,
        frameon=False,
    )
    return figure


def _level(value: float) -> str:
    """``97.5 %``, ``95 %``."""
    return f"{round(100 * value, 4):g} %"


def _title(comparison: Comparison, plotted: list[dict[str, Any]]) -> list[str]:
    # Rounded: the same level computed two ways is one level.
    levels = {
        round(row["interval_level"] if row.get("interval_level") is not None else comparison.confidence, 10)
        for row in plotted
    }
    if len(levels) > 1:
        intervals = "intervals at each row's adjusted level (see the table)"
    else:
        intervals = f"with {_level(next(iter(levels), comparison.confidence))} intervals"
    adjusted = "unadjusted" if comparison.correction == "none" else f"{comparison.correction}-adjusted"
    lines = [
        f"{comparison.channel}: difference from {comparison.control} in percentage points, {intervals}",
        f"filled: differs from {comparison.control} ({adjusted}); hollow: no significant difference",
    ]
    if comparison.sample_ratio is not None and comparison.sample_ratio.mismatch:
        lines.append("SAMPLE RATIO MISMATCH: not judged")
    return lines


def _denominators(channel: str) -> dict[str, str]:
    from airflow_provider_braze.comparison import channel_metrics

    return {metric: base for metric, (_, base, _) in channel_metrics(channel).items()}


def _panel_title(comparison: Comparison, metric: str, rows: list[dict[str, Any]]) -> str:
    """``clicks (of delivered) (guardrail) — difference from control (n=10,000), points``."""
    name = metric
    base = _denominators(comparison.channel).get(metric)
    if base is not None:
        name += f" (of {base})"
    roles = {row.get("role") or "primary" for row in rows}
    # "primary" is said only when a primary metric was chosen (without one, every metric is).
    if len(roles) == 1 and (roles != {"primary"} or getattr(comparison, "primary_metric", None)):
        name += f" ({roles.pop()})"
    control = next(
        (r for r in comparison.rows if r["variant"] == comparison.control and r["metric"] == metric), None
    )
    n = f" ({_n(control['base'])})" if control is not None and control["base"] is not None else ""
    return f"{name} — difference from {comparison.control}{n}, points"


def _row_label(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """``b (n=12,345)``; a role when the panel's rows do not share one (``b (n=500) [guardrail]``)."""
    label = str(row["variant"])
    if row["base"] is not None:
        label += f" ({_n(row['base'])})"
    roles = {r.get("role") or "primary" for r in rows}
    role = row.get("role") or "primary"
    if len(roles) > 1 and role != "primary":
        label += f" [{role}]"
    return label


def _n(base: float) -> str:
    return f"n={base:,.0f}"
