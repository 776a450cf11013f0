"""DLMS/COSEM: the shared sans-IO codec and the client session.

Codec modules (pure, shared by the client, the simulated meters and the push listener):
:mod:`.axdr` (A-XDR data, COSEM date-time), :mod:`.framing` (WRAPPER, HDLC, CRC),
:mod:`.security` (suite 0 GCM/GMAC), :mod:`.apdu` (xDLMS/ACSE, BER).  The client session
is :mod:`.client` (``DlmsClient``) with :mod:`.settings` (``DlmsSettings``); this package
imports neither, so the simulator can use the codec without loading the client.
"""
