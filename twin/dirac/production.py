"""The Production System: production steps chained by meta-queries, validated and started together.

Follows DIRAC 9.1.22 ``ProductionSystem/``: ``Client/ProductionStep.py``, ``Utilities/ProdValidator.py``
(checkMatchQuery), ``Utilities/StateMachine.py`` + ``Client/ProductionClient.setProductionStatus``,
``DB/ProductionDB.startProduction`` with ``Utilities/ProdTransManager.py``, and CTADIRAC's
``get_parent_transformation``. The link between steps is only ever checked here, at start: at run time
a child sees its parent's output purely through the catalog (child Input query ⊆ parent output metadata).

The Transformation System is reached only through callbacks (``add_transformation(**fields) -> transID``,
``start_transformation(transID)``, ``delete_transformation(transID)``), so this module does not depend
on the TransformationDB. A callback reports a failure by raising ValueError or returning S_ERROR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twin.dirac.returnvalues import S_ERROR, S_OK
from twin.dirac.rms import transformation_body
from twin.scenario.schema import Production, Step

# --- production states (Utilities/StateMachine.py) ------------------------------------------
NEW = "New"
ACTIVE = "Active"
FLUSH = "Flush"
STOPPED = "Stopped"
COMPLETED = "Completed"
CLEANED = "Cleaned"

PRODUCTION_TRANSITIONS: dict[str, tuple[str, ...]] = {
    NEW: (ACTIVE, CLEANED),
    ACTIVE: (FLUSH, STOPPED, COMPLETED, CLEANED),
    FLUSH: (ACTIVE, COMPLETED, CLEANED),
    STOPPED: (ACTIVE, FLUSH, COMPLETED, CLEANED),
    COMPLETED: (CLEANED,),
    CLEANED: (),
}
#: ProductionDB.statusActionDict: what a status change does to every transformation (Flush: nothing).
STATUS_ACTIONS: dict[str, str | None] = {
    NEW: None, ACTIVE: "start", STOPPED: "stop", COMPLETED: "complete", CLEANED: "clean", FLUSH: None,
}
CANNOT_CHANGE_STATUS = "Cannot change status"
NO_PARENT = -1

#: ProdValidator: the only operators a linked meta-query may use, and the catalog types it may name.
MATCH_OPERATORS = ("=", "in")
MATCH_TYPES = ("varchar(128)", "int", "float")

_STR, _INT, _FLOAT = "VARCHAR(128)", "INT", "FLOAT"
#: The CTA metadata fields the twin's catalog declares (names from CTADIRAC's jobs and ProdDataManager;
#: types as the values those jobs write). Directory fields first, then file fields (nsb, split, div_ang...).
CTA_META_FIELDS: dict[str, str] = {
    **dict.fromkeys(("MCCampaign", "site", "particle", "array_layout", "sct", "outputType", "systematics",
                     "view_cone", "tel_sim_prog", "tel_sim_prog_version", "analysis_prog",
                     "analysis_prog_version", "airshower_sim_prog", "airshower_sim_prog_version"), _STR),
    "phiP": _FLOAT, "thetaP": _FLOAT,
    "data_level": _INT, "configuration_id": _INT, "merged": _INT,
    "nsb": _INT, "split": _STR, "div_ang": _STR, "runNumber": _INT, "jobID": _INT,
}

Callback = Callable[..., Any]


class ProductionStatusError(ValueError):
    """ProductionClient.setProductionStatus refused the change: "Cannot change status"."""


# --- the state machine ------------------------------------------------------------------------
def next_production_status(current: str, proposed: str) -> str:
    """ProductionsStateMachine(current).setState(proposed): an allowed move goes there; anything else
    (unknown state, final state, move not in the map) stays in ``current``."""
    if current not in PRODUCTION_TRANSITIONS:
        raise ValueError(f"unknown production status {current!r}")
    return proposed if proposed in PRODUCTION_TRANSITIONS[current] else current


def check_production_status(current: str, proposed: str) -> str:
    """ProductionClient.setProductionStatus: the new status, or ProductionStatusError."""
    if proposed != current and next_production_status(current, proposed) != proposed:
        raise ProductionStatusError(CANNOT_CHANGE_STATUS)
    return proposed


# --- ProdValidator.checkMatchQuery -----------------------------------------------------------
def checkMatchQuery(child_input: Mapping[str, Any], parent_output: Mapping[str, Any],
                    meta_fields: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """ProdValidator.checkMatchQuery: can the parent's output feed the child's input?

    Every child key must be a catalog field of type varchar(128), int or float and be present in the
    parent query; values are normalised to {"in": [...]} ("=" and "in" only) and match when either
    value set is a subset of the other. ``meta_fields`` is {name: type} or getMetadataFields' value
    ({"FileMetaFields": ..., "DirectoryMetaFields": ...}); default CTA_META_FIELDS.
    Returns (True, "") or (False, DIRAC's message).
    """
    verdict, reason = _match_query(child_input, parent_output, meta_fields)
    return bool(verdict), reason


def _match_query(child_input: Mapping[str, Any], parent_output: Mapping[str, Any],
                 meta_fields: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """(True, ""), (False, reason) for DIRAC's S_OK(False), (None, message) for its S_ERROR."""
    types = _flat_fields(CTA_META_FIELDS if meta_fields is None else meta_fields)
    try:
        child = _normalise_query(child_input)
        parent = _normalise_query(parent_output)
    except ValueError as exc:
        return None, str(exc)
    for meta, value in child.items():
        if meta not in types:
            return None, f"Metadata {meta} is not defined in the Catalog"
        if str(types[meta]).lower() not in MATCH_TYPES:
            return None, f"Metatype {str(types[meta]).lower()} is not supported"
        if meta not in parent:
            return None, f"Metadata {meta} is not in parent transformation query"
        if not _compare_values(value, parent[meta]):
            return False, f"Metadata values {value} do not match with {parent[meta]}"
    return True, ""


def _flat_fields(meta_fields: Mapping[str, Any]) -> dict[str, Any]:
    if set(meta_fields) <= {"FileMetaFields", "DirectoryMetaFields"} and meta_fields:
        return {**meta_fields.get("FileMetaFields", {}), **meta_fields.get("DirectoryMetaFields", {})}
    return dict(meta_fields)


def _normalise_query(query: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """ProdValidator.checkformatQuery (without mutating its argument)."""
    out: dict[str, dict[str, Any]] = {}
    for meta, value in query.items():
        if isinstance(value, dict):
            operation = next(iter(value))
            if operation not in MATCH_OPERATORS:
                raise ValueError(f"Operation {operation} is not supported")
            first = next(iter(value.values()))
            out[meta] = dict(value) if isinstance(first, list) else {"in": list(value.values())}
        else:
            out[meta] = {"in": [value]}
    return out


def _compare_values(value: Mapping[str, Any], parent_value: Mapping[str, Any]) -> bool:
    """ProdValidator.compareValues: subset either way (a list value cannot be hashed: no match)."""
    try:
        mine, theirs = set(next(iter(value.values()))), set(next(iter(parent_value.values())))
    except TypeError:
        return False
    return mine <= theirs or theirs <= mine


# --- steps and productions -------------------------------------------------------------------
@dataclass
class ProductionStep:
    """Client/ProductionStep.py with DIRAC's defaults; ``parent_steps`` holds the parents' names.
    ``extra`` is handed unchanged to ``add_transformation`` (e.g. the twin's job model)."""

    name: str = ""
    type: str = "MCSimulation"
    plugin: str = "Standard"
    agent_type: str = "Manual"
    file_mask: str = ""
    parent_steps: list[str] = field(default_factory=list)
    input_query: dict[str, Any] | None = None
    output_query: dict[str, Any] | None = None
    group_size: float = 1
    body: Any = "body"
    description: str = "description"
    long_description: str = "longDescription"
    extra: dict[str, Any] = field(default_factory=dict)

    def transformation_fields(self, prod_id: int) -> dict[str, Any]:
        """ProdTransManager.addTransformationStep -> TransformationClient.addTransformation arguments."""
        return {
            "transName": "%08d_%s" % (prod_id, self.name),
            "description": self.description,
            "longDescription": self.long_description,
            "transType": self.type,
            "plugin": self.plugin,
            "agentType": self.agent_type,
            "fileMask": self.file_mask,
            "groupSize": self.group_size,
            "body": self.body,
            "inputMetaQuery": self.input_query,
            "outputMetaQuery": self.output_query,
            **self.extra,
        }


def production_steps(production: Production) -> list[ProductionStep]:
    """The scenario's steps as ProductionSteps; each carries its schema Step as ``extra["step"]``.
    Data-manipulation bodies become the TS Body string RequestTasks reads (see rms.transformation_body)."""
    return [ProductionStep(name=step.name, type=step.type, plugin=step.plugin, parent_steps=step.parents,
                           input_query=dict(step.input_query) or None, output_query=dict(step.output_metadata) or None,
                           group_size=step.group_size, body=_body(step), extra={"step": step})
            for step in production.steps]


def _body(step: Step) -> str:
    if step.body == "workflow":
        return "workflow"
    return transformation_body(step.body, step.source_se, step.target_se)


def step_name(counter: int, name: str) -> str:
    """ProductionClient.addProductionStep renames the n-th step added by a client Step<n>_<Name>."""
    return f"Step{counter}_{name}"


def start_order(step_names: Iterable[str]) -> list[str]:
    """startProduction creates transformations in lexicographic order of step names (Step10 < Step2)."""
    return sorted(step_names)


@dataclass
class ProductionRecord:
    """A row of Productions plus its description, transformations and links."""

    prod_id: int
    name: str
    steps: dict[str, ProductionStep]
    status: str = NEW
    trans_ids: dict[str, int] = field(default_factory=dict)
    links: list[tuple[int, int]] = field(default_factory=list)  # (TransformationID, ParentTransformationID)


class ProductionSystem:
    """ProductionDB + ProdTransManager + ProdValidator over Transformation System callbacks.

    ``transformation_status(transID)`` (default: "New", the status of a just-created transformation)
    feeds checkTransStatus; ``transformation_actions`` maps "stop"/"complete"/"clean" to callbacks for
    setProductionStatus ("start" is ``start_transformation``).
    """

    def __init__(self, add_transformation: Callback, start_transformation: Callback,
                 delete_transformation: Callback, *, transformation_status: Callable[[int], str] | None = None,
                 transformation_actions: Mapping[str, Callback] | None = None,
                 meta_fields: Mapping[str, Any] | None = None) -> None:
        self._add = add_transformation
        self._delete = delete_transformation
        self._status = transformation_status or (lambda _trans_id: NEW)
        self._actions: dict[str, Callback] = {"start": start_transformation, **(transformation_actions or {})}
        self.meta_fields = meta_fields
        self.productions: dict[int, ProductionRecord] = {}
        self._next_id = 1

    # -- productions
    def add_production(self, name: str, steps: Iterable[ProductionStep]) -> int:
        """ProductionClient.addProductionStep(s) + addProduction: a New production; returns its ID."""
        if any(rec.name == name for rec in self.productions.values()):
            existing = self.get(name).prod_id
            raise ValueError("Production with name %s already exists with ProductionID = %d" % (name, existing))
        by_name: dict[str, ProductionStep] = {}
        for step in steps:
            if step.name in by_name:
                raise ValueError(f"Production step {step.name!r} appears twice")
            by_name[step.name] = step
        for step in by_name.values():
            missing = [p for p in step.parent_steps if p not in by_name]
            if missing:
                raise ValueError(f"Parent Step does not exist: {missing}")
        prod_id = self._next_id
        self._next_id += 1
        self.productions[prod_id] = ProductionRecord(prod_id, name, by_name)
        return prod_id

    def get(self, prod: int | str) -> ProductionRecord:
        """A production by ID or name (ProductionDB._getProductionID)."""
        if isinstance(prod, int) and prod in self.productions:
            return self.productions[prod]
        for rec in self.productions.values():
            if rec.name == prod:
                return rec
        raise KeyError("Production does not exist")

    def transformations(self, prod: int | str) -> list[int]:
        """getProductionTransformations: the production's transformations, in insertion order."""
        return list(dict.fromkeys(child for child, _ in self.get(prod).links))

    def parent_transformations(self, trans_id: int) -> list[int]:
        """CTADIRAC get_parent_transformation: ParentTransformationID rows (-1 for no parent)."""
        return [parent for rec in self.productions.values() for child, parent in rec.links if child == trans_id]

    # -- startProduction
    def start_production(self, prod: int | str) -> dict[str, Any]:
        """ProductionDB.startProduction: create the transformations in lexicographic step order,
        validate and link each step to its parents, set Active, start them all. A creation failure
        deletes the transformations created so far; a validation failure also deletes the production."""
        try:
            rec = self.get(prod)
        except KeyError as exc:
            return S_ERROR(str(exc.args[0]))
        created: list[int] = []
        for name in start_order(rec.steps):
            ok, value = _call(self._add, **rec.steps[name].transformation_fields(rec.prod_id))
            if not ok:
                self._delete_all(created)
                return S_ERROR(value)
            rec.trans_ids[name] = value
            created.append(value)
        for name, step in rec.steps.items():
            parents = [rec.trans_ids[parent] for parent in step.parent_steps]
            problem = self._validate(rec.trans_ids[name], step, parents, rec)
            if problem:
                self._delete_all(created)
                self._delete_production(rec)
                return S_ERROR(problem)
            rec.links.extend((rec.trans_ids[name], parent) for parent in parents or [NO_PARENT])
        rec.status = ACTIVE
        self._apply_action("start", rec)
        return S_OK()

    def _validate(self, trans_id: int, step: ProductionStep, parent_ids: Sequence[int],
                  rec: ProductionRecord) -> str:
        """addTransformationsToProduction: checkTransStatus, then checkTransDependency per parent."""
        status = self._status(trans_id)
        if status != NEW:
            return f"checkTransStatus failed : Invalid transformation status: {status}"
        steps_by_id = {rec.trans_ids[name]: s for name, s in rec.steps.items()}
        for parent_id in parent_ids:
            if not step.input_query:
                return f"No InputMetaQuery defined for transformation {trans_id}"
            parent_output = steps_by_id[parent_id].output_query
            if not parent_output:
                return f"No OutputMetaQuery defined for parent transformation {parent_id}"
            verdict, reason = _match_query(step.input_query, parent_output, self.meta_fields)
            if not verdict:
                return "checkMatchQuery result is False" if verdict is False else reason
        return ""

    # -- status changes
    def set_production_status(self, prod: int | str, status: str) -> dict[str, Any]:
        """ProductionClient.setProductionStatus: state machine, then the action on every transformation."""
        rec = self.get(prod)
        try:
            check_production_status(rec.status, status)
        except ProductionStatusError as exc:
            return S_ERROR(str(exc))
        rec.status = status
        action = STATUS_ACTIONS.get(status)
        if action:
            self._apply_action(action, rec)
        return S_OK()

    def _apply_action(self, action: str, rec: ProductionRecord) -> None:
        """ProdTransManager.executeActionOnTransformations: stops at the first failure (only logged)."""
        callback = self._actions.get(action)
        if callback is None:
            return
        for trans_id in self.transformations(rec.prod_id):
            ok, _ = _call(callback, trans_id)
            if not ok:
                return

    def _delete_all(self, trans_ids: Iterable[int]) -> None:
        """ProdTransManager.deleteTransformations: stops at the first failed deletion."""
        for trans_id in trans_ids:
            ok, _ = _call(self._delete, trans_id)
            if not ok:
                return

    def _delete_production(self, rec: ProductionRecord) -> None:
        """deleteProduction -> cleanProduction: unlink everything, drop the production row."""
        rec.links.clear()
        rec.trans_ids.clear()
        del self.productions[rec.prod_id]


def _call(callback: Callback, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run a TS callback: (True, value) or (False, message) for ValueError / S_ERROR."""
    try:
        result = callback(*args, **kwargs)
    except ValueError as exc:
        return False, str(exc)
    if isinstance(result, dict) and "OK" in result:
        return (True, result.get("Value")) if result["OK"] else (False, result.get("Message", ""))
    return True, result
