from collection.protocols.dlms.gurux_compat import GuruxApdu, silence_gurux


def _gx(auth="high"):
    return GuruxApdu(
        client_address=1 if auth == "high" else 16,
        server_address=1,
        auth=auth,
        password=None,
        system_title=b"HEADEND1",
        block_key=bytes(16),
        auth_key=bytes(16),
        max_pdu=512,
    )


def test_no_stdout_from_gurux(capsys):
    silence_gurux()
    from gurux_dlms import AesGcmParameter, GXCiphering, GXDLMSSettings
    from gurux_dlms.enums import Security
    from gurux_dlms.GXCiphering import GXCiphering as _C  # noqa: F401

    gx = _gx()
    gx.aarq(5)
    p = AesGcmParameter(0xC8, bytearray(b"HEADEND1"), bytearray(16), bytearray(16))
    p.security = Security.AUTHENTICATION_ENCRYPTION
    data = GXCiphering.encrypt(p, bytearray(b"\xc0\x01\xc1"))
    settings = GXDLMSSettings(False, None)
    settings.cipher = GXCiphering(bytearray(b"HEADEND1"))
    settings.cipher.blockCipherKey = bytearray(16)
    settings.cipher.authenticationKey = bytearray(16)
    from gurux_dlms import GXByteBuffer

    p2 = AesGcmParameter(0, bytearray(b"HEADEND1"), bytearray(16), bytearray(16))
    GXCiphering.decrypt(settings, p2, GXByteBuffer(data))
    assert capsys.readouterr().out == ""


def test_requests():
    gx = _gx("none")
    aarq = gx.aarq()
    assert aarq[0] == 0x60
    assert gx.get(8, "0.0.1.0.0.255", 2) == [bytes.fromhex("c001c100080000010000ff0200")]
    (set_req,) = gx.set(8, "0.0.1.0.0.255", 2, b"\x09\x0c" + bytes(12))
    assert set_req.startswith(bytes.fromhex("c101c100080000010000ff0200090c"))
    (act,) = gx.action(70, "0.0.96.3.10.255", 1, b"\x0f\x00")
    assert act == bytes.fromhex("c301c100460000600 30aff01010f00".replace(" ", ""))


def test_ciphered_aarq_uses_counter():
    gx = _gx()
    a = gx.aarq(77)
    assert a[0] == 0x60
    assert (77).to_bytes(4, "big") in a
