"""Prepaid vending: STS accounts, vending keys, tariffs, stations, shifts, sales and tokens."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organisation
from accounts.scoping import CatalogueQuerySet, ScopedQuerySet
from amisite.encryption import EncryptedTextField
from meters.models import Customer, GridNode, Meter

from .choices import (
    Algorithm,
    BaseDate,
    KeyDerivation,
    MovementKind,
    SaleChannel,
    SaleStatus,
    ShiftStatus,
    StationKind,
    TariffKind,
    TokenPurpose,
)
from .scoping import StationScopedQuerySet
from .sts.errors import StsError
from .sts.pan import MeterPan

ZERO = Decimal("0")
NON_NEGATIVE = [MinValueValidator(ZERO)]
PERCENT = [MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))]
CURRENCY = RegexValidator(r"^[A-Z]{3}$", "an ISO 4217 code, e.g. ZAR")
SGC_RANGE = [MinValueValidator(0), MaxValueValidator(999_999)]
KRN_RANGE = [MinValueValidator(1), MaxValueValidator(9)]
TI_RANGE = [MinValueValidator(0), MaxValueValidator(99)]
KEY_TYPE_RANGE = [MinValueValidator(0), MaxValueValidator(3)]


class VendingKey(models.Model):
    """A supply group's vending key at one key revision; only the token engine reads it."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    sgc = models.PositiveIntegerField("supply group code", validators=SGC_RANGE)
    krn = models.PositiveSmallIntegerField("key revision number", validators=KRN_RANGE)
    label = models.CharField(max_length=100, blank=True)
    # Hex; 8 bytes for DKGA02, 20 bytes (160 bits) for DKGA04. Encrypted at rest.
    key = EncryptedTextField(help_text="hex; never displayed once stored")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    SECRET_FIELDS = ("key",)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["sgc", "krn"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "sgc", "krn"], name="vending_key_unique_per_revision"
            )
        ]

    def __str__(self) -> str:
        return f"SGC {self.sgc:06d} KRN {self.krn}" + (f" ({self.label})" if self.label else "")

    def clean(self):
        super().clean()
        try:
            raw = bytes.fromhex(str(self.key or "").replace(" ", ""))
        except ValueError:
            raise ValidationError({"key": "The vending key must be hexadecimal."}) from None
        if len(raw) not in (8, 20):
            raise ValidationError(
                {"key": "A vending key has 8 bytes (DKGA02) or 20 bytes (DKGA04)."}
            )


class Tariff(models.Model):
    """A prepaid electricity tariff of the catalogue: price, fixed charge, tax, debt recovery."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=TariffKind.choices, default=TariffKind.FLAT)
    currency = models.CharField(max_length=3, validators=[CURRENCY])
    price_per_kwh = models.DecimalField(
        max_digits=10, decimal_places=4, default=ZERO, validators=NON_NEGATIVE,
        help_text="flat tariffs: price of one kWh, tax excluded",
    )  # fmt: skip
    fixed_charge_monthly = models.DecimalField(
        max_digits=10, decimal_places=2, default=ZERO, validators=NON_NEGATIVE,
        help_text="collected on the first purchase of each calendar month, tax excluded",
    )  # fmt: skip
    tax_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=ZERO, validators=PERCENT
    )
    debt_recovery_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=ZERO, validators=PERCENT,
        help_text="share of each payment applied to the customer's debt until it is paid",
    )  # fmt: skip
    # Policies (docs/vending.md): what a payment pays first, what is owed, how long a
    # sale may be reversed.
    min_energy_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("50"), validators=PERCENT,
        help_text="share of each payment that always buys energy; fixed charge and debt "
        "recovery together take at most the rest",
    )  # fmt: skip
    fixed_charge_shortfall_to_debt = models.BooleanField(
        default=True,
        help_text="take what the payment can cover of the fixed charge and owe the rest as "
        "debt (off: a payment that cannot cover the fixed charge is refused)",
    )
    accrue_missed_fixed_charges = models.BooleanField(
        default=True,
        help_text="months without a purchase owe their fixed charge as debt at the next one",
    )
    reversal_window_days = models.PositiveSmallIntegerField(
        default=30, help_text="a sale may be reversed up to this many days after it was made"
    )
    active = models.BooleanField(default=True)

    objects = CatalogueQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="tariff_code_unique_per_organisation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class TariffBlock(models.Model):
    """One step of a block tariff: the price of kWh bought this month up to a threshold."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="blocks")
    up_to_kwh = models.DecimalField(
        max_digits=10, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="monthly kWh where this block ends; empty for the last, open-ended block",
    )  # fmt: skip
    price_per_kwh = models.DecimalField(max_digits=10, decimal_places=4, validators=NON_NEGATIVE)

    objects = ScopedQuerySet.as_manager()
    scope_field = "tariff__organisation"

    class Meta:
        ordering = ["tariff", models.F("up_to_kwh").asc(nulls_last=True)]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "up_to_kwh"], name="tariff_block_unique"),
            models.UniqueConstraint(
                fields=["tariff"],
                condition=Q(up_to_kwh__isnull=True),
                name="tariff_one_open_block",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        upper = f"≤ {self.up_to_kwh} kWh" if self.up_to_kwh is not None else "above"
        return f"{self.tariff.code} {upper} @ {self.price_per_kwh}"


class PrepaidAccount(models.Model):
    """A customer's prepaid supply through one STS meter, with the meter's token parameters."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="prepaid")
    meter = models.OneToOneField(Meter, on_delete=models.PROTECT, related_name="prepaid_account")
    service_point = models.ForeignKey(
        GridNode, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        editable=False,
    )  # fmt: skip
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="accounts")
    meter_number = models.CharField(
        max_length=13, help_text="STS meter number (11 or 13 digits with its Luhn check digit)"
    )
    pan = models.CharField("MeterPAN", max_length=18, editable=False, db_index=True)
    sgc = models.PositiveIntegerField("supply group code", validators=SGC_RANGE)
    krn = models.PositiveSmallIntegerField("key revision number", default=1, validators=KRN_RANGE)
    ti = models.PositiveSmallIntegerField("tariff index", default=1, validators=TI_RANGE)
    key_type = models.PositiveSmallIntegerField(default=2, validators=KEY_TYPE_RANGE)
    ea = models.CharField(
        "encryption algorithm", max_length=2, choices=Algorithm.choices, default=Algorithm.EA07
    )
    dkga = models.CharField(
        "key derivation", max_length=2, choices=KeyDerivation.choices,
        default=KeyDerivation.DKGA02,
    )  # fmt: skip
    base_date = models.PositiveSmallIntegerField(choices=BaseDate.choices, default=BaseDate.Y2014)
    # The last TID issued to this meter (minutes since base_date); see engine.allocate_tid.
    last_tid = models.PositiveIntegerField(default=0, editable=False)
    debt_balance = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO, editable=False, validators=NON_NEGATIVE
    )
    credit_balance = models.DecimalField(
        "money carried forward", max_digits=12, decimal_places=2, default=ZERO,
        editable=False, validators=NON_NEGATIVE,
        help_text="paid but not yet credited as energy (the token's resolution); spent on "
        "the next purchase",
    )  # fmt: skip
    # First day (local) of the first month whose fixed charge is neither paid nor owed;
    # empty until the first sale under a fixed charge.
    fixed_charge_billed_until = models.DateField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["meter_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(debt_balance__gte=0), name="prepaid_debt_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(credit_balance__gte=0), name="prepaid_credit_not_negative"
            ),
            models.UniqueConstraint(fields=["meter_number"], name="prepaid_meter_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.meter_number} ({self.customer.account_number})"

    def clean(self):
        super().clean()
        errors = {}
        try:
            parsed = MeterPan.parse(self.meter_number or "")
            if len(parsed.drn) != len((self.meter_number or "").replace(" ", "")):
                raise StsError("give the 11- or 13-digit meter number, not the PAN")
        except StsError as exc:
            errors["meter_number"] = str(exc)
        if self.ea == Algorithm.EA11 and self.dkga != KeyDerivation.DKGA04:
            errors["ea"] = "EA11 needs 128-bit decoder keys, which only DKGA04 derives."
        if self.customer_id and self.meter_id:
            if self.customer.service_point_id != self.meter.service_point_id:
                errors["customer"] = "The customer is supplied at another service point."
        if self.tariff_id and self.meter_id:
            if not self.tariff.organisation.path or not self.meter.organisation.path.startswith(
                self.tariff.organisation.path
            ):
                errors["tariff"] = "The tariff belongs to another organisation."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        # Organisation and service point follow the meter; the PAN follows the meter number.
        self.meter_number = (self.meter_number or "").replace(" ", "").replace("-", "")
        self.pan = MeterPan.parse(self.meter_number).pan
        self.organisation_id = self.meter.organisation_id
        self.service_point_id = self.meter.service_point_id
        super().save(*args, **kwargs)


class VendingStation(models.Model):
    """A point of sale: an office counter or agent shop, or a third-party payment system."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    location = models.CharField(max_length=300, blank=True)
    kind = models.CharField(
        max_length=12, choices=StationKind.choices, default=StationKind.COUNTER,
        help_text="counter: clerks sell in shifts; integration: a payment system's own "
        "identity (the station's only member) pays through the API",
    )  # fmt: skip
    clerks = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="vending_stations",
        help_text="who sells here: the counter's clerks, or the payment system's identity",
    )  # fmt: skip
    active = models.BooleanField(default=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Shift(models.Model):
    """A clerk's working session at a station, closed with a cash reconciliation."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    station = models.ForeignKey(VendingStation, on_delete=models.PROTECT, related_name="shifts")
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vending_shifts"
    )
    status = models.CharField(max_length=8, choices=ShiftStatus.choices, default=ShiftStatus.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    opening_float = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO, validators=NON_NEGATIVE
    )
    expected_cash = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    cash_counted = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    variance = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="cash counted minus expected (negative: cash short)",
    )  # fmt: skip
    note = models.TextField(blank=True)

    objects = StationScopedQuerySet.as_manager()
    scope_field = "organisation"
    station_field = "station"
    seller_field = "clerk"

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["clerk"],
                condition=Q(status=ShiftStatus.OPEN),
                name="one_open_shift_per_clerk",
            )  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.station.code} {self.clerk} {self.opened_at:%Y-%m-%d %H:%M}"


class Sale(models.Model):
    """One purchase of prepaid electricity: the money, its breakdown and the credit token."""

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(PrepaidAccount, on_delete=models.PROTECT, related_name="sales")
    station = models.ForeignKey(
        VendingStation, null=True, blank=True, on_delete=models.PROTECT, related_name="sales"
    )
    shift = models.ForeignKey(
        Shift, null=True, blank=True, on_delete=models.PROTECT, related_name="sales"
    )
    sold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=SaleChannel.choices)
    status = models.CharField(
        max_length=10, choices=SaleStatus.choices, default=SaleStatus.COMPLETED, db_index=True
    )
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="sales")
    currency = models.CharField(max_length=3)
    amount_paid = models.DecimalField(max_digits=12, decimal_places=2)
    credit_used = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="money carried forward from earlier sales, spent on this one",
    )  # fmt: skip
    credit_carried = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="paid but not credited (the token's resolution); carried forward",
    )  # fmt: skip
    debt_recovered = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    fixed_charge = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    energy_charge = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    energy_kwh = models.DecimalField("energy credited (kWh)", max_digits=10, decimal_places=1)
    breakdown = models.JSONField(default=dict)
    payment_reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    reprint_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the head-end recorded it: later than created_at for an offline sale uploaded.
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    offline_reference = models.CharField(max_length=100, blank=True)

    objects = StationScopedQuerySet.as_manager()
    scope_field = "organisation"
    station_field = "station"
    seller_field = "sold_by"

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("reverse_sale", "Can reverse a sale (vending supervisor)")]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="sale_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(amount_paid__gt=0), name="sale_amount_positive"),
            models.UniqueConstraint(
                fields=["station", "offline_reference"],
                condition=~Q(offline_reference=""),
                name="sale_offline_reference_unique_per_station",
            ),
            models.CheckConstraint(condition=Q(energy_kwh__gt=0), name="sale_energy_positive"),
        ]
        indexes = [models.Index(fields=["account", "status", "created_at"])]

    def __str__(self) -> str:
        return f"sale {str(self.reference)[:8]} {self.currency} {self.amount_paid}"

    @property
    def credit_token(self):
        return self.tokens.first()


class ManagementOrder(models.Model):
    """An order for management tokens to one meter: power limit, clear tamper/credit, key change."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(PrepaidAccount, on_delete=models.PROTECT, related_name="orders")
    purpose = models.CharField(max_length=16, choices=TokenPurpose.choices)
    watts = models.PositiveIntegerField(null=True, blank=True)
    register = models.PositiveIntegerField(null=True, blank=True)
    new_sgc = models.PositiveIntegerField(null=True, blank=True, validators=SGC_RANGE)
    new_krn = models.PositiveSmallIntegerField(null=True, blank=True, validators=KRN_RANGE)
    new_ti = models.PositiveSmallIntegerField(null=True, blank=True, validators=TI_RANGE)
    new_base_date = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=BaseDate.choices
    )
    reason = models.CharField(max_length=300)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("issue_management_token", "Can issue STS management tokens")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} for {self.account.meter_number}"


class Token(models.Model):
    """One STS token issued to a meter (kept so a reprint shows exactly the same digits)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(PrepaidAccount, on_delete=models.PROTECT, related_name="tokens")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="sts_tokens")
    sale = models.ForeignKey(
        Sale, null=True, blank=True, on_delete=models.PROTECT, related_name="tokens"
    )
    order = models.ForeignKey(
        ManagementOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="tokens"
    )
    purpose = models.CharField(max_length=16, choices=TokenPurpose.choices)
    kind = models.CharField(max_length=32, help_text="STS token class/subclass name")
    sequence = models.PositiveSmallIntegerField(default=1, help_text="key change: 1 to 4")
    digits = models.CharField(max_length=20)
    base_date = models.PositiveSmallIntegerField(choices=BaseDate.choices)
    tid = models.PositiveIntegerField(null=True, blank=True)
    amount_kwh = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    value = models.PositiveIntegerField(null=True, blank=True, help_text="watts or register")
    issued_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-issued_at", "sequence"]
        constraints = [
            # The backstop of the TID allocator: a meter refuses a TID it has seen.
            models.UniqueConstraint(
                fields=["meter", "base_date", "tid"],
                condition=Q(tid__isnull=False),
                name="token_tid_unique_per_meter",
            ),  # fmt: skip
            models.UniqueConstraint(
                fields=["sale"], condition=Q(sale__isnull=False), name="one_token_per_sale"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.grouped}"

    @property
    def grouped(self) -> str:
        return " ".join(self.digits[i : i + 4] for i in range(0, 20, 4))


class SaleReversal(models.Model):
    """A supervisor's reversal of a sale: its own row; the sale itself is never deleted."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    sale = models.OneToOneField(Sale, on_delete=models.PROTECT, related_name="reversal")
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300)
    token_entered = models.BooleanField(
        null=True, help_text="the token was entered in the meter: its energy is owed as debt "
        "(empty: reversed before the question was asked)",
    )  # fmt: skip
    evidence = models.CharField(
        max_length=200, blank=True, help_text="how it is known whether the token was entered"
    )
    refund_amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="money paid back to the customer"
    )
    refund_shift = models.ForeignKey(
        Shift, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds",
        help_text="the open shift whose drawer paid the refund out in cash",
    )  # fmt: skip
    refund_reference = models.CharField(
        max_length=100, blank=True, help_text="a refund not paid at a drawer: its reference"
    )
    debt_restored = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    credit_restored = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="change of the money carried forward (the sale's use of it undone)",
    )  # fmt: skip
    compensating_debt = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="the entered token's energy, tax included, owed by the account",
    )  # fmt: skip
    fixed_charge_debt = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="the month's fixed charge, tax included, owed again after the reversal",
    )  # fmt: skip
    reprice_credit = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="later sales of the month re-priced without this one (positive: credit)",
    )  # fmt: skip
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    objects = StationScopedQuerySet.as_manager()
    scope_field = "organisation"
    station_field = "sale__station"
    seller_field = "sale__sold_by"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"reversal of {self.sale}"


class AccountMovement(models.Model):
    """One change of a prepaid account's debt or carried-forward money, with its cause."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(PrepaidAccount, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    debt_change = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    credit_change = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    debt_after = models.DecimalField(max_digits=12, decimal_places=2)
    credit_after = models.DecimalField(max_digits=12, decimal_places=2)
    tax = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO,
        help_text="tax included in a charge owed as debt (fixed charges, entered tokens)",
    )  # fmt: skip
    period = models.DateField(null=True, blank=True, help_text="the month a fixed charge is for")
    sale = models.ForeignKey(
        Sale, null=True, blank=True, on_delete=models.PROTECT, related_name="movements"
    )
    reversal = models.ForeignKey(
        SaleReversal, null=True, blank=True, on_delete=models.PROTECT, related_name="movements"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.account.meter_number}"
