"""A generator driven by a `Trampoline` sees what it would see under a simpy Process `yield from` it:
the same values and exceptions, at the same instants, resumed in the same callback order."""

from __future__ import annotations

from typing import Any

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.events import URGENT

from twin.engine.trampoline import PENDING, Trampoline


class Boom(Exception):
    pass


SHARED = 3  # events every program may wait on or watch: they fire at their time, succeeding or failing

_steps = st.one_of(
    st.tuples(st.just("timeout"), st.integers(0, 3), st.integers(0, 99)),  # pending, succeeds with a value
    st.tuples(st.just("fail"), st.integers(0, 3), st.integers(0, 99)),  # pending, fails then
    st.tuples(st.just("triggered"), st.integers(0, 99)),  # triggered now, not processed yet
    st.tuples(st.just("shared"), st.integers(0, SHARED - 1)),  # pending or already processed, ok or failed
    st.tuples(st.just("watch"), st.integers(0, SHARED - 1)),  # a plain callback among the drivers' own
)
_programs = st.lists(st.lists(_steps, max_size=6), min_size=1, max_size=4)
_shared = st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=SHARED, max_size=SHARED)

Trace = list[tuple[Any, ...]]


def _program(env: simpy.Environment, name: int, steps: list[tuple], shared: list[simpy.Event], trace: Trace):
    """Wait on each step's event in turn and note what came back, when; return a value of its own."""
    for i, (kind, *args) in enumerate(steps):
        if kind == "watch":
            event = shared[args[0]]
            note = (lambda _ev, i=i: trace.append((env.now, name, i, "watched")))
            if event.callbacks is None:
                trace.append((env.now, name, i, "watched late"))
            else:
                event.callbacks.append(note)
            continue
        if kind == "timeout":
            event = env.timeout(args[0], args[1])
        elif kind == "fail":
            event = env.event()
            env.timeout(args[0]).callbacks.append(lambda _ev, event=event, v=args[1]: event.fail(Boom(v)))
        elif kind == "triggered":
            event = env.event().succeed(args[0])
        else:
            event = shared[args[0]]
        try:
            value = yield event
            trace.append((env.now, name, i, "value", value))
        except Boom as exc:  # its own copy, caused by the event's exception
            cause = exc.__cause__
            trace.append((env.now, name, i, "raised", exc.args, type(cause).__name__, cause.args, exc is not cause))
    return ("returned", name)


def _world(programs: list[list[tuple]], shared_plan: list[tuple[int, bool]], trampoline: bool) -> Trace:
    env = simpy.Environment()
    trace: Trace = []
    shared = [env.event() for _ in shared_plan]
    for k, (at, fails) in enumerate(shared_plan):
        event = shared[k]
        if fails:
            event._defused = True  # nobody may wait on it: simpy would raise
        fire = (lambda _ev, event=event, k=k, fails=fails: event.fail(Boom(k)) if fails else event.succeed(k))
        env.timeout(at).callbacks.append(fire)
    for name, steps in enumerate(programs):
        generator = _program(env, name, steps, shared, trace)

        def then(value: Any, name: int = name) -> None:
            trace.append((env.now, name, "then", value))

        if trampoline:
            _start_on_urgent(env, generator, then)
        else:
            env.process(_parent(generator, then))
    env.run()
    return trace


def _parent(generator, then):
    """What a Trampoline stands for: a process doing `yield from` and going on at once with the value."""
    then((yield from generator))


def _start_on_urgent(env: simpy.Environment, generator, then) -> None:
    """Start where a process starts (its URGENT Initialize event), as a JobAgent does; a generator that
    ends at once hands its value on at once (`start`'s return), one that waits calls `then` later."""
    begin = simpy.Event(env)
    begin._ok, begin._value = True, None

    def run(_event: simpy.Event) -> None:
        value = Trampoline(generator, then).start()
        if value is not PENDING:
            then(value)

    begin.callbacks.append(run)
    env.schedule(begin, URGENT)


@settings(max_examples=300, deadline=None)
@given(_programs, _shared)
def test_a_trampoline_resumes_its_generator_as_a_process_would(programs, shared_plan) -> None:
    expected = _world(programs, shared_plan, trampoline=False)
    assert _world(programs, shared_plan, trampoline=True) == expected


def test_every_kind_of_event_is_driven() -> None:
    """The branches the property covers: pending ok/failed, already processed ok/failed, triggered, no wait."""
    programs = [[("fail", 1, 7), ("timeout", 2, 3), ("shared", 0), ("shared", 1), ("triggered", 5)], [], [("watch", 0)]]
    trace = _world(programs, [(0, True), (0, False), (4, False)], trampoline=True)
    assert trace == [
        (0, 1, "then", ("returned", 1)), (0, 2, "then", ("returned", 2)), (0, 2, 0, "watched"),
        (1, 0, 0, "raised", (7,), "Boom", (7,), True), (3, 0, 1, "value", 3),
        (3, 0, 2, "raised", (0,), "Boom", (0,), True), (3, 0, 3, "value", 1), (3, 0, 4, "value", 5),
        (3, 0, "then", ("returned", 0)),
    ]
    assert trace == _world(programs, [(0, True), (0, False), (4, False)], trampoline=False)


def test_a_generator_that_yields_no_event_stops_the_run_as_simpy_does() -> None:
    """As a simpy Process: yielding something that is not an event raises simpy's RuntimeError naming it."""
    env = simpy.Environment()

    def phase():
        yield env.timeout(1)
        yield None

    assert Trampoline(phase(), lambda value: None).start() is PENDING
    with pytest.raises(RuntimeError, match='Invalid yield value "None"'):
        env.run(until=5)
