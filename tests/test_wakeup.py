"""Hold (a record's wait for a timeout or another event, without a process) must wake its record in the
order processes waiting on simpy's AnyOf([timeout, event]) resume, and keep nothing alive once it ended."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from simpy.events import URGENT

from twin.engine.wakeup import Hold

Plan = list[tuple[list[float], float | None]]  # per pilot: its holds, and when it is killed (None: never)


class _Record:
    """A pilot as a record: each hold is a `Hold` whose wake-up calls the record (no process). With
    `lazy`, the kill event does not exist until the kill: a hold made before it joins it by `race`
    (as a pilot's watcher does, twin/grid/site.py)."""

    def __init__(self, env: simpy.Environment, index: int, holds: list[float], kill: simpy.Event,
                 trace: list[tuple[float, int, int]], lazy: bool = False) -> None:
        self.env, self.index, self.holds, self.trace = env, index, holds, trace
        self.kill: simpy.Event | None = None if lazy else kill
        self.hold: Hold | None = None
        self.k = 0
        start = simpy.Event(env)  # as a process starts: on an URGENT event
        start._ok, start._value = True, None
        start.callbacks.append(self)
        env.schedule(start, URGENT)

    def __call__(self, _event: object) -> None:
        if self.k:
            self.trace.append((self.env.now, self.index, self.k - 1))
            if self.kill is not None and self.kill.triggered:
                return
        if self.k < len(self.holds):
            self.hold = Hold(self.env, self.holds[self.k], self.kill, self)
            self.k += 1

    def killed(self) -> None:
        """The kill, made now (lazy): the hold in progress, if any, races it."""
        self.kill = simpy.Event(self.env)
        self.kill.succeed("killed")
        if self.hold is not None:
            self.hold.race(self.kill)


def _trace(plan: Plan, light: bool | None | str) -> tuple[list[tuple[float, int, int]], list[int]]:
    """Pilots holding slots one after another until killed: (time, pilot, hold) per resumption and the
    callbacks left on each pilot's kill event. `light`: processes waiting on AnyOf (False), records with
    `Hold` (None), the same with kill events made at the kill ("lazy")."""
    env = simpy.Environment()
    trace: list[tuple[float, int, int]] = []
    kills = [env.event() for _ in plan]

    def pilot(index: int, holds: list[float]):
        for k, seconds in enumerate(holds):
            yield env.any_of([env.timeout(seconds), kills[index]])
            trace.append((env.now, index, k))
            if kills[index].triggered:
                return

    records: dict[int, _Record] = {}

    def killer(index: int, at: float):
        yield env.timeout(at)
        if light == "lazy":
            records[index].killed()
        else:
            kills[index].succeed("killed")

    for index, (holds, kill_at) in enumerate(plan):
        if light is None or light == "lazy":
            records[index] = _Record(env, index, holds, kills[index], trace, lazy=light == "lazy")
        else:
            env.process(pilot(index, holds))
        if kill_at is not None:
            env.process(killer(index, kill_at))
    env.run()
    left = [len(kill.callbacks) if kill.callbacks is not None else 0 for kill in kills]
    return trace, left


_times = st.integers(min_value=0, max_value=6).map(float)  # small integers: many exact ties
_plans = st.lists(st.tuples(st.lists(_times, min_size=1, max_size=5), st.none() | _times), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_plans)
def test_records_holding_wake_in_the_order_processes_resume(plan: Plan) -> None:
    expected = _trace(plan, light=False)[0]
    assert _trace(plan, light=None)[0] == expected
    assert _trace(plan, light="lazy")[0] == expected


def test_a_pilot_kill_event_does_not_collect_callbacks() -> None:
    _, left = _trace([([1.0] * 50, None)], light=None)
    assert left == [0]


def test_a_hold_cut_short_keeps_nothing_alive() -> None:
    """The timeout of a hold ended by the kill stays in the calendar; it must not keep the record."""
    env = simpy.Environment()
    kill = env.event()
    woke: list[float] = []
    hold = Hold(env, 100.0, kill, lambda _ev: woke.append(env.now))
    env.timeout(5.0).callbacks.append(lambda _ev: kill.succeed())
    env.run(until=50.0)
    assert woke == [5.0] and hold._then is None and hold.callbacks == []


def test_an_event_already_processed_wakes_at_once() -> None:
    """A hold racing an event processed before it (a pilot killed earlier) wakes now, not at its timeout."""
    env = simpy.Environment()
    done = env.event()
    done.succeed()
    env.run()
    woke: list[float] = []
    env.timeout(3.0).callbacks.append(lambda _ev: Hold(env, 100.0, done, lambda _e: woke.append(env.now)))
    env.run()
    assert woke == [3.0]
