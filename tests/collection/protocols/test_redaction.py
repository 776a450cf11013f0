"""The exchange log never keeps a secret: planted passwords, keys and challenges, every mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collection.protocols.dlms import redact
from collection.protocols.errors import ProtocolError

from .conftest import fleet, make_settings, run

SERIAL = "90000001"
PLANTED = b"PLANTED-LLS-9f3c"  # the meter's own password
WRONG = b"PLANTED-BAD-71aa"  # what a misconfigured head-end sends instead


def _meter(**kw):
    from collection.simulators.dlms_fleet import SimulatedMeter

    return SimulatedMeter(serial=SERIAL, password=PLANTED, **kw)


def _forms(secret: bytes) -> list[bytes]:
    """The bytes themselves; the exchange log also must not hold them split by the framing."""
    return [secret, secret[:8], secret[-8:]] if len(secret) >= 8 else [secret]


CASES = [
    (interface, auth, ok, max_info)
    for interface in ("wrapper", "hdlc")
    for auth in ("none", "low", "high")
    for ok in (True, False)
    for max_info in ((128, 32) if interface == "hdlc" else (128,))
    if not (auth == "none" and not ok)
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("interface,auth,ok,max_info", CASES)
def test_exchange_log_holds_no_secret(interface, auth, ok, max_info):
    """A real session against the simulator, answered or refused; nothing secret is kept."""
    from collection.protocols.dlms.client import DlmsClient

    async def main():
        meter = _meter()
        async with fleet([meter], interface) as f:
            overrides = {"exchange_log": True, "hdlc_max_info": max_info}
            if auth == "low" and not ok:
                overrides["password"] = WRONG
            if auth == "high" and not ok:
                overrides["auth_key"] = bytes(16)  # wrong key: the meter refuses pass 3
            settings = make_settings(meter, f.address_of(SERIAL), interface, auth, **overrides)
            client = DlmsClient(settings)
            failed = None
            try:
                async with client:
                    await client.read_clock()
            except ProtocolError as ex:
                failed = ex
            assert (failed is None) == ok, failed
            secrets = [PLANTED, WRONG, meter.auth_key, meter.block_key, bytes(16)]
            gx = client._gx
            if auth == "high" and gx is not None:
                secrets += [gx.ctos, gx.stoc]
            return client.exchange_log, [s for s in secrets if s]

    log, secrets = run(main())
    assert log, "the session recorded frames"
    kept = b"".join(e.data for e in log)
    for secret in secrets:
        for form in _forms(secret):
            if form == bytes(len(form)):
                continue  # zero bytes occur in any frame
            assert form not in kept, (secret, form)
    if auth != "none":
        assert bytes([redact.MASK]) * 8 in kept, "the secret's place is shown masked"


def test_aarq_calling_authentication_value_is_masked():
    # AARQ: application-context-name, sender-acse-requirements, mechanism name, then
    # calling-authentication-value [AC] { charstring [80] "12345678" }, user-information.
    aarq = bytes.fromhex(
        "6036a109060760857405080101"
        "8a0207808b0760857405080201"
        "ac0a80083132333435363738"
        "be10040e01000000065f1f040000181dffff"
    )
    spans = redact.secret_spans(aarq)
    masked = redact.mask(aarq, spans)
    assert b"12345678" in aarq and b"12345678" not in masked
    assert masked.startswith(aarq[:28]) and masked.endswith(aarq[-18:])


def test_hls_reply_and_its_answer_are_masked():
    # action-request normal, class 15, 0.0.40.0.0.255, method 1, octet-string f(StoC)
    request = bytes.fromhex("c30141000f0000280000ff0101091011223344556677889900aabbccddeeff00")
    answer = bytes.fromhex("c7014100010009101122334455667788aabbccddeeff0011")
    assert b"\x11\x22\x33\x44" not in redact.mask(request, redact.secret_spans(request))
    masked = redact.mask(answer, redact.secret_spans(answer, answering=request))
    assert b"\x11\x22\x33\x44" not in masked
    # An ordinary GET answer is kept as it is.
    get = bytes.fromhex("c40141000906313233343536")
    assert redact.secret_spans(get, answering=bytes.fromhex("c00141000800000100ff0200")) == []


@given(st.binary(max_size=200), st.binary(max_size=60))
def test_any_bytes_give_spans_inside_the_apdu(apdu, answering):
    for spans in (redact.secret_spans(apdu), redact.secret_spans(apdu, answering=answering)):
        for start, end in spans:
            assert 0 <= start <= end <= len(apdu)


def test_truncated_aarq_still_hides_the_password():
    aarq = bytes.fromhex("6036a109060760857405080101ac0a80083132333435363738be0401020304")
    for cut in range(len(aarq) + 1):
        masked = redact.mask(aarq[:cut], redact.secret_spans(aarq[:cut]))
        for i in range(len(b"12345678") - 2):
            assert b"12345678"[i : i + 3] not in masked, cut
