"""A PeriodicAgent (driven by callbacks, twin/engine/agent.py) must cycle exactly as the simpy process that ran
it before: same cycles at the same instants, interleaved with everything else in the same order, the same
event ids taken, the same counters, and a failing cycle crashing the run at the same instant."""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterator

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.agent import PeriodicAgent
from twin.engine.alarm import sleep
from twin.engine.loop import run_until

Wait = tuple[str, int]  # (how, delay)
CyclePlan = list[Wait] | None  # the waits of one cycle; None: an instant cycle (a plain function)


class _ProcessAgent:
    """The agent as a simpy process (the twin's agent before it was driven by callbacks): the reference."""

    def __init__(self, env: simpy.Environment, name: str, polling_time: float, cycle: Callable[[], Any],
                 first_offset: float = 0.0, enabled: bool = True) -> None:
        self.env, self.name, self.polling_time, self.first_offset = env, name, float(polling_time), float(first_offset)
        self._cycle = cycle
        self.cycles, self.busy_time, self.overruns = 0, 0.0, 0
        if enabled:
            env.process(self._run())

    def _run(self) -> Generator[Any, Any, None]:
        if self.first_offset > 0:
            yield sleep(self.env, self.first_offset)
        while True:
            start = self.env._now
            result = self._cycle()
            if result is not None:
                yield from result
            elapsed = self.env._now - start
            self.cycles += 1
            self.busy_time += elapsed
            if elapsed >= self.polling_time:
                self.overruns += 1
                yield sleep(self.env, 0)
            else:
                yield sleep(self.env, self.polling_time - elapsed)


def _cycle(env: simpy.Environment, name: int, plans: list[CyclePlan], trace: list[tuple[Any, ...]]) -> Callable[[], Any]:
    """The agent's cycle: its k-th call follows plans[k % len(plans)], tracing each wait's end."""
    calls = [0]

    def waits(k: int, plan: list[Wait]) -> Iterator[Any]:
        for i, (how, delay) in enumerate(plan):
            value: Any = None
            if how == "timeout":
                value = yield env.timeout(delay, value=(name, k, i))
            elif how == "alarm":
                value = yield sleep(env, delay)
            elif how == "done":  # an event processed before the cycle waits on it
                value = yield done
            elif how == "defused":
                failing = env.event()
                failing.fail(KeyError(name, k, i))
                try:
                    yield failing
                except KeyError as exc:
                    value = ("defused", exc.args, type(exc.__cause__).__name__)
            elif how == "join":
                value = yield env.process(_child(env, delay, (name, k, i)))
            else:  # "raise": the agent fails
                yield env.timeout(delay)
                raise LookupError(name, k, i)
            trace.append((env.now, name, k, i, value))

    def cycle() -> Any:
        k = calls[0]
        calls[0] += 1
        plan = plans[k % len(plans)]
        trace.append((env.now, name, k, "begin"))
        if plan is not None and plan[0][0] == "iterable":  # a list of events, not a generator
            return [env.timeout(plan[0][1], value=(name, k))]
        return None if plan is None else waits(k, plan)

    done = env.event()
    done.succeed("done")
    return cycle


def _child(env: simpy.Environment, delay: int, value: Any) -> Generator[Any, Any, Any]:
    yield env.timeout(delay)
    return value


def _ticker(env: simpy.Environment, trace: list[tuple[Any, ...]]) -> Generator[Any, Any, None]:
    """Something else that runs at the same instants (ties with the agents' entries)."""
    while True:
        yield env.timeout(1)
        trace.append((env.now, "tick"))


AgentPlan = tuple[int, int, bool, list[CyclePlan]]  # polling time, first offset, enabled, cycles


def _run(agents: list[AgentPlan], slices: list[float], make: Callable[..., Any]) -> list[Any]:
    env = simpy.Environment()
    trace: list[tuple[Any, ...]] = []
    env.process(_ticker(env, trace))
    made = [make(env, f"a{n}", polling, _cycle(env, n, plans, trace), offset, enabled)
            for n, (polling, offset, enabled, plans) in enumerate(agents)]
    for until in slices:
        try:
            run_until(env, until)
        except (LookupError, AttributeError) as exc:  # a cycle raised; or sent a value into a list (as `yield from`)
            trace.append(("crashed", env.now, type(exc).__name__, exc.args, type(exc.__cause__).__name__))
    trace.append(("left", next(env._eid), sorted((t, p, i) for t, p, i, _ in env._queue),
                  [(a.cycles, a.busy_time, a.overruns) for a in made]))
    return trace


_waits = st.tuples(st.sampled_from(["timeout", "alarm", "done", "defused", "join", "iterable", "raise"]), st.integers(0, 4))
_cycles = st.lists(st.none() | st.lists(_waits, min_size=1, max_size=3), min_size=1, max_size=3)
_agents = st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3), st.booleans(), _cycles), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_agents, st.sets(st.sampled_from([5.0, 10.0, 12.5, 20.0, 40.0]), min_size=1, max_size=3).map(sorted))
def test_agents_cycle_as_their_processes_did(agents: list[AgentPlan], slices: list[float]) -> None:
    assert _run(agents, slices, PeriodicAgent) == _run(agents, slices, _ProcessAgent)


def test_the_comparison_sees_a_cycle_out_of_place() -> None:
    """The trace tells an agent that starts a tick late (no Initialize event: one event id fewer) from the process."""

    def late(env: simpy.Environment, *args: Any) -> PeriodicAgent:
        return PeriodicAgent(env, *args[:3], first_offset=args[3] + 1.0, enabled=args[4])

    agents: list[AgentPlan] = [(2, 0, True, [None])]
    assert _run(agents, [10.0], late) != _run(agents, [10.0], PeriodicAgent)


def test_counters_and_overruns() -> None:
    """A 3 s cycle every 2 s overruns every time and starts again at once; a disabled agent never runs."""
    env = simpy.Environment()
    agent = PeriodicAgent(env, "slow", 2.0, lambda: iter([env.timeout(3)]), first_offset=1.0)
    idle = PeriodicAgent(env, "idle", 1.0, lambda: pytest.fail("a disabled agent ran"), enabled=False)
    run_until(env, 11.5)
    assert (agent.cycles, agent.busy_time, agent.overruns) == (3, 9.0, 3) and idle.cycles == 0


def test_a_non_positive_polling_time_is_refused() -> None:
    with pytest.raises(ValueError, match="agent x: polling_time must be > 0"):
        PeriodicAgent(simpy.Environment(), "x", 0.0, lambda: None)


@pytest.mark.parametrize("make", [PeriodicAgent, _ProcessAgent], ids=["agent", "process"])
def test_a_cycle_that_yields_no_event_stops_the_run_as_simpy_does(make: Callable[..., Any]) -> None:
    """A cycle must wait on events: yielding anything else (None, a number) ends the run with simpy's
    RuntimeError naming the value, not an AttributeError from deep inside the engine."""
    env = simpy.Environment()

    later: list[simpy.Event] = []

    def cycle() -> Iterator[Any]:
        wait = env.timeout(1)
        later.append(env.timeout(1))  # due at the same instant, after the wait: a failure scheduled then runs it first
        yield wait
        yield 42

    make(env, "bad", 5.0, cycle, 0.0, True)
    with pytest.raises(RuntimeError, match='Invalid yield value "42"') as raised:
        run_until(env, 10.0)
    assert env.now == 1 and raised.value.__cause__ is None  # raised at once, not a failed event's copy
    assert later[0].callbacks is not None  # not processed: the run stopped in the agent's own resumption
