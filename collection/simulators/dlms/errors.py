"""Errors of the simulator's DLMS server side.

The simulator decodes with the shared codec (``collection.protocols.dlms``), which raises
the protocol error hierarchy; these names say what each error means on the server side.
"""

from __future__ import annotations

from ...protocols.errors import FrameError, MalformedResponse, ProtocolError, SecurityError

# Any malformed input (frame, APDU or A-XDR data) seen by the simulated meter.
SimProtocolError = ProtocolError
# An APDU or its A-XDR content could not be decoded (the codec's MalformedResponse).
ApduError = MalformedResponse
# A ciphered APDU failed authentication.
SecurityFailure = SecurityError


class InvocationCounterError(SecurityError):
    """A correctly protected APDU whose invocation counter is not above the last one."""


__all__ = [
    "ApduError",
    "FrameError",
    "InvocationCounterError",
    "SecurityFailure",
    "SimProtocolError",
]
