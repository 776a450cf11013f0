"""Modbus RTU/TCP meters: register maps (pure codec), a shared-line asyncio session (pymodbus)."""
