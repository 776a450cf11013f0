"""Mask secrets in exchange logs recorded before the frame recorder redacted them."""

from django.db import migrations

from collection.protocols.dlms import redact


def _meter_secrets(meter) -> list[bytes]:
    secrets = []
    try:
        if meter.password:
            secrets.append(meter.password.encode())
        for key in (meter.auth_key, meter.block_key):
            if key:
                secrets.append(bytes.fromhex(key))
    except Exception:  # noqa: BLE001 - an unreadable secret cannot be masked by value
        pass
    return secrets


def scrub_line_log(text: str, secrets) -> str:
    """One stored log ("<time> <tx|rx> <hex>" per line) with its secrets masked."""
    lines, frames = [], []
    for line in text.splitlines():
        parts = line.split(" ")
        try:
            frames.append((parts[1], bytes.fromhex(parts[2])))
            lines.append(parts)
        except (IndexError, ValueError):
            lines.append(None)  # not a frame line: dropped, it may hold anything
    scrubbed = iter(redact.scrub_recorded(frames, secrets))
    out = []
    for parts in lines:
        if parts is not None:
            out.append(f"{parts[0]} {parts[1]} {next(scrubbed).hex()}")
    return "\n".join(out)


def scrub(apps, schema_editor):
    MeterReadResult = apps.get_model("collection", "MeterReadResult")
    rows = MeterReadResult.objects.exclude(exchange_log="").select_related("meter")
    for result in rows.iterator(chunk_size=500):
        cleaned = scrub_line_log(result.exchange_log, _meter_secrets(result.meter))
        if cleaned != result.exchange_log:
            MeterReadResult.objects.filter(pk=result.pk).update(exchange_log=cleaned)


class Migration(migrations.Migration):
    dependencies = [("collection", "0003_read_job_interval")]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]
