"""Production priorities: the step's/production's job Priority reaches the TaskQueue and decides who runs first.

DIRAC's path (docs/fidelity.md, "Production priorities"): Job.setPriority -> the workflow's JDL Priority ->
JobDBUtils.checkAndPrepareJob UserPriority -> JobState.insertIntoTQ -> TaskQueueDB.insertJob (RealPriority,
matched by RAND()/RealPriority within a TaskQueue).
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from conftest import MINIMAL
from twin.build import build_world
from twin.cli import main
from twin.scenario.loader import load_scenario
from twin.scenario.schema import Scenario

SLOTS = 5
TASKS = 40


def contention(low: int | None, high: int | None, duration: str = "2d") -> Scenario:
    """Two one-step MC productions of 40 jobs each on 5 slots; `low` is listed (and submitted) first."""

    def production(name: str, priority: int | None) -> dict[str, Any]:
        step = {"name": "MC", "type": "MCSimulation", "max_tasks": TASKS,
                "output_metadata": {"MCCampaign": "Test", "particle": name, "data_level": -1, "outputType": "Data"},
                "job": {"cpu_hs06s": 43200, "output_size_mb": 10, "output_data_type": "simtel"}}
        return {"name": name, "steps": [step], **({"priority": priority} if priority is not None else {})}

    return load_scenario(MINIMAL, {
        "run.duration": duration,
        "topology.sites[LCG.IN2P3-CC.fr].ces[0].slots": SLOTS,
        "topology.sites[LCG.PIC.es].ces[0].slots": 0,
        "workload.productions": [production("low", low), production("high", high)],
    })


def matching_order(scenario: Scenario) -> list[float]:
    """The transformation ID of each job in the order the jobs started running."""
    world = build_world(scenario)
    world.run()
    events = world.sim.log.to_frame()
    running = events[(events.kind == "job.status") & (events.state == "Running")].sort_values("time", kind="stable")
    return running.value.tolist()


def high_share_of_first(order: list[float], n: int = TASKS) -> float:
    high = max(order)
    return sum(1 for trans in order[:n] if trans == high) / n


def test_priority_reaches_every_job(tmp_path):
    world = build_world(contention(None, 7, duration="4h"))  # jobs still in the JobDB
    world.run()
    priorities = {(job.job_group, job.priority) for job in world.wms.jobdb.jobs.values()}
    assert priorities == {(1, 1), (2, 7)}  # unset: DIRAC's Job default 1


def test_higher_priority_production_is_matched_first(tmp_path):
    order = matching_order(contention(1, 10))
    assert len(order) == 2 * TASKS
    # RealPriority 1e6 against 1: once both are queued, a low job wins a match with odds ~1e-6 per draw;
    # only the jobs matched before the high production's jobs reached the TaskQueue may be low ones.
    assert high_share_of_first(order) >= 0.85
    # Not the listing order: the same productions with the priorities swapped.
    assert high_share_of_first(matching_order(contention(10, 1))) <= 0.15


def test_equal_priorities_share_the_slots(tmp_path):
    # Control: without a priority difference the first 40 matches mix both productions.
    order = matching_order(contention(3, 3))
    assert 0.25 <= high_share_of_first(order) <= 0.75


def test_priority_weights_the_draw_within_a_task_queue(tmp_path):
    # Priority 4 against 1: a match picks the high class with probability 4 n_high / (4 n_high + n_low),
    # so the high production leads clearly but not absolutely.
    order = matching_order(contention(1, 4))
    assert 0.6 <= high_share_of_first(order) < 1.0


BAD = [
    ("above-max", "workload.productions[test].priority=11", "workload.productions[test].priority: expected less than or equal to 10"),
    ("negative", "workload.productions[test].priority=-1", "workload.productions[test].priority: expected greater than or equal to 0"),
    ("not-int", "workload.productions[test].priority=2.5", "workload.productions[test].priority: expected a valid integer"),
    ("text", "workload.productions[test].priority=high", "workload.productions[test].priority: expected a valid integer"),
    ("step-above-max", "workload.productions[test].steps[Processing].priority=100",
     "workload.productions[test].steps[Processing].priority: expected less than or equal to 10"),
]


@pytest.mark.parametrize("cmd", ["check", "run"])
@pytest.mark.parametrize("name, param, expected", BAD, ids=[row[0] for row in BAD])
def test_bad_priority_exits_2_with_one_line(cmd, name, param, expected, tmp_path, capsys):
    argv = [cmd, str(MINIMAL), "--param", param]
    if cmd == "run":
        argv += ["--out", str(tmp_path / "out"), "--no-report", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_priority_on_a_request_step_is_refused(tmp_path, capsys):
    path = tmp_path / "moves.yaml"
    path.write_text(textwrap.dedent(f"""\
        extends: {MINIMAL}
        name: moves
        workload:
          productions:
            - name: test
              steps:
                - {{name: Move, type: Replication, plugin: Broadcast, body: moving, priority: 5,
                    source_se: [PIC-Disk], target_se: [CC-IN2P3-Disk], input_query: {{MCCampaign: Test}}}}
        """))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "priority applies to the jobs of a workflow step" in err[0], err


def test_a_later_production_starts_at_its_time_and_overtakes_by_priority():
    """`start` per production: nothing of `high` exists before 3 h; once its jobs are queued, the low-priority
    production's waiting jobs (submitted at once, 5 slots for 40) are passed over."""
    scenario = contention(1, 10)
    scenario.workload.productions[1].start = 3 * 3600.0
    world = build_world(scenario)
    world.run()
    events = world.sim.log.to_frame().sort_values("time", kind="stable")
    jobs = events[events.kind == "job.status"]
    received = jobs[jobs.state == "Received"]
    assert received[received.value == 2.0].time.min() >= 3 * 3600.0
    assert received[received.value == 1.0].time.min() < 3600.0
    arrived = received[received.value == 2.0].time.min()
    later = jobs[(jobs.state == "Running") & (jobs.time > arrived)].value.tolist()
    assert later[:TASKS] == [2.0] * TASKS  # once they are queued, every match goes to `high` until it is done
    assert later[TASKS:] and set(later[TASKS:]) == {1.0}
