"""The three reference tokens of the brief plus STS conformance (CTSA) vectors."""

from __future__ import annotations

import pytest

from vending.sts.dkga import dkga02, dkga04
from vending.sts.pan import MeterPan
from vending.sts.tokens import (
    DecoderKey,
    TokenKind,
    combine_key_change,
    decode_token,
    encode_clear_credit,
    encode_clear_tamper,
    encode_credit,
    encode_key_change,
    encode_max_power,
    encode_meter_test,
    encode_phase_unbalance,
)

from .conftest import PAN_A, PAN_B, VK02, VK04, key02, key04, utc

E = TokenKind.CREDIT_ELECTRICITY


# --- the three reference tokens (independent implementation, times UTC) ---------------


def test_reference_1_ea07_dkga02_1993():
    raw = dkga02(VK02, MeterPan.parse(PAN_A), sgc=123456, ti=1, krn=1, key_type=2)
    assert raw.hex() == "e653341f9d5bf36f"
    tok = encode_credit(
        DecoderKey(raw), E, "0.1", issued_at=utc(2020, 6, 15, 12, 34), base_date=1993, rnd=7
    )
    assert tok.digits == "65534951706407144004"
    back = decode_token(tok.digits, DecoderKey(raw), base_date=1993)
    assert (back.kind, back.rnd, back.amount, back.issued_at) == (
        E,
        7,
        tok.amount,
        utc(2020, 6, 15, 12, 34),
    )


def test_reference_2_ea07_dkga02_max_power_2014():
    pan = MeterPan.parse("600727041234567843")
    raw = dkga02(VK02, pan, sgc=123456, ti=1, krn=1, key_type=2)
    assert raw.hex() == "7fd52c6e3d54b871"
    tok = encode_max_power(
        DecoderKey(raw), 5000, issued_at=utc(2025, 5, 5, 5, 5), base_date=2014, rnd=5
    )
    assert tok.digits == "46040167684177824593"
    back = decode_token(tok.digits, DecoderKey(raw), base_date=2014)
    assert (back.kind, back.watts, back.rnd) == (TokenKind.MAX_POWER, 5000, 5)


def test_reference_3_ea11_dkga04_2014():
    pan = MeterPan.parse("600727041234567843")
    raw = dkga04(VK04, pan, sgc=123457, ti=1, krn=1, key_type=2, base_date=2014, ea="11")
    assert raw.hex() == "51664ac6ea6a511f8708b082aa3de927"
    key = DecoderKey(raw, "11")
    tok = encode_credit(key, E, "10.0", issued_at=utc(2026, 11, 27, 12, 0), base_date=2014, rnd=4)
    assert tok.digits == "23543429666318132086"
    assert decode_token(tok.digits, key).amount == tok.amount


# --- STS 531-1-0-02 conformance vectors: DKGA02 + EA07 (RND 5, base date 1993) --------


@pytest.mark.parametrize(
    ("pan", "when", "expected"),
    [
        (PAN_A, (2004, 3, 1, 13, 55), "23716100501183194197"),
        (PAN_B, (2004, 3, 1, 14, 0), "67206107716095682372"),
    ],
)
def test_ctsa01_credit(pan, when, expected):
    tok = encode_credit(key02(pan), E, "0.1", issued_at=utc(*when), base_date=1993, rnd=5)
    assert tok.digits == expected


def test_ctsa03_06_07_single_management_tokens():
    k = key02()
    assert (
        encode_max_power(k, 1000, issued_at=utc(2004, 3, 28, 9, 1), base_date=1993, rnd=5).digits
        == "50901894209860263092"
    )
    assert (
        encode_clear_tamper(k, issued_at=utc(2004, 3, 28, 10, 0), base_date=1993, rnd=5).digits
        == "37037300014464855694"
    )
    assert (
        encode_phase_unbalance(
            k, 10, issued_at=utc(2004, 3, 28, 10, 20), base_date=1993, rnd=5
        ).digits
        == "30220533115430798647"
    )


@pytest.mark.parametrize(
    ("pan", "when", "register", "expected"),
    [
        (PAN_A, (2004, 3, 28, 9, 15), 0xFFFF, "29511990995826640868"),
        (PAN_B, (2004, 3, 28, 9, 20), 0xFFFF, "69986678528351463847"),
        (PAN_A, (2004, 3, 29, 0, 0), 0xFFFF, "10208942296089183521"),
        # CTSA09 step 2 carries TID 00:02 (the vending side advanced the TID by a minute).
        (PAN_A, (2004, 3, 29, 0, 2), 0xFFFF, "20388873191656671689"),
        (PAN_A, (2004, 3, 29, 0, 3), 0xFFFF, "43348834939937913498"),
        (PAN_A, (2004, 3, 29, 0, 5), 0xFFFF, "50526247723864280405"),
        (PAN_A, (2004, 4, 1, 9, 0), 0x0000, "24406351748405762287"),
        (PAN_A, (2004, 4, 1, 9, 5), 0xFFFF, "48263195037886996694"),
        (PAN_A, (2004, 4, 1, 9, 10), 0x0004, "17696673116286267663"),
        (PAN_A, (2004, 4, 1, 9, 25), 0x0007, "51867282903899304686"),
    ],
)
def test_ctsa04_09_14_clear_credit(pan, when, register, expected):
    tok = encode_clear_credit(key02(pan), register, issued_at=utc(*when), base_date=1993, rnd=5)
    assert tok.digits == expected
    assert decode_token(expected, key02(pan)).register == register


@pytest.mark.parametrize(
    ("minute", "watts", "mpl", "mppul"),
    [
        (0, 256, "41932934023937597177", "31529222328157245680"),
        (5, 16383, "39962525051716972228", "73693330413053816261"),
        (10, 16384, "49726922948713857933", "54550534704168942701"),
        (15, 20000, "49240429350369491663", "59764600311380323340"),
        (20, 180223, "59901462710025767433", "40345762458084906193"),  # rounds up
        (25, 180224, "19230023168014606006", "66940669945224810632"),
        (30, 1818623, "15202793104399278539", "39456295247583474882"),
        (35, 1818624, "39289527337368539951", "71498975780521030688"),
        (40, 18201624, "64902502692705103624", "57078032150370797843"),
    ],
)
def test_ctsa12_13_power_limit_boundaries(minute, watts, mpl, mppul):
    k = key02()
    got = encode_max_power(k, watts, issued_at=utc(2004, 4, 1, 7, minute), base_date=1993, rnd=5)
    assert got.digits == mpl
    got = encode_phase_unbalance(
        k, watts, issued_at=utc(2004, 4, 1, 8, minute), base_date=1993, rnd=5
    )
    assert got.digits == mppul


@pytest.mark.parametrize(
    ("when", "amount", "expected"),
    [
        ((2004, 4, 1, 0, 30), "25.6", "26456622012185850752"),
        ((2004, 4, 1, 0, 35), "1638.3", "02194538019157867319"),
        ((2004, 4, 1, 0, 40), "1638.4", "49848950875249585071"),
        ((2004, 4, 1, 0, 45), "2000.0", "71997443697501228179"),
        ((2004, 4, 1, 0, 50), "18022.3", "58589277912776864555"),  # rounds up
        ((2004, 4, 1, 0, 55), "18022.4", "16328229234437142451"),
        ((2004, 4, 1, 1, 44), "181862.3", "45001756646344378677"),
        ((2004, 4, 1, 1, 49), "181862.4", "15810488151857362998"),
        ((2004, 4, 1, 1, 54), "1820162.4", "42222423067848970276"),
    ],
)
def test_ctsa10_amount_sweep(when, amount, expected):
    tok = encode_credit(key02(), E, amount, issued_at=utc(*when), base_date=1993, rnd=5)
    assert tok.digits == expected


@pytest.mark.parametrize(
    ("init_ti", "new_ti", "pan", "first", "second"),
    [
        (1, 2, PAN_A, "51638423060042734509", "15361891762113502242"),
        (2, 1, PAN_A, "26553210520543055412", "00943705441908264439"),
        (1, 2, PAN_B, "36495265416911568628", "35908059266238070883"),
    ],
)
def test_ctsa05_key_change_sta(init_ti, new_ti, pan, first, second):
    current, new = key02(pan, ti=init_ti), key02(pan, ti=new_ti)
    tokens = encode_key_change(current, new, new_krn=1, new_ti=new_ti, new_key_type=2, ken=255)
    assert [t.digits for t in tokens] == [first, second]
    change = combine_key_change([decode_token(t.digits, current) for t in tokens])
    assert (change.new_key, change.tariff_index, change.ken) == (new.key, new_ti, 255)


@pytest.mark.parametrize(
    ("krn", "ti", "ken", "sgc", "vk", "minute", "expected"),
    [
        (1, 2, 85, 123456, VK02, 5, ("31337250623187821174", "25365690080149305690",
                                     "40823728429161791369")),
        (2, 1, 85, 123456, VK02, 10, ("44144630105464684572", "31162823148845145254",
                                      "07731698895042112630")),
        (2, 1, 255, 123456, VK02, 15, ("27767097093580610394", "37287781995519266010",
                                       "02838142732283753296")),
        (1, 1, 85, 888888, bytes.fromhex("9494949494949494"), 20,
         ("54413905164151863438", "70335822849409372395", "17352963892501043261")),
    ],
)  # fmt: skip
def test_ctsa19_key_change_then_credit(krn, ti, ken, sgc, vk, minute, expected):
    k = key02(ti=ti, krn=krn, sgc=sgc, vk=vk)
    kct = encode_key_change(k, k, new_krn=krn, new_ti=ti, new_key_type=2, ken=ken)
    tec = encode_credit(k, E, "0.1", issued_at=utc(2002, 4, 1, 10, minute), base_date=1993, rnd=5)
    assert (kct[0].digits, kct[1].digits, tec.digits) == expected


def test_ctsa02_11_class1_meter_test():
    assert encode_meter_test((1 << 36) - 1).digits == "56493153725450313471"
    assert (
        encode_meter_test((1 << 28) - 1, four_digit_manufacturer=True).digits
        == "02305843005052951967"
    )
    cases = [
        (0x00001, "00000000000150997584", "01152921509036054672"),
        (0x00008, "18446744073843772416", "01152921539100838034"),
        (0x00010, "36893488147553322496", "01152921573460543637"),
        (0x00400, "00000000017314105857", "01152925902787577952"),
        (0x20000, "00000002199157475960", "01153484454694514832"),
    ]
    for control, short_mfr, long_mfr in cases:
        assert encode_meter_test(control).digits == short_mfr
        assert encode_meter_test(control, four_digit_manufacturer=True).digits == long_mfr
        assert decode_token(short_mfr).control == control


# --- DKGA04 with EA07 (CTSA24/25/26) ----------------------------------------------------


@pytest.mark.parametrize(
    ("base_date", "krn", "when", "expected"),
    [
        (1993, 1, (2009, 1, 1, 8, 0), "15697331168573253829"),
        (2014, 4, (2014, 1, 1, 8, 0), "20324881626382980759"),
        (2035, 5, (2035, 1, 1, 8, 0), "09239624803025986815"),
    ],
)
def test_ctsa25_dkga04_sta_base_dates(base_date, krn, when, expected):
    k = key04(base_date=base_date, krn=krn, ea="07")
    tok = encode_credit(k, E, "0.1", issued_at=utc(*when), base_date=base_date, rnd=5)
    assert tok.digits == expected


def test_ctsa24_dkga04_sta_clear_credit():
    k = key04(ea="07")
    tok = encode_clear_credit(k, issued_at=utc(2008, 5, 26, 8, 0), base_date=1993, rnd=5)
    assert tok.digits == "08144275084202187413"


@pytest.mark.parametrize(
    ("pan", "first", "second"),
    [
        (PAN_A, "44163577485799480640", "26556810679164981397"),
        (PAN_B, "09658886361133612086", "22434017728466234784"),
    ],
)
def test_ctsa26_rollover_key_change(pan, first, second):
    current = key04(pan, base_date=2014, krn=4, ea="07")
    new = key04(pan, base_date=2035, krn=5, ea="07")
    tokens = encode_key_change(current, new, new_krn=5, new_ti=1, new_key_type=2, rollover=True)
    assert [t.digits for t in tokens] == [first, second]
    assert decode_token(first, current).rollover is True


# --- STS 531-1-0-04 conformance vectors: DKGA04 + EA11 (MISTY1) -------------------------


@pytest.mark.parametrize(
    ("pan", "base_date", "krn", "when", "expected"),
    [
        (PAN_A, 1993, 1, (2004, 3, 1, 13, 0), "59386323472137426967"),
        (PAN_B, 1993, 1, (2004, 3, 1, 13, 20), "25453597494250138964"),
        (PAN_A, 2014, 4, (2014, 1, 1, 8, 0), "13444522537517076834"),
        (PAN_A, 2035, 5, (2035, 1, 1, 8, 0), "11907826947753213480"),
    ],
)
def test_ctsa01_04_misty1_credit(pan, base_date, krn, when, expected):
    k = key04(pan, base_date=base_date, krn=krn)
    tok = encode_credit(k, E, "0.1", issued_at=utc(*when), base_date=base_date, rnd=5)
    assert tok.digits == expected


def test_misty1_single_management_tokens():
    k = key04()
    assert (
        encode_max_power(k, 1000, issued_at=utc(2004, 3, 28, 9, 1), base_date=1993, rnd=5).digits
        == "26521936751055502278"
    )
    assert (
        encode_clear_credit(k, issued_at=utc(2004, 3, 28, 9, 15), base_date=1993, rnd=5).digits
        == "59725289138639529749"
    )
    assert (
        encode_clear_credit(
            key04(PAN_B), issued_at=utc(2004, 3, 28, 9, 16), base_date=1993, rnd=5
        ).digits
        == "43917986274716482997"
    )
    assert (
        encode_clear_tamper(k, issued_at=utc(2004, 3, 28, 10, 0), base_date=1993, rnd=5).digits
        == "02455019196514047304"
    )
    assert (
        encode_phase_unbalance(
            k, 10, issued_at=utc(2004, 3, 28, 10, 20), base_date=1993, rnd=5
        ).digits
        == "16135127146988830614"
    )


@pytest.mark.parametrize(
    ("minute", "watts", "mpl", "mppul"),
    [
        (0, 256, "58601433826945463485", "23509767215559230954"),
        (5, 16383, "13997395479415026219", "70247784567899484178"),
        (10, 16384, "18037738085263294820", "36304916073545542570"),
        (20, 180223, "66354091567942569601", "25512033356036953640"),
        (40, 18201624, "29255956459122361629", "60786080230724485517"),
    ],
)
def test_ctsa12_13_04_misty1_power_limits(minute, watts, mpl, mppul):
    k = key04()
    got = encode_max_power(k, watts, issued_at=utc(2004, 4, 1, 7, minute), base_date=1993, rnd=5)
    assert got.digits == mpl
    got = encode_phase_unbalance(
        k, watts, issued_at=utc(2004, 4, 1, 8, minute), base_date=1993, rnd=5
    )
    assert got.digits == mppul


@pytest.mark.parametrize(
    ("when", "amount", "expected"),
    [
        ((2004, 4, 1, 0, 30), "25.6", "63638916334124550935"),
        ((2004, 4, 1, 0, 50), "18022.3", "33933484656539803471"),
        ((2004, 4, 1, 1, 54), "1820162.4", "44964671935361377806"),
    ],
)
def test_ctsa10_04_misty1_amounts(when, amount, expected):
    tok = encode_credit(key04(), E, amount, issued_at=utc(*when), base_date=1993, rnd=5)
    assert tok.digits == expected


@pytest.mark.parametrize(
    ("init", "new", "new_krn", "new_ti", "new_sgc", "ken", "when", "expected"),
    [
        ((1, 1, 123457), (1, 2, 123457), 1, 2, 123457, 255, (2004, 4, 1, 10, 0),
         ("34812744915211133004", "46903925208523674737", "71464563847088610152",
          "67904239402617643990", "52522044994700766563")),
        ((1, 1, 123457), (2, 1, 123457), 2, 1, 123457, 255, (2004, 4, 1, 10, 10),
         ("40937788669556693706", "55900126766830063715", "70168064023104948668",
          "31051353433275215300", "10334212364124071208")),
        ((2, 1, 123457), (7, 1, 123457), 7, 1, 123457, 170, (2004, 4, 1, 10, 15),
         ("65626097193581652906", "45273086784967754458", "60343449063848563711",
          "62570694794795906368", "06390659512322397973")),
        ((1, 1, 123457), (1, 1, 123461), 1, 1, 123461, 255, (2004, 4, 1, 10, 20),
         ("14459740122691785207", "16084994560056931733", "38603700611597183668",
          "07926972461094669048", "22571219105476013350")),
    ],
)  # fmt: skip
def test_ctsa05_19_04_four_section_key_change(init, new, new_krn, new_ti, new_sgc, ken, when,
                                               expected):  # fmt: skip
    current = key04(krn=init[0], ti=init[1], sgc=init[2])
    new_key = key04(krn=new[0], ti=new[1], sgc=new[2])
    tokens = encode_key_change(
        current, new_key, new_krn=new_krn, new_ti=new_ti, new_key_type=2, ken=ken,
        new_sgc=new_sgc,
    )  # fmt: skip
    tec = encode_credit(new_key, E, "0.1", issued_at=utc(*when), base_date=1993, rnd=5)
    assert (*[t.digits for t in tokens], tec.digits) == expected
    change = combine_key_change([decode_token(t.digits, current) for t in tokens])
    assert (change.new_key, change.sgc, change.krn, change.ken) == (
        new_key.key,
        new_sgc,
        new_krn,
        ken,
    )


def test_ctsa05_04_rollover_to_2014():
    current = key04()
    new = key04(base_date=2014, krn=4, ti=2)
    tokens = encode_key_change(
        current, new, new_krn=4, new_ti=2, new_key_type=2, rollover=True, new_sgc=123457
    )
    assert tokens[0].digits == "56493341861242437581"
    assert tokens[1].digits == "51757380361191578258"
