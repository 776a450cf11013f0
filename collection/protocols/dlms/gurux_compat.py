"""The only module that touches gurux-dlms internals.

gurux-dlms 1.0.203 is used to *build* request APDUs (AARQ, GET/SET/ACTION,
selective access, RLRQ) and to parse the AARE.  It is used at the APDU level
(``InterfaceType.PDU``): the framing (WRAPPER/HDLC), the ciphering (AES-GCM
with tag verification) and the decoding of data responses are ours.

Known gurux quirks handled here:

* it prints diagnostics ("Encryption is applied." ...) with ``print`` on
  every message: :func:`silence_gurux` shadows ``print`` in the offending
  modules with a no-op;
* its AES-GCM never checks the tag: no ciphered reply is handed to gurux;
  the AARE user-information is deciphered by us and passed on in the clear;
* ``GXDLMSRegister.scaler`` is the multiplier 10**s, not the exponent: we do
  not use gurux objects to interpret scaler_unit at all.
* client objects are not thread-safe: one :class:`GuruxApdu` per association.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from gurux_dlms import GXByteBuffer, GXDLMSException
from gurux_dlms.enums import Authentication, Conformance, DataType, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient

from ..errors import AuthenticationFailed, MalformedResponse

# Modules of gurux-dlms that call print() on the message path.
_NOISY_MODULES = (
    "gurux_dlms.GXDLMSChippering",
    "gurux_dlms.GXDLMSChipperingStream",
    "gurux_dlms.GXDLMSClient",
    "gurux_dlms.GXDLMS",
    "gurux_dlms.GXDLMSSettings",
    "gurux_dlms._GXAPDU",
    "gurux_dlms.GXSecure",
    "gurux_dlms.GXDLMSConverter",
    "gurux_dlms.GXDLMSLNCommandHandler",
    "gurux_dlms.objects.GXDLMSProfileGeneric",
    "gurux_dlms.objects.GXDLMSSecuritySetup",
    "gurux_dlms.objects.GXDLMSObjectCollection",
)

_silenced = False


def _quiet_print(*_args, **_kwargs) -> None:
    return None


def silence_gurux() -> None:
    """Shadow ``print`` inside gurux's chatty modules (idempotent)."""
    global _silenced
    if _silenced:
        return
    for name in _NOISY_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # pragma: no cover - depends on gurux layout
            continue
        mod.print = _quiet_print  # type: ignore[attr-defined]
    _silenced = True


silence_gurux()

_AUTH = {
    "none": Authentication.NONE,
    "low": Authentication.LOW,
    "high": Authentication.HIGH_GMAC,
}

CLASS_DATA = 1
CLASS_REGISTER = 3
CLASS_EXTENDED_REGISTER = 4
CLASS_PROFILE_GENERIC = 7
CLASS_CLOCK = 8
CLASS_ASSOCIATION_LN = 15
CLASS_ACTIVITY_CALENDAR = 20
CLASS_DISCONNECT_CONTROL = 70


class GuruxApdu:
    """Per-association request builder around one GXDLMSSecureClient."""

    def __init__(
        self,
        *,
        client_address: int,
        server_address: int,
        auth: str,
        password: bytes | None,
        system_title: bytes | None,
        block_key: bytes | None,
        auth_key: bytes | None,
        max_pdu: int,
    ) -> None:
        c = GXDLMSSecureClient(
            True,
            client_address,
            server_address,
            _AUTH[auth],
            password or None,
            InterfaceType.PDU,
        )
        c.settings.maxPduSize = max_pdu
        self.ciphered = auth == "high"
        if self.ciphered:
            c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
            c.ciphering.systemTitle = bytearray(system_title or b"")
            c.ciphering.blockCipherKey = bytearray(block_key or b"")
            c.ciphering.authenticationKey = bytearray(auth_key or b"")
        self.client = c

    # -- association -------------------------------------------------
    def aarq(self, invocation_counter: int | None = None) -> bytes:
        if invocation_counter is not None:
            self.client.ciphering.invocationCounter = invocation_counter
        msgs = self.client.aarqRequest()
        return bytes(msgs[0])

    def parse_aare(self, aare_plain: bytes) -> None:
        """Parse an AARE whose user-information is already in the clear."""
        try:
            self.client.parseAareResponse(GXByteBuffer(bytearray(aare_plain)))
        except GXDLMSException as ex:
            raise AuthenticationFailed(f"association rejected: {ex}") from None
        except Exception as ex:  # gurux raises bare ValueError etc.
            raise MalformedResponse(f"invalid AARE: {ex}") from None
        if self.ciphered:
            # From now on requests are built in the clear and ciphered by us.
            self.client.ciphering.security = Security.NONE

    @property
    def negotiated_max_pdu(self) -> int:
        return int(self.client.settings.maxPduSize)

    def limit_request_pdu(self, size: int) -> None:
        self.client.settings.maxPduSize = size

    @property
    def stoc(self) -> bytes:
        return bytes(self.client.settings.stoCChallenge or b"")

    @property
    def ctos(self) -> bytes:
        return bytes(self.client.settings.ctoSChallenge or b"")

    @property
    def server_system_title(self) -> bytes:
        return bytes(self.client.settings.sourceSystemTitle or b"")

    @property
    def authentication_required(self) -> bool:
        return bool(self.client.isAuthenticationRequired)

    # -- data services ------------------------------------------------
    def get(self, class_id: int, ln: str, attr: int, access: bytes | None = None) -> list[bytes]:
        data = GXByteBuffer(bytearray(access)) if access else None
        return [bytes(m) for m in self.client._read(ln, class_id, attr, data)]

    @property
    def supports_with_list(self) -> bool:
        return bool(self.client.negotiatedConformance & Conformance.MULTIPLE_REFERENCES)

    def get_list(self, items: list[tuple[int, str, int]]) -> list[bytes]:
        """GET-request-with-list APDUs (gurux puts at most 10 items in each)."""
        objs = [(SimpleNamespace(objectType=c, logicalName=ln), a) for c, ln, a in items]
        # gurux sizes its groups with a float ((pdu - 12) / 10); keep every
        # group below that so it always uses the exact group length.
        size = max(1, min(10, (int(self.client.settings.maxPduSize) - 12) // 10 - 1))
        out = []
        for i in range(0, len(objs), size):
            out.extend(
                bytes(m) for group in self.client.readList(objs[i : i + size]) for m in group
            )
        return out

    def set(self, class_id: int, ln: str, attr: int, encoded_value: bytes) -> list[bytes]:
        # A pre-encoded value (with its own type tag) is appended verbatim by
        # gurux when the declared type is STRUCTURE and the value is bytes.
        msgs = self.client._GXDLMSClient__write(
            ln, bytearray(encoded_value), DataType.STRUCTURE, class_id, attr
        )
        return [bytes(m) for m in msgs]

    def action(self, class_id: int, ln: str, method: int, encoded_param: bytes) -> list[bytes]:
        item = SimpleNamespace(name=ln, objectType=class_id)
        msgs = self.client.method(item, method, bytearray(encoded_param), DataType.STRUCTURE)
        return [bytes(m) for m in msgs]

    def release(self) -> bytes:
        msgs = self.client.releaseRequest()
        return bytes(msgs[0]) if msgs else b""
