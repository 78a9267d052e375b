"""Import a cta-prod-submit workflow YAML (Common + ProdSteps) as a twin `Production`.

Follows CTADIRAC 3.3.1 ``ProductionSystem/scripts/cta_prod_submit.py`` (ps mode),
``Client/Utilities/production_utils.py``, ``Client/WorkflowElement.py`` and the job classes of
``Interfaces/API`` (CTAJob.set_output_metadata, MCPipeJob, MCSimTelProcessJob, SimPipeJob,
CtapipeProcessJob, CtapipeMergeJob, CtapipeTrain*Job, CtapipeApplyModelsJob, EvnDispJob), so the
steps get the meta-queries the real Production System would store. Two behaviours of the real code
are reproduced on purpose:

* a child's Input query *is* its parent's Output query object, refined in place: what a child adds
  (e.g. ``moon`` -> nsb) shows in the queries of the parent's later children, but not in the
  parent's stored Output query;
* ``parentID`` names the parent by position in ID order (``workflow_element_list[parentID - 1]``).

Each link is then checked with ProdValidator.checkMatchQuery, so a workflow whose production would
fail at startProduction is rejected here, with the step named. Job costs are not in these files:
they come from ``job_models`` (by job type), else JobModel's defaults.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twin.dirac.production import checkMatchQuery, step_name
from twin.errors import ScenarioError
from twin.scenario.paths import join_path
from twin.scenario.schema import JobModel, Production, Step

#: tool_box.DATA_LEVEL_METADATA_ID
DATA_LEVELS = {"MC0": -3, "R0": -2, "R1": -1, "DL0": 0, "DL1": 1, "DL2": 2, "DL3": 3, "DL4": 4, "DL5": 5}
MOON_NSB = {"dark": 1, "half": 5, "full": 19}
MC_MOONS = (["dark"], ["dark", "half"], ["dark", "half", "full"])
MC_PARTICLES = ["gamma", "gamma-diffuse", "electron", "proton", "helium", "muon"]
MC_POINTINGS = ["North", "South", "East", "West"]
DIV_ANG_SETS = (["0.0022", "0.0043", "0.008", "0.01135", "0.01453"], ["0.0121", "0.046"])
SIMPIPE_SITES = {"North": "LaPalma", "South": "Paranal"}
SIMPIPE_AZIMUTHS = {"north": 0.0, "south": 180.0, "east": 90.0, "west": 270.0}
COMMON_MANDATORY = ("MCCampaign", "configuration_id", "base_path")
#: WorkflowElementDefinition: the input keys turned into catalog terms, and job keys set by setters.
CONSTRAINED_INPUT_KEYS = ("pointing_dir", "zenith_angle", "moon", "sct", "div_ang")
_BASE_CONSTRAINED = frozenset({"catalogs", "group_size", "destination", "cpu_time", "tag", "nb_processors",
                               "input_sandbox"})
_MC_CONSTRAINED = _BASE_CONSTRAINED | {"version", "sct", "particle", "pointing_dir", "layout", "moon",
                                       "only_corsika", "magic", "div_ang", "sequential",
                                       "random_mono_probability", "instrument_random_seeds"}
_SIMTEL_CONSTRAINED = _BASE_CONSTRAINED | {"version", "sct", "moon", "div_ang", "random_mono_probability",
                                           "instrument_random_seeds", "systematic_uncertainty_to_test"}


@dataclass(frozen=True)
class StepProfile:
    """What a job_config.type implies: the WorkflowElement branch and its job class's defaults."""

    type_name: str  # as documented (the YAML value is case-insensitive)
    trans_type: str  # ProductionStep.Type
    job_type: str  # Job.setType of the job class
    step_name: str  # ProductionStep.Name before any `name:` override
    prog: str
    data_level: int
    category: str = "analysis"
    version: str = "v0.10.0"
    configuration_id: int = 1
    output_type: str = "Data"
    simulation: bool = False
    processors: int | None = None
    constrained: frozenset[str] = _BASE_CONSTRAINED
    file_meta: frozenset[str] = frozenset({"nsb", "div_ang"})
    mandatory: tuple[str, ...] = ()
    merged: str = ""  # "+1": CtapipeMergeJob, "0": EvnDispJob


_SPLIT = frozenset({"nsb", "div_ang", "split"})
PROFILES: dict[str, StepProfile] = {p.type_name.lower(): p for p in (
    StepProfile("MCSimulation", "MCSimulation", "MCSimulation", "MCSimulation", "sim_telarray", DATA_LEVELS["R1"],
                category="tel_sim", simulation=True, constrained=_MC_CONSTRAINED,
                mandatory=("site", "particle", "pointing_dir")),
    StepProfile("SimPipe", "MCSimulation", "MCSimulation", "MCSimulation", "simpipe", DATA_LEVELS["R1"],
                category="tel_sim", simulation=True, constrained=_BASE_CONSTRAINED | {"version", "simpipe_config"},
                mandatory=("simpipe_config",)),
    StepProfile("SimTelProcessing", "DataReprocessing", "DL0_Reprocessing", "SimTelProcessing", "sim_telarray",
                DATA_LEVELS["R1"], category="tel_sim", constrained=_SIMTEL_CONSTRAINED),
    StepProfile("CtapipeProcessing", "DataReprocessing", "DL0_Reprocessing", "CtapipeProcessing", "ctapipe-process",
                2, file_meta=_SPLIT, mandatory=("data_level", "output_extension")),
    StepProfile("EvnDispProcessing", "DataReprocessing", "EvnDispProcessing", "EvnDisp", "evndisp", 1,
                version="eventdisplay-cta-dl1-prod5.v06", configuration_id=8, merged="0"),
    StepProfile("Merging", "Merging", "Merging", "Merging", "ctapipe-merge", 2, file_meta=_SPLIT,
                mandatory=("output_extension", "group_size"), merged="+1"),
    StepProfile("CtapipeTrainEnergy", "Training", "Training", "CtapipeTrainEnergy", "ctapipe-train-energy-regressor",
                2, output_type="Model", processors=8),
    StepProfile("CtapipeTrainClassifier", "Training", "Training", "CtapipeTrainClassifier",
                "ctapipe-train-particle-classifier", 2, output_type="Model", processors=8),
    StepProfile("CtapipeApplyModels", "ApplyModel", "ApplyModel", "CtapipeApplyModels", "ctapipe-apply-models", 2,
                file_meta=_SPLIT),
)}
TYPE_NAMES = [p.type_name for p in PROFILES.values()]
#: CtapipeApplyModelsJob: the option naming a model -> the training program whose output it fetches.
MODEL_TRAINERS = (("energy_model.pkl", "ctapipe-train-energy-regressor"),
                  ("classifier_model.pkl", "ctapipe-train-particle-classifier"))


@dataclass
class _Built:
    """A step as cta-prod-submit leaves it: stored queries, plus the live Output query its children alias."""

    index: int
    step_id: int
    name: str
    profile: StepProfile
    input_query: dict[str, Any]
    output_query: dict[str, Any]
    live_output: dict[str, Any]
    parent: _Built | None
    job: dict[str, Any] = field(default_factory=dict)


def load_workflow(path: str | Path, job_models: Mapping[str, JobModel] | None = None, *, name: str | None = None,
                  datasets: Mapping[str, Mapping[str, Any]] | None = None) -> list[Production]:
    """Read a cta-prod-submit workflow file: one `Production` (named ``name``, default the file stem).

    ``datasets`` maps DFC dataset names to their MetaQuery, for steps with ``input_meta_query.dataset``.
    Raises ScenarioError naming the file and the key path of the first problem.
    """
    path = Path(path)
    from twin.scenario.yamlfile import read_yaml

    try:
        data, _ = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "", f"cannot read the file ({exc})") from None
    return import_workflow(data, str(path), name=name or path.stem, job_models=job_models, datasets=datasets,
                           base_dir=path.parent)


def import_workflow(data: Any, file: str, *, name: str, job_models: Mapping[str, JobModel] | None = None,
                    datasets: Mapping[str, Mapping[str, Any]] | None = None,
                    base_dir: Path | None = None) -> list[Production]:
    """The same from already-parsed YAML; ``file`` is only used in error messages."""
    return [_Importer(file, job_models or {}, datasets or {}, base_dir or Path(".")).run(data, name)]


class _Importer:
    def __init__(self, file: str, job_models: Mapping[str, JobModel], datasets: Mapping[str, Mapping[str, Any]],
                 base_dir: Path) -> None:
        self.file, self.job_models, self.datasets, self.base_dir = file, job_models, datasets, base_dir

    def error(self, parts: list[str | int], message: str) -> ScenarioError:
        return ScenarioError(self.file, join_path(parts), message)

    # -- top level
    def run(self, data: Any, name: str) -> Production:
        if not isinstance(data, dict):
            raise self.error([], f"expected a mapping with Common and ProdSteps, got {type(data).__name__}")
        common = self._common(data)
        ordered = self._ordered_steps(data)
        built: list[_Built] = []
        for position, (index, raw) in enumerate(ordered, start=1):
            step = self._build(index, raw, common, built, position)
            self._check_link(step)
            built.append(step)
        try:
            return Production(name=name, steps=[self._to_step(b) for b in built])
        except ValidationError as exc:
            first = exc.errors()[0]
            raise self.error(["ProdSteps"], f"{first['msg']} (at {join_path(list(first['loc']))})") from None

    def _common(self, data: dict[str, Any]) -> dict[str, Any]:
        common = data.get("Common")
        if not isinstance(common, dict):
            raise self.error(["Common"], "missing mandatory key" if common is None else
                             f"expected a mapping, got {type(common).__name__}")
        for key in COMMON_MANDATORY:
            if common.get(key) is None:
                raise self.error(["Common", key], "missing mandatory key")
        if not isinstance(common["configuration_id"], int) or isinstance(common["configuration_id"], bool):
            raise self.error(["Common", "configuration_id"], f"expected an integer, got {common['configuration_id']!r}")
        return common

    def _ordered_steps(self, data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        """check_id + sort_by_id + check_parents, keeping each step's index in the file for messages."""
        steps = data.get("ProdSteps")
        if not isinstance(steps, list) or not steps:
            raise self.error(["ProdSteps"], "missing mandatory key" if steps is None else
                             f"expected a non-empty list of steps, got {steps!r}")
        seen: dict[int, int] = {}
        for index, raw in enumerate(steps):
            if not isinstance(raw, dict):
                raise self.error(["ProdSteps", index], f"expected a mapping, got {type(raw).__name__}")
            step_id = raw.get("ID")
            if step_id is None:
                raise self.error(["ProdSteps", index, "ID"], "missing mandatory key")
            if not isinstance(step_id, int) or isinstance(step_id, bool) or step_id <= 0:
                raise self.error(["ProdSteps", index, "ID"], f"expected a positive integer, got {step_id!r}")
            if step_id in seen:
                raise self.error(["ProdSteps", index, "ID"], f"expected unique IDs, {step_id} is also ProdSteps[{seen[step_id]}]")
            seen[step_id] = index
        ordered = sorted(enumerate(steps), key=lambda item: item[1]["ID"])
        for index, raw in ordered:
            self._check_step_keys(index, raw)
        self._check_parents(ordered)
        return ordered

    def _check_step_keys(self, index: int, raw: dict[str, Any]) -> None:
        for key in ("input_meta_query", "job_config"):
            value = raw.get(key, ...)
            if value is ...:
                raise self.error(["ProdSteps", index, key], "missing mandatory key")
            if not isinstance(value, dict):
                raise self.error(["ProdSteps", index, key], f"expected a mapping (use {{}} for none), got {value!r}")
        config = raw["job_config"]
        kind = config.get("type")
        if kind is None:
            raise self.error(["ProdSteps", index, "job_config", "type"], "missing mandatory key")
        if not isinstance(kind, str) or kind.lower() not in PROFILES:
            raise self.error(["ProdSteps", index, "job_config", "type"], f"expected one of {TYPE_NAMES}, got {kind!r}")
        for key in ("version", *PROFILES[kind.lower()].mandatory):
            if config.get(key) is None:
                raise self.error(["ProdSteps", index, "job_config", key], f"missing mandatory key for type {kind}")
        if "input_sandbox" in config:
            raise self.error(["ProdSteps", index, "job_config", "input_sandbox"],
                             "Not allowed input_sandbox key in production mode. Only available in wms mode")
        if "input_limit" in config:
            raise self.error(["ProdSteps", index, "job_config", "input_limit"],
                             "not supported: input_limit attaches files from a local test list instead of the input query")
        group_size = config.get("group_size")
        if group_size is not None and (not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1):
            raise self.error(["ProdSteps", index, "job_config", "group_size"], f"expected a positive integer, got {group_size!r}")

    def _check_parents(self, ordered: list[tuple[int, dict[str, Any]]]) -> None:
        ids = [raw["ID"] for _, raw in ordered]
        for index, raw in ordered:
            query, here = raw["input_meta_query"], ["ProdSteps", index, "input_meta_query"]
            parent_id, dataset = query.get("parentID"), query.get("dataset")
            simulation = PROFILES[raw["job_config"]["type"].lower()].simulation
            if simulation and (parent_id is not None or dataset is not None):
                key = "parentID" if parent_id is not None else "dataset"
                raise self.error([*here, key], f"expected null: a {raw['job_config']['type']} step takes no input")
            if parent_id is None:
                continue
            if dataset is not None:
                raise self.error([*here, "dataset"], "A step cannot have input data from a dataset and from a parent")
            if not isinstance(parent_id, int) or isinstance(parent_id, bool) or parent_id <= 0:
                raise self.error([*here, "parentID"], f"expected a step ID or null, got {parent_id!r}")
            if parent_id >= raw["ID"]:
                raise self.error([*here, "parentID"],
                                 f"A step can only have a parent which ID is inferior to its ID (got {parent_id} for ID {raw['ID']})")
            if parent_id not in ids:
                raise self.error([*here, "parentID"], f"expected the ID of a step, got {parent_id}")
            if ids[parent_id - 1] != parent_id:
                raise self.error([*here, "parentID"],
                                 f"cta-prod-submit takes the parent by position: parentID {parent_id} is the step with "
                                 f"ID {ids[parent_id - 1]}; number the steps 1..N")

    # -- one step (WorkflowElement, in instanciate_and_build_workflow_element's order)
    def _build(self, index: int, raw: dict[str, Any], common: dict[str, Any], built: list[_Built],
               position: int) -> _Built:
        profile = PROFILES[raw["job_config"]["type"].lower()]
        parent_id = raw["input_meta_query"].get("parentID")
        parent = built[parent_id - 1] if parent_id is not None else None
        here = ["ProdSteps", index]
        inq = self._input_query(here, raw, profile, parent)
        job = self._job(here, raw, common, profile, inq)
        live = self._output_query(here, raw, profile, inq, job, parent)
        label = raw.get("name") or profile.step_name
        return _Built(index, raw["ID"], step_name(position, str(label)), profile, copy.deepcopy(inq),
                      copy.deepcopy(live), live, parent, job)

    def _input_query(self, here: list[str | int], raw: dict[str, Any], profile: StepProfile,
                     parent: _Built | None) -> dict[str, Any]:
        """build_input_data + refine_input_MQ. The parent's live Output query is refined in place."""
        if profile.simulation:
            return {}
        query = raw["input_meta_query"]
        if parent is not None:
            inq = parent.live_output
        elif query.get("dataset") is not None:
            inq = self._dataset(here, query["dataset"])
        else:
            inq = {}
        for key, value in query.items():
            if value is None or key in ("dataset", "parentID"):
                continue
            if key in CONSTRAINED_INPUT_KEYS:
                self._constrained_input(inq, [*here, "input_meta_query", key], key, value)
            else:
                inq[key] = value
        return inq

    def _dataset(self, here: list[str | int], dataset: Any) -> dict[str, Any]:
        if dataset not in self.datasets:
            raise self.error([*here, "input_meta_query", "dataset"],
                             f"unknown dataset {dataset!r}: give its MetaQuery in `datasets` "
                             f"(known: {sorted(self.datasets)})")
        return copy.deepcopy(dict(self.datasets[dataset]))

    def _constrained_input(self, inq: dict[str, Any], at: list[str | int], key: str, value: Any) -> None:
        """set_constrained_processing_input_query."""
        if key == "pointing_dir":
            if value not in ("North", "South"):
                raise self.error(at, f"expected one of ['North', 'South'], got {value!r}")
            inq["phiP"] = 180 if value == "North" else 0
        elif key == "zenith_angle":
            inq["thetaP"] = self._number(at, value)
        elif key == "moon":
            inq["nsb"] = self._moon(at, value)
        else:  # sct, div_ang
            inq[key] = str(value)

    # -- the job object: attributes and file metadata
    def _job(self, here: list[str | int], raw: dict[str, Any], common: dict[str, Any], profile: StepProfile,
             inq: dict[str, Any]) -> dict[str, Any]:
        """build_job_attributes: from the input query, then Common, then job_config."""
        job: dict[str, Any] = {"version": profile.version, "data_level": profile.data_level, "merged": 0,
                               "configuration_id": profile.configuration_id, "category": profile.category,
                               "prog": profile.prog, "processors": profile.processors, "file_meta": {},
                               "array_layout": "Prod6-Hyperarray", "zenith_angle": 20.0, "sct": ""}
        for key, value in inq.items():
            target = job["file_meta"] if key in profile.file_meta else job
            target[key] = _unwrap(value)
        job.update({key: value for key, value in common.items() if value is not None})
        for key, value in raw["job_config"].items():
            if value is None:
                continue
            at = [*here, "job_config", key]
            value = self._typed(at, key, value)
            if key in profile.constrained:
                self._constrained_job(job, at, profile, key, value)
            elif key in profile.file_meta:
                job["file_meta"][key] = value
            else:
                job[key] = value
        return job

    def _constrained_job(self, job: dict[str, Any], at: list[str | int], profile: StepProfile, key: str,
                         value: Any) -> None:
        """WorkflowElement.set_constrained_job_attribute and the job classes' setters."""
        simtel = profile.type_name == "SimTelProcessing"
        if key == "version":
            if "-sc" not in str(value):
                job["version"] = str(value)
        elif key == "group_size":
            job["group_size"] = value
        elif key == "nb_processors":
            job["processors"] = self._positive_int(at, value)
        elif key == "cpu_time":
            job["cpu_time"] = self._number(at, value)
        elif key == "destination":
            job["destination"] = self._destination(at, value)
        elif key == "particle":
            job["particle"] = self._choice(at, value, MC_PARTICLES)
        elif key == "pointing_dir":
            job["pointing_dir"] = self._choice(at, value, MC_POINTINGS)
        elif key == "moon":
            job["file_meta"]["nsb"] = self._moon(at, value) if simtel else self._mc_moons(at, value)
        elif key == "sct":
            if str(value).lower() not in ("all", "non-alpha"):
                raise self.error(at, f"expected 'all' or 'non-alpha', got {value!r}")
            job["sct"] = "--with-all-scts" if str(value).lower() == "all" else "--with-sct"
            job["version"] = job["version"] + "-sc"
        elif key == "div_ang":
            job["file_meta"]["div_ang"] = self._div_ang(at, value)
        elif key == "only_corsika" and value is True:
            job["category"], job["prog"] = "airshower_sim", "corsika"
        elif key == "simpipe_config":
            job.update(self._simpipe(at, value))
        else:
            job[key] = value

    # -- output query (build_job_output_data + set_output_metadata + build_output_data)
    def _output_query(self, here: list[str | int], raw: dict[str, Any], profile: StepProfile,
                      inq: dict[str, Any], job: dict[str, Any], parent: _Built | None) -> dict[str, Any]:
        if profile.simulation:
            if job.get("ledger_mode"):
                return {}  # SimPipe ledger mode: per-run metadata resolved at run time, no output query
            metadata = self._simulation_metadata(here, profile, job)
        else:
            metadata = copy.deepcopy(inq)
            for key, value in raw["job_config"].items():
                if key == "moon":
                    metadata["nsb"] = self._moon([*here, "job_config", key], value)
                elif key != "instrument_random_seeds":
                    metadata[key] = value
            if profile.merged == "+1":
                metadata["merged"] = parent.live_output.get("merged", 0) if parent is not None else job["merged"]
        output = self._job_output_metadata(here, profile, metadata, job)
        for key, value in job["file_meta"].items():
            if isinstance(value, list):
                output[key] = {"in": value} if len(value) > 1 else value[0]
            else:
                output[key] = value
        return output

    def _simulation_metadata(self, here: list[str | int], profile: StepProfile, job: dict[str, Any]) -> dict[str, Any]:
        if profile.type_name == "MCSimulation":
            phi = 180 if job["pointing_dir"] == "North" else 0
        else:
            phi = float(round((float(job["azimuth_angle"]) + 180) % 360, 2))
        return {"array_layout": job["array_layout"], "site": job["site"], "particle": job.get("particle"),
                "phiP": phi, "thetaP": self._number([*here, "job_config", "zenith_angle"], job["zenith_angle"]),
                "sct": "True" if job["sct"] else "False", "view_cone": job.get("view_cone")}

    def _job_output_metadata(self, here: list[str | int], profile: StepProfile, metadata: dict[str, Any],
                             job: dict[str, Any]) -> dict[str, Any]:
        """CTAJob.set_output_metadata (+ CtapipeMergeJob / EvnDispJob overrides)."""
        for key in ("array_layout", "site", "phiP", "thetaP"):
            if key not in metadata:
                raise self.error([*here, "input_meta_query"], f"cannot build the output query: no {key!r} in the "
                                 "input query or job_config (cta-prod-submit fails with KeyError)")
        out: dict[str, Any] = {"array_layout": metadata["array_layout"], "site": metadata["site"]}
        if "particle" in metadata:
            out["particle"] = metadata["particle"]
        out["phiP"], out["thetaP"] = _unwrap(metadata["phiP"]), _unwrap(metadata["thetaP"])
        out["sct"] = metadata["sct"] if metadata.get("sct") else "False"
        out[f"{job['category']}_prog"] = job["prog"]
        out[f"{job['category']}_prog_version"] = job["version"]
        out.update(data_level=job["data_level"], outputType=profile.output_type,
                   configuration_id=job["configuration_id"], MCCampaign=job["MCCampaign"])
        if metadata.get("view_cone"):
            out["view_cone"] = metadata["view_cone"]
        if metadata.get("systematic_uncertainty_to_test"):
            out["systematics"] = "_".join(str(job["systematic_uncertainty_to_test"]).rstrip("/").split("/")[1:])
        if profile.merged == "+1":
            merged = _unwrap(metadata["merged"])
            if not isinstance(merged, int) or isinstance(merged, bool):
                raise self.error([*here, "input_meta_query", "merged"], f"expected an integer merge level, got {merged!r}")
            out["merged"] = merged + 1
        elif profile.merged == "0":
            out["merged"] = 0
        return out

    # -- links and the schema Step
    def _check_link(self, step: _Built) -> None:
        """ProdValidator at startProduction: the stored child Input vs the stored parent Output."""
        if step.parent is None:
            return
        here = ["ProdSteps", step.index, "input_meta_query"]
        if not step.input_query:
            raise self.error(here, "the production would not start: No InputMetaQuery defined for the transformation")
        ok, reason = checkMatchQuery(step.input_query, step.parent.output_query)
        if not ok:
            raise self.error(here, f"the production would not start (checkMatchQuery against step "
                                   f"{step.parent.step_id}): {reason}")

    def _to_step(self, b: _Built) -> Step:
        job = self._job_model(b)
        return Step(name=b.name, type=b.profile.trans_type, job_type=b.profile.job_type, plugin="Standard",
                    group_size=b.job.get("group_size", 1), parent=b.parent.name if b.parent else None,
                    input_query=b.input_query, output_metadata=b.output_query, job=job, body="workflow")

    def _job_model(self, b: _Built) -> JobModel:
        """The job type's cost model, with what the workflow file fixes for this step."""
        base = self.job_models.get(b.profile.job_type, JobModel())
        update: dict[str, Any] = {}
        if b.job["processors"] is not None:
            update["processors"] = b.job["processors"]
        if "cpu_time" in b.job:
            update["cpu_time_limit"] = b.job["cpu_time"]
        if b.job.get("destination"):
            update["destination"] = b.job["destination"]
        model_query = _model_query(b)
        if model_query:
            update["model_query"] = model_query
        return base.model_copy(update=update)

    # -- value checks
    def _typed(self, at: list[str | int], key: str, value: Any) -> Any:
        """job_config keys that CTADIRAC's job classes cast to numbers (n_shower -> int...)."""
        if key == "n_shower":
            return self._positive_int(at, value)
        if key == "start_run_number":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.error(at, f"expected an integer >= 0, got {value!r}")
        if key in ("zenith_angle", "azimuth_angle"):
            return self._number(at, value)
        return value

    def _number(self, at: list[str | int], value: Any) -> float:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise self.error(at, f"expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise self.error(at, f"expected a finite number, got {value!r}")
        return number

    def _destination(self, at: list[str | int], value: Any) -> list[str]:
        """Job.setDestination: a comma-separated string or a list of sites; "ANY"/"" mean no requirement."""
        if isinstance(value, str):
            value = value.replace(" ", "").split(",")
        if not isinstance(value, list) or not all(isinstance(site, str) for site in value):
            raise self.error(at, f"expected a site name, a comma-separated string or a list of sites, got {value!r}")
        return sorted({site for site in value if site.lower() not in ("any", "")})

    def _positive_int(self, at: list[str | int], value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(at, f"expected a positive integer, got {value!r}")
        return value

    def _choice(self, at: list[str | int], value: Any, allowed: list[str]) -> str:
        if value not in allowed:
            raise self.error(at, f"expected one of {allowed}, got {value!r}")
        return value

    def _moon(self, at: list[str | int], value: Any) -> int:
        if not isinstance(value, str) or value not in MOON_NSB:
            raise self.error(at, f"expected one of {list(MOON_NSB)}, got {value!r}")
        return MOON_NSB[value]

    def _mc_moons(self, at: list[str | int], value: Any) -> list[int]:
        """MCPipeJob.set_moon: a list of moons (or a comma-separated string) -> nsb list."""
        moons = value if isinstance(value, list) else [m.strip() for m in str(value).split(",")]
        if moons not in MC_MOONS:
            raise self.error(at, f"expected one of [dark], [dark, half], [dark, half, full], got {value!r}")
        return [MOON_NSB[m] for m in moons]

    def _div_ang(self, at: list[str | int], value: Any) -> list[str]:
        angles = [x.strip() for x in str(value).split(",")]
        if angles not in DIV_ANG_SETS:
            allowed = " or ".join(", ".join(s) for s in DIV_ANG_SETS)
            raise self.error(at, f"expected {allowed}, got {value!r}")
        return angles

    def _simpipe(self, at: list[str | int], value: Any) -> dict[str, Any]:
        """SimPipeJob.set_simpipe_config: a file next to the workflow (or, twin extension, a mapping)."""
        config = value if isinstance(value, dict) else self._read_simpipe(at, value)
        if "job_grid_file" in config:
            return {"ledger_mode": True}
        config = {str(k).lower(): v for k, v in config.items()}
        job: dict[str, Any] = {}
        if "array_layout_name" in config:
            job["array_layout"] = config["array_layout_name"]
            job["sct"] = "_scts" in str(config["array_layout_name"])
        if "site" in config:
            job["site"] = self._choice([*at, "site"], config["site"], list(SIMPIPE_SITES))
            job["site"] = SIMPIPE_SITES[job["site"]]
        if "primary" in config:
            job["particle"] = str(config["primary"]).lower()
        if "zenith_angle" in config:
            job["zenith_angle"] = config["zenith_angle"]
        if "view_cone" in config:
            job["view_cone"] = str(config["view_cone"]).replace(" ", "_")
        if str(config.get("simulation_software")) == "corsika":
            job["category"], job["prog"] = "airshower_sim", "corsika"
        job["azimuth_angle"] = self._azimuth([*at, "azimuth_angle"], config.get("azimuth_angle"))
        for key in ("site", "array_layout"):
            if key not in job:
                raise self.error(at, f"expected {'site' if key == 'site' else 'array_layout_name'} in the SimPipe config")
        return job

    def _read_simpipe(self, at: list[str | int], value: Any) -> dict[str, Any]:
        path = self.base_dir / str(value)
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise self.error(at, f"cannot read the SimPipe config {str(path)!r} ({exc.__class__.__name__})") from None
        if not isinstance(config, dict):
            raise self.error(at, f"expected a mapping in {str(path)!r}")
        return config

    def _azimuth(self, at: list[str | int], value: Any) -> float:
        if value is None:
            raise self.error(at, "missing mandatory key: Azimuth angle is not set")
        if isinstance(value, str) and value.lower() in SIMPIPE_AZIMUTHS:
            return SIMPIPE_AZIMUTHS[value.lower()]
        return self._number(at, value)


def _model_query(b: _Built) -> dict[str, Any]:
    """CtapipeApplyModelsJob.run_ctapipe_apply_models: the cta-prod-get-file-by-query look-up run at
    job start (its own output metadata as outputType Model of the trainer, without particle and split).
    With both models in the options the job fetches both; the classifier (trained last) is kept."""
    if b.profile.trans_type != "ApplyModel":
        return {}
    options = str(b.job.get("options", ""))
    trainers = [trainer for marker, trainer in MODEL_TRAINERS if marker in options]
    if not trainers:
        return {}
    query = {key: value for key, value in b.output_query.items() if key not in ("particle", "split")}
    query.update(outputType="Model", analysis_prog=trainers[-1])
    return query


def _unwrap(value: Any) -> Any:
    """``value["="]`` when the query term is {"=": v}, else the value (WorkflowElement.set_attribute)."""
    return value["="] if isinstance(value, dict) and "=" in value else value
