"""The production operator: submits productions and sequences steps by hand.

CTA operators submit a workflow with cta-prod-submit, and submit the next workflow
(merge -> train -> apply) once the previous one has finished (domain spec §3.2, §8).
A step with `start_after` is such a later submission: it becomes its own production,
submitted when every listed step has finished plus `start_delay` (the operator's
reaction time). Steps without it start together, in DIRAC's lexicographic order,
through the Production System's startProduction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from twin.dirac.rms import transformation_body
from twin.dirac.production import ProductionStep, ProductionSystem, step_name
from twin.dirac.transformation import status as st
from twin.scenario.schema import OperatorAction, Production, Step

if TYPE_CHECKING:
    from twin.dirac.context import OperatorContext

TS = "TransformationManager"



def _body(step: Step) -> str:
    """The TS Body: the job workflow for job steps, the request body for data-management steps."""
    return "workflow" if step.body == "workflow" else transformation_body(step.body, step.source_se, step.target_se)


class Operator:
    def __init__(self, world: "OperatorContext", check_interval: float = 600.0) -> None:
        self.world = world
        self.check_interval = check_interval
        self.ps = ProductionSystem(self._add_transformation, self._start_transformation, self._delete_transformation)
        #: (production name, step name) -> transformation ID
        self.trans_ids: dict[tuple[str, str], int] = {}
        self.failures: list[str] = []
        #: steps whose production failed to start: nothing waiting for them will ever run
        self.failed_steps: set[tuple[str, str]] = set()
        #: submissions still to come (productions not started yet, deferred steps), and scheduled actions
        self.unsubmitted = 0
        self.pending_actions = 0

    def start(self) -> None:
        for production in self.world.scenario.workload.productions:
            self.unsubmitted += 1 + sum(1 for step in production.steps if step.start_after)
            self.world.sim.env.process(self._run(production))
        for action in self.world.scenario.workload.operator_actions:
            self.pending_actions += 1
            self.world.sim.env.timeout(action.at).callbacks.append(lambda _ev, a=action: self._act(a))

    def _run(self, production: Production) -> Iterator[Any]:
        env = self.world.sim.env
        if production.start:  # at t=0 submit at once, before any operator action scheduled for t=0
            yield env.timeout(production.start)
        first = [step for step in production.steps if not step.start_after]
        self._submit(production, first, production.name)
        yield from self._pay()
        later = [step for step in production.steps if step.start_after]
        for step in later:
            env.process(self._run_deferred(production, step))
        for step in production.steps:
            if production.flushes(step):
                env.process(self._run_flush(production, step))

    def _run_deferred(self, production: Production, step: Step) -> Iterator[Any]:
        env = self.world.sim.env
        waiting_for = [(production.name, name) for name in step.start_after]
        while True:
            if self.failed_steps.intersection(waiting_for):
                self._give_up(production, step, "a step it waits for failed to start")
                return
            if self._finished(waiting_for):
                break
            yield env.timeout(self.check_interval)
        yield env.timeout(step.start_delay + self.world.scenario.dirac.operator_reaction)
        self._submit(production, [step], f"{production.name}-{step.name}")
        yield from self._pay()

    def _run_flush(self, production: Production, step: Step) -> Iterator[Any]:
        """The operator flushes a step once its parents have finished: its partial groups become tasks."""
        env, world = self.world.sim.env, self.world
        key = (production.name, step.name)
        while key not in self.trans_ids or not self._finished_ids(world.runtime(self.trans_ids[key]).parents):
            if key in self.failed_steps:
                return
            yield env.timeout(self.check_interval)
        if key in self.failed_steps:
            return
        yield env.timeout(world.scenario.dirac.operator_reaction)
        trans_id = self.trans_ids[key]
        world.runtime(trans_id).flushed = True
        yield from self._flush(trans_id)
        while production.operator_reflush and not self._settled(trans_id):
            yield env.timeout(self.check_interval)
            if self._stranded(trans_id) and self._parents_done(trans_id):
                yield env.timeout(world.scenario.dirac.operator_reaction)
                if self._stranded(trans_id) and self._parents_done(trans_id):
                    yield from self._flush(trans_id)

    def _parents_done(self, trans_id: int) -> bool:
        """A parent reopened (an MC extension) still feeds full groups: flush only once it has finished
        again, as CTADIRAC's should_flush_transformation waits for the parent to be Completed."""
        return self._finished_ids(self.world.runtime(trans_id).parents)

    def _flush(self, trans_id: int) -> Iterator[Any]:
        if self.world.tsdb.getTransformation(trans_id)["Value"]["Status"] == st.ACTIVE:
            self.world.set_transformation_status(trans_id, st.FLUSH)
            yield from self._pay()

    def _stranded(self, trans_id: int) -> bool:
        """Files Unused while nothing is Assigned: their tasks failed after the last flush, and DIRAC's Flush is
        one-shot (TransformationAgent.processTransformation sets the status back to Active), so a partial
        group of them waits for another flush. The operator reads the Transformation Monitor: not metered."""
        with self.world.services.unmetered():
            stats = self.world.tsdb.getTransformationStats(trans_id)["Value"]
        return stats.get(st.UNUSED, 0) > 0 and stats.get(st.ASSIGNED, 0) == 0

    def _settled(self, trans_id: int) -> bool:
        """Nothing more can happen to the step's files (judged now, nothing recorded)."""
        with self.world.services.unmetered():
            return self.world.is_finished(trans_id)

    def _act(self, action: OperatorAction) -> None:
        """A scheduled manual intervention; logged, and refused (logged) if the step is not submitted yet."""
        world = self.world
        self.pending_actions -= 1
        trans_id = self.trans_ids.get(tuple(action.target.split("/", 1)))
        if trans_id is None:
            world.sim.log.log(world.sim.now, "operator.action", action.target, "refused", f"{action.action}: not submitted")
            return
        now = world.sim.now
        tsdb = world.tsdb
        world.reopen(trans_id)
        if action.action == "start":
            world.start_transformation(trans_id)
        elif action.action == "stop":
            tsdb.stopTransformation(trans_id, now=now)
        elif action.action == "complete":
            world.set_transformation_status(trans_id, st.COMPLETED)
        else:
            if action.action == "flush":
                world.runtime(trans_id).flushed = True
            tsdb.setTransformationParameter(trans_id, "Status", st.FLUSH if action.action == "flush" else st.CLEANING, now=now)
        status = tsdb.getTransformation(trans_id)["Value"]["Status"]
        world.sim.log.log(now, "transformation.status", f"trans:{trans_id}", status, f"operator {action.action}")
        world.sim.log.log(now, "operator.action", action.target, action.action, f"trans:{trans_id}")
        world.services.defer(TS)  # a callback: billed to the TransformationManager's next call

    def _pay(self) -> Iterator[Any]:
        """The operator's own calls (cta-prod-submit, setTransformationParameter) cost the servers; paying
        them here keeps them from being billed to whichever agent pays next."""
        yield from self.world.services.pay(TS)

    def _give_up(self, production: Production, step: Step, why: str) -> None:
        self.unsubmitted -= 1
        self.failed_steps.add((production.name, step.name))
        self.failures.append(f"{production.name}-{step.name}: not submitted, {why}")
        self.world.sim.log.log(self.world.sim.now, "production.status", f"prod:{production.name}-{step.name}", "Failed", why)

    def _finished(self, keys: list[tuple[str, str]]) -> bool:
        return all(key in self.trans_ids for key in keys) and self._finished_ids([self.trans_ids[key] for key in keys])

    def _finished_ids(self, trans_ids: list[int]) -> bool:
        """The operator looks at the Transformation Monitor: that costs the DIRAC servers nothing modelled."""
        with self.world.services.unmetered():
            return all(self.world.transformation_finished(t) for t in trans_ids)

    def _submit(self, production: Production, steps: list[Step], prod_name: str) -> None:
        """cta-prod-submit: one ProductionStep per step, addProduction, startProduction."""
        self.unsubmitted -= 1
        names = {step.name: step_name(i + 1, step.name) for i, step in enumerate(steps)}
        prod_steps = [self._production_step(production, step, names) for step in steps]
        prod_id = self.ps.add_production(prod_name, prod_steps)
        result = self.ps.start_production(prod_id)
        now = self.world.sim.now
        if not result["OK"]:
            self.failed_steps.update((production.name, step.name) for step in steps)
            self.failures.append(f"{prod_name}: {result['Message']}")
            self.world.sim.log.log(now, "production.status", f"prod:{prod_name}", "Failed", result["Message"][:200])
            return
        self.world.sim.log.log(now, "production.status", f"prod:{prod_name}", "Active")

    def _production_step(self, production: Production, step: Step, names: dict[str, str]) -> ProductionStep:
        return ProductionStep(
            name=names[step.name], type=step.type, plugin=step.plugin, agent_type=st.AGENT_TYPE_MANUAL,
            parent_steps=[names[p] for p in step.parents if p in names],
            input_query=dict(step.input_query) or None, output_query=dict(step.output_metadata) or None,
            group_size=step.group_size, body=_body(step),
            extra={"maxTasks": step.max_tasks or 0, "_twin": (production, step)},
        )

    # ------------------------------------------------------------------ Transformation System callbacks
    def _add_transformation(self, **fields: Any) -> dict[str, Any]:
        production, step = fields.pop("_twin")
        trans_id = self.world.create_transformation(production, step, fields)
        self.trans_ids[(production.name, step.name)] = trans_id
        return {"OK": True, "Value": trans_id}

    def _start_transformation(self, trans_id: int) -> dict[str, Any]:
        return self.world.start_transformation(trans_id)

    def _delete_transformation(self, trans_id: int) -> dict[str, Any]:
        return self.world.tsdb.cleanTransformation(trans_id, now=self.world.sim.now)
