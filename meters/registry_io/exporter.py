"""Export: the user's scoped meters, filtered like the meter list page, in any format."""

from __future__ import annotations

import tempfile

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from accounts import audit
from meters.filters import MeterFilter

from .formats import CONTENT_TYPES, FORMATS, FileError, csv_stream, xlsx_write, xml_stream


def filter_meters(user, params=None):
    """Meters the user may see, narrowed by the meter list's own filters, by serial."""
    queryset = MeterFilter(user, params or {}).queryset()
    return queryset.select_related(
        "meter_model", "service_point", "concentrator", "organisation", "endpoint"
    ).order_by("serial")


def _iterate(queryset):
    return queryset.iterator(chunk_size=2000)


class _Counted:
    def __init__(self, iterable):
        self.iterable, self.count = iterable, 0

    def __iter__(self):
        for item in self.iterable:
            self.count += 1
            yield item


def write_export(queryset, fmt: str, target) -> int:
    """Write the export to a file (CSV/XML: a text file; XLSX: a binary one); returns rows."""
    if fmt not in FORMATS:
        raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    meters = _Counted(_iterate(queryset))
    if fmt == "xlsx":
        xlsx_write(meters, target)
    else:
        for chunk in (csv_stream if fmt == "csv" else xml_stream)(meters):
            target.write(chunk)
    return meters.count


def record_export(user, fmt: str, rows: int, params=None) -> None:
    filters = {k: params.get(k) for k in ("q", "status") if params and params.get(k)}
    audit.record(
        "export",
        user=user,
        changes={"format": fmt, "rows": rows, "filters": filters},
        detail=f"meter registry export ({fmt}): {rows} meters",
    )


def export_response(user, fmt: str, params=None):
    """An HTTP response streaming the export; writes the 'export' audit row."""
    if fmt not in FORMATS:
        raise FileError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    queryset = filter_meters(user, params)
    rows = queryset.count()
    record_export(user, fmt, rows, params)
    filename = f"meters-{timezone.localdate().isoformat()}.{fmt}"
    if fmt == "xlsx":
        target = tempfile.TemporaryFile()
        xlsx_write(_iterate(queryset), target)
        target.seek(0)
        return FileResponse(
            target, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
        )
    stream = csv_stream if fmt == "csv" else xml_stream
    response = StreamingHttpResponse(
        (chunk.encode("utf-8") for chunk in stream(_iterate(queryset))),
        content_type=CONTENT_TYPES[fmt],
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
