"""PDF export with reportlab: a graph (reportlab.graphics) then the rows, page by page.

Rows are drawn straight onto the canvas as they arrive (no flowable list held in memory);
the file is written to disk by the caller's path. Very long results are cut at
`MAX_ROWS` with a note: the XLSX export carries everything.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reportlab.graphics import renderPDF
from reportlab.graphics.charts.legends import LineLegend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas

from amisite.display import when
from meters.store import query as engine

from .rows import Progress, as_text, counted

MAX_ROWS = 100_000
GRAPH_SERIES = 6
GRAPH_POINTS = 400
HEX = ("#0b6bcb", "#1a7f37", "#8e44ad", "#b35900", "#00838f", "#c62828")
PALETTE = [colors.HexColor(c) for c in HEX]
HEADINGS = ("Meter", "OBIS", "Quantity", "Time", "Value", "Unit", "Quality", "Count")
COLUMN_X = (0, 28, 62, 112, 160, 192, 210, 250)  # mm from the left margin
ROW_H = 4.6 * mm


def graph(query, width: float, height: float) -> Drawing:
    """The first few (meter, channel) series of the result as lines over time: one panel per
    unit and kind (a cumulative register's MWh would flatten the intervals' Wh)."""
    panels: dict[str, dict] = {}
    for n, (meter, channel) in enumerate(query.segments()):
        if n >= GRAPH_SERIES:
            break
        points = [
            (p.ts.timestamp(), float(p.value))
            for p in engine.series(meter.pk, channel, query.start, query.end, query.resolution)
            if p.value is not None
        ]
        step = max(1, len(points) // GRAPH_POINTS)
        if points:
            key, label = engine.panel_of(channel)
            panel = panels.setdefault(key, {"label": label, "lines": [], "names": []})
            panel["lines"].append(points[::step])
            panel["names"].append(f"{meter.serial} {channel.name} ({channel.unit})")
    drawing = Drawing(width, height)
    if not panels:
        drawing.add(String(10, height / 2, "No values in this range.", fontSize=10))
        return drawing
    every = [x for panel in panels.values() for line in panel["lines"] for x, _ in line]
    lo, hi = min(every), max(max(every), min(every) + 1)
    slot = height / len(panels)
    colour = 0
    for k, panel in enumerate(panels.values()):
        bottom = height - (k + 1) * slot
        plot = LinePlot()
        plot.x, plot.y = 50, bottom + 24
        plot.width, plot.height = width - 70, slot - 50
        plot.data = panel["lines"]
        pairs = []
        for i, name in enumerate(panel["names"]):
            plot.lines[i].strokeColor = PALETTE[colour % len(PALETTE)]
            plot.lines[i].strokeWidth = 0.8
            pairs.append((PALETTE[colour % len(PALETTE)], name))
            colour += 1
        plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = lo, hi
        plot.xValueAxis.valueSteps = [lo + (hi - lo) * s / 5 for s in range(6)]
        plot.xValueAxis.labelTextFormat = _short_time
        plot.xValueAxis.labels.fontSize = 7
        plot.yValueAxis.labels.fontSize = 7
        plot.yValueAxis.labelTextFormat = _grouped
        drawing.add(plot)
        drawing.add(String(50, bottom + slot - 12, panel["label"], fontSize=8,
                           fontName="Helvetica-Bold"))  # fmt: skip
        legend = LineLegend()
        legend.x, legend.y = 200, bottom + slot - 8
        legend.fontSize = 7
        legend.columnMaximum = 2
        legend.colorNamePairs = pairs
        drawing.add(legend)
    return drawing


def _grouped(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def _short_time(epoch: float) -> str:
    return when(datetime.fromtimestamp(epoch, UTC))


def write(query, path: str, title: str = "", progress: Progress = None) -> None:
    page_w, page_h = landscape(A4)
    margin = 12 * mm
    c = pdf_canvas.Canvas(path, pagesize=(page_w, page_h), pageCompression=1)
    c.setTitle(title or "Meter data")
    c.setAuthor("AMI head-end")
    c.setFont("Helvetica-Bold", 14)
    c.drawString(margin, page_h - margin - 4 * mm, title or "Meter data")
    c.setFont("Helvetica", 9)
    c.drawString(
        margin,
        page_h - margin - 10 * mm,
        f"{when(query.start)} to {when(query.end)} · resolution {query.resolution}"
        f" · channels {', '.join(query.obis)}",
    )
    drawing = graph(query, page_w - 2 * margin, page_h - 2 * margin - 20 * mm)
    renderPDF.draw(drawing, c, margin, margin)
    c.showPage()

    page = [1]

    def header():
        c.setFont("Helvetica-Bold", 8)
        y = page_h - margin
        for x, name in zip(COLUMN_X, HEADINGS, strict=True):
            c.drawString(margin + x * mm, y, name)
        c.line(margin, y - 1.5 * mm, page_w - margin, y - 1.5 * mm)
        c.setFont("Helvetica", 8)
        return y - ROW_H - 1 * mm

    y = header()
    written = 0
    for row in counted(query.rows(), progress):
        if written >= MAX_ROWS:
            c.setFont("Helvetica-Oblique", 8)
            c.drawString(margin, y, f"Cut at {MAX_ROWS} rows: the XLSX export has them all.")
            break
        if y < margin:
            c.setFont("Helvetica", 7)
            c.drawRightString(page_w - margin, margin / 2, f"page {page[0]}")
            c.showPage()
            page[0] += 1
            y = header()
        for x, text in zip(COLUMN_X, as_text(row), strict=True):
            c.drawString(margin + x * mm, y, text[:40])
        y -= ROW_H
        written += 1
    if not written:
        c.drawString(margin, y, "No values in this range.")
    c.save()
