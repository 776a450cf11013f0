"""Generated CRUD + permission tests for every API model (NetBox-style).

Each `ApiSpec` names an endpoint, who may write there, how to find an object of
organisation A and of organisation B, a valid payload to create one in A and a change to
apply. `generate_tests(spec)` turns it into the same set of tests for every endpoint:
the allowed user can, the read-only user cannot write, the other organisation gets 404,
list counts equal the permitted set, customers get nothing. A meta-test fails when an API
model has no spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from accounts.audit import MASK


@dataclass
class ApiSpec:
    basename: str  # router basename, e.g. "meter"
    url: str  # collection URL, e.g. "/api/meters/"
    model: type
    writer: str  # World attribute of the user allowed to write, e.g. "engineer_a"
    other_writer: str  # a user of organisation B with the same role
    object_a: Callable  # world -> an object of organisation A
    create_payload: Callable  # world -> valid payload creating an object in A
    update_payload: Callable  # world -> a valid partial change
    delete_ok: bool = True  # False where the object under test is still referenced
    delete_object: Callable | None = None  # world -> an unreferenced object of A to delete
    secret_fields: tuple[str, ...] = ()
    extra_visible_to_a: Callable = field(default=lambda world: 0)  # shared catalogue rows etc.
    # world -> None: rows the endpoint needs in both organisations, made before every test.
    setup: Callable | None = None
    # world -> users of organisation A who may read here but not write (other roles too,
    # e.g. a clerk who may sell but not change the catalogue); the analyst by default.
    readonly_users: Callable = field(default=lambda world: [world.readonly_a])
    # world -> {payload key: organisation B's object} for references _b_equivalent cannot
    # map (e.g. the spare meter of an endpoint's own setup); added to the hijack attempt.
    b_references: Callable = field(default=lambda world: {})


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def generate_tests(spec: ApiSpec):
    """Return a dict of test functions for one endpoint; the caller puts them in its module."""

    def detail(obj):
        return f"{spec.url}{obj.pk}/"

    def prepare(world):
        if spec.setup is not None:
            spec.setup(world)

    @pytest.mark.django_db
    def test_list_counts_equal_permitted_set(world):
        prepare(world)
        writer = getattr(world, spec.writer)
        response = client_for(writer).get(spec.url, {"page_size": 1000})
        assert response.status_code == 200, response.content
        expected = spec.model.objects.restrict(writer, "view").count()
        assert response.json()["count"] == expected
        # ... and the permitted set is exactly organisation A's subtree (plus shared rows).
        in_a = spec.model.objects.filter(
            **{f"{spec.model.scope_field}__path__startswith": world.org_a.path}
            if spec.model.scope_field
            else {"path__startswith": world.org_a.path}
        ).count()
        assert expected == in_a + spec.extra_visible_to_a(world)

    @pytest.mark.django_db
    def test_other_organisation_gets_404(world):
        prepare(world)
        obj = spec.object_a(world)
        other = client_for(getattr(world, spec.other_writer))
        assert other.get(detail(obj)).status_code == 404
        assert (
            other.patch(detail(obj), spec.update_payload(world), format="json").status_code == 404
        )
        assert other.delete(detail(obj)).status_code == 404
        listed = other.get(spec.url, {"page_size": 1000}).json()["results"]
        assert obj.pk not in {row["id"] for row in listed}
        assert spec.model.objects.filter(pk=obj.pk).exists()

    @pytest.mark.django_db
    def test_readonly_user_can_read_not_write(world):
        prepare(world)
        obj = spec.object_a(world)
        users = spec.readonly_users(world)
        assert users, "a spec names at least one read-only user"
        for user in users:
            readonly = client_for(user)
            assert readonly.get(detail(obj)).status_code == 200, user
            created = readonly.post(spec.url, spec.create_payload(world), format="json")
            assert created.status_code == 403, user
            changed = readonly.patch(detail(obj), spec.update_payload(world), format="json")
            assert changed.status_code == 403, user
            assert readonly.delete(detail(obj)).status_code == 403, user
            assert spec.model.objects.filter(pk=obj.pk).exists()

    @pytest.mark.django_db
    def test_customer_gets_nothing(world):
        prepare(world)
        obj = spec.object_a(world)
        customer = client_for(world.customer)
        assert customer.get(spec.url).status_code == 403
        assert customer.get(detail(obj)).status_code in (403, 404)

    @pytest.mark.django_db
    def test_anonymous_is_refused(world):
        assert APIClient().get(spec.url).status_code in (401, 403)

    @pytest.mark.django_db
    def test_writer_creates_updates_deletes_with_audit(world):
        from accounts.models import ActivityLog

        prepare(world)
        writer = client_for(getattr(world, spec.writer))
        created = writer.post(spec.url, spec.create_payload(world), format="json")
        assert created.status_code == 201, created.content
        body = created.json()
        for name in spec.secret_fields:
            assert name not in body
        obj = spec.model.objects.get(pk=body["id"])
        assert ActivityLog.objects.filter(action="create", object_id=str(obj.pk)).count() == 1
        changed = writer.patch(detail(obj), spec.update_payload(world), format="json")
        assert changed.status_code == 200, changed.content
        log = ActivityLog.objects.get(action="update", object_id=str(obj.pk))
        assert log.changes, "an update records what changed"
        for name in spec.secret_fields:
            if name in log.changes:
                assert set(log.changes[name]) <= {MASK, ""}
        replaced = writer.put(detail(obj), spec.create_payload(world), format="json")
        assert replaced.status_code == 200, replaced.content
        target = spec.delete_object(world) if spec.delete_object else obj
        deleted = writer.delete(detail(target))
        assert deleted.status_code == 204, deleted.content
        assert not spec.model.objects.filter(pk=target.pk).exists()

    @pytest.mark.django_db
    def test_writer_cannot_place_object_in_other_organisation(world):
        """Pointing a foreign key at organisation B's objects is refused and changes nothing."""
        prepare(world)
        payload = spec.create_payload(world)
        hijacked = {}
        for key, value in payload.items():
            b_value = _b_equivalent(world, key, value)
            if b_value is not None:
                hijacked[key] = b_value
        hijacked.update({key: getattr(b, "pk", b) for key, b in spec.b_references(world).items()})
        if not hijacked:
            pytest.skip("this endpoint has no organisation-bearing reference to redirect")
        before = spec.model.objects.count()
        response = client_for(getattr(world, spec.writer)).post(
            spec.url, {**payload, **hijacked}, format="json"
        )
        assert response.status_code in (400, 403, 404), response.content
        assert spec.model.objects.count() == before

    tests = (
        test_list_counts_equal_permitted_set,
        test_other_organisation_gets_404,
        test_readonly_user_can_read_not_write,
        test_customer_gets_nothing,
        test_anonymous_is_refused,
        test_writer_creates_updates_deletes_with_audit,
        test_writer_cannot_place_object_in_other_organisation,
    )
    return {f"test_{spec.basename}_{fn.__name__.removeprefix('test_')}": fn for fn in tests}


def _b_equivalent(world, key, value):
    """For a reference into organisation A, the same kind of object in organisation B."""
    a, b = world.grid_a, world.grid_b
    by_key = {
        "organisation": {world.org_a.pk: world.org_b.pk},
        "parent": {
            a.region.pk: b.region.pk,
            a.substation.pk: b.substation.pk,
            a.feeder.pk: b.feeder.pk,
            a.transformer.pk: b.transformer.pk,
            world.org_a.pk: world.org_b.pk,
        },
        "service_point": {sp.pk: b.service_points[0].pk for sp in a.service_points},
        "grid_node": {a.transformer.pk: b.transformer.pk},
    }
    if not isinstance(value, int):
        return None
    return by_key.get(key, {}).get(value)
