"""How MC simulation transformations get their tasks: the scenario's `supply` models.

- "extension" (DIRAC's MCExtensionAgent, `_calculateTaskNumber`): tasks are added until
  MaxNumberOfTasks - (TotalCreated - Failed) reaches 0, so every Failed task is replaced.
- "fixed": MaxNumberOfTasks tasks are created once (`Transformation.extendTransformation(n)` at
  submission, as production scripts do) and the MCExtensionAgent leaves the transformation alone
  (MaxNumberOfTasks - TotalCreated is never positive again): failures are not replaced. An operator
  may extend by hand later (`extensions`, cta-prod-extend-sim-style: TransformationDB.extendTransformation).

A step no supply model matches uses "extension", the twin's historical behaviour.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from typing import TYPE_CHECKING, Sequence

from twin.dirac.transformation import status as st
from twin.scenario.schema import SupplyExtension, SupplyModel

if TYPE_CHECKING:
    from twin.dirac.context import SupplyContext

EXTENSION, FIXED = "extension", "fixed"


def supply_model(models: Sequence[SupplyModel], step_key: str) -> SupplyModel | None:
    """The first supply model whose `steps` pattern matches "Production/Step"."""
    return next((m for m in models if fnmatch.fnmatchcase(step_key, m.steps)), None)


def supply_mode(models: Sequence[SupplyModel], step_key: str) -> str:
    model = supply_model(models, step_key)
    return model.mode if model is not None else EXTENSION


def tasks_to_create(mode: str, max_tasks: int, stats: dict[str, int]) -> int | None:
    """Fixed supply: what is missing to MaxNumberOfTasks, failures ignored (None: not fixed, use DIRAC's rule)."""
    if mode != FIXED:
        return None
    return max(0, max_tasks - stats.get("TotalCreated", 0))


class OperatorExtensions:
    """Scheduled manual extensions of MC transformations (scenario `supply[].extensions`)."""

    def __init__(self, world: "SupplyContext") -> None:
        self.world = world
        self.replaced: Counter[int] = Counter()
        self.added: Counter[int] = Counter()

    def start(self) -> None:
        for model in self.world.scenario.supply:
            for ext in model.extensions:
                self.world.operator.pending_actions += 1
                self.world.sim.env.timeout(ext.at).callbacks.append(lambda _ev, m=model, e=ext: self._extend(m, e))

    def _extend(self, model: SupplyModel, ext: SupplyExtension) -> None:
        world = self.world
        world.operator.pending_actions -= 1
        now = world.sim.now
        targets = [r for r in world.runtimes.values() if fnmatch.fnmatchcase(r.name, model.steps)
                   and r.step.type in world.scenario.dirac.extendable_types]
        if not targets:
            world.sim.log.log(now, "operator.action", model.steps, "refused", "extend: no MC transformation submitted")
        for runtime in targets:
            n = self._tasks(runtime.trans_id, ext)
            if n > 0:
                world.tsdb.extendTransformation(runtime.trans_id, n, now=now)
                world.ts.tasks_created += n
                self.added[runtime.trans_id] += n
                world.reopen(runtime.trans_id)
            world.sim.log.log(now, "operator.action", runtime.name, "extend", f"trans:{runtime.trans_id} +{n} tasks", float(n))

    def _tasks(self, trans_id: int, ext: SupplyExtension) -> int:
        if ext.tasks != "failed":
            return int(ext.tasks)
        failed = self.world.tsdb.getTransformationTaskStats(trans_id)["Value"].get(st.TASK_FAILED, 0)
        n = max(0, failed - self.replaced[trans_id])
        self.replaced[trans_id] += n
        return n
