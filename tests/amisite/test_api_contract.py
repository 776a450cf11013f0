"""The API's query strings are held to its own schema (amisite/api_contract.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.test import APIClient

from amisite import api_contract


@pytest.mark.django_db
def test_an_undeclared_query_parameter_is_a_400_naming_it(world):
    client = APIClient()
    client.force_authenticate(world.operator_a)
    declared = client.get("/api/meters/", {"search": "x"})
    unknown = client.get("/api/meters/", {"serail": "x", "format": "json"})
    assert declared.status_code == 200
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "unknown query parameter(s): serail"}


def test_the_schema_is_generated_once_even_when_requests_arrive_together(monkeypatch):
    """A page opens with several API requests at once; drf-spectacular's first generation is
    not thread-safe, so the first requests of a process must not generate side by side."""
    inside, most, calls = [0], [0], []
    guard = threading.Lock()

    class SlowGenerator:
        def get_schema(self, request=None, public=True):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                calls.append(threading.get_ident())
            time.sleep(0.2)
            with guard:
                inside[0] -= 1
            return {"paths": {"/api/things/{id}/": {"get": {"parameters": []}}}}

    monkeypatch.setattr(api_contract, "SchemaGenerator", SlowGenerator)
    api_contract._declared.cache_clear()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: api_contract.declared_query_parameters(), range(8)))
    finally:
        api_contract._declared.cache_clear()  # the next caller generates the real schema
    assert (len(calls), most[0]) == (1, 1)
    assert all(answer == answers[0] for answer in answers)
