"""The event vocabulary: DLMS codes, the simulator's codes, per-model extension, restores."""

import pytest

from collection.simulators import model as sim
from meters.alarms import events
from meters.alarms.events import DERIVED_LOG, EventKind, kind_of


def test_simulator_codes_map_to_kinds():
    assert kind_of(sim.EVENT_POWER_DOWN) == EventKind.POWER_FAILURE
    assert kind_of(sim.EVENT_POWER_UP) == EventKind.POWER_RESTORED
    assert kind_of(sim.EVENT_COVER_OPENED) == EventKind.TERMINAL_COVER_OPEN
    assert kind_of(sim.EVENT_MAGNETIC_TAMPER) == EventKind.MAGNETIC_TAMPER
    assert kind_of(sim.EVENT_REVERSE_FLOW) == EventKind.REVERSE_ENERGY
    assert kind_of(sim.EVENT_VOLTAGE_SAG) == EventKind.VOLTAGE_SAG
    assert kind_of(sim.EVENT_VOLTAGE_SWELL) == EventKind.VOLTAGE_SWELL


def test_standard_codes_and_unknown():
    assert kind_of(44) == EventKind.COVER_OPEN
    assert kind_of(46) == EventKind.AUTHENTICATION_FAILURE
    assert kind_of(61) == EventKind.RELAY_STATE_CHANGE
    assert kind_of(4) == kind_of(5) == EventKind.CLOCK_ADJUSTED
    assert kind_of(90) == EventKind.PHASE_LOSS
    assert kind_of(12345) == EventKind.UNKNOWN


def test_derived_codes_live_in_their_own_log():
    code = events.DERIVED_CODE_OF[EventKind.METER_UNREACHABLE]
    assert kind_of(code, DERIVED_LOG) == EventKind.METER_UNREACHABLE
    assert kind_of(code, "0-0:99.98.0*255") == EventKind.UNKNOWN  # a meter's own 9001


def test_every_restore_clears_known_kinds():
    for restore, cleared in events.CLEARS.items():
        assert restore in EventKind.values
        assert set(cleared) <= set(EventKind.values)
    assert events.CLEARS[EventKind.POWER_RESTORED] == (EventKind.POWER_FAILURE,)


@pytest.mark.django_db
def test_per_model_codes_extend_the_standard_table(settings, world):
    model = world.meter_model
    settings.AMI_EVENT_CODES = {
        f"{model.manufacturer} {model.name}": {"201": "terminal_cover_open", "44": ""}
    }
    events.clear_cache()
    try:
        assert kind_of(201, meter_model=model) == EventKind.TERMINAL_COVER_OPEN
        assert kind_of(44, meter_model=model) == EventKind.UNKNOWN  # hidden for this model
        assert kind_of(1, meter_model=model) == EventKind.POWER_FAILURE  # the rest stays
        assert kind_of(201) == EventKind.UNKNOWN  # other models are unaffected
        settings.AMI_EVENT_CODES = {f"{model.manufacturer} {model.name}": {"7": "no_such"}}
        events.clear_cache()
        with pytest.raises(ValueError):
            kind_of(7, meter_model=model)
    finally:
        events.clear_cache()


def test_events_have_names_and_meanings_in_each_log():
    from meters.alarms.events import describe

    down = describe(1, "0-0:99.98.0*255")
    assert (down.name, down.source, down.kind) == (
        "Power down",
        "Standard event log",
        EventKind.POWER_FAILURE,
    )
    assert down.meaning  # says what happened, not only the code
    assert describe(2, "0.0.99.98.0.255").name == "Power up"  # dotted logs too
    assert describe(44, "0-0:99.98.1*255").source == "Fraud detection log"
    assert describe(44, "0-0:99.98.0*255").name == "Meter cover opened"
    # Alarm-register bits are not event codes: bit 1 is "replace battery", not a failure.
    battery = describe(1, "0-0:97.98.0*255")
    assert (battery.name, battery.source, battery.kind) == (
        "Replace battery",
        "Alarm register 1",
        EventKind.UNKNOWN,
    )
    assert kind_of(2, "0-0:97.98.0*255") == EventKind.POWER_RESTORED  # bit 2: power up
    code = events.DERIVED_CODE_OF[EventKind.CLOCK_DRIFT]
    assert describe(code, DERIVED_LOG).name == "Clock drift over limit"
    assert describe(12345, "0-0:99.98.0*255").name == "Event 12345"


@pytest.mark.django_db
def test_per_model_codes_are_named_by_their_kind(settings, world):
    from meters.alarms.events import describe

    model = world.meter_model
    settings.AMI_EVENT_CODES = {f"{model.manufacturer} {model.name}": {"201": "cover_open"}}
    events.clear_cache()
    try:
        assert describe(201, "0-0:99.98.0*255", model).name == "Meter cover opened"
    finally:
        events.clear_cache()
