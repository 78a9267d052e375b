"""`run_until` (twin/engine/loop.py) must process every event as simpy's `Environment.run(until=t)` does:
same order, same instants, same event ids taken, same outcome (a stop, a crash on an undefused failure, an
empty calendar, a bad `until`), and leave the calendar as simpy leaves it, slice after slice."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.core import StopSimulation
from simpy.events import NORMAL, URGENT

from twin.engine.alarm import sleep
from twin.engine.loop import run_until

Step = tuple[str, int, int]  # (what, delay, priority)
Loop = Callable[[simpy.Environment, float], Any]

_steps = st.tuples(st.sampled_from(["timeout", "alarm", "event", "defused", "loose", "stop", "join", "raise"]),
                   st.integers(0, 3), st.sampled_from([URGENT, NORMAL]))
_plans = st.lists(st.lists(_steps, min_size=1, max_size=5), min_size=1, max_size=5)
_slices = st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 6.0, 9.0, 14.0]), min_size=1, max_size=6)


def _scheduled(env: simpy.Environment, delay: int, priority: int, ok: bool, value: Any) -> simpy.Event:
    """An event triggered now and processed after `delay` with `priority` (as a Timeout with a priority)."""
    event = simpy.Event(env)
    event._ok, event._value = ok, value
    env.schedule(event, priority, delay)  # type: ignore[arg-type]
    return event


def _stopper(value: Any) -> Callable[[Any], None]:
    def stop(_event: Any) -> None:
        raise StopSimulation(value)
    return stop


def _world(env: simpy.Environment, plan: list[list[Step]], trace: list[tuple[Any, ...]]) -> None:
    """One process per list of steps; each step waits in its way, and the trace records every resumption."""

    def child(name: int, delay: int, fails: bool):
        yield env.timeout(delay)
        if fails:
            raise KeyError(name)
        return name

    def actor(name: int, steps: list[Step]):
        for i, (what, delay, priority) in enumerate(steps):
            value: Any = None
            if what == "timeout":
                value = yield env.timeout(delay, value=i)
            elif what == "alarm":
                value = yield sleep(env, delay)
            elif what == "event":
                value = yield _scheduled(env, delay, priority, True, (name, i))
            elif what == "defused":
                try:
                    yield _scheduled(env, delay, priority, False, ValueError(name, i))
                except ValueError as exc:
                    value = ("defused", exc.args, type(exc.__cause__).__name__)
            elif what == "loose":  # nobody waits on it: crashes the run when processed
                _scheduled(env, delay, priority, False, ValueError("loose", name, i))
            elif what == "stop":  # a callback stops the run; the one after it runs when the run resumes
                stop = _scheduled(env, delay, priority, True, None)
                stop.callbacks.append(_stopper((name, i)))
                stop.callbacks.append(lambda _e, k=(name, i): trace.append((env.now, "after-stop", k)))
            elif what == "join":
                try:
                    value = yield env.process(child(name, delay, fails=priority == URGENT))
                except KeyError as exc:
                    value = ("child failed", exc.args)
            else:  # "raise": this process fails; nobody joins it, so the run crashes
                yield env.timeout(delay)
                raise LookupError(name, i)
            trace.append((env.now, name, i, value))

    for name, steps in enumerate(plan):
        env.process(actor(name, steps))


def _run(plan: list[list[Step]], slices: list[float], loop: Loop) -> list[tuple[Any, ...]]:
    """Run `plan` to each time of `slices` in turn with `loop`; the trace, each slice's outcome and the calendar left."""
    env = simpy.Environment()
    trace: list[tuple[Any, ...]] = []
    _world(env, plan, trace)
    for until in slices:
        try:
            trace.append(("returned", loop(env, until), env.now))
        except RuntimeError as exc:  # the calendar ran empty (the message names the stop event's address)
            trace.append(("empty", str(exc).split(":")[0], env.now))
        except Exception as exc:  # noqa: BLE001  # a crash or a bad `until`: same type, arguments and cause
            trace.append(("raised", type(exc).__name__, exc.args, type(exc.__cause__).__name__, env.now))
    calendar = sorted((t, p, i, type(e).__name__, e.callbacks is None, len(e.callbacks or ())) for t, p, i, e in env._queue)
    trace.append(("left", env.now, type(env.now).__name__, next(env._eid), tuple(calendar)))
    return trace


def _simpy(env: simpy.Environment, until: float) -> Any:
    return env.run(until=until)


@settings(max_examples=300, deadline=None)
@given(_plans, _slices)
def test_run_until_processes_events_as_simpy_run(plan: list[list[Step]], slices: list[float]) -> None:
    assert _run(plan, slices, run_until) == _run(plan, slices, _simpy)


def test_the_comparison_sees_order_and_ids() -> None:
    """The trace is fine enough to tell a loop that drops the stop's resumption (and its event id) from simpy's."""

    def no_resume(env: simpy.Environment, until: float) -> Any:
        env.run(until=until)
        env._queue[:] = [entry for entry in env._queue if entry[1] != -1]  # what a loop without the re-push leaves

    plan: list[list[Step]] = [[("timeout", 1, NORMAL), ("event", 0, URGENT)], [("event", 1, URGENT)]]
    assert _run(plan, [1.0, 2.0], no_resume) != _run(plan, [1.0, 2.0], _simpy)


def test_a_crash_carries_a_copy_of_the_failure() -> None:
    env = simpy.Environment()
    original = ValueError("lost")
    _scheduled(env, 1, NORMAL, False, original)
    with pytest.raises(ValueError) as raised:
        run_until(env, 5.0)
    assert raised.value is not original and raised.value.__cause__ is original and env.now == 1
    assert run_until(env, 5.0) is None and env.now == 5.0  # the run goes on after it, as simpy's does


def test_an_until_not_in_the_future_is_refused() -> None:
    env = simpy.Environment()
    run_until(env, 2)
    with pytest.raises(ValueError, match=r"until \(2.0\) must be greater"):
        run_until(env, 2.0)


@pytest.mark.parametrize("loop", [run_until, _simpy], ids=["run_until", "simpy"])
def test_an_event_is_processed_before_its_callbacks_run(loop: Loop) -> None:
    """A callback sees its event processed (callbacks None): a process that yields it again resumes at once,
    and nobody can append to it. A loop that marked it only after the callbacks would differ here."""
    env = simpy.Environment()
    event = env.timeout(1, value="v")
    seen: list[Any] = []

    def again():
        value = yield event  # processed while this process is resumed by it: yields it again, resumes at once
        seen.append(("again", env.now, value))

    event.callbacks.append(lambda e: seen.append(("processed", e.callbacks is None)))  # type: ignore[union-attr]
    event.callbacks.append(lambda e: env.process(again()))  # type: ignore[union-attr]
    loop(env, 3.0)
    assert seen == [("processed", True), ("again", 1, "v")]


def test_a_numpy_until_is_taken_as_simpy_takes_it() -> None:
    """simpy converts any number but an int with float(): a numpy integer runs to that time."""
    np = pytest.importorskip("numpy")
    env = simpy.Environment()
    assert run_until(env, np.int64(3)) is None
    assert env.now == 3.0 and type(env.now) is float
