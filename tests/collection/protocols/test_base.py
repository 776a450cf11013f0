import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from collection.protocols import base
from collection.protocols.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    FrameError,
    InvocationCounterRejected,
    MalformedResponse,
    MeterTimeout,
    NotSupported,
    ProtocolError,
    SecurityError,
)


def test_error_retryability():
    assert MeterTimeout().retryable and ConnectionFailed().retryable
    assert FrameError().retryable and MalformedResponse().retryable
    assert InvocationCounterRejected().retryable
    assert not AuthenticationFailed().retryable and not NotSupported().retryable
    assert not SecurityError().retryable
    assert issubclass(MalformedResponse, FrameError)
    assert all(
        issubclass(e, ProtocolError)
        for e in (MeterTimeout, ConnectionFailed, AuthenticationFailed, SecurityError)
    )


def test_default_session_is_not_supported():
    class Dummy(base.MeterSession):
        async def open(self):
            pass

        async def close(self):
            pass

    async def main():
        async with Dummy() as d:
            with pytest.raises(NotSupported):
                await d.read_clock()
            with pytest.raises(NotSupported):
                await d.read_load_profile("1-0:99.1.0*255", datetime.now(UTC), datetime.now(UTC))
            with pytest.raises(NotSupported):
                await d.disconnect()

    asyncio.run(main())


def test_values_are_frozen():
    r = base.RegisterValue("1-0:1.8.0*255", None, "Wh")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 1  # type: ignore[misc]


def test_ensure_utc():
    cet = timezone(timedelta(hours=1))
    assert base.ensure_utc(datetime(2024, 1, 1, 1, tzinfo=cet)) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        base.ensure_utc(datetime(2024, 1, 1))  # noqa: DTZ001


def test_memory_counter_store():
    async def main():
        store = base.MemoryInvocationCounterStore(initial=10)
        assert isinstance(store, base.InvocationCounterStore)
        assert await store.reserve("k", 3) == 10
        assert await store.reserve("k") == 13
        assert await store.get("k") == 14
        await store.advance_to("k", 5)  # never goes back
        assert await store.get("k") == 14
        await store.advance_to("k", 100)
        assert await store.reserve("k") == 100
        assert await store.reserve("other") == 10
        seen = await asyncio.gather(*(store.reserve("c", 2) for _ in range(50)))
        assert len(set(seen)) == 50

    asyncio.run(main())


def test_clock_drift():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    reading = base.ClockReading(now + timedelta(seconds=5), now)
    assert reading.drift_seconds == 5
