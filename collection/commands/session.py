"""One session with one meter for a bundle of its commands, through the meter's driver.

Pure: no Django, no database. Each command is executed (or, for a command an interrupted
worker may already have sent, only read back) and its read-back decides: confirmed when the
meter now says what the command asked for, failed otherwise. A protocol error fails the
command it happened in and, once the session is gone, every command after it, each with the
error's `retryable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collection.protocols import base, registry
from collection.protocols.errors import NotSupported, ProtocolError
from meters import configuration as config

from . import configuration
from .kinds import CAPABILITY, CLOCK_TOLERANCE_S, CONFIG_KINDS, EXPECTED_RELAY, Kind


@dataclass(frozen=True)
class Step:
    command_id: int
    kind: str
    parameters: dict = field(default_factory=dict)
    execute: bool = True  # False: read back only (it may have reached the meter already)


@dataclass(frozen=True)
class Outcome:
    command_id: int
    confirmed: bool
    answer: dict = field(default_factory=dict)
    relay_state: str | None = None  # the control state read back, if the command read it
    error_kind: str = ""
    error: str = ""
    retryable: bool = False


SWITCH = {
    Kind.CONNECT: lambda session: session.connect(),
    Kind.DISCONNECT: lambda session: session.disconnect(),
    Kind.READY_FOR_RECONNECTION: lambda session: session.ready_for_reconnection(),
}


def _relay_answer(state: base.RelayState) -> dict:
    return {"connected": state.connected, "control_state": state.control_state}


async def _run_step(session: base.MeterSession, step: Step) -> Outcome:
    kind = Kind(step.kind)
    if kind in EXPECTED_RELAY or kind == Kind.RELAY_READ:
        wanted = EXPECTED_RELAY.get(kind)
        execute = step.execute and kind != Kind.RELAY_READ
        if not execute:
            state = await session.relay_state()
            # Read back only (it may have been sent by a worker that died): the meter in
            # the wanted state confirms it; a meter not in it never got it, so this is its
            # one execution (switching towards a state is safe to do once it is known
            # not to have happened).
            execute = wanted is not None and state.control_state != wanted
        if execute:
            state = await SWITCH[kind](session)
        answer = _relay_answer(state)
        if wanted is not None and state.control_state != wanted:
            return Outcome(
                step.command_id,
                False,
                answer,
                relay_state=state.control_state,
                error_kind="NotConfirmed",
                error=f"the meter reads back {state.control_state}, not {wanted}",
            )
        return Outcome(step.command_id, True, answer, relay_state=state.control_state)
    if kind == Kind.SET_CLOCK:
        clock = await (session.set_clock() if step.execute else session.read_clock())
        drift = clock.drift_seconds
        answer = {
            "meter_time": clock.meter_time.isoformat() if clock.meter_time else None,
            "drift_s": drift,
        }
        if drift is None or abs(drift) > CLOCK_TOLERANCE_S:
            return Outcome(
                step.command_id,
                False,
                answer,
                error_kind="NotConfirmed",
                error=f"the clock reads back {drift} s off",
            )
        return Outcome(step.command_id, True, answer)
    if kind in CONFIG_KINDS:
        return await _configure(session, step, CONFIG_KINDS[kind])
    if kind == Kind.READ_CONFIGURATION:
        return await _read_configuration(session, step)
    raise NotSupported(f"no session step for {kind}")  # pragma: no cover (kinds are closed)


async def _configure(session: base.MeterSession, step: Step, section: str) -> Outcome:
    """Write one section (unless only reading back) and confirm by what the meter reads back."""
    if step.execute:
        await configuration.write_section(session, section, step.parameters)
    actual = await configuration.read_section(session, section)
    answer = {"section": section, "actual": actual}
    confirmed = config.in_step(section, step.parameters, actual)
    differs = f"the meter reads back a {config.LABELS[section].lower()} that differs"
    return Outcome(
        step.command_id,
        confirmed,
        answer,
        error_kind="" if confirmed else "NotConfirmed",
        error="" if confirmed else differs,
    )


async def _read_configuration(session: base.MeterSession, step: Step) -> Outcome:
    """Read every asked section the driver can; the rest are named as not supported."""
    sections, unsupported = {}, []
    for section in step.parameters.get("sections", configuration.READABLE):
        if configuration.CAPABILITY_OF[section] in session.capabilities:
            sections[section] = await configuration.read_section(session, section)
        else:
            unsupported.append(section)
    return Outcome(step.command_id, True, {"sections": sections, "unsupported": unsupported})


def _failed(step: Step, exc: Exception) -> Outcome:
    return Outcome(
        step.command_id,
        False,
        error_kind=type(exc).__name__,
        error=str(exc)[:2000],
        retryable=bool(getattr(exc, "retryable", False)),
    )


async def run_session(settings, steps: list[Step], counters=None) -> list[Outcome]:
    """Open one session with the meter of `settings` and run `steps` in order; one outcome
    per step, in the order of `steps`."""
    outcomes: dict[int, Outcome] = {}
    try:
        session = registry.open_session(settings, counters)
        for step in steps:
            needed = CAPABILITY[Kind(step.kind)]
            if needed is not None and needed not in session.capabilities:
                unsupported = NotSupported(f"{type(session).__name__} cannot {step.kind}")
                outcomes[step.command_id] = _failed(step, unsupported)
        todo = [s for s in steps if s.command_id not in outcomes]
        if todo:
            async with session:
                for index, step in enumerate(todo):
                    try:
                        outcomes[step.command_id] = await _run_step(session, step)
                    except ProtocolError as exc:
                        outcomes[step.command_id] = _failed(step, exc)
                        if not isinstance(exc, NotSupported):
                            # The session is gone: the rest fail alike (and retry alike).
                            for rest in todo[index + 1 :]:
                                outcomes[rest.command_id] = _failed(rest, exc)
                            break
    except (ProtocolError, OSError, TimeoutError) as exc:
        for step in steps:
            outcomes.setdefault(step.command_id, _failed(step, exc))
    return [outcomes[s.command_id] for s in steps]
