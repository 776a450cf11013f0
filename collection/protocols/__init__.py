"""Protocol-neutral meter-reading contract and protocol drivers (pure asyncio, no Django).

* :mod:`.base` - the contract (``MeterSession``, frozen value dataclasses,
  ``InvocationCounterStore``);
* :mod:`.errors` - typed errors with ``retryable``;
* :mod:`.transport` - asyncio TCP / pyserial URL transports, ``LineLimiter``;
* OBIS codes: the pure :mod:`meters.obis`, shared with the registry;
* :mod:`.dlms` - DLMS/COSEM client (``DlmsClient``, ``DlmsSettings``);
* :mod:`.cli` - ``read_meter`` command-line core (``main(argv) -> int``).
"""
