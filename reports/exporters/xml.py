"""XML export, streamed: one `<value>` element per row, written as the rows arrive."""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

from .rows import Progress, counted, local_time

BATCH = 500


def stream(query, title: str = "", progress: Progress = None) -> Iterator[bytes]:
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<meter-data resolution={quoteattr(query.resolution)} "
        f"start={quoteattr(query.start.isoformat())} end={quoteattr(query.end.isoformat())}"
        f" title={quoteattr(title)}>\n"
    ).encode()
    parts: list[str] = []
    for row in counted(query.rows(), progress):
        attrs = [
            f"meter={quoteattr(row.serial)}",
            f"obis={quoteattr(row.obis)}",
            f"time={quoteattr(local_time(row))}",
            f"unit={quoteattr(row.unit)}",
        ]
        if row.flags or row.head_end:
            attrs.append(f"quality={quoteattr(row.quality)}")
        if row.count is not None:
            attrs.append(f'count="{row.count}"')
        text = "" if row.value is None else escape(str(row.value))
        parts.append(f"  <value {' '.join(attrs)}>{text}</value>\n")
        if len(parts) >= BATCH:
            yield "".join(parts).encode()
            parts = []
    parts.append("</meter-data>\n")
    yield "".join(parts).encode()
