"""Connection settings of one DLMS/COSEM association."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Literal

PUBLIC_CLIENT = 16
LOW_CLIENT = 17
HIGH_CLIENT = 1

DEFAULT_CLIENT = {"none": PUBLIC_CLIENT, "low": LOW_CLIENT, "high": HIGH_CLIENT}


def _bytes(value: bytes | str | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    return bytes.fromhex(value)


@dataclass(frozen=True)
class DlmsSettings:
    """How to reach and talk to one meter.

    ``url``: ``tcp://host:port`` (asyncio) or any pyserial URL
    (``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://host:port``).
    Keys/system title accept bytes or hex strings.
    """

    url: str
    interface: Literal["wrapper", "hdlc"] = "wrapper"
    auth: Literal["none", "low", "high"] = "none"
    client_address: int | None = None  # default by auth: 16 / 17 / 1
    server_address: int = 1  # logical device (WRAPPER wport / HDLC upper)
    physical_address: int | None = None  # HDLC lower address
    password: bytes | str | None = None
    auth_key: bytes | str | None = None
    block_key: bytes | str | None = None
    system_title: bytes | str | None = None  # client's, 8 bytes
    # The meter's own title, 8 bytes: when given, the AARE's responding-AP-title must be it.
    server_system_title: bytes | str | None = None
    max_pdu: int = 1024
    connect_timeout: float = 10.0
    response_timeout: float = 10.0  # per frame
    hdlc_retries: int = 3
    hdlc_max_info: int = 128
    baudrate: int = 9600
    invocation_counter: int = 1  # first value when the store knows nothing
    counter_key: str | None = None  # InvocationCounterStore key override
    counter_batch: int = 8  # counters reserved per store round-trip
    public_client_address: int = PUBLIC_CLIENT  # for counter recovery
    exchange_log: bool = False
    register_classes: dict[str, int] = field(default_factory=dict)  # OBIS -> class
    # False for meter models known to answer GET-with-list wrongly: single GETs only.
    get_with_list: bool = True
    # A meter read from its concentrator's own collected data (concentrator.py): the
    # association is the concentrator's; the meter is found there by its serial, first on
    # the channel the last probe saw it on.
    dc_serial: str | None = None
    dc_channel: int | None = None

    def __post_init__(self) -> None:
        if self.interface not in ("wrapper", "hdlc"):
            raise ValueError(f"interface must be wrapper or hdlc, not {self.interface!r}")
        if self.auth not in ("none", "low", "high"):
            raise ValueError(f"auth must be none, low or high, not {self.auth!r}")
        object.__setattr__(self, "auth_key", _bytes(self.auth_key))
        object.__setattr__(self, "block_key", _bytes(self.block_key))
        object.__setattr__(self, "system_title", _bytes(self.system_title))
        object.__setattr__(self, "server_system_title", _bytes(self.server_system_title))
        if self.server_system_title is not None and len(self.server_system_title) != 8:
            raise ValueError("the meter's system title is 8 bytes")
        if isinstance(self.password, str):
            object.__setattr__(self, "password", self.password.encode())
        if self.auth == "low" and not self.password:
            raise ValueError("low authentication needs a password")
        if self.auth == "high":
            for name in ("auth_key", "block_key"):
                if len(getattr(self, name) or b"") != 16:
                    raise ValueError(f"high security needs a 16-byte {name}")
            if len(self.system_title or b"") != 8:
                raise ValueError("high security needs an 8-byte client system_title")
        if self.dc_channel is not None and not (
            isinstance(self.dc_channel, int) and 1 <= self.dc_channel <= 254
        ):
            raise ValueError("a concentrator channel is 1..254")
        if not 64 <= self.max_pdu <= 0xFFFF:
            raise ValueError("max_pdu must be 64..65535")

    @property
    def client(self) -> int:
        if self.client_address is not None:
            return self.client_address
        return DEFAULT_CLIENT[self.auth]

    @property
    def ciphered(self) -> bool:
        return self.auth == "high"

    @property
    def invocation_counter_key(self) -> str:
        """Store key: the GCM nonce space is (block key, client system title)."""
        if self.counter_key:
            return self.counter_key
        digest = hashlib.sha256((self.block_key or b"") + (self.system_title or b"")).hexdigest()
        return f"dlms-ic:{digest[:32]}"

    def public(self) -> DlmsSettings:
        """Settings of the public (no security) association on the same link."""
        return replace(
            self,
            auth="none",
            client_address=self.public_client_address,
            password=None,
            exchange_log=False,
        )
