"""The simulated meter's communication objects and alarm filters.

* GPRS modem setup (class 45, 0-0:25.4.0.255): the APN (writable); the PIN code reads as 0
  and cannot be written here (a secret the head-end does not manage).
* TCP-UDP setup (class 41, 0-0:25.0.0.255): the listening port and the inactivity time-out
  (writable). The simulator keeps them; its listener stays where the fleet put it.
* IPv4 setup (class 42, 0-0:25.1.0.255): address, subnet mask, gateway and the DHCP flag
  (writable); with DHCP on, the address in use is one the "network" gave (derived from the
  serial) unless a fixed one was written and DHCP turned off.
* Auto connect (class 29, 0-0:2.1.0.255): the mode (writable; the Blue Book's codes).
* Alarm filters 1 and 2 (class 1, 0-0:97.98.10/11.255, double-long-unsigned, writable) and
  alarm register 2 (0-0:97.98.1.255); alarm register 1 is in ``objects.py``. A bit cleared in
  a filter is an alarm the meter neither registers nor pushes (``dlms_fleet.push_alarm``).

Every setting is kept per meter (``MeterState.communication``, ``MeterState.alarm_filters``)
exactly as written, after the checks a meter makes (type, range); a refused value changes
nothing.
"""

from __future__ import annotations

import hashlib

from meters import obis as obis_codes

from ...protocols.dlms import axdr
from ...protocols.dlms.apdu import DAR_OTHER_REASON, DAR_READ_WRITE_DENIED, DAR_TYPE_UNMATCHED
from ...protocols.dlms.axdr import Value
from .cosem_base import AccessError, CosemObject, Ctx

# the defaults a meter leaves the factory with
DEFAULTS = {
    "apn": b"ami.sim",
    "mode": 101,  # always on
    "port": 4059,
    "idle": 120,
    "dhcp": True,
    "ip": 0,
    "mask": 0,
    "gateway": 0,
}
AUTO_CONNECT_MODES = frozenset({0, 1, 2, 3, 4, 5, 6, 101, 102, 103, 104})
MAX_APN = 64
UINT = (axdr.UINT8, axdr.UINT16, axdr.UINT32)


def _kept(ctx: Ctx, key: str):
    return ctx.state.communication.get(key, DEFAULTS[key])


def _unsigned(v: Value, high: int) -> int:
    if v.tag not in UINT:
        raise AccessError(DAR_TYPE_UNMATCHED)
    n = v.as_int()
    if not 0 <= n <= high:
        raise AccessError(DAR_OTHER_REASON)
    return n


def dhcp_address(serial: str) -> int:
    """The address "the network" gives a meter on DHCP: 10.64.x.y from its serial."""
    h = hashlib.sha256(f"sim-dhcp:{serial}".encode()).digest()
    return (10 << 24) | (64 << 16) | (h[0] << 8) | max(h[1], 2)


class GprsModemSetup(CosemObject):
    class_id = 45
    attributes = 4
    writable = (2,)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_octets(_kept(ctx, "apn"))
        if attr == 3:
            return axdr.enc_uint16(0)  # the PIN code is not given away
        qos = axdr.enc_struct(*(axdr.enc_uint8(0) for _ in range(5)))
        return axdr.enc_struct(qos, qos)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 2:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != axdr.OCTET_STRING:
            raise AccessError(DAR_TYPE_UNMATCHED)
        apn = v.as_bytes()
        if not 0 < len(apn) <= MAX_APN or not apn.isascii():
            raise AccessError(DAR_OTHER_REASON)
        ctx.state.communication["apn"] = bytes(apn)


class TcpUdpSetup(CosemObject):
    class_id = 41
    attributes = 6
    writable = (2, 6)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_uint16(_kept(ctx, "port"))
        if attr == 3:
            return axdr.enc_octets(obis_codes.to_bytes("0.0.25.1.0.255"))  # IP reference
        if attr == 4:
            return axdr.enc_uint16(576)  # MSS
        if attr == 5:
            return axdr.enc_uint8(1)  # simultaneous connections
        return axdr.enc_uint16(_kept(ctx, "idle"))

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr == 2:
            port = _unsigned(v, 0xFFFF)
            if port == 0:
                raise AccessError(DAR_OTHER_REASON)
            ctx.state.communication["port"] = port
        elif attr == 6:
            ctx.state.communication["idle"] = _unsigned(v, 0xFFFF)
        else:
            raise AccessError(DAR_READ_WRITE_DENIED)


_IP_KEYS = {3: "ip", 6: "mask", 7: "gateway"}


class Ipv4Setup(CosemObject):
    class_id = 42
    attributes = 10
    writable = (3, 6, 7, 8)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        dhcp = _kept(ctx, "dhcp")
        if attr == 2:
            return axdr.enc_octets(obis_codes.to_bytes("0.0.25.4.0.255"))  # over the GPRS modem
        if attr == 3:
            fixed = _kept(ctx, "ip")
            return axdr.enc_uint32(dhcp_address(ctx.meter.serial) if dhcp else fixed)
        if attr == 6:
            return axdr.enc_uint32(0xFFFFFF00 if dhcp else _kept(ctx, "mask"))
        if attr == 7:
            return axdr.enc_uint32(0 if dhcp else _kept(ctx, "gateway"))
        if attr == 8:
            return axdr.enc_boolean(dhcp)
        if attr in (4, 5):
            return axdr.enc_array([])
        return axdr.enc_uint32(0)  # 9, 10: DNS servers

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr in _IP_KEYS:
            if v.tag != axdr.UINT32:
                raise AccessError(DAR_TYPE_UNMATCHED)
            ctx.state.communication[_IP_KEYS[attr]] = v.as_int()
        elif attr == 8:
            if v.tag != axdr.BOOLEAN:
                raise AccessError(DAR_TYPE_UNMATCHED)
            if not v.value and not _kept(ctx, "ip"):
                raise AccessError(DAR_OTHER_REASON)  # no fixed address to fall back on
            ctx.state.communication["dhcp"] = bool(v.value)
        else:
            raise AccessError(DAR_READ_WRITE_DENIED)


class AutoConnect(CosemObject):
    class_id = 29
    version = 2
    attributes = 6
    methods = 1
    writable = (2,)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_enum(_kept(ctx, "mode"))
        if attr == 3:
            return axdr.enc_uint8(3)  # repetitions
        if attr == 4:
            return axdr.enc_uint16(60)  # repetition delay (s)
        return axdr.enc_array([])  # 5 calling window, 6 destinations

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 2:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != axdr.ENUM:
            raise AccessError(DAR_TYPE_UNMATCHED)
        if v.as_int() not in AUTO_CONNECT_MODES:
            raise AccessError(DAR_OTHER_REASON)
        ctx.state.communication["mode"] = v.as_int()


class AlarmFilter(CosemObject):
    """Alarm filter 1 or 2: the mask of its alarm register (every bit set by default)."""

    class_id = 1
    attributes = 2
    writable = (2,)

    def __init__(self, obis: str, index: int) -> None:
        super().__init__(obis)
        self.index = index

    def value(self, ctx: Ctx, attr: int) -> bytes:
        return axdr.enc_uint32(ctx.state.alarm_filters[self.index])

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 2:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != axdr.UINT32:
            raise AccessError(DAR_TYPE_UNMATCHED)
        ctx.state.alarm_filters[self.index] = v.as_int()
        if self.index == 0:  # what the filter now masks out is no longer registered
            ctx.state.alarm &= v.as_int()


class AlarmRegister2(CosemObject):
    class_id = 1
    attributes = 2

    def value(self, ctx: Ctx, attr: int) -> bytes:
        return axdr.enc_uint32(0)  # nothing the model raises is a register-2 alarm


def communication_objects() -> list[CosemObject]:
    return [
        GprsModemSetup("0.0.25.4.0.255"),
        TcpUdpSetup("0.0.25.0.0.255"),
        Ipv4Setup("0.0.25.1.0.255"),
        AutoConnect("0.0.2.1.0.255"),
        AlarmFilter("0.0.97.98.10.255", 0),
        AlarmFilter("0.0.97.98.11.255", 1),
        AlarmRegister2("0.0.97.98.1.255"),
    ]
