r"""Benchmark: prepaid sales per second, end to end through the payment API.

Run (PostgreSQL, the database of DATABASE_URL; a throwaway test database is created and
dropped by the bench itself, nothing is written to the real one)::

    DJANGO_SETTINGS_MODULE=amisite.settings SECRET_KEY=x AMI_SECRETS_KEY=... \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ami \
    .venv/bin/python bench/vending_sales.py [--quick]

What is measured: `POST /api/vending/payments/` through Django's test client (the whole
stack: authentication, DRF, scoping, the account lock, tariff, decoder key derivation,
TID allocation, token encryption, the sale and audit rows) for one meter after another.
Baseline, in the same run: a trivial authenticated API GET (`/api/vending/stations/<id>/`).
The two alternate in pairs (sales, baseline, sales, baseline...) so drift hits both; each
reports the median of the rounds (>= 3). Output: JSON lines
``{"bench": "vending_sales", "metric", "value", "unit", "baseline", "ratio"}``.
Before printing, every sale's token is decoded with the meter's decoder key: it must carry
the sold kWh and its TID, and no meter may have two tokens with one TID.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds (< 1 minute)")
    args = parser.parse_args(argv)
    rounds, per_round = (3, 40) if args.quick else (5, 200)

    import django

    django.setup()
    from django.test.utils import (
        setup_databases,
        setup_test_environment,
        teardown_databases,
        teardown_test_environment,
    )

    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        results = run(rounds, per_round)
    finally:
        teardown_databases(old_config, verbosity=0)
        teardown_test_environment()
    for line in results:
        print(json.dumps(line))
    return 0


def run(rounds: int, per_round: int) -> list[dict]:
    from decimal import Decimal

    from django.db import connection
    from rest_framework.test import APIClient

    from tests.factories import make_world
    from tests.vending.conftest import make_vending
    from vending.engine import decoder_key
    from vending.models import Sale
    from vending.sts.tokens import decode_token

    vend = make_vending(make_world())
    client = APIClient()
    client.force_authenticate(vend.integration_a)
    accounts = [vend.account_a, vend.account_a2]
    counter = iter(range(10**9))

    def sales(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            i = next(counter)
            account = accounts[i % len(accounts)]
            response = client.post(
                "/api/vending/payments/",
                {"meter_number": account.meter_number, "amount": "25.00", "currency": "ZAR",
                 "payment_reference": f"bench-{i}"},
                format="json", HTTP_IDEMPOTENCY_KEY=f"bench-{i}",
            )  # fmt: skip
            assert response.status_code == 201, response.content
        return n / (time.perf_counter() - start)

    def baseline(n: int) -> float:
        url = f"/api/vending/stations/{vend.station_a.pk}/"
        start = time.perf_counter()
        for _ in range(n):
            assert client.get(url).status_code == 200
        return n / (time.perf_counter() - start)

    sales(5), baseline(5)  # warm-up (connections, caches)
    sale_rates, base_rates = [], []
    for _ in range(rounds):
        sale_rates.append(sales(per_round))
        base_rates.append(baseline(per_round))

    # Every sale produced a decodable token with the sold amount and a unique TID per meter.
    seen = set()
    for account in accounts:
        key = decoder_key(account)
        for sale in Sale.objects.filter(account=account).prefetch_related("tokens"):
            token = sale.credit_token
            decoded = decode_token(token.digits, key)
            assert decoded.amount == sale.energy_kwh == Decimal("12.5"), sale.pk
            assert decoded.tid == token.tid
            assert (account.pk, token.tid) not in seen, "duplicate TID"
            seen.add((account.pk, token.tid))
    total = Sale.objects.count()
    assert len(seen) == total == 5 + rounds * per_round

    value, base = statistics.median(sale_rates), statistics.median(base_rates)
    return [
        {"bench": "vending_sales", "metric": "sales_per_second", "value": round(value, 1),
         "unit": "sales/s", "baseline": round(base, 1), "ratio": round(value / base, 3),
         "database": connection.vendor, "rounds": rounds, "sales_per_round": per_round,
         "baseline_kind": "authenticated API GET per second"},
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
