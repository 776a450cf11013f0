"""Line charts of report series drawn on the server as SVG (no script, CSP-safe).

The reports' graphs (energy balance per interval/day/month, later load-duration curves) are
a few polylines over one x axis; the geometry is computed here, `reports/_line_chart.html`
writes it out, and the SVG scales through its viewBox (`svg.chart` in static/css/ami.css), so
390 px phones show the whole graph without scrolling sideways. Each series has a legend
entry, and the page shows the same figures as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.text import slugify

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 10, 14, 34
GRIDLINES = 4
ROUND_STEPS = (1, 2, Decimal("2.5"), 5, 10)


@dataclass(frozen=True)
class Series:
    """One line: its legend text, its CSS class (colour), a value (or None) per x."""

    name: str
    css: str
    values: Sequence[Decimal | float | None]


def axis_bounds(low: Decimal, high: Decimal) -> tuple[Decimal, Decimal]:
    """A round axis range holding [low, high] (0 always inside it)."""

    def round_up(value: Decimal) -> Decimal:
        if value <= 0:
            return Decimal(0)
        power = Decimal(10) ** value.adjusted()
        return next(step * power for step in ROUND_STEPS if value <= step * power)

    top = round_up(high)
    bottom = -round_up(-low)
    if top == bottom:
        top = bottom + 1
    return bottom, top


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str) -> dict:
    """Template context of one chart: polylines, gridlines with values, a few x labels
    (`labels`: one short text per x; about six are shown)."""
    values = [Decimal(str(v)) for s in series for v in s.values if v is not None]
    bottom, top = axis_bounds(min(values, default=Decimal(0)), max(values, default=Decimal(1)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def y_of(value) -> float:
        return round(TOP + plot_h * float((top - Decimal(str(value))) / (top - bottom)), 2)

    lines = []
    for s in series:
        runs, run = [], []
        for i, value in enumerate(s.values):
            if value is None:  # a gap breaks the line
                if run:
                    runs.append(" ".join(run))
                run = []
                continue
            run.append(f"{round(LEFT + i * step, 2)},{y_of(value)}")
        if run:
            runs.append(" ".join(run))
        lines.append({"name": s.name, "css": s.css, "runs": runs})
    every = max(1, -(-len(labels) // 6))
    ticks = [
        {"x": round(LEFT + i * step, 2), "text": label}
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    gridlines = [
        {"y": y_of(bottom + (top - bottom) * n / GRIDLINES),
         "text": f"{(bottom + (top - bottom) * n / GRIDLINES).normalize():f}"}
        for n in range(GRIDLINES + 1)
    ]  # fmt: skip
    return {
        "id": slugify(title) or "chart",
        "title": title,
        "unit": unit,
        "lines": lines,
        "ticks": ticks,
        "gridlines": gridlines,
        "zero": y_of(0),
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "label_y": HEIGHT - 10,
        "empty": not values,
    }
