"""Typed errors of the simulator's DLMS codec."""

from __future__ import annotations


class SimProtocolError(Exception):
    """Any malformed input (frame, APDU or A-XDR data) seen by the simulated meter."""


class FrameError(SimProtocolError):
    """A transport frame (WRAPPER/HDLC) is malformed: length, CRC, address, control."""


class ApduError(SimProtocolError):
    """An APDU or its A-XDR content could not be decoded."""


class SecurityFailure(SimProtocolError):
    """A ciphered APDU failed authentication or reused an invocation counter."""


class InvocationCounterError(SecurityFailure):
    """A correctly protected APDU whose invocation counter is not above the last one."""
