"""The comparison chart: a forest plot of the tested differences, read back from its Figure."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from airflow_provider_braze.charts import ChartUnavailable, comparison_figure, draw_comparison
from airflow_provider_braze.comparison import Comparison, VariantTotals, compare


def email(
    variant: str, sent: int, opens: int, clicks: int, conversions: int | None, **more: Any
) -> VariantTotals:
    counts: dict[str, Any] = {
        "sent": sent,
        "delivered": sent - 40,
        "unique_opens": opens,
        "unique_clicks": clicks,
        "unique_recipients": sent,
        "conversions": conversions,
        "revenue": None,
        **more,
    }
    return VariantTotals(variant, "camp", f"send-{variant}", None, "email", counts, 1)


def twelve(conversions: bool = True) -> Comparison:
    """The control and 11 variants of different sizes; some clearly better or worse on opens and
    clicks, the rest alike."""
    variants = [email("control", 10_000, 2500, 300, 100 if conversions else None)]
    for index in range(1, 12):
        sent = 10_000 + 1234 * index
        effect = {3: 600, 7: -500, 10: 450}.get(index, 0)
        variants.append(
            email(
                f"variant_{index:02d}",
                sent,
                sent // 4 + effect,
                3 * sent // 100 + effect // 4,
                sent // 100 + index if conversions else None,
            )
        )
    return compare(variants, control="control")


def panels(comparison: Comparison) -> list[Any]:
    return list(comparison_figure(comparison).axes)


def drawn(axes: Any) -> dict[str, dict[str, Any]]:
    """What a panel shows per variant: its tick label, its estimate's x and marker, its interval's
    ends, its colour; keyed by variant (the tick label up to " (")."""
    labels = {round(tick.get_position()[1]): tick.get_text() for tick in axes.get_yticklabels()}
    found: dict[str, dict[str, Any]] = {}
    for line in axes.get_lines():
        kind = line.get_label()
        if kind not in {"_estimate", "_interval"}:
            continue
        ys = set(line.get_ydata())
        assert len(ys) == 1, "an estimate or interval is one horizontal row"
        label = labels[round(ys.pop())]
        entry = found.setdefault(label.split(" (")[0], {"label": label})
        if kind == "_estimate":
            (entry["x"],) = line.get_xdata()
            entry["filled"] = line.get_markerfacecolor() != "white"
            entry["colour"] = to_hex(line.get_markeredgecolor())
        else:
            entry["interval"] = tuple(line.get_xdata())
            entry["interval_colour"] = to_hex(line.get_color())
    return found


def test_one_panel_per_tested_metric_in_the_tables_order() -> None:
    comparison = twelve(conversions=False)  # no conversions reported: nothing to test there
    titles = [axes.get_title(loc="left") for axes in panels(comparison)]
    assert titles == [
        "delivered (of sent) — difference from control (n=10,000), points",
        "opens (of delivered) (diagnostic) — difference from control (n=9,960), points",
        "clicks (of delivered) — difference from control (n=9,960), points",
    ]
    assert len(panels(twelve())) == 4


def test_each_variant_is_drawn_at_its_difference_with_its_interval() -> None:
    comparison = twelve()
    figure_panels = panels(comparison)
    metrics = list(dict.fromkeys(r["metric"] for r in comparison.rows))
    assert len(figure_panels) == len(metrics)
    for axes, metric in zip(figure_panels, metrics, strict=True):
        rows = [r for r in comparison.rows if r["metric"] == metric and r["difference"] is not None]
        shown = drawn(axes)
        # The control has no difference and no row; the others in the table's order, top down.
        assert list(shown) == [r["variant"] for r in rows]
        assert [t.get_text().split(" (")[0] for t in axes.get_yticklabels()] == [r["variant"] for r in rows]
        assert axes.yaxis_inverted()
        for row in rows:
            entry = shown[row["variant"]]
            assert entry["x"] == pytest.approx(100 * row["difference"], rel=1e-12)
            assert entry["interval"] == pytest.approx(
                (100 * row["difference_low"], 100 * row["difference_high"]), rel=1e-12
            )
            assert entry["filled"] is row["significant"]
    opens = drawn(figure_panels[1])
    # Both directions are tested and drawn: some filled (significant), some hollow.
    assert opens["variant_03"]["filled"]
    assert opens["variant_03"]["x"] > 0
    assert opens["variant_07"]["filled"]
    assert opens["variant_07"]["x"] < 0
    assert not opens["variant_01"]["filled"]


def test_eleven_variants_get_eleven_colours_kept_across_panels() -> None:
    comparison = twelve()
    by_panel = [drawn(axes) for axes in panels(comparison)]
    colours = {variant: entry["colour"] for variant, entry in by_panel[0].items()}
    assert len(colours) == 11
    assert len(set(colours.values())) == 11
    for shown in by_panel:
        assert {variant: entry["colour"] for variant, entry in shown.items()} == colours
        assert all(entry["interval_colour"] == entry["colour"] for entry in shown.values())


def test_tick_labels_give_each_variants_n() -> None:
    comparison = twelve()
    for axes in panels(comparison):
        metric = axes.get_title(loc="left").split(" (")[0]
        bases = {r["variant"]: r["base"] for r in comparison.rows if r["metric"] == metric}
        for variant, entry in drawn(axes).items():
            assert entry["label"] == f"{variant} (n={bases[variant]:,.0f})"
    assert drawn(panels(comparison)[1])["variant_11"]["label"] == "variant_11 (n=23,534)"


def overlapping(boxes: list[Any]) -> list[tuple[int, int]]:
    return [
        (i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])
    ]


@pytest.mark.parametrize("conversions", [False, True], ids=["3 metrics", "4 metrics"])
def test_twelve_variants_labels_do_not_overlap(conversions: bool) -> None:
    figure = comparison_figure(twelve(conversions))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    for axes in figure.axes:
        labels = [label.get_window_extent(renderer) for label in axes.get_yticklabels()]
        assert len(labels) == 11
        assert overlapping(labels) == []
    # Nor do the panels (with their titles and tick labels) overlap each other or the title.
    boxes = [axes.get_tightbbox(renderer) for axes in figure.axes]
    suptitle = figure._suptitle
    assert suptitle is not None
    assert overlapping([suptitle.get_window_extent(renderer), *boxes]) == []


def test_every_panel_has_a_zero_line() -> None:
    for axes in panels(twelve()):
        zero = [
            line
            for line in axes.get_lines()
            if list(line.get_xdata()) == [0, 0] and list(line.get_ydata()) == [0, 1]
        ]
        assert len(zero) == 1
        low, high = axes.get_xlim()
        assert low < 0 < high


def test_the_title_names_one_interval_level_or_says_they_differ() -> None:
    comparison = twelve()
    title = comparison_figure(comparison).get_suptitle()
    # Holm judges each row at its own level: the table says which.
    assert "intervals at each row's adjusted level (see the table)" in title
    assert "filled: differs from control (holm-adjusted)" in title
    assert "SAMPLE RATIO MISMATCH" not in title
    unadjusted = compare(
        [email("control", 10_000, 2500, 300, 100), email("a", 10_000, 2600, 330, 90)],
        control="control",
        correction="none",
    )
    assert "with 95 % intervals" in comparison_figure(unadjusted).get_suptitle()

    same = dataclasses.replace(comparison, rows=[{**r, "interval_level": 0.975} for r in comparison.rows])
    assert "with 97.5 % intervals" in comparison_figure(same).get_suptitle()

    levels = [0.9875, 0.99, 0.975]
    differing = dataclasses.replace(
        comparison,
        rows=[{**r, "interval_level": levels[index % 3]} for index, r in enumerate(comparison.rows)],
    )
    title = comparison_figure(differing).get_suptitle()
    assert "intervals at each row's adjusted level (see the table)" in title
    assert "% intervals" not in title


def test_a_sample_ratio_mismatch_is_in_the_title() -> None:
    variants = [
        email("control", 10_000, 2500, 300, 100),
        email("a", 50_000, 12_600, 1500, 500),
        email("b", 45_000, 14_400, 2700, 450),
    ]
    planned = {"control": 0.1, "a": 0.45, "b": 0.45}
    comparison = compare(variants, control="control", planned_shares=planned)
    assert comparison.sample_ratio is not None
    assert comparison.sample_ratio.mismatch
    figure = comparison_figure(comparison)
    assert "SAMPLE RATIO MISMATCH: not judged" in figure.get_suptitle()
    # Nothing is judged, so nothing is filled.
    assert not any(entry["filled"] for axes in figure.axes for entry in drawn(axes).values())


def test_guardrail_metrics_are_labelled_as_such() -> None:
    comparison = twelve()
    roles = {"opens": "primary", "clicks": "secondary", "delivered": "guardrail"}
    with_roles = dataclasses.replace(
        comparison, rows=[{**r, "role": roles.get(r["metric"], "diagnostic")} for r in comparison.rows]
    )
    titles = [axes.get_title(loc="left").split(" — ")[0] for axes in panels(with_roles)]
    assert titles == [
        "delivered (of sent) (guardrail)",
        "opens (of delivered)",
        "clicks (of delivered) (secondary)",
        "conversions (of recipients) (diagnostic)",
    ]


def three() -> Comparison:
    return compare(
        [email("control", 2000, 500, 60, 20), email("a", 2000, 505, 64, 21), email("b", 2000, 640, 120, 22)],
        control="control",
    )


def test_the_same_comparison_draws_the_same_svg() -> None:
    first = draw_comparison(three(), "svg")
    assert first == draw_comparison(three(), "svg")
    assert b"<dc:date>" not in first
    assert first.lstrip().startswith(b"<?xml")


def test_without_matplotlib_there_is_no_figure_even_after_it_was_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    comparison = three()
    comparison_figure(comparison)  # matplotlib and its submodules are now in sys.modules
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(ChartUnavailable, match=r"install airflow-provider-braze-rest\[charts\]"):
        comparison_figure(comparison)
    with pytest.raises(ChartUnavailable):
        draw_comparison(comparison, "png")


def test_a_chosen_primary_metric_and_harm_guardrails_are_labelled_with_their_bases() -> None:
    counts = {"unsubscribes": 20, "bounces": 0, "reported_spam": 0}
    variants = [
        email("control", 20_000, 5000, 600, 100, **counts),
        email("b", 20_000, 5000, 800, 100, **{**counts, "unsubscribes": 60}),
    ]
    comparison = compare(variants, control="control", primary_metric="clicks", guardrails=["unsubscribes"])
    titles = [axes.get_title(loc="left").split(" — ")[0] for axes in panels(comparison)]
    assert "clicks (of delivered) (primary)" in titles
    assert "unsubscribes (of delivered) (guardrail)" in titles
