"""Table reports as PDF (reportlab): a title, the report's graph, then the rows page by page.

The graph is the page's (`reports.charts.Series`: one line per series over the same x
labels), drawn with reportlab.graphics; rows are drawn straight onto the canvas as they
arrive, so a long report keeps a flat memory footprint. Columns get equal shares of the
page's width; a cell is cut to fit (the CSV/XLSX carry full text).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from reportlab.graphics import renderPDF
from reportlab.graphics.charts.legends import LineLegend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas

from .pdf import PALETTE

ROW_H = 4.6 * mm
FONT, BOLD, SIZE = "Helvetica", "Helvetica-Bold", 7


def graph(series: Sequence, labels: Sequence[str], unit: str, width: float, height: float):
    """Lines of `series` (`charts.Series`) over x = 0..n-1, labelled with a few `labels`."""
    drawing = Drawing(width, height)
    lines = [[(i, float(v)) for i, v in enumerate(s.values) if v is not None] for s in series]
    if not any(lines):
        drawing.add(String(10, height / 2, "No figures in this period.", fontSize=10))
        return drawing
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 40, 30, width - 60, height - 50
    plot.data = [line or [(0, 0)] for line in lines]
    for i, _line in enumerate(lines):
        plot.lines[i].strokeColor = PALETTE[i % len(PALETTE)]
        plot.lines[i].strokeWidth = 1
    n = max(len(labels) - 1, 1)
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, n
    every = max(1, -(-len(labels) // 6))
    plot.xValueAxis.valueSteps = list(range(0, len(labels), every))
    plot.xValueAxis.labelTextFormat = lambda x: labels[int(x)] if 0 <= int(x) < len(labels) else ""
    plot.xValueAxis.labels.fontSize = 7
    plot.yValueAxis.labels.fontSize = 7
    drawing.add(plot)
    legend = LineLegend()
    legend.x, legend.y = 40, height - 8
    legend.fontSize = 7
    legend.colorNamePairs = [
        (PALETTE[i % len(PALETTE)], f"{s.name} ({unit})") for i, s in enumerate(series)
    ]
    drawing.add(legend)
    return drawing


def write_pdf(
    path,
    title: str,
    subtitle: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[dict],
    value: Callable,
    chart: tuple | None = None,
) -> None:
    """Write the report: `chart` = (series, labels, unit) or None; `value(key, row)` a cell."""
    page_w, page_h = landscape(A4)
    margin = 12 * mm
    c = pdf_canvas.Canvas(str(path), pagesize=(page_w, page_h))
    c.setTitle(title)
    c.setFont(BOLD, 13)
    c.drawString(margin, page_h - margin - 4 * mm, title)
    c.setFont(FONT, 8)
    c.drawString(margin, page_h - margin - 9 * mm, subtitle)
    y = page_h - margin - 12 * mm
    if chart is not None:
        height = 70 * mm
        drawing = graph(*chart, page_w - 2 * margin, height)
        renderPDF.draw(drawing, c, margin, y - height)
        y -= height + 4 * mm
    width = (page_w - 2 * margin) / max(len(columns), 1)

    def heading(y: float) -> float:
        c.setFont(BOLD, SIZE)
        for i, (_key, text) in enumerate(columns):
            c.drawString(margin + i * width, y, _fit(text, width))
        c.setStrokeColor(colors.grey)
        c.line(margin, y - 1.2 * mm, page_w - margin, y - 1.2 * mm)
        c.setFont(FONT, SIZE)
        return y - ROW_H

    y = heading(y - ROW_H)
    for row in rows:
        if y < margin:
            c.showPage()
            y = heading(page_h - margin - ROW_H)
        for i, (key, _text) in enumerate(columns):
            cell = value(key, row)
            c.drawString(margin + i * width, y, _fit("" if cell is None else str(cell), width))
        y -= ROW_H
    c.save()


def _fit(text: str, width: float) -> str:
    """Cut `text` to what fits a column (about 0.5 em per character at SIZE)."""
    most = max(int(width / (SIZE * 0.52)), 3)
    return text if len(text) <= most else text[: most - 1] + "…"
