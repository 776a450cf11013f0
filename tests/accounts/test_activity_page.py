"""/activity/ shows every kind of audit row: every action the code records, any changes shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import audit

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "meters", "collection", "loadcontrol", "reports", "vending", "portal")


def recorded_actions() -> set[str]:
    """Every action name passed to audit.record / record_denied anywhere in the code."""
    pattern = re.compile(r"record(?:_denied)?\(\s*(?:[\w.]+,\s*)?f?\"([a-z_{}.]+)\"", re.S)
    names = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return {n for n in names if "{" not in n} | {"create", "update"}  # record_saved's two


# Shapes real producers write: [before, after] pairs, lists, dicts whose keys shadow dict
# methods in templates (an on-demand read records {"items": [...]}), numbers, nulls.
SHAPES = [
    {},
    {"firmware": ["", "7.7"]},
    {"items": ["clock", "registers"]},
    {"keys": 1, "values": [1, 2, 3], "get": None, "pop": {"nested": True}},
    {"run": 12, "meter_time": "2025-01-01T00:00:00+00:00"},
    {"user": "someone", "write": True},
]


def _page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/activity/")
    assert response.status_code == 200
    return response.content.decode()


def test_every_recorded_action_with_every_shape_renders(world):
    actions = recorded_actions()
    assert {"create", "update", "delete", "login", "sell"} <= actions, actions
    for action in sorted(actions):
        for changes in SHAPES:
            audit.record(action, user=world.admin_a, obj=world.grid_a.meters[0], changes=changes)
    text = _page(world.admin_a)
    assert "items: " in text and "clock" in text
    assert "firmware:  → 7.7" in text or "firmware: ∅ → 7.7" in text


# PostgreSQL's JSON holds no NUL character (bad input is another issue's business).
text = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(text, json_values, max_size=5))
def test_any_json_changes_render(world, changes):
    audit.record("update", user=world.admin_a, obj=world.grid_a.meters[0], changes=changes)
    _page(world.admin_a)
