"""Import and export of the meter registry as CSV, XLSX and XML (one column set for all).

`columns` is the column spec; `formats` reads and writes each format; `importer` validates
every row and applies all or none; `exporter` streams the user's scoped meters. `catalogue`
does the same for the meter models and their channels (one row per channel).
"""

from .catalogue import (
    CATALOGUE_COLUMNS,
    catalogue_export_response,
    import_catalogue,
    record_catalogue_export,
    write_catalogue,
)
from .columns import COLUMNS, EXPORT_COLUMNS
from .exporter import export_response, filter_meters, record_export, write_export
from .formats import CONTENT_TYPES, FORMATS, FileError, Record
from .importer import ImportResult, RowError, guess_format, import_records, import_registry

__all__ = [
    "CATALOGUE_COLUMNS", "COLUMNS", "CONTENT_TYPES", "EXPORT_COLUMNS", "FORMATS", "FileError",
    "ImportResult", "Record", "RowError", "catalogue_export_response", "export_response",
    "filter_meters", "guess_format", "import_catalogue", "import_records", "import_registry",
    "record_catalogue_export", "record_export", "write_catalogue", "write_export",
]  # fmt: skip
