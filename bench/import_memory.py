"""Peak memory of a registry import: N meters in one CSV through `import_registry`.

The web process imports uploaded registry files itself, so what an import holds at once is
what the web process grows by. This measures, in one process on a throwaway database, the
resident set before the import (Django set up, the file already in memory: the same-run
baseline) and the peak during it (Linux VmHWM, reset just before), for a dry run (read and
validate every row) and, with --apply, a real import (validate, then write every row).

    python bench/import_memory.py --rows 100000 [--apply] [--format csv|xlsx|xml]
    python bench/import_memory.py --quick      # 10,000 rows, dry run

Prints one JSON line per run: metric `peak_growth`, in MB over the baseline (the RSS just
before the import), with the peak and the time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402


def rss_mb() -> float:
    return _status("VmRSS")


def peak_mb() -> float:
    return _status("VmHWM")


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def registry_file(rows: int, fmt: str) -> bytes:
    header = ["serial", "manufacturer", "model", "organisation", "status", "host", "port"]
    lines = [[f"BENCH{i:08d}", "Acme", "AM550", "north", "active", "127.0.0.1", "4059"]
             for i in range(rows)]  # fmt: skip
    if fmt == "csv":
        return ("\n".join(",".join(cells) for cells in [header, *lines]) + "\n").encode()
    if fmt == "xml":
        body = "".join(
            "<meter>"
            + "".join(f"<{h}>{v}</{h}>" for h, v in zip(header, cells, strict=True))
            + "</meter>\n"
            for cells in lines
        )
        return f'<?xml version="1.0"?>\n<meters>\n{body}</meters>\n'.encode()
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("meters")
    for cells in [header, *lines]:
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", default="csv", choices=["csv", "xlsx", "xml"])
    parser.add_argument("--apply", action="store_true", help="also run the real import")
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    args = parser.parse_args()
    if args.quick:
        args.rows = 10_000

    url, name = server_url(), f"ami_bench_import_{os.getpid()}"
    setup_django(url, name, AMI_IMPORT_MAX_ROWS=str(args.rows))
    try:
        from accounts.models import Organisation, User
        from meters.models import Meter, MeterModel
        from meters.registry_io import import_registry

        org = Organisation.objects.create(name="North", code="north")
        MeterModel.objects.create(manufacturer="Acme", name="AM550", organisation=org)
        user = User.objects.create_superuser("bench", "bench@example.invalid", "x")
        data = registry_file(args.rows, args.format)
        for dry_run in [True, *([False] if args.apply else [])]:
            upload = io.BytesIO(data)
            upload.name = f"meters.{args.format}"
            before = rss_mb()
            reset_peak()
            started = time.perf_counter()
            result = import_registry(upload, args.format, user, dry_run=dry_run)
            seconds = time.perf_counter() - started
            peak = peak_mb()
            assert result.ok, result.errors[:3]
            print(json.dumps({
                "bench": "import_memory", "metric": "peak_growth", "value": round(peak - before, 1),
                "unit": "MB", "baseline": round(before, 1), "ratio": round(peak / before, 2),
                "peak_mb": round(peak, 1), "format": args.format, "rows": args.rows,
                "mode": "dry_run" if dry_run else "apply", "file_mb": round(len(data) / 2**20, 1),
                "seconds": round(seconds, 1), "meters_stored": Meter.objects.count(),
            }), flush=True)  # fmt: skip
    finally:
        drop_database(url, name)


if __name__ == "__main__":
    main()
