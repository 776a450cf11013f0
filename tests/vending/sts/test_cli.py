"""The CLI core: encode, decode, JSON output and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json

import pytest

from vending.sts.cli import main

BASE = [
    "encode", "--ea", "07", "--dkga", "02", "--vending-key", "abababababababab",
    "--pan", "600727000000000009", "--sgc", "123456", "--ti", "1", "--krn", "1",
    "--key-type", "2", "--base-date", "1993", "--rnd", "7", "--time", "2020-06-15T12:34Z",
]  # fmt: skip
EA11 = [
    "encode", "--ea", "11", "--dkga", "04",
    "--vending-key", "abababababababab949494949494949401234567",
    "--pan", "600727041234567843", "--sgc", "123457", "--ti", "1", "--krn", "1",
    "--key-type", "2", "--base-date", "2014", "--rnd", "4", "--time", "2026-11-27T12:00:00+00:00",
]  # fmt: skip


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, stdout=out), out.getvalue()


def test_encode_text():
    code, out = run([*BASE, "--type", "credit-electricity", "--amount", "0.1"])
    assert code == 0
    assert "6553 4951 7064 0714 4004" in out
    assert "65534951706407144004" in out
    assert "decoder key: e653341f9d5bf36f" in out


def test_encode_json_ea11():
    code, out = run([*EA11, "--type", "credit-electricity", "--amount", "10", "--json"])
    assert code == 0
    payload = json.loads(out)
    assert payload["decoder_key"] == "51664ac6ea6a511f8708b082aa3de927"
    assert payload["tokens"][0]["token"] == "23543429666318132086"
    assert payload["tokens"][0]["amount"] == "10.0"


def test_encode_max_power_reference_2():
    argv = [*BASE, "--type", "max-power", "--watts", "5000", "--json"]
    argv[argv.index("--pan") + 1] = "600727041234567843"
    argv[argv.index("--base-date") + 1] = "2014"
    argv[argv.index("--rnd") + 1] = "5"
    argv[argv.index("--time") + 1] = "2025-05-05T05:05Z"
    code, out = run(argv)
    assert code == 0
    assert json.loads(out)["tokens"][0]["token"] == "46040167684177824593"


@pytest.mark.parametrize(
    "extra",
    [
        ["--type", "clear-credit", "--register", "0xFFFF"],
        ["--type", "clear-tamper"],
        ["--type", "set-tariff-rate", "--rate", "123"],
        ["--type", "phase-unbalance", "--watts", "10"],
        ["--type", "credit-water", "--amount", "1.5"],
        ["--type", "credit-gas", "--amount", "2"],
        ["--type", "credit-time", "--amount", "3"],
        ["--type", "credit-currency", "--amount", "4"],
    ],
)
def test_encode_then_decode(extra):
    code, out = run([*BASE, *extra, "--json"])
    assert code == 0
    token = json.loads(out)["tokens"][0]
    code, out = run(
        ["decode", "--token", token["token"], "--decoder-key", "e653341f9d5bf36f", "--json"]
    )
    assert code == 0
    decoded = json.loads(out)
    assert decoded["kind"] == token["kind"] and decoded["crc_ok"] is True


def test_key_change_sta_with_rollover():
    code, out = run(
        [*BASE, "--type", "key-change", "--new-ti", "2", "--new-base-date", "2014", "--json"]
    )
    assert code == 0
    payload = json.loads(out)
    assert len(payload["tokens"]) == 2 and payload["rollover"] is True
    assert payload["tokens"][0]["rollover"] is True


def test_key_change_misty1_four_tokens():
    code, out = run([*EA11, "--type", "key-change", "--new-krn", "2", "--new-sgc", "123461"])
    assert code == 0
    assert out.count("key-change-") == 4
    assert "new decoder key:" in out


def test_decode_text_with_base_date():
    code, out = run(
        [
            "decode", "--token", "6553-4951-7064-0714-4004", "--decoder-key", "e653341f9d5bf36f",
            "--base-date", "1993",
        ]
    )  # fmt: skip
    assert code == 0
    assert "amount: 0.1" in out and "issued_at: 2020-06-15T12:34:00+00:00" in out


def test_decode_class1_without_key():
    code, out = run(["decode", "--token", "00000000000150997584", "--json"])
    assert code == 0
    assert json.loads(out)["control"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*BASE, "--type", "credit-electricity"], "needs --amount"),
        ([*BASE, "--type", "credit-electricity", "--amount", "-1"], "negative"),
        ([*BASE, "--type", "credit-electricity", "--amount", "9999999"], "exceeds"),
        ([*BASE, "--type", "max-power", "--amount", "1", "--watts", "1"], "does not apply"),
        ([*BASE, "--type", "nonsense"], "invalid choice"),
        (["encode", "--ea", "07"], "required"),
        (["decode", "--token", "65534951706407144005", "--decoder-key", "e653341f9d5bf36f"],
         "CRC"),
        (["decode", "--token", "123", "--decoder-key", "e653341f9d5bf36f"], "20 digits"),
        (["decode", "--token", "65534951706407144004", "--decoder-key", "zz"], "hex"),
        (["decode", "--token", "65534951706407144004"], "decoder key"),
        ([], "required"),
    ],
)  # fmt: skip
def test_bad_input_one_line_exit_2(capsys, argv, message):
    code, out = run(argv)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_bad_time_and_pan(capsys):
    argv = [*BASE, "--type", "clear-tamper"]
    argv[argv.index("--time") + 1] = "2020-06-15T12:34"
    assert run(argv)[0] == 2
    assert "UTC offset" in capsys.readouterr().err
    argv = [*BASE, "--type", "clear-tamper"]
    argv[argv.index("--pan") + 1] = "600727000000000008"
    assert run(argv)[0] == 2
    assert "Luhn" in capsys.readouterr().err
    argv = [*BASE, "--type", "clear-tamper"]
    argv[argv.index("--time") + 1] = "2025-01-01T00:00Z"
    assert run(argv)[0] == 2
    assert "TID range" in capsys.readouterr().err


def test_help_returns_zero(capsys):
    assert main(["--help"], stdout=io.StringIO()) == 0


def test_leading_zeros_are_decimal_and_hex_still_works():
    """Tariff indexes are written `01` and supply group codes `000001`, as on the meter."""
    plain = [*BASE, "--type", "clear-credit", "--register", "0xffff", "--json"]
    padded = list(plain)
    for option, written in (("--ti", "01"), ("--sgc", "000123"), ("--krn", "01")):
        padded[padded.index(option) + 1] = written
    plain[plain.index("--sgc") + 1] = "123"
    assert run(padded) == run(plain)
    assert run(padded)[0] == 0
    assert json.loads(run(padded)[1])["tokens"]


def test_manage_py_sts_needs_no_secret_key():
    """A field tool that touches no database and no secret runs without SECRET_KEY."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    drop = {"SECRET_KEY", "AMI_SECRETS_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    argv = [*BASE, "--ti", "01", "--type", "credit-electricity", "--amount", "0.1"]
    result = subprocess.run(
        [sys.executable, "manage.py", "sts", *argv],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "6553 4951 7064 0714 4004" in result.stdout
