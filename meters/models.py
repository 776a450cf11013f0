"""The grid, meters, data concentrators, meter models with their channels, and customers."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.audit import MASK
from accounts.models import Organisation
from accounts.scoping import CatalogueQuerySet, ScopedQuerySet
from amisite.encryption import EncryptedTextField
from amisite.tree import TreeNode

from . import configuration
from .choices import (
    PARENT_KIND,
    Accumulation,
    ChannelKind,
    DlmsInterface,
    MeterStatus,
    NodeKind,
    Parity,
    Protocol,
    RelayState,
    Security,
    Transport,
    default_accumulation,
)
from .obis import normalise as normalise_obis
from .store.models import (  # noqa: F401  (the store's tables belong to this app)
    DailyEnergy,
    EventRecord,
    HourlyEnergy,
    IntervalReading,
    RegisterRead,
    StoredInterval,
    UnmappedValue,
)
from .store.quality import COLUMNS_PER_GROUP
from .validators import validate_obis

LATITUDE = [MinValueValidator(-90), MaxValueValidator(90)]
# Grid levels a check meter may measure (energy balance and line loss).
CHECKED_KINDS = (NodeKind.FEEDER, NodeKind.TRANSFORMER)
LONGITUDE = [MinValueValidator(-180), MaxValueValidator(180)]


class GridNode(TreeNode):
    """A place in the power grid: region, substation, feeder, transformer or service point."""

    kind = models.CharField(max_length=16, choices=NodeKind.choices, db_index=True)
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=64, unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    voltage_kv = models.DecimalField(
        "voltage (kV)", max_digits=7, decimal_places=3, null=True, blank=True
    )
    rated_kva = models.DecimalField(
        "rating (kVA)", max_digits=10, decimal_places=2, null=True, blank=True
    )
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LATITUDE
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LONGITUDE
    )
    address = models.CharField(max_length=300, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["path"]
        indexes = [models.Index(fields=["organisation", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.code} {self.name}"

    def clean(self):
        super().clean()
        expected = PARENT_KIND.get(self.kind)
        parent_kind = self.parent.kind if self.parent_id else None
        if self.kind and parent_kind != expected:
            where = f"below a {NodeKind(expected).label.lower()}" if expected else "at the top"
            raise ValidationError({"parent": f"A {self.get_kind_display().lower()} goes {where}."})


class MeterModel(models.Model):
    """A type of meter (manufacturer and model) and the channels every such meter has."""

    manufacturer = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.DLMS)
    description = models.TextField(blank=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    get_with_list = models.BooleanField(
        "GET-with-list",
        default=True,
        help_text="read several values per request; switched off by itself when a meter of "
        "this model answers one wrongly (single GETs then)",
    )

    objects = CatalogueQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["manufacturer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["manufacturer", "name"], name="meter_model_unique")
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.name}"


class Channel(models.Model):
    """One measured quantity of a meter model: OBIS code, unit, scaler, where it is read."""

    meter_model = models.ForeignKey(MeterModel, on_delete=models.CASCADE, related_name="channels")
    obis = models.CharField("OBIS code", max_length=32, validators=[validate_obis])
    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=16, blank=True)
    scaler = models.SmallIntegerField(
        default=0,
        validators=[MinValueValidator(-9), MaxValueValidator(9)],
        help_text="power of ten applied to the raw value",
    )
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    accumulation = models.CharField(
        max_length=16,
        choices=Accumulation.choices,
        blank=True,
        help_text="interval or cumulative values; left blank, set from the OBIS code "
        "(value group D = 8 or 9: cumulative)",
    )
    profile_obis = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_obis],
        help_text="for profile columns and event logs: the profile object holding them",
    )
    head_end_derived = models.BooleanField(
        "head-end derived",
        default=False,
        db_default=False,  # a rolling upgrade: the running release inserts without it
        help_text="a profile column the head-end makes from register polls (the meter keeps "
        "no profile): each value is a poll of the job, exact only within the poll's "
        "tolerance of its boundary; set by itself for profile columns of Modbus models",
    )
    # Where a profile column's values live in the wide interval store (meters/store/):
    # row group and column v0..v7 within it. Assigned on save, never changed afterwards.
    profile_group = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    profile_column = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    objects = ScopedQuerySet.as_manager()
    scope_field = "meter_model__organisation"

    class Meta:
        ordering = ["meter_model", "kind", "obis"]
        constraints = [
            models.UniqueConstraint(
                fields=["meter_model", "kind", "obis"], name="channel_unique_per_model"
            ),
            models.UniqueConstraint(
                fields=["meter_model", "profile_group", "profile_column"],
                name="channel_unique_store_column",
                condition=models.Q(profile_column__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.obis} {self.name}"

    def save(self, *args, **kwargs):
        self.obis = normalise_obis(self.obis)
        if not self.accumulation:
            self.accumulation = default_accumulation(self.obis)
        if self.profile_obis:
            self.profile_obis = normalise_obis(self.profile_obis)
        if self.kind == ChannelKind.PROFILE and self.profile_column is None:
            self.profile_group, self.profile_column = self._free_store_column()
        if self.kind == ChannelKind.PROFILE and self.meter_model.protocol == Protocol.MODBUS:
            self.head_end_derived = True  # a Modbus meter has no profile of its own
        elif self.kind != ChannelKind.PROFILE:
            self.head_end_derived = False
        super().save(*args, **kwargs)

    @property
    def is_cumulative(self) -> bool:
        return (self.accumulation or default_accumulation(self.obis)) == Accumulation.CUMULATIVE

    def _free_store_column(self) -> tuple[int, int]:
        """The first free (group, column): a profile's columns share groups, 8 to a group."""
        taken = Channel.objects.filter(
            meter_model_id=self.meter_model_id, profile_column__isnull=False
        ).exclude(pk=self.pk)
        used = {(g, c) for g, c in taken.values_list("profile_group", "profile_column")}
        own_groups = sorted(
            {
                g
                for g, p in taken.values_list("profile_group", "profile_obis")
                if p == self.profile_obis
            }
        )
        for group in own_groups:
            for column in range(COLUMNS_PER_GROUP):
                if (group, column) not in used:
                    return group, column
        return max((g for g, _ in used), default=-1) + 1, 0


class Endpoint(models.Model):
    """How to reach one meter or concentrator: its row in a protocol-neutral endpoint table.

    The columns every protocol needs (line, security, timing) are typed columns; what only
    one protocol knows (its addresses) lives in ``options``, named by that protocol's driver
    (collection/protocols/<name>/driver.py reads them). Adding a protocol adds no column.
    """

    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.DLMS)
    transport = models.CharField(max_length=16, choices=Transport.choices, default=Transport.TCP)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    serial_url = models.CharField(
        max_length=255,
        blank=True,
        help_text="pyserial URL, e.g. rfc2217://host:port or /dev/ttyUSB0",
    )
    baud_rate = models.PositiveIntegerField(default=9600)
    data_bits = models.PositiveSmallIntegerField(default=8, choices=[(7, "7"), (8, "8")])
    parity = models.CharField(max_length=1, choices=Parity.choices, default=Parity.NONE)
    stop_bits = models.PositiveSmallIntegerField(default=1, choices=[(1, "1"), (2, "2")])
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.NONE)
    password = EncryptedTextField(blank=True)
    auth_key = EncryptedTextField(blank=True, help_text="hex, 16 bytes")
    block_key = EncryptedTextField(blank=True, help_text="hex, 16 bytes")
    system_title = models.CharField(max_length=16, blank=True, help_text="hex, 8 bytes")
    timeout_s = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="the protocol's own addressing, e.g. "
        '{"dlms_interface": "hdlc", "dlms_client_address": 17, "dlms_server_address": 1}',
    )

    SECRET_FIELDS = ("password", "auth_key", "block_key")
    # Options the registry files, the API and the admin name as fields of their own
    # (the columns they were before endpoints): name -> (default, largest value or choices).
    OPTION_FIELDS = {
        "dlms_interface": ("wrapper", DlmsInterface),
        "dlms_client_address": (16, 0x7FFF),
        "dlms_server_address": (1, 0x7FFF),
        "dlms_physical_address": (None, 0x7FFF),
        "modbus_unit_id": (None, 247),
        "iec21_address": ("", 32),
        "iec102_link_address": (None, 0x7FFFFFFF),
        "iec102_measuring_point": (None, 0x7FFFFFFF),
    }

    # The named options of each protocol, under the names its driver reads.
    PROTOCOL_OPTIONS = {
        Protocol.DLMS: {
            "interface": "dlms_interface",
            "client_address": "dlms_client_address",
            "server_address": "dlms_server_address",
            "physical_address": "dlms_physical_address",
        },
        Protocol.IEC62056_21: {"address": "iec21_address"},
        Protocol.IEC870_102: {
            "link_address": "iec102_link_address",
            "measuring_point": "iec102_measuring_point",
        },
        Protocol.MODBUS: {"unit_id": "modbus_unit_id"},
    }

    class Meta:
        abstract = True

    def driver_options(self) -> dict:
        """Every option, the named ones with their defaults: what the protocol driver gets."""
        named = {name: default for name, (default, _limit) in self.OPTION_FIELDS.items()}
        return named | dict(self.options or {})

    @classmethod
    def options_for_driver(cls, protocol: str, options: dict | None) -> dict:
        """The named options of `protocol` under the driver's names (``dlms_server_address``
        as ``server_address``), with their defaults, and every other option as it is."""
        named = {name: default for name, (default, _limit) in cls.OPTION_FIELDS.items()}
        values = named | dict(options or {})
        result = {k: v for k, v in values.items() if k not in cls.OPTION_FIELDS}
        for name, key in cls.PROTOCOL_OPTIONS.get(protocol, {}).items():
            result[name] = values[key]
        return result

    def clean(self):
        super().clean()
        errors = {}
        if self.transport == Transport.TCP and (not self.host or not self.port):
            errors["host"] = "A TCP connection needs a host and a port."
        if self.transport == Transport.SERIAL and not self.serial_url:
            errors["serial_url"] = "A serial connection needs a serial-line URL."
        if self.security == Security.LOW and not self.password:
            errors["password"] = "Low security needs a password."
        if self.security == Security.HIGH:
            for field in ("auth_key", "block_key"):
                if not _is_hex(getattr(self, field), 16):
                    errors[field] = "High security needs a 16-byte key in hex."
            if not _is_hex(self.system_title, 8):
                errors["system_title"] = "High security needs an 8-byte system title in hex."
        if not isinstance(self.options, dict):
            errors["options"] = "Options are an object of names and values."
        else:
            for name, (_default, limit) in self.OPTION_FIELDS.items():
                problem = _option_problem(self.options.get(name), limit)
                if problem:
                    errors[name] = problem
        if errors:
            raise ValidationError(errors)


def _option_problem(value, limit) -> str:
    if value is None:
        return ""
    if isinstance(limit, type):  # choices
        return "" if value in limit.values else f"Choose one of {', '.join(limit.values)}."
    if isinstance(value, str):
        return f"At most {limit} characters." if len(value) > limit else ""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        return f"A whole number from 0 to {limit}."
    return ""


def _option_property(name: str, default):
    def get(self):
        return (self.options or {}).get(name, default)

    def set_(self, value):
        options = dict(self.options or {})
        if value is None or value == "":
            options.pop(name, None)
        else:
            options[name] = value
        self.options = options

    return property(get, set_, doc=f"endpoint option {name!r}")


for _name, (_default, _limit) in Endpoint.OPTION_FIELDS.items():
    setattr(Endpoint, _name, _option_property(_name, _default))

# Everything an owner (meter, concentrator) reads and writes through its endpoint.
ENDPOINT_FIELDS = (
    *(f.name for f in Endpoint._meta.fields if f.name not in ("id", "options")),
    *Endpoint.OPTION_FIELDS,
)


def _owner_property(name: str):
    def get(self):
        endpoint = self.stored_endpoint()
        return getattr(endpoint if endpoint is not None else self.endpoint_defaults(), name)

    def set_(self, value):
        setattr(self.writable_endpoint(), name, value)

    return property(get, set_, doc=f"this row's endpoint's {name}")


class EndpointOwnerQuerySet(ScopedQuerySet):
    """Bulk creation creates each row's endpoint too (its pending one, or the defaults)."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        if objs and objs[0].pk is not None:
            endpoints = []
            for owner in objs:
                endpoint = owner.stored_endpoint() or owner.writable_endpoint()
                setattr(endpoint, owner.endpoint_owner_field, owner)
                endpoints.append(endpoint)
                owner._endpoint_changed = False
            self.model.endpoint_model().objects.bulk_create(endpoints)
        return objs


class EndpointOwner(models.Model):
    """A meter or concentrator: reached through its endpoint row (``.endpoint``).

    Its endpoint's fields read and write as its own (``meter.host``, ``meter.security``, and
    keyword arguments of the constructor): a changed endpoint is saved with its owner.
    """

    SECRET_FIELDS = Endpoint.SECRET_FIELDS
    endpoint_owner_field = ""  # the endpoint's one-to-one field naming its owner
    endpoint_edited_apart = False  # True: a form of its own checks the endpoint (admin inline)

    class Meta:
        abstract = True

    @classmethod
    def endpoint_model(cls):
        return cls._meta.get_field("endpoint").related_model

    def endpoint_defaults(self):
        return self.endpoint_model()()

    def stored_endpoint(self):
        """The endpoint (saved or pending), or None when this row has none."""
        try:
            return self.endpoint
        except ObjectDoesNotExist:
            return None

    def writable_endpoint(self):
        endpoint = self.stored_endpoint()
        if endpoint is None:
            endpoint = self.endpoint = self.endpoint_model()()
        self._endpoint_changed = True
        return endpoint

    def clean(self):
        super().clean()
        endpoint = self._state.fields_cache.get("endpoint")
        if endpoint is None and self._state.adding and not self.endpoint_edited_apart:
            endpoint = self.writable_endpoint()  # a new row gets the default endpoint: check it
        if endpoint is not None and getattr(self, "_endpoint_changed", False):
            errors = {}
            for check in (
                lambda: endpoint.clean_fields(exclude=[self.endpoint_owner_field]),
                endpoint.clean,
            ):
                try:
                    check()
                except ValidationError as exc:
                    errors.update(exc.update_error_dict({}))
            if errors:
                raise ValidationError(errors)

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        endpoint = self._state.fields_cache.get("endpoint")
        if endpoint is None and adding:  # every meter and concentrator has its endpoint
            endpoint = self.writable_endpoint()
        if endpoint is not None and (endpoint.pk is None or getattr(self, "_endpoint_changed", 0)):
            setattr(endpoint, self.endpoint_owner_field, self)
            endpoint.save()
            self._endpoint_changed = False

    def protocol_options(self) -> dict:
        """What this row's protocol driver gets as options: the named options of its protocol
        under the driver's names (``dlms_server_address`` as ``server_address``), with their
        defaults, and every other option of the endpoint as it is."""
        endpoint = self.stored_endpoint() or self.endpoint_defaults()
        return Endpoint.options_for_driver(endpoint.protocol, endpoint.options)

    def endpoint_options(self) -> list[tuple[str, object]]:
        """The endpoint's options of its protocol that have a value (the meter page lists
        them, named without the protocol's prefix: "server address 1")."""
        endpoint = self.stored_endpoint() or self.endpoint_defaults()
        prefix = f"{endpoint.protocol}_"
        return [
            (name.removeprefix(prefix).replace("_", " "), value)
            for name, value in sorted(endpoint.driver_options().items())
            if value not in (None, "") and (name.startswith(prefix) or name in endpoint.options)
        ]

    def audit_fields(self) -> dict:
        """The endpoint's fields for the activity log's before/after (secrets masked)."""
        endpoint = self.stored_endpoint() or self.endpoint_defaults()
        values = {}
        for name in ENDPOINT_FIELDS:
            value = getattr(endpoint, name)
            if name in self.SECRET_FIELDS:
                value = MASK if value else ""
            values[name] = "" if value is None else str(value)
        return values


def _owner_display(name: str):
    def display(self):
        endpoint = self.stored_endpoint()
        return getattr(endpoint if endpoint is not None else self.endpoint_defaults(), name)()

    return display


for _name in ENDPOINT_FIELDS:
    setattr(EndpointOwner, _name, _owner_property(_name))
for _field in Endpoint._meta.fields:
    if _field.choices:
        _display = f"get_{_field.name}_display"
        setattr(EndpointOwner, _display, _owner_display(_display))


def _is_hex(value: str, size: int) -> bool:
    try:
        return len(bytes.fromhex(value or "")) == size
    except ValueError:
        return False


class ConcentratorReadMode(models.TextChoices):
    GATEWAY = "gateway", "Through it (gateway to each meter)"
    OWN_DATA = "own_data", "Its own collected data"


class DataConcentrator(EndpointOwner):
    """A data concentrator: addressable itself, it reads the meters below it.

    ``read_mode`` says how the head-end reads the meters behind it: through it as a gateway
    (a session with each meter, addressed by its logical device at the concentrator), or from
    the copy the concentrator collected itself (one association with the concentrator's own
    logical device, the meter's data on its channel; docs/architecture.md).
    """

    endpoint_owner_field = "concentrator"

    serial = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    read_mode = models.CharField(
        max_length=16,
        choices=ConcentratorReadMode.choices,
        default=ConcentratorReadMode.GATEWAY,
        db_default=ConcentratorReadMode.GATEWAY,  # a rolling upgrade inserts without it
        help_text="read its meters through it, or from the data it collected itself",
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    grid_node = models.ForeignKey(
        GridNode, null=True, blank=True, on_delete=models.PROTECT, related_name="concentrators"
    )
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LATITUDE
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LONGITUDE
    )

    objects = EndpointOwnerQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial


class Meter(EndpointOwner):
    """An electricity meter: what it is, where it serves, and how it is read."""

    endpoint_owner_field = "meter"

    serial = models.CharField(max_length=64, unique=True)
    meter_model = models.ForeignKey(MeterModel, on_delete=models.PROTECT, related_name="meters")
    firmware = models.CharField(max_length=64, blank=True)
    phases = models.PositiveSmallIntegerField(choices=[(1, "1"), (3, "3")], default=1)
    ct_ratio = models.DecimalField(
        "CT ratio",
        max_digits=10,
        decimal_places=3,
        default=1,
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    vt_ratio = models.DecimalField(
        "VT ratio",
        max_digits=10,
        decimal_places=3,
        default=1,
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    install_date = models.DateField(null=True, blank=True)
    client_system_title = models.CharField(
        "head-end system title",
        max_length=16,
        blank=True,
        help_text="hex, 8 bytes: the title the head-end presents to this meter (HLS); "
        "blank: the installation's AMI_CLIENT_SYSTEM_TITLE",
    )
    status = models.CharField(
        max_length=16, choices=MeterStatus.choices, default=MeterStatus.IN_STOCK, db_index=True
    )
    service_point = models.ForeignKey(
        GridNode,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="meters",
        limit_choices_to={"kind": NodeKind.SERVICE_POINT},
    )
    concentrator = models.ForeignKey(
        DataConcentrator, null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    check_node = models.ForeignKey(
        GridNode,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="check_meters",
        limit_choices_to={"kind__in": CHECKED_KINDS},
        verbose_name="check meter of",
        help_text="the feeder or transformer whose incoming energy this meter measures "
        "(energy balance); such a meter serves no service point",
    )
    # Denormalised from the service point (or set for meters in stock): scoping is one filter.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LATITUDE
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True, validators=LONGITUDE
    )

    objects = EndpointOwnerQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["serial"]
        indexes = [
            models.Index(fields=["organisation", "status"]),
            # the map's box queries (migration 0023)
            models.Index(fields=["latitude", "longitude"], name="meter_location_idx"),
            # The meter list's keys in serial order with what scoping needs (PostgreSQL: an
            # index-only scan; a late page skips 64,000 entries in ~20 ms, not ~34 ms through
            # the heap). SQLite has no INCLUDE: a plain serial index there.
            models.Index(
                fields=["serial"], include=["id", "organisation"], name="meter_serial_keys_idx"
            ),
        ]

    def protocol_options(self) -> dict:
        """The addressing of the meter's protocol; a Modbus meter's register map is named by
        its model (``MeterModel.name``, e.g. "SDM630")."""
        options = super().protocol_options()
        if self.protocol == Protocol.MODBUS:
            options["register_map"] = self.meter_model.name
        return options

    def __str__(self) -> str:
        return self.serial

    def clean(self):
        super().clean()
        if self.service_point_id and self.service_point.kind != NodeKind.SERVICE_POINT:
            raise ValidationError({"service_point": "A meter serves a service point."})
        if self.check_node_id:
            if self.check_node.kind not in CHECKED_KINDS:
                raise ValidationError({"check_node": "A check meter measures a feeder or a "
                                       "transformer."})  # fmt: skip
            if self.service_point_id:
                raise ValidationError(
                    {
                        "check_node": "A check meter serves no service point: its energy would "
                        "be counted on both sides of the balance."
                    }  # fmt: skip
                )
        if self.client_system_title and not _is_hex(self.client_system_title, 8):
            raise ValidationError({"client_system_title": "A system title is 8 bytes in hex."})
        if self.transport == Transport.CONCENTRATOR and not self.concentrator_id:
            raise ValidationError({"concentrator": "Reading through a concentrator needs one."})

    def save(self, *args, **kwargs):
        if self.service_point_id:
            self.organisation_id = self.service_point.organisation_id
        elif self.check_node_id:
            self.organisation_id = self.check_node.organisation_id
        super().save(*args, **kwargs)

    @property
    def head_end_system_title(self) -> str:
        """The title the head-end presents to this meter (hex): its own, or the installation's."""
        return (self.client_system_title or settings.AMI_CLIENT_SYSTEM_TITLE).upper()


class MeterEndpoint(Endpoint):
    """How the head-end reaches one meter (itself, or through its concentrator's line)."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="endpoint")

    def __str__(self) -> str:
        return f"endpoint of meter {self.meter_id}"


class ConcentratorEndpoint(Endpoint):
    """How the head-end reaches one data concentrator."""

    concentrator = models.OneToOneField(
        DataConcentrator, on_delete=models.CASCADE, related_name="endpoint"
    )

    def __str__(self) -> str:
        return f"endpoint of concentrator {self.concentrator_id}"


class Customer(models.Model):
    """A customer supplied at a service point: billing, vending and the portal hang on it."""

    account_number = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    tariff_code = models.CharField(max_length=32, blank=True)
    service_point = models.ForeignKey(
        GridNode,
        on_delete=models.PROTECT,
        related_name="customers",
        limit_choices_to={"kind": NodeKind.SERVICE_POINT},
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    portal_user = models.OneToOneField(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["account_number"]

    def __str__(self) -> str:
        return f"{self.account_number} {self.name}"

    def clean(self):
        super().clean()
        if self.service_point_id and self.service_point.kind != NodeKind.SERVICE_POINT:
            raise ValidationError({"service_point": "A customer is supplied at a service point."})

    def save(self, *args, **kwargs):
        self.organisation_id = self.service_point.organisation_id
        super().save(*args, **kwargs)


class CommStatus(models.Model):
    """How a meter was last found: reachable or not, its clock drift, its supply relay.

    Part of the registry, so the dashboard and the alarms read it without collection;
    collection writes it after every read and from relay events (collection/actions.py,
    collection/relay.py).
    """

    meter = models.OneToOneField(
        Meter, primary_key=True, on_delete=models.CASCADE, related_name="comm_status"
    )
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True, db_index=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    unreachable = models.BooleanField(default=False, db_index=True)
    last_error = models.TextField(blank=True)
    clock_drift_s = models.FloatField(null=True, blank=True)
    relay_state = models.CharField(
        max_length=24, choices=RelayState.choices, blank=True, help_text="empty: never seen"
    )
    relay_state_at = models.DateTimeField(
        null=True, blank=True, help_text="when the relay was read, or the event's time"
    )
    relay_open_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="while the relay is open: when it was first seen open (read or event)",
    )

    objects = ScopedQuerySet.as_manager()
    scope_field = "meter__organisation"

    @classmethod
    def create_missing(cls, meter_ids) -> None:
        """A row for each of these meters that has none yet: one read, and an insert (in
        meter order, conflicts ignored) only when some are missing. Lock the rows after."""
        meter_ids = set(meter_ids)
        present = set(cls.objects.filter(meter_id__in=meter_ids).values_list("meter_id", flat=True))
        missing = sorted(meter_ids - present)
        if missing:
            cls.objects.bulk_create([cls(meter_id=m) for m in missing], ignore_conflicts=True)

    class Meta:
        db_table = "collection_commstatus"  # made by collection; moved here without a copy
        verbose_name = "communication status"
        verbose_name_plural = "communication statuses"

    def __str__(self) -> str:
        return f"{self.meter}: {'unreachable' if self.unreachable else 'reachable'}"


class LineKind(models.TextChoices):
    CONCENTRATOR = "concentrator", "Data concentrator"
    BUS = "bus", "Shared line (serial bus, TCP-serial converter, gateway)"


class CommLine(models.Model):
    """A line many meters share -- a serial bus, a TCP-serial converter, a Modbus gateway, a
    data concentrator -- and how it was last found.

    Sessions on one line take turns (at most ``max_sessions`` at once); a job reads one line's
    meters in one batch. A dead line is one fault here, not a failure of each meter behind it:
    their comm status keeps its count of failures (collection/actions.py). The key names the
    line: ``concentrator:<id>``, or the URL the meters share (``socket://10.0.0.5:4001``).
    Rows are made by the reads (collection) for every line with more than one meter, or a
    concentrator; ``max_sessions`` is the operator's to change.
    """

    key = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=16, choices=LineKind.choices, default=LineKind.BUS)
    label = models.CharField(max_length=300, blank=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    concentrator = models.OneToOneField(
        DataConcentrator, null=True, blank=True, on_delete=models.CASCADE, related_name="line"
    )
    max_sessions = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="sessions the line takes at once (a serial bus: 1)",
    )
    meters = models.PositiveIntegerField(default=0, help_text="meters on it at its last read")
    last_attempt = models.DateTimeField(null=True, blank=True)
    last_contact = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    down = models.BooleanField(default=False)
    down_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # A concentrator's own probe (collection/concentrators.py): when it last answered one,
    # and how far its clock was off then.
    probed_at = models.DateTimeField(null=True, blank=True)
    clock_drift_s = models.FloatField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["key"]
        verbose_name = "communication line"

    def __str__(self) -> str:
        return self.label or self.key

    @property
    def state(self) -> str:
        """ "down", "up" or "unknown" (never read)."""
        if self.down:
            return "down"
        return "up" if self.last_contact else "unknown"


class ReportedMeter(models.Model):
    """A meter a data concentrator says it has, as its last probe found it (collection writes
    these; the concentrator's page reconciles them with the registry: meters it reports that
    are not registered behind it, and meters registered behind it that it no longer reports).

    ``channel`` is where the concentrator keeps the meter's collected data (its own-data read
    mode); ``last_contact`` is when the concentrator itself last heard the meter.
    """

    concentrator = models.ForeignKey(
        DataConcentrator, on_delete=models.CASCADE, related_name="reported_meters"
    )
    serial = models.CharField(max_length=64)
    channel = models.PositiveSmallIntegerField()
    last_contact = models.DateTimeField(null=True, blank=True)
    probed_at = models.DateTimeField()

    objects = ScopedQuerySet.as_manager()
    scope_field = "concentrator__organisation"

    class Meta:
        ordering = ["concentrator", "serial"]
        constraints = [
            models.UniqueConstraint(
                fields=["concentrator", "serial"], name="reported_meter_unique_serial"
            )
        ]

    def __str__(self) -> str:
        return f"{self.serial} on channel {self.channel} of {self.concentrator_id}"


ConfigSection = models.TextChoices(
    "ConfigSection", [(key, (key, label)) for key, label in configuration.LABELS.items()]
)


class DesiredConfiguration(models.Model):
    """What one section of meter configuration should be: for every meter of a meter model,
    or for one meter (which then overrides its model's for that section)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    meter_model = models.ForeignKey(
        MeterModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    meter = models.ForeignKey(
        Meter, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    section = models.CharField(max_length=16, choices=ConfigSection.choices)
    value = models.JSONField(help_text="the section's settings (docs/api.md, configuration)")
    updated_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["section", "id"]
        verbose_name_plural = "desired configurations"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(meter_model__isnull=True) ^ models.Q(meter__isnull=True),
                name="desired_config_one_target",
            ),
            models.UniqueConstraint(
                fields=["meter_model", "section"],
                condition=models.Q(meter__isnull=True),
                name="desired_config_model_section",
            ),
            models.UniqueConstraint(
                fields=["meter", "section"],
                condition=models.Q(meter_model__isnull=True),
                name="desired_config_meter_section",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_section_display()} of {self.meter or self.meter_model}"

    def clean(self):
        super().clean()
        if (self.meter_id is None) == (self.meter_model_id is None):
            raise ValidationError(
                {"meter": "A desired configuration is for a meter model or a meter."}
            )
        try:
            self.value = configuration.clean(self.section, self.value)
        except configuration.ConfigError as exc:
            raise ValidationError({"value": str(exc)}) from None

    def save(self, *args, **kwargs):
        owner = self.meter if self.meter_id else self.meter_model
        if owner is not None:
            self.organisation_id = owner.organisation_id
        super().save(*args, **kwargs)


class ActualConfiguration(models.Model):
    """One section of a meter's configuration as the meter last read it back (written by
    collection's command queue; the drift report compares it with the desired one)."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    section = models.CharField(max_length=16, choices=ConfigSection.choices)
    value = models.JSONField()
    read_at = models.DateTimeField()
    command_id = models.BigIntegerField(null=True, blank=True, help_text="the command that read it")

    objects = ScopedQuerySet.as_manager()
    scope_field = "meter__organisation"

    class Meta:
        ordering = ["meter", "section"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "section"], name="actual_config_meter_section")
        ]

    def __str__(self) -> str:
        return f"{self.get_section_display()} of {self.meter} as read {self.read_at:%Y-%m-%d}"


# The alarm models are models of this app that live in their own package (meters/alarms/).
from .alarms.models import (  # noqa: E402, F401
    Alarm,
    AlarmOccurrence,
    AlarmRule,
    AlarmSubscription,
    NotificationDelivery,
)
