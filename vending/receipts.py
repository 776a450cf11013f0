"""Receipts of a sale: a PDF (reportlab) and a plain-text version for thermal printers.

The text receipt is laid out for 80 mm thermal printers, which print 48 columns in their
standard font; every line is at most `WIDTH` characters (well inside 80 columns). A
receipt printed after the first one says REPRINT and shows the stored token unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from amisite import display

from .choices import SaleStatus
from .models import Sale

WIDTH = 48


def _pair(label: str, value: str) -> str:
    value = str(value)
    room = WIDTH - len(label) - 1
    return f"{label} {value[-room:].rjust(room)}"


def _centre(text: str) -> str:
    return text[:WIDTH].center(WIDTH).rstrip()


def receipt_lines(sale: Sale) -> list[str]:
    """The receipt, line by line (the same content in the text and the PDF version)."""
    token = sale.credit_token
    rule = "-" * WIDTH
    lines = [_centre(sale.organisation.name), _centre("PREPAID ELECTRICITY"), ""]
    if sale.reprint_count:
        lines.append(_centre(f"*** REPRINT {sale.reprint_count} ***"))
    if sale.status == SaleStatus.REVERSED:
        lines.append(_centre("*** REVERSED ***"))
    where = sale.station.code if sale.station else "online payment"
    lines += [
        _pair("Receipt", str(sale.reference)),
        _pair("Date", display.when(sale.created_at)),
        _pair("Station", where),
    ]
    if sale.offline_reference:
        lines += [_pair("Sold offline, ref", sale.offline_reference),
                  _pair("Uploaded", display.when(sale.recorded_at))]  # fmt: skip
    if sale.payment_reference:
        lines.append(_pair("Payment ref", sale.payment_reference))
    if sale.sold_by:
        lines.append(_pair("Sold by", sale.sold_by.get_username()))
    account = sale.account
    lines += [
        _pair("Customer", account.customer.account_number),
        _pair("Name", account.customer.name),
        _pair("Meter", account.meter_number),
        _pair("Tariff", f"{sale.tariff.code} {sale.tariff.name}"),
        rule,
        _pair("Amount paid", display.money(sale.amount_paid, sale.currency)),
    ]
    if sale.credit_used:
        lines.append(_pair("Credit brought forward", display.money(sale.credit_used)))
    lines += [
        _pair("Debt recovered", display.money(sale.debt_recovered)),
        _pair("Fixed charge", display.money(sale.fixed_charge)),
    ]
    owed = Decimal(sale.breakdown.get("fixed_charge_debt", "0"))
    if owed:
        lines.append(_pair("Fixed charge owed as debt", display.money(owed)))
    owed = Decimal(sale.breakdown.get("energy_debt", "0"))
    if owed:
        lines.append(_pair("Energy not covered, owed", display.money(owed)))
    lines += [
        _pair("Tax", display.money(sale.tax)),
        _pair("Energy", display.money(sale.energy_charge)),
        _pair("Energy credited", display.energy_kwh(sale.energy_kwh)),
        _pair("Carried forward (not credited)", display.money(sale.credit_carried)),
        rule,
        "TOKEN",
        _centre(token.grouped if token else "-"),
        _pair("TID", token.tid if token else "-"),
        rule,
        _centre("Enter the 20 digits on your meter keypad."),
    ]
    reversal = getattr(sale, "reversal", None) if sale.status == SaleStatus.REVERSED else None
    if reversal is not None:
        lines += [rule, *reversal_lines(reversal)]
    return lines


def reversal_lines(reversal) -> list[str]:
    """What a reversal really did: STS cannot recall a token, so the receipt says so."""
    lines = [
        _centre("REVERSAL"),
        _pair("Reversed", display.when(reversal.created_at)),
        _pair("Reason", reversal.reason),
    ]
    if reversal.token_entered:
        lines += [
            "Token was entered in the meter",
            f"({reversal.evidence[: WIDTH - 2]})",
            _pair("Energy charged as debt", display.money(reversal.compensating_debt)),
        ]
    elif reversal.token_entered is False:
        lines += [
            "Token reported NOT entered",
            f"({reversal.evidence[: WIDTH - 2]})",
            "The meter would still accept it once; if it",
            "is entered, its energy is owed as debt.",
        ]
    where = (
        f"drawer {reversal.refund_shift.station.code}" if reversal.refund_shift_id
        else reversal.refund_reference or "-"
    )  # fmt: skip
    refunded = display.money(reversal.refund_amount)
    lines += [_pair("Refunded", refunded), _pair("Refund paid at", where)]
    for label, value in (
        ("Debt owed again", reversal.debt_restored),
        ("Fixed charge owed as debt", reversal.fixed_charge_debt),
        ("Credit from re-pricing", reversal.reprice_credit),
    ):  # fmt: skip
        if value:
            lines.append(_pair(label, display.money(value)))
    return lines


def text_receipt(sale: Sale) -> str:
    lines = receipt_lines(sale)
    assert all(len(line) <= WIDTH for line in lines)
    return "\n".join(lines) + "\n"


def pdf_receipt(sale: Sale) -> bytes:
    """A one-page PDF (80 mm wide), uncompressed so its text is searchable as is."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    lines = receipt_lines(sale)
    height = (len(lines) + 6) * 10
    buffer = BytesIO()
    pdf = canvas.Canvas(
        buffer, pagesize=(80 * mm, height), pageCompression=0, invariant=1,
        initialFontName="Courier", initialFontSize=7,
    )  # fmt: skip
    pdf.setTitle(f"Receipt {sale.reference}")
    y = height - 20
    token = sale.credit_token
    for line in lines:
        if token and line.strip() == token.grouped:
            pdf.setFont("Courier-Bold", 11)
            pdf.drawCentredString(40 * mm, y - 2, token.grouped)
            pdf.setFont("Courier", 7)
            y -= 16
            continue
        pdf.drawString(4 * mm, y, line)
        y -= 10
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
