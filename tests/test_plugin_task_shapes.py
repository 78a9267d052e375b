"""What a TransformationAgent plugin may hand back: DIRAC's TaskManager takes any (SE, LFNs) 2-sequence with
any iterable of LFNs. The compiled agents type their tasks, so `_run_plugin` turns each into (SE, list)
once; both modes must accept every shape the interpreted agents accepted (review 6, R1)."""

from __future__ import annotations

import pytest

from twin.build import build_world
from twin.dirac.returnvalues import S_OK

from conftest import minimal


class _Plugin:
    """A plugin that returns one fixed task, whatever it is shown."""

    def __init__(self, tasks: list) -> None:
        self.tasks = tasks

    def setParameters(self, _params) -> None: ...

    def setInputData(self, _data) -> None: ...

    def setTransformationFiles(self, _files) -> None: ...

    def run(self):
        return S_OK(self.tasks)


@pytest.mark.parametrize("task", [
    ("SE-A", ["/a", "/b"]),
    ["SE-A", ["/a", "/b"]],
    ("SE-A", ("/a", "/b")),
    ("SE-A", dict.fromkeys(["/a", "/b"])),
    ("SE-A", (lfn for lfn in ["/a", "/b"])),
], ids=["tuple-list", "list-list", "tuple-tuple", "tuple-dict", "tuple-generator"])
def test_any_task_shape_becomes_se_and_a_list_of_lfns(task):
    world = build_world(minimal())
    world.sim.env.run(until=60.0)  # the Production System has created the transformations
    trans_id = next(iter(world.runtimes))
    world.runtimes[trans_id].make_plugin = lambda: _Plugin([task])
    tasks = world.ts._run_plugin({"TransformationID": trans_id, "Plugin": "Fixed"}, {"/a": ["SE-A"]}, [])
    assert tasks == [("SE-A", ["/a", "/b"])]
    assert type(tasks[0]) is tuple and type(tasks[0][1]) is list
