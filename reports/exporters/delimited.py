"""CSV export, streamed in batches of rows."""

from __future__ import annotations

import io
from collections.abc import Iterator

from amisite.tabular import CsvWriter

from .rows import COLUMNS, Progress, as_text, counted

BATCH = 1000


def stream(query, progress: Progress = None) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(COLUMNS)
    n = 0
    for row in counted(query.rows(), progress):
        writer.writerow(as_text(row))
        n += 1
        if n % BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
