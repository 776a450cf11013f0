"""The sans-IO push codec: simulator pushes decode, garbage only ever raises PushError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collection.protocols.dlms.framing import (
    encode_client_address,
    encode_server_address,
    hdlc_encode,
    wrapper_encode,
)
from collection.protocols.dlms.push import (
    AuthenticationFailed,
    FrameTooLarge,
    FramingError,
    HdlcStream,
    MalformedPush,
    PushError,
    UnsupportedPush,
    WrapperStream,
    events_of,
    open_envelope,
    parse_envelope,
    parse_notification,
)
from collection.protocols.push import event_from_json, event_to_json
from collection.simulators.dlms_fleet import MeterState, build_push_apdu, make_meters

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
METER = make_meters(1)[0]


def push(alarm=1, ciphered=True, state=None, when=NOW):
    return build_push_apdu(METER, state or MeterState(), when, alarm=alarm, ciphered=ciphered)


def decode(apdu):
    env = parse_envelope(apdu)
    return env, parse_notification(open_envelope(env, METER.block_key, METER.auth_key))


def test_ciphered_push_names_its_sender_and_decrypts():
    state = MeterState()
    push(state=state)
    env, note = decode(push(alarm=0x8001, state=state))
    assert env.ciphered and env.system_title == METER.system_title
    assert env.security_control == 0x30 and env.invocation_counter == 2
    assert note.logical_device_name == b"SIM" + METER.serial.encode()
    events = events_of(note, received_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert [(e.log, e.code, e.data, e.timestamp) for e in events] == [
        ("0-0:97.98.0*255", 0, (0x8001,), NOW),
        ("0-0:97.98.0*255", 15, (0x8001,), NOW),
    ]


def test_plain_push_decodes_without_keys():
    env, note = decode(push(alarm=4, ciphered=False))
    assert not env.ciphered
    assert [e.code for e in events_of(note, NOW)] == [2]


@pytest.mark.parametrize("where", [-1, -13, 20, 12])  # tag, last ciphertext byte, ..., IC
def test_any_flipped_byte_fails_authentication(where):
    apdu = bytearray(push())
    apdu[where] ^= 0x01
    with pytest.raises(AuthenticationFailed):
        open_envelope(parse_envelope(bytes(apdu)), METER.block_key, METER.auth_key)


def test_wrong_keys_fail_authentication():
    other = make_meters(2)[1]
    with pytest.raises(AuthenticationFailed):
        open_envelope(parse_envelope(push()), other.block_key, other.auth_key)


def test_encryption_without_authentication_is_refused():
    from collection.protocols.dlms import security as S

    plain = push(ciphered=False)
    content = S.protect(S.SC_ENC, METER.system_title, 7, METER.block_key, METER.auth_key, plain)
    apdu = S.wrap_general_glo(METER.system_title, content)
    with pytest.raises(AuthenticationFailed):
        open_envelope(parse_envelope(apdu), METER.block_key, METER.auth_key)


def test_dlms_cosem_data_notification_is_understood():
    """An independent encoder (dlms-cosem: OPTIONAL date-time flag 0x01)."""
    from dlms_cosem.protocol.xdlms.data_notification import (
        DataNotification,
        LongInvokeIdAndPriority,
    )

    body = b"\x02\x02\x09\x0bSIM90000001\x11\x07"
    apdu = DataNotification(LongInvokeIdAndPriority(5), NOW.replace(tzinfo=None), body).to_bytes()
    note = parse_notification(apdu)
    assert note.logical_device_name == b"SIM90000001"
    (event,) = events_of(note, NOW)
    # An event code object's value is the standard event log's entry (the same row a read
    # of the log gives), not an event of a log of its own.
    assert (event.log, event.code) == ("0-0:99.98.0*255", 7)


def test_not_a_push_is_unsupported():
    with pytest.raises(UnsupportedPush):
        parse_envelope(bytes.fromhex("c001c100080000010000ff0200"))


def test_event_json_round_trip():
    (event,) = events_of(parse_notification(push(alarm=2, ciphered=False)), NOW)
    assert event_from_json(event_to_json(event)) == event


def test_wrapper_stream_splits_and_bounds():
    frames = [wrapper_encode(1, 1, push(alarm=i + 1, ciphered=False)) for i in range(3)]
    stream = WrapperStream(max_frame=256)
    data = b"".join(frames)
    got = []
    for i in range(0, len(data), 7):  # arbitrary TCP segmentation
        got += stream.feed(data[i : i + 7])
    assert [f.apdu for f in got] == [f[8:] for f in frames] and stream.pending == 0
    with pytest.raises(FrameTooLarge):
        WrapperStream(max_frame=256).feed(wrapper_encode(1, 1, b"\x0f" * 300)[:20])
    with pytest.raises(FramingError):
        WrapperStream().feed(b"\x00\x02\x00\x01\x00\x01\x00\x01x")


def test_hdlc_ui_frames_with_garbage_and_segmentation():
    apdu = push()
    client, server = encode_client_address(16), encode_server_address(1, 17)
    ui = hdlc_encode(client, server, 0x13, b"\xe6\xe7\x00" + apdu)
    half = len(apdu) // 2
    seg1 = hdlc_encode(client, server, 0x13, b"\xe6\xe7\x00" + apdu[:half], segmented=True)
    seg2 = hdlc_encode(client, server, 0x13, apdu[half:])
    bad = bytearray(ui)
    bad[-3] ^= 0xFF
    stream = HdlcStream(max_frame=512)
    got = stream.feed(b"\x01\x02garbage" + ui + bytes(bad) + seg1)
    assert [f.apdu for f in got] == [apdu] and got[0].source == 1
    assert len(stream.errors) == 1 and isinstance(stream.errors[0], MalformedPush)
    assert [f.apdu for f in stream.feed(seg2)] == [apdu]


# --- garbage in, typed errors out ------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mutations():
    base = push()
    return st.tuples(st.integers(0, len(base) - 1), st.integers(1, 255)).map(
        lambda t: base[: t[0]] + bytes((base[t[0]] ^ t[1],)) + base[t[0] + 1 :]
    )


@FUZZ
@given(st.one_of(st.binary(max_size=200), _mutations()))
def test_garbage_apdu_raises_only_push_errors(data):
    try:
        env = parse_envelope(data)
        plain = open_envelope(env, METER.block_key, METER.auth_key)
        events_of(parse_notification(plain), NOW)
    except PushError:
        pass


@FUZZ
@given(st.binary(max_size=300), st.integers(1, 64))
def test_garbage_streams_raise_only_push_errors(data, step):
    for stream in (WrapperStream(max_frame=128), HdlcStream(max_frame=128)):
        try:
            for i in range(0, len(data), step):
                stream.feed(data[i : i + step])
        except PushError:
            pass
        assert stream.pending <= 128 + 64


@FUZZ
@given(st.binary(min_size=1, max_size=120))
def test_garbage_notification_bodies_raise_only_push_errors(body):
    try:
        events_of(parse_notification(b"\x0f\x00\x00\x00\x01\x00" + body), NOW)
    except PushError:
        pass
