"""Table reports as XML, streamed: `<report>` with its columns, then one `<row>` per row.

    <report title="..." note="..." version="3">
      <columns><column key="serial" heading="meter"/>...</columns>
      <row><cell key="serial">90000001</cell>...</row>
    </report>

Cells are `cell(key, row)` as text (the CSV's values: exact decimals, ISO times in the
utility's zone); an empty cell is left out. Characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

BATCH = 500
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return NOT_XML.sub("", str(value))


def stream(
    title: str,
    note: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[dict],
    cell: Callable,
    attrs: dict | None = None,
) -> Iterator[bytes]:
    extra = "".join(f" {k}={quoteattr(_text(v))}" for k, v in (attrs or {}).items())
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f"<report title={quoteattr(_text(title))} note={quoteattr(_text(note))}{extra}>\n",
        "  <columns>",
        *(f"<column key={quoteattr(k)} heading={quoteattr(_text(h))}/>" for k, h in columns),
        "</columns>\n",
    ]
    yield "".join(head).encode()
    parts: list[str] = []
    for row in rows:
        cells = []
        for key, _heading in columns:
            value = cell(key, row)
            if value != "" and value is not None:
                cells.append(f"<cell key={quoteattr(key)}>{escape(_text(value))}</cell>")
        parts.append(f"  <row>{''.join(cells)}</row>\n")
        if len(parts) >= BATCH:
            yield "".join(parts).encode()
            parts = []
    parts.append("</report>\n")
    yield "".join(parts).encode()
