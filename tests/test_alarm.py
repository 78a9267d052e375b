"""An `Alarm` is scheduled exactly as a Timeout: same instants, same event ids, so whoever waits on it
(a process, a Trampoline, a plain callback) resumes in the order a Timeout would resume it."""

from __future__ import annotations

from typing import Any

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.alarm import call_after, sleep
from twin.engine.trampoline import Trampoline

# A waiter: how it waits ("process", "trampoline", "callback") and its delays (0 and repeats make same-time ties).
_waiters = st.lists(st.tuples(st.sampled_from(["process", "trampoline", "callback"]),
                              st.lists(st.integers(0, 3), min_size=1, max_size=4)), min_size=1, max_size=6)


def _world(waiters: list[tuple[str, list[int]]], light: list[bool]) -> list[tuple[Any, ...]]:
    """Every waiter waits its delays in turn, with Timeouts or (where `light`) Alarms; the trace of resumptions."""
    env = simpy.Environment()
    trace: list[tuple[Any, ...]] = []

    def wait(delay: int, alarm: bool) -> Any:
        return sleep(env, delay) if alarm else env.timeout(delay)

    def program(name: int, delays: list[int], alarm: bool):
        for i, delay in enumerate(delays):
            value = yield wait(delay, alarm)
            trace.append((env.now, name, i, value))

    for name, ((how, delays), alarm) in enumerate(zip(waiters, light)):
        if how == "process":
            env.process(program(name, delays, alarm))
        elif how == "trampoline":
            Trampoline(program(name, delays, alarm), lambda _v: None).start()
        else:
            def step(_event: Any, name: int = name, delays: list[int] = delays, alarm: bool = alarm, i: list[int] = [0]) -> None:
                trace.append((env.now, name, i[0], None))
                i[0] += 1
                if i[0] < len(delays):
                    schedule(delays[i[0]], step, alarm)

            def schedule(delay: int, callback: Any, alarm: bool) -> None:
                if alarm:
                    call_after(env, delay, callback)
                else:
                    env.timeout(delay).callbacks.append(callback)

            schedule(delays[0], step, alarm)
    env.run()
    return trace


@settings(max_examples=150, deadline=None)
@given(_waiters, st.data())
def test_alarms_resume_their_waiters_in_the_order_timeouts_would(waiters, data):
    light = data.draw(st.lists(st.booleans(), min_size=len(waiters), max_size=len(waiters)))
    reference = _world(waiters, [False] * len(waiters))
    assert _world(waiters, light) == reference
    assert _world(waiters, [True] * len(waiters)) == reference


def test_an_interrupted_process_leaves_its_alarm_without_resuming_twice():
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []

    def sleeper():
        try:
            yield sleep(env, 10)
            seen.append((env.now, "woke"))
        except simpy.Interrupt:
            seen.append((env.now, "interrupted"))
            yield sleep(env, 20)
            seen.append((env.now, "slept again"))

    proc = env.process(sleeper())
    env.timeout(5).callbacks.append(lambda _ev: proc.interrupt())
    env.run()
    assert seen == [(5, "interrupted"), (25, "slept again")]


@pytest.mark.parametrize("schedule", [lambda env: sleep(env, -1.0), lambda env: call_after(env, -1.0, lambda _e: None)])
def test_a_negative_delay_is_refused_as_a_timeout_s(schedule):
    """simpy's Timeout raises on a negative delay; an Alarm in the past would move the clock back."""
    env = simpy.Environment(initial_time=10.0)
    with pytest.raises(ValueError, match="Negative delay"):
        env.timeout(-1.0)
    with pytest.raises(ValueError, match="Negative delay"):
        schedule(env)
    assert env._queue == []
