"""TimeoutOr must behave as simpy's AnyOf([timeout, event]): same resumption order, same event numbering."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.wakeup import TimeoutOr

Plan = list[tuple[list[float], float | None]]  # per pilot: its holds, and when it is killed (None: never)


def _trace(plan: Plan, light: bool) -> tuple[list[tuple[float, int, int]], int, list[int]]:
    """Pilots holding slots one after another until killed: (time, pilot, hold) per resumption,
    simpy's event counter at the end, and the callbacks left on each pilot's kill event."""
    env = simpy.Environment()
    trace: list[tuple[float, int, int]] = []
    kills = [env.event() for _ in plan]

    def pilot(index: int, holds: list[float]):
        for k, seconds in enumerate(holds):
            if light:
                yield TimeoutOr(env, seconds, kills[index])
            else:
                yield env.any_of([env.timeout(seconds), kills[index]])
            trace.append((env.now, index, k))
            if kills[index].triggered:
                return

    def killer(index: int, at: float):
        yield env.timeout(at)
        kills[index].succeed("killed")

    for index, (holds, kill_at) in enumerate(plan):
        env.process(pilot(index, holds))
        if kill_at is not None:
            env.process(killer(index, kill_at))
    env.run()
    left = [len(kill.callbacks) if kill.callbacks is not None else 0 for kill in kills]
    return trace, next(env._eid), left


_times = st.integers(min_value=0, max_value=6).map(float)  # small integers: many exact ties
_plans = st.lists(st.tuples(st.lists(_times, min_size=1, max_size=5), st.none() | _times), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_plans)
def test_same_order_and_event_numbering_as_any_of(plan: Plan) -> None:
    light_trace, light_events, _ = _trace(plan, light=True)
    any_trace, any_events, _ = _trace(plan, light=False)
    assert light_trace == any_trace
    assert light_events == any_events


def test_a_pilot_kill_event_does_not_collect_callbacks() -> None:
    _, _, left = _trace([([1.0] * 50, None)], light=True)
    assert left == [0]


def test_an_event_already_processed_wakes_at_once() -> None:
    env = simpy.Environment()
    done = env.event()
    done.succeed()
    env.run()
    woke: list[float] = []

    def proc():
        yield TimeoutOr(env, 100.0, done)
        woke.append(env.now)

    env.process(proc())
    env.run()
    assert woke == [0.0]
