"""Every URL pattern, generated: region A's users never see region B, and a GET changes nothing.

The routes come from the URL resolver itself (pages, API with its format suffixes, the
browsable API with `Accept: text/html`, every admin changelist, change form, history,
delete and autocomplete page, exports). Each route's arguments are filled from its view's
model (DRF viewsets, class-based views, `ModelAdmin`) with region A's object and then with
region B's, and every answer is searched for region B's serials, names, codes, user names
and, in API rows, B's ids. A route this test cannot fill fails the meta-test, so a new route
needs a case here before it can exist.

The same walk proves that GET changes no state: a checksum of every table before and after
must match, apart from the audit rows that record reads (exports) and refused attempts.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Organisation, User
from accounts.roles import ROLE_PERMISSIONS
from accounts.tokens import issue_token
from amisite.asgi import application
from amisite.routing import websocket_urlpatterns
from meters.models import Customer, DataConcentrator, GridNode, Meter
from portal.customers import month_start
from tests.meters.alarms.helpers import make_rule, raise_alarm

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Arguments that are not an object: name -> value per route (None: any route).
FIXED_ARGS = {
    "format": "json",
    "app_label": "meters",
    "verb": "acknowledge",
    "provider_name": "stripe",
    "month": f"{month_start(timezone.localdate(), 1):%Y-%m}",  # a portal bill: last month
}
FMT_BY_ROUTE = {
    "meters:meter-export": "csv",
    "vending:receipt": "txt",
    "reports:query-export": "csv",
    "sale-receipt": "txt",
}
WHAT_BY_ROUTE = {"vending:counter-action": "sell", "vending:sale-action": "reprint"}
# Routes with no object to fill and nothing to show, and why.
NOT_WALKED = {
    "admin:view_on_site": "a redirect to the object's own page, which is walked itself",
    "logout": "POST only; a GET would end the walking user's session",
}
# Function views and views whose model is not on the view: argument -> model.
MODEL_BY_ROUTE = {
    "collection:job-run": "collection.ReadJob",
    "collection:job-reread": "collection.ReadJob",
    "admin:auth_user_password_change": User,
    "meters:meter-detail": Meter,
    "meters:grid-children": GridNode,
    "collection:read-meter": Meter,
    "loadcontrol:command-meter": Meter,
    "loadcontrol:bulk-decide": "loadcontrol.BulkCommand",
    "loadcontrol:schedule-decide": "loadcontrol.LoadSchedule",
    "loadcontrol:schedule-edit": "loadcontrol.LoadSchedule",
    "loadcontrol:configuration-meter": Meter,
    "loadcontrol:configuration-model": "meters.MeterModel",
    "api-meter-series": Meter,
    "api-meter-read": Meter,
    "portal:purchase": "vending.Sale",
    "portal:receipt-pdf": "vending.Sale",
    "portal:payment": "portal.Payment",
    "portal:pay-sandbox": "portal.Payment",
}


def walk(patterns=None, prefix="", namespace=""):
    """(full regex, route name with namespace, callback) for every URL pattern."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            yield prefix + str(entry.pattern), name, entry.callback


def model_of(name: str, callback):
    if name in MODEL_BY_ROUTE:
        model = MODEL_BY_ROUTE[name]
        return apps.get_model(model) if isinstance(model, str) else model
    model_admin = getattr(callback, "model_admin", None)
    if model_admin is not None:
        return model_admin.model
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    for attr in ("queryset_base", "queryset"):
        queryset = getattr(cls, attr, None)
        if queryset is not None:
            return queryset.model
    serializer = getattr(cls, "serializer_class", None)
    if serializer is not None and hasattr(serializer, "Meta"):
        return serializer.Meta.model
    return getattr(cls, "model", None)


def arguments(pattern: str, name: str) -> list[str]:
    from django.urls.resolvers import RegexPattern, RoutePattern  # noqa: F401  (types only)

    names = re.findall(r"<(?:\w+:)?(\w+)>", pattern) + re.findall(r"\(\?P<(\w+)>", pattern)
    return list(dict.fromkeys(names))


def fill(name: str, callback, pattern: str, obj) -> list[dict] | None:
    """URL kwargs for `name` with `obj` as its object; None if an argument has no value."""
    from reports.vending import TABLES

    kwargs = {}
    for arg in arguments(pattern, name):
        if arg == "slug":
            kwargs[arg] = list(TABLES)
        elif arg in FIXED_ARGS:
            kwargs[arg] = FIXED_ARGS[arg]
        elif arg == "fmt":
            kwargs[arg] = FMT_BY_ROUTE.get(name, "csv")
        elif arg == "what":
            kwargs[arg] = WHAT_BY_ROUTE.get(name, "x")
        elif arg == "content_type_id" and obj is not None:
            kwargs[arg] = ContentType.objects.get_for_model(obj).pk
        elif obj is None:
            return None
        elif arg in ("pk", "id", "object_id", "run_id"):
            kwargs[arg] = obj.pk
        elif arg == "serial":
            kwargs[arg] = obj.serial
        elif arg == "reference":
            kwargs[arg] = obj.reference
        else:
            return None
    slugs = kwargs.pop("slug", None)
    return [{**kwargs, "slug": slug} for slug in slugs] if slugs else [kwargs]


def build_url(pattern: str, name: str | None, kwargs: dict) -> str:
    if name is not None:
        return reverse(name, kwargs=kwargs)
    # The admin's unnamed `<app>/<model>/<id>/` redirect to the change form.
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), pattern)


def unscoped_objects(world) -> dict:
    """One row of each model the admin shows that belongs to no organisation (superuser's)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )
    from rest_framework.authtoken.models import Token, TokenProxy

    seen = {"username": "walker", "ip_address": "127.0.0.1", "user_agent": "t", "path_info": "/"}
    interval = IntervalSchedule.objects.create(every=5, period="minutes")
    rows = [
        Group.objects.first(),
        TokenProxy.objects.get(pk=Token.objects.create(user=world.admin_a).pk),
        AccessAttempt.objects.create(**seen, http_accept="", failures_since_start=1),
        AccessLog.objects.create(**seen, http_accept=""),
        AccessFailureLog.objects.create(**seen, http_accept=""),
        interval,
        CrontabSchedule.objects.create(minute="5"),
        SolarSchedule.objects.create(event="sunrise", latitude=51, longitude=0),
        ClockedSchedule.objects.create(clocked_time=timezone.now()),
        PeriodicTask.objects.create(name="walk", task="collection.heartbeat", interval=interval),
    ]
    return {type(row): (row, None) for row in rows}


def pairs(world) -> dict:
    """Per model: (an object of region A, one of region B): every kind a route shows."""
    from reports.models import ExportJob
    from tests.accounts.test_admin_scoping import OBJECTS, _collection_rows, _vending
    from tests.meters.alarms.helpers import alarm_rows

    found = {
        GridNode: (world.grid_a.feeder, world.grid_b.feeder),
        Meter: (world.grid_a.meters[0], world.grid_b.meters[0]),
        Customer: (world.grid_a.customers[0], world.grid_b.customers[0]),
        DataConcentrator: (world.grid_a.concentrator, world.grid_b.concentrator),
        Organisation: (world.org_a, world.org_b),
        User: (world.operator_a, world.operator_b),
    }
    found.update(_vending(world))
    found.update(alarm_rows(world))
    rows = _collection_rows(world)
    found.update({model: (rows["a"][model], rows["b"][model]) for model in rows["a"]})
    from tests.reports.engine_data import report_pairs

    found.update(report_pairs(world))
    found[ExportJob] = tuple(
        ExportJob.objects.create(organisation=user.organisation, requested_by=user, fmt="csv")
        for user in (world.admin_a, world.admin_b)
    )
    for model in OBJECTS:  # catalogue rows: made by their own builders
        if model not in found:
            found[model] = OBJECTS[model](world)
    from loadcontrol.models import BulkCommand

    found[BulkCommand] = tuple(
        BulkCommand.objects.create(
            organisation=grid.organisation,
            kind="disconnect",
            requested_by=user,
            meter_ids=[m.pk for m in grid.meters],
            reason=f"works at {grid.transformer.code}",
            target={"by": "node", "label": f"Transformer {grid.transformer.code} and below"},
        )  # fmt: skip
        for grid, user in ((world.grid_a, world.operator_a), (world.grid_b, world.operator_b))
    )
    from datetime import date, time

    from loadcontrol.models import LoadSchedule

    found[LoadSchedule] = tuple(
        LoadSchedule.objects.create(
            organisation=grid.organisation,
            name=f"Peak {grid.transformer.code}",
            meter_ids=[m.pk for m in grid.meters],
            starts_on=date(2026, 1, 5),
            at=time(18, 0),
            duration_minutes=60,
            reason="peak",
            created_by=user,
            target={"by": "node", "label": f"Transformer {grid.transformer.code} and below"},
        )  # fmt: skip
        for grid, user in ((world.grid_a, world.operator_a), (world.grid_b, world.operator_b))
    )
    from django.utils import timezone

    from meters.models import ActualConfiguration, DesiredConfiguration

    found[DesiredConfiguration] = tuple(
        DesiredConfiguration.objects.create(
            meter=grid.meters[0], section="push", value={"destination": "10.0.0.9:4060"}
        )
        for grid in (world.grid_a, world.grid_b)
    )
    found[ActualConfiguration] = tuple(
        ActualConfiguration.objects.create(
            meter=grid.meters[0],
            section="push",
            value={"destination": "10.0.0.9:4060"},
            read_at=timezone.now(),
        )
        for grid in (world.grid_a, world.grid_b)
    )
    from accounts import audit
    from accounts.models import ActivityLog

    for user in (world.admin_a, world.admin_b):
        audit.record("walk_marker", user=user, detail=f"{user.username} was here")
    found[ActivityLog] = tuple(
        ActivityLog.objects.get(action="walk_marker", user=u)
        for u in (world.admin_a, world.admin_b)
    )
    found.update(unscoped_objects(world))
    tokens = tuple(issue_token(user)[0] for user in (world.admin_a, world.admin_b))
    found[type(tokens[0])] = tokens
    found[NEIGHBOURS] = neighbours(world, found)
    return found


# Customers of the same region, each with a portal login and a purchase: neither may see
# the other's account, name, meter or purchases on any route (foreign_markers covers B).
NEIGHBOURS = "portal customers"


def neighbours(world, found) -> dict:
    """viewer -> ({model: (own object, the neighbour's)}, text only the neighbour's carries)."""
    from decimal import Decimal

    from accounts import roles
    from portal.models import Payment
    from tests.factories import make_user
    from tests.pages.site import portal_payment
    from vending import actions
    from vending.models import PrepaidAccount, Sale

    own_sale = found[Sale][0]  # on region A's first account: world.customer's
    neighbour = world.grid_a.customers[1]
    neighbour.portal_user = make_user("customer-a2", None, roles.CUSTOMER)
    neighbour.save()
    account = PrepaidAccount.objects.get(customer=neighbour)
    their_sale = actions.sell(
        account, Decimal("12"), acting_user=own_sale.sold_by, shift=own_sale.shift
    )
    own_payment, their_payment = portal_payment(own_sale.account), portal_payment(account)
    b_payment = portal_payment(found[Sale][1].account)
    found[Payment] = (own_payment, b_payment)

    def text_of(customer, sale, meter, prepaid) -> set[str]:
        return {customer.account_number, customer.name, meter.serial, str(sale.reference),
                sale.credit_token.grouped, prepaid.meter_number}  # fmt: skip

    mine = text_of(world.grid_a.customers[0], own_sale, world.grid_a.meters[0], own_sale.account)
    theirs = text_of(neighbour, their_sale, world.grid_a.meters[1], account)
    theirs.add(str(their_payment.reference))
    mine.add(str(own_payment.reference))
    return {
        "customer": ({Sale: (own_sale, their_sale), Payment: (own_payment, their_payment)}, theirs),
        "customer-a2": (
            {Sale: (their_sale, own_sale), Payment: (their_payment, own_payment)},
            mine,
        ),
    }


def foreign_markers(world, found) -> set[str]:
    """Text that only region B's objects carry."""
    b = world.grid_b
    markers = {m.serial for m in b.meters} | {c.name for c in b.customers}
    markers |= {c.account_number for c in b.customers} | {b.concentrator.serial}
    markers |= {n.code for n in (b.region, b.substation, b.feeder, b.transformer)}
    markers |= {world.operator_b.username, world.engineer_b.username, world.admin_b.username}
    markers |= {world.org_b.name, "clerk-b"}
    return {m for m in markers if m}


def body_text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":  # XLSX: the strings live in the zipped XML parts
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return " ".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())
    if content[:4] == b"%PDF":
        from pypdf import PdfReader

        return " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
    return content.decode("utf-8", "replace")


def foreign_ids(text: str, b_object) -> bool:
    """Whether an API answer lists B's object as a row (by id)."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    rows = body.get("results", [body]) if isinstance(body, dict) else body
    return any(isinstance(r, dict) and r.get("id") == b_object.pk for r in rows)


def routes():
    for pattern, name, callback in walk():
        if name in NOT_WALKED or pattern.startswith("admin/(?P<url>"):
            continue
        yield pattern, name, callback


def table_checksums() -> dict[str, tuple]:
    """(row count, sum of row hashes) per table, audit rows of reads and refusals excluded."""
    sums = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            where = ""
            if table == "accounts_activitylog":
                where = " WHERE outcome <> 'denied' AND action NOT IN ('export', 'page_denied')"
            cursor.execute(
                f'SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM "{table}" t{where}'
            )
            sums[table] = cursor.fetchone()
    return sums


def test_every_route_has_a_case(world):
    """Meta-test: each route can be filled with an object (or says why it is not walked)."""
    found = pairs(world)
    unfilled = []
    for pattern, name, callback in routes():
        model = model_of(name, callback)
        if name is None and not (pattern.startswith("admin/") and model is not None):
            unfilled.append(f"{pattern} (no name)")
            continue
        obj = found.get(model, (None, None))[0] if model else None
        if pattern.startswith("admin/") and name is None and obj is not None:
            continue  # the unnamed change-form redirect: filled by substitution
        if fill(name, callback, pattern, obj) is None:
            unfilled.append(f"{name}: {pattern} (model {getattr(model, '__name__', None)})")
    assert not unfilled, "routes with no case in tests/test_every_route.py:\n" + "\n".join(unfilled)


# A viewer of region A for every role (names: World attributes or user names made by
# pairs()); the meta-test below fails when a role has none.
VIEWERS = (
    "admin_a",
    "operator_a",
    "engineer_a",
    "readonly_a",  # analyst
    "clerk-a",  # vending clerk of region A's counter
    "paygate-a",  # a payment system's identity at region A's integration station
    "customer",
    "customer-a2",  # region A's second customer: customer A never sees customer B, both ways
)


def viewer_user(world, viewer: str) -> User:
    found = getattr(world, viewer, None)
    return found if found is not None else User.objects.get(username=viewer)


def test_every_role_has_a_viewer(world):
    pairs(world)
    covered = set()
    for viewer in VIEWERS:
        covered |= set(viewer_user(world, viewer).groups.values_list("name", flat=True))
    missing = set(ROLE_PERMISSIONS) - covered
    assert not missing, f"roles with no viewer in tests/test_every_route.py: {sorted(missing)}"


@pytest.mark.postgres
@pytest.mark.parametrize("viewer", VIEWERS)
def test_no_route_shows_region_b_and_no_get_changes_anything(world, viewer):
    found = pairs(world)
    markers = foreign_markers(world, found)
    user = viewer_user(world, viewer)
    mine_and_theirs, neighbour_text = found[NEIGHBOURS].get(viewer, ({}, set()))
    markers |= neighbour_text
    client = Client(raise_request_exception=False)
    client.force_login(user)
    leaks, errors = [], []
    before = table_checksums()
    for pattern, name, callback in routes():
        model = model_of(name, callback)
        own, foreign = found.get(model, (None, None)) if model else (None, None)
        takes_object = bool(
            set(arguments(pattern, name)) - set(FIXED_ARGS) - {"fmt", "what", "slug"}
        )
        objects = (own, foreign)
        if model in mine_and_theirs:  # a customer's own, B's, the neighbour's
            objects = (mine_and_theirs[model][0], foreign, mine_and_theirs[model][1])
        for obj in objects if takes_object else (own,):
            filled = fill(name, callback, pattern, obj)
            if filled is None:
                continue
            for kwargs, accept in (
                (k, a)
                for k in filled
                for a in (
                    ("text/html", "application/json") if pattern.startswith("api/") else ("*/*",)
                )
            ):
                url = build_url(pattern, name, kwargs)
                response = client.get(url, HTTP_ACCEPT=accept)
                if response.status_code >= 500:
                    errors.append(f"{response.status_code} GET {url} ({accept})")
                    continue
                text = body_text(response)
                # A 404 may name what was asked for (it is in the URL): an echo, not a leak.
                echoed = {m for m in markers if m in url} if response.status_code == 404 else set()
                shown = sorted(m for m in markers - echoed if m in text)
                if shown or (foreign is not None and foreign_ids(text, foreign)):
                    leaks.append(f"GET {url} ({accept}) as {viewer}: {shown or 'B id'}")
    after = table_checksums()
    changed = sorted(t for t in before if before[t] != after.get(t))
    assert not errors, "\n".join(errors)
    assert not changed, f"GET requests changed: {changed}"
    assert not leaks, "\n".join(leaks)


# --- websockets -------------------------------------------------------------------------
# Route -> the model of the object its URL names (None: no object); a route without an
# entry fails the meta-test.
WS_CASES = {
    "ws/status/": None,
    "ws/runs/<int:run_id>/": "collection.JobRun",
    "ws/alarms/": None,
    "ws/bulk-commands/<int:bulk_id>/": "loadcontrol.BulkCommand",
}


def test_every_websocket_route_has_a_case():
    routes = [str(p.pattern) for p in websocket_urlpatterns]
    missing = [r for r in routes if r not in WS_CASES]
    assert not missing, f"websocket routes with no case in tests/test_every_route.py: {missing}"
    assert not set(WS_CASES) - set(routes), "cases for websocket routes that are gone"


def region_a_markers(world) -> set[str]:
    a = world.grid_a
    markers = {m.serial for m in a.meters} | {c.name for c in a.customers}
    markers |= {c.account_number for c in a.customers} | {a.concentrator.serial}
    markers |= {n.code for n in (a.region, a.substation, a.feeder, a.transformer)}
    markers |= {world.operator_a.username, world.admin_a.username, world.org_a.name}
    return markers


def ws_path(route: str, world) -> str:
    model = WS_CASES[route]
    if model is None:
        return "/" + route
    obj = apps.get_model(model).objects.create(organisation=world.org_a)
    return "/" + re.sub(r"<(?:\w+:)?\w+>", str(obj.pk), route)


async def ws_drain(ws, seconds: float) -> tuple[list[str], int | None]:
    """Everything the socket sends within `seconds`, and its close code if it closed.

    `receive_nothing` waits without cancelling the consumer (a timed-out `receive_output`
    would).
    """
    texts = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await ws.receive_nothing(timeout=0.2):
            continue
        message = await ws.receive_output()
        if message["type"] == "websocket.close":
            return texts, message.get("code", 1000)
        texts.append(message.get("text") or str(message.get("bytes") or ""))
    return texts, None


@pytest.mark.postgres
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", list(WS_CASES))
async def test_no_websocket_gives_region_a_to_region_b(world, route):
    """Region B's operator is refused region A's objects and hears nothing of region A,
    not even while region A raises an alarm."""
    markers = await sync_to_async(region_a_markers)(world)
    path = await sync_to_async(ws_path)(route, world)
    await sync_to_async(make_rule)(world.org_a)
    client = Client()
    await sync_to_async(client.force_login)(world.operator_b)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    ws = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, code = await ws.connect(timeout=5)
        texts, closed = [], None if connected else code
        if connected:
            texts, closed = await ws_drain(ws, 2)
            if closed is None:
                await sync_to_async(raise_alarm)(world.grid_a.meters[0])
                more, closed = await ws_drain(ws, 2)
                texts += more
        if WS_CASES[route] is not None:
            assert closed is not None, f"{path}: region B's operator was let in"
        shown = sorted(m for m in markers if any(m in text for text in texts))
        assert not shown, f"{path} told region B's operator: {shown}"
    finally:
        await ws.disconnect()
        await sync_to_async(connections.close_all)()
