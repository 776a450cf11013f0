"""The demo of `make run`: two organisations, each seeing only its own grid and meters."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts import roles, two_factor
from accounts.demo import DEMO_TOTP_SECRET
from accounts.models import User
from meters.demo import DEMO_LOGINS, load_demo
from meters.models import Meter

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo, loaded once for this module's tests (~12 s each time, mostly the portal's
    history); each test runs in a transaction rolled back after it, as before. The demo's
    after-commit work (alarm pushes, task sends) is dropped, as it was in each test's
    rolled-back transaction, and the database is emptied after the module."""
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast:  # the hasher each test signs in with
        with transaction.atomic():
            load_demo()
            connection.run_on_commit.clear()
    yield
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0, reset_sequences=False)


def test_demo_loads_two_separate_organisations(demo):
    north = User.objects.get(username="north-operator")
    south = User.objects.get(username="south-operator")
    north_meters = set(Meter.objects.restrict(north).values_list("serial", flat=True))
    south_meters = set(Meter.objects.restrict(south).values_list("serial", flat=True))
    assert len(north_meters) == len(south_meters) == 24 + 12 + 4  # checks, one shared line
    assert not north_meters & south_meters
    web = Client()
    signed_in = web.post("/login/", {"username": "north-operator", "password": "demo-north-pass"})
    assert signed_in.status_code == 302  # the printed demo login works
    listing = web.get("/meters/", {"page_size": 100}).content.decode()
    assert not any(serial in listing for serial in south_meters)
    api = APIClient()
    api.force_authenticate(north)
    serials = {m["serial"] for m in api.get("/api/meters/", {"page_size": 100}).json()["results"]}
    assert serials == north_meters


def test_demo_schedules_a_read_job_per_region(demo):
    from collection.models import ReadJob

    jobs = ReadJob.objects.select_related("periodic_task__crontab")
    assert jobs.count() == 2
    for job in jobs:
        assert job.periodic_task.enabled and job.periodic_task.crontab.minute == "*/15"


def test_demo_meters_are_registered_at_their_simulated_addresses(demo):
    """One listener serves the fleet: meter i (serial 90000001 + i) is logical device i + 1,
    the check meters of transformers and feeders follow."""
    from collection.simulators.incidents import demo_fleet
    from meters.demo import DEMO_METERS, SIM_FIRST_SERIAL

    simulated = demo_fleet(DEMO_METERS, T0, first_serial=SIM_FIRST_SERIAL).meters  # as make run
    address = {m.serial: i + 1 for i, m in enumerate(simulated)}
    meters = list(Meter.objects.filter(endpoint__protocol="dlms"))
    assert len(meters) == len(simulated) == DEMO_METERS + 24
    for meter in meters:
        assert meter.dlms_server_address == address[meter.serial]
    # The first transformer's meters of each region are read through its concentrator.
    behind = Meter.objects.filter(endpoint__transport="concentrator")
    assert behind.count() == 2 * 3
    for meter in behind.select_related("concentrator__endpoint"):
        assert meter.concentrator.port == meter.port  # the simulator's one listener


def test_demo_mixes_protocols_on_shared_lines_as_the_procfile_serves_them(demo):
    """North's Modbus and South's IEC 62056-21 meters: one line each, at the serials, unit
    ids and ports of the Procfile's simulators."""
    import re
    from pathlib import Path

    from collection.simulators.cli import build_parser
    from collection.targets import lines_of
    from meters.demo import IEC21_FIRST_SERIAL, MODBUS_FIRST_SERIAL, iec21_port, modbus_port

    procfile = dict(
        row.split(":", 1) for row in Path("Procfile").read_text().splitlines() if row.strip()
    )
    for name, protocol, first, port in (
        ("bus", "modbus", MODBUS_FIRST_SERIAL, modbus_port()),
        ("optical", "iec62056_21", IEC21_FIRST_SERIAL, iec21_port()),
    ):
        argv = procfile[name].split("simulate_meters", 1)[1].split()
        args = build_parser().parse_args([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in argv])
        meters = Meter.objects.filter(endpoint__protocol=protocol).order_by("serial")
        assert [m.serial for m in meters] == [str(first + i) for i in range(args.count)]
        assert (args.first_serial, args.port) == (first, port)
        lines = set(lines_of([m.pk for m in meters]).values())
        assert len(lines) == 1 and str(port) in lines.pop()
    units = Meter.objects.filter(endpoint__protocol="modbus").order_by("serial")
    assert [m.modbus_unit_id for m in units] == [1, 2, 3, 4]


def test_demo_check_meters_measure_their_nodes_as_the_simulator_computes_them(demo):
    """Each transformer and feeder has one check meter; the simulator's value of a
    transformer's check meter is what the meters below take plus losses (import > sum)."""
    from collection.simulators import model
    from collection.simulators.incidents import POINTS_PER_TRANSFORMER, TRANSFORMERS_PER_FEEDER
    from meters.demo import POINTS, TRANSFORMERS
    from meters.models import GridNode

    assert (POINTS_PER_TRANSFORMER, TRANSFORMERS_PER_FEEDER) == (POINTS, TRANSFORMERS)
    for node in GridNode.objects.filter(kind__in=["feeder", "transformer"]):
        checks = list(node.check_meters.all())
        assert len(checks) == 1 and checks[0].organisation_id == node.organisation_id
        rule = model.CHECK_METERS[checks[0].serial]
        below = Meter.objects.filter(service_point__path__startswith=node.path)
        if node.kind == "transformer":
            assert set(rule.below) == set(below.values_list("serial", flat=True))
        day = model.INTERVALS_PER_DAY * 700
        taken = sum(model.cumulative(s, 1, day) for s in below.values_list("serial", flat=True))
        assert model.cumulative(checks[0].serial, 1, day) > taken


def test_demo_offers_both_profile_styles_in_step_with_the_simulator(demo):
    """Every CUMULATIVE_EVERY-th meter has the IDIS-style model, as the Procfile's simulator."""
    import re
    from pathlib import Path

    from collection.simulators.cli import build_parser
    from meters.demo import CUMULATIVE_EVERY

    line = next(
        row for row in Path("Procfile").read_text().splitlines() if row.startswith("simulator:")
    )
    argv = line.split("simulate_meters", 1)[1].split()
    # ${AMI_SIM_COUNT:-48} and the like: their defaults.
    argv = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in argv]
    args = build_parser().parse_args(argv)
    assert args.cumulative_every == CUMULATIVE_EVERY
    styles = {
        m.dlms_server_address: m.meter_model.channels.get(obis="1-0:1.8.0*255", kind="profile")
        for m in Meter.objects.filter(meter_model__name="DLMS-3P-IDIS")
    }
    assert sorted(styles) == list(range(CUMULATIVE_EVERY, 73, CUMULATIVE_EVERY))
    assert {c.accumulation for c in styles.values()} == {"cumulative"}


def test_clerks_sell_a_token_at_once_on_the_page_and_through_the_api(demo):
    """Right after the demo load the clerk's shift is open: sign in, sell, get a token."""
    from vending.demo import demo_meter_number
    from vending.models import PrepaidAccount, Sale, Shift

    for region in ("north", "south"):
        login = next(x for x in DEMO_LOGINS if x.username == f"{region}-clerk")
        clerk = User.objects.get(username=login.username)
        assert Shift.objects.filter(clerk=clerk, status="open").exists()
        assert Sale.objects.filter(sold_by=clerk).count() == 3  # the demo's past sales
        account = PrepaidAccount.objects.filter(organisation=clerk.organisation).first()
        assert account.meter_number == demo_meter_number(account.meter.serial)
        assert f"sell to meter {account.meter_number}" in login.what  # printed at start

        web = Client()
        assert web.post("/login/", {"username": login.username, "password": login.password})[
            "Location"
        ]
        counter = web.get("/vending/")
        assert counter.status_code == 200 and b'id="sell-form"' in counter.content
        # The counter offers the region's accounts as the clerk types, and no other region's.
        offered = counter.content.decode().split('<datalist id="prepaid-accounts">')[1]
        offered = offered.split("</datalist>")[0]
        assert f'value="{account.meter_number}"' in offered
        others = PrepaidAccount.objects.exclude(organisation=clerk.organisation)
        assert others.exists() and not any(o.meter_number in offered for o in others)
        sold = web.post(
            "/vending/counter/sell/", {"meter_number": account.meter_number, "amount": "100.00"}
        )
        sale = Sale.objects.filter(sold_by=clerk).order_by("-created_at", "-pk").first()
        assert sold["Location"] == f"/vending/sales/{sale.reference}/"
        assert len(sale.credit_token.digits) == 20 and sale.energy_kwh > 0

        api = APIClient()
        api.force_authenticate(clerk)
        answer = api.post(
            "/api/vending/sales/", {"account": account.pk, "amount": "40.00"}, format="json"
        )
        assert answer.status_code == 201, answer.content
        assert len(answer.json()["token"]["digits"].replace(" ", "")) == 20


def test_every_demo_organisation_has_the_default_alarm_rules(demo):
    from accounts.models import Organisation
    from meters.alarms.defaults import DEFAULT_RULES
    from meters.alarms.models import AlarmRule

    wanted = {rule.key for rule in DEFAULT_RULES}
    for org in Organisation.objects.all():
        rules = AlarmRule.objects.filter(organisation=org)
        assert set(rules.values_list("default_key", flat=True)) == wanted
        assert not rules.filter(subtree=True).exists()  # own meters only: never doubled


def test_alarms_outages_and_vending_are_in_the_navigation_of_those_who_may_use_them(demo):
    expected = {
        "north-operator": {"Alarms", "Outages", "Vending"},
        "north-analyst": {"Alarms", "Outages", "Vending"},
        "north-clerk": {"Vending"},
        "admin": {"Alarms", "Outages", "Vending"},
    }
    links = {
        "Alarms": 'href="/alarms/"',
        "Outages": 'href="/alarms/outages/"',
        "Vending": 'href="/vending/"',
    }
    for username, shown in expected.items():
        login = next(x for x in DEMO_LOGINS if x.username == username)
        web = Client()
        web.post("/login/", {"username": username, "password": login.password})
        if username == "admin":  # staff: the code of the demo's TEST authenticator key
            code = two_factor.code_now(DEMO_TOTP_SECRET)
            assert web.post("/account/two-factor/", {"code": code})["Location"] == "/"
        home = web.get("/").content.decode()
        nav = home.split('<nav class="mainnav"')[1].split("</nav>")[0]
        for name, href in links.items():
            assert (href in nav) == (name in shown), (username, name)
            if name in shown:
                assert web.get(href.split('"')[1]).status_code == 200
        body = home.split("</nav>")[1]
        assert (links["Alarms"] in body) == ("Alarms" in shown), username
        assert ('href="/vending/"' in body) == ("Vending" in shown), username


def test_demo_staff_sign_in_with_the_printed_key_as_the_readme_says(demo):
    for login in DEMO_LOGINS:
        user = User.objects.get(username=login.username)
        web = Client()
        assert web.post("/login/", {"username": login.username, "password": login.password})[
            "Location"
        ]
        if login.role == roles.CUSTOMER:  # a customer's home is the portal, with its account
            assert web.get("/")["Location"] == "/portal/", login.username
            portal = web.get("/portal/")
            assert portal.status_code == 200, login.username
            assert login.what.split("prepaid meter ")[1].rstrip(")") in portal.content.decode()
            continue
        if not two_factor.required(user):
            assert web.get("/").status_code == 200, login.username
            continue
        assert web.get("/")["Location"].startswith("/account/two-factor/"), login.username
        code = two_factor.code_now(DEMO_TOTP_SECRET)  # what `manage.py totp_code KEY` prints
        assert web.post("/account/two-factor/", {"code": code})["Location"] == "/"
        assert web.get("/").status_code == 200, login.username
        assert web.get("/admin/").status_code == 200, login.username


def test_demo_concentrators_own_logical_devices_are_the_procfiles(demo):
    """The simulator serves each reading concentrator's own logical device (the Procfile's
    `--concentrator WPORT:SERIAL:FIRST:COUNT`) at the wPort the demo registered it with,
    holding the meters registered behind it; the north one is read for its own data."""
    import re
    from pathlib import Path

    from collection.simulators.cli import build_parser
    from meters.models import DataConcentrator

    procfile = dict(
        row.split(":", 1) for row in Path("Procfile").read_text().splitlines() if row.strip()
    )
    argv = procfile["simulator"].split("simulate_meters", 1)[1].split()
    args = build_parser().parse_args([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in argv])
    assert len(args.concentrator) == 2
    for spec in args.concentrator:
        wport, serial, first, count = spec.split(":")
        dc = DataConcentrator.objects.get(serial=serial)
        assert dc.dlms_server_address == int(wport)
        behind = sorted(Meter.objects.filter(concentrator=dc).values_list("serial", flat=True))
        addresses = sorted(Meter.objects.get(serial=s).dlms_server_address for s in behind)
        assert addresses == list(range(int(first), int(first) + int(count)))
    modes = dict(DataConcentrator.objects.values_list("serial", "read_mode"))
    assert (modes["DC-N11"], modes["DC-S11"]) == ("own_data", "gateway")
