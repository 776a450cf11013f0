"""Bar charts drawn on the server as SVG: no script, readable by screen readers.

The geometry is computed here and the template only writes it out; the SVG scales to the
screen's width through its viewBox (static/css/portal.css), so a phone shows the same
chart as a desktop without sideways scrolling. Each bar carries its own `<title>` (shown
on hover, read by screen readers) and the page lists the same figures in a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

WIDTH, HEIGHT = 600, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 14, 34
GRIDLINES = 4


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


def _nice_ceiling(value: Decimal) -> Decimal:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    power = Decimal(10) ** (value.adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def bar_chart(bars, title: str, tick: str | None = None) -> dict:
    """Template context of one chart of `portal.customers.Bar`s (oldest first).

    `tick`: the strftime format of the axis labels (default: month names up to 12 bars,
    else day and month)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((b.kwh for b in bars if b.kwh is not None), default=Decimal(0))
    top = _nice_ceiling(peak)
    slot = plot_w / max(len(bars), 1)
    rects, labels = [], []
    every = max(1, len(bars) // 6)
    for i, bar in enumerate(bars):
        x = LEFT + i * slot
        if bar.kwh is not None:
            height = float(bar.kwh / top) * plot_h
            rects.append(
                Rect(
                    round(x + slot * 0.15, 2),
                    round(TOP + plot_h - height, 2),
                    round(slot * 0.7, 2),
                    round(height, 2),
                    f"{bar.label}: {bar.kwh:.1f} kWh",
                )
            )
        if i % every == 0:
            fmt = tick or ("%b" if len(bars) <= 12 else "%d %b")
            text = bar.start.strftime(fmt)
            labels.append(Tick(round(x + slot / 2, 2), HEIGHT - 10, text))
    gridlines = [
        Tick(LEFT - 4, round(TOP + plot_h - plot_h * n / GRIDLINES, 2), f"{top * n / GRIDLINES:g}")
        for n in range(GRIDLINES + 1)
    ]
    return {
        "title": title,
        "bars": bars,
        "rects": rects,
        "labels": labels,
        "gridlines": gridlines,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "empty": not rects,
        "total": sum((b.kwh for b in bars if b.kwh is not None), Decimal(0)),
    }
