"""The scenario schema: what a YAML scenario may say, with DIRAC's defaults.

Every model forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Units are in the key names: _tb (10^12 bytes), _mb (10^6 bytes),
_mbps (MB/s, 10^6 bytes per second, not megabits), _hs06s (HS06-seconds of CPU work);
durations accept seconds or strings such as "6h", "2d", "8w".
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.engine.clock import parse_duration

# Bounds: every quantity is finite (an .inf CPU cost never ends, a NaN compares False) and no larger
# than the engine can run; each bound says why in its message.
MAX_DURATION = 20 * 365 * 86400.0  # 20 years: far beyond any plan; larger values are unit mistakes
MAX_SAMPLES = 200_000  # metric rows kept in memory: a year sampled every 3 minutes
MAX_INITIAL_FILES = 10_000_000  # every catalog file is an object in memory (~1 kB each)
MAX_SLOTS = 1_000_000  # per CE queue: each slot can hold a pilot process
MIN_POLLING = 1.0  # one agent cycle per poll: below 1 s a run of weeks needs millions of cycles


def _finite_duration(value: float) -> float:
    if not value <= MAX_DURATION:  # also refuses NaN
        raise ValueError(f"expected a finite duration of at most 20 years ({MAX_DURATION:.0f} s)")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_finite_duration)]
PollingTime = Annotated[Duration, Field(ge=MIN_POLLING, description="agent polling time: at least 1 s, "
                                        "since every poll is a simulated cycle")]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
PositiveCount = Annotated[int, Field(ge=1)]
#: A job's JDL Priority: an integer (Interfaces/API/Job.py setPriority refuses anything else) within
#: Operations JobDescription/MinPriority..MaxPriority, 0..10 by default (WorkloadManagementSystem/Utilities/JobModel.py).
JobPriority = Annotated[int, Field(strict=True, ge=0, le=10, description="job priority (JDL Priority, 0..10)")]
DEFAULT_JOB_PRIORITY = 1  # Interfaces/API/Job.py Job.__init__: self.priority = 1
Slots = Annotated[int, Field(ge=0, le=MAX_SLOTS)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
FolderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")]


def _unique_names(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"expected unique names, {item.name!r} appears twice")
        seen.add(item.name)
    return items


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _calendar_date(value: Any) -> dt.date:
    """A campaign's day 0: a YAML date (2026-03-01) or the same text from --param; a time of day is refused."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else _no_date()
    except ValueError:
        return _no_date()


def _no_date() -> dt.date:
    raise ValueError("expected a calendar date YYYY-MM-DD (the day simulated time 0 falls on)")


# ---------------------------------------------------------------- run settings
class RunSettings(Strict):
    duration: Annotated[Duration, Field(gt=0.0)] = 8 * 7 * 86400.0
    seed: Seed = 1
    sample_interval: Annotated[Duration, Field(ge=1.0)] = 3600.0
    deadline: Annotated[Duration, Field(gt=0.0)] | None = None
    start_date: Annotated[dt.date, BeforeValidator(_calendar_date)] | None = None  # reports show dates, not days
    event_log: bool = True
    stop_when_done: bool = True
    min_processed_fraction: Probability = 0.99

    @model_validator(mode="after")
    def _samples_fit_in_memory(self) -> "RunSettings":
        samples = self.duration / self.sample_interval
        if samples > MAX_SAMPLES:
            raise ValueError(f"expected at most {MAX_SAMPLES:,} metric samples (duration / sample_interval, each kept "
                             f"in memory), got {samples:,.0f}: raise sample_interval")
        return self


# ---------------------------------------------------------------- topology
class ComputingElement(Strict):
    """A CE queue: slots, CPU power and the SiteDirector's queue options."""

    name: str
    slots: Slots
    processors: PositiveCount = 1
    hs06_per_core: Positive = 10.0
    memory_mb_per_slot: PositiveCount = 2000
    max_waiting_pilots: Count = 10
    pilot_latency: Duration = 300.0
    pilot_lifetime: Duration = 259200.0
    pilot_failure_prob: Probability = 0.0


class Site(Strict):
    name: str
    ces: Annotated[list[ComputingElement], Field(min_length=1), AfterValidator(_unique_names)]
    ses: list[str] = []
    job_failure_prob: Probability = 0.0
    cpu_share: NonNegative = 0.0


class TapeSystem(Strict):
    drives: PositiveCount
    drive_mbps: Positive
    mount_s: Duration = 90.0
    position_s: Duration = 40.0
    buffer_tb: Positive = 50.0
    disk_cache_tb: Positive = 1.0
    pin_lifetime: Duration = 86400.0


class StorageElement(Strict):
    name: str
    site: str
    kind: Literal["disk", "tape"] = "disk"
    capacity_tb: Positive
    used_tb: NonNegative = 0.0
    read_mbps: Positive = 2000.0
    write_mbps: Positive = 2000.0
    max_concurrency: PositiveCount = 100
    failover: bool = False
    tape: TapeSystem | None = None

    @model_validator(mode="after")
    def _tape_needs_drives(self) -> "StorageElement":
        if self.kind == "tape" and self.tape is None:
            raise ValueError("expected a 'tape' section (drives, drive_mbps...) for a storage element of kind tape")
        if self.kind == "disk" and self.tape is not None:
            raise ValueError("expected no 'tape' section for a storage element of kind disk")
        if self.used_tb > self.capacity_tb:
            raise ValueError(f"expected used_tb <= capacity_tb, got {self.used_tb} > {self.capacity_tb}")
        return self


class LinkSpec(Strict):
    bandwidth_mbps: Positive = 10000.0
    concurrency: PositiveCount = 50
    failure_prob: Probability = 0.0


class Link(LinkSpec):
    source: str
    destination: str


class Network(Strict):
    default: LinkSpec = LinkSpec()
    links: list[Link] = []
    wan_latency: Duration = 0.05
    max_files_per_fts_job: PositiveCount = 100
    max_attempts_per_file: PositiveCount = 256


class CoreServer(Strict):
    name: str
    cores: PositiveCount
    ram_gb: Positive
    services: list[str] = []


class Database(Strict):
    """A MySQL instance: connection pool and a query cost that grows with table size."""

    name: str
    server: str
    connections: PositiveCount = 50
    base_query_ms: Positive = 2.0
    ms_per_million_rows: NonNegative = 1.0
    slowdown: Positive = 1.0
    initial_rows: NonNegative = 0.0  # history already in its main table (DFC files, past jobs, TransformationFiles)


class Topology(Strict):
    sites: Annotated[list[Site], Field(min_length=1), AfterValidator(_unique_names)]
    storage: Annotated[list[StorageElement], AfterValidator(_unique_names)] = []
    network: Network = Network()
    servers: Annotated[list[CoreServer], AfterValidator(_unique_names)] = []
    databases: Annotated[list[Database], AfterValidator(_unique_names)] = []


# ---------------------------------------------------------------- workload
class JobModel(Strict):
    """What one job of a step costs and produces.

    `cpu_hs06s` is per job, or per input file with `cpu_per_input` (processing, merging);
    `output_files` is per job, or per input file with `outputs_per_input` (one DL1 per DL0).
    """

    cpu_hs06s: Positive = 36000.0
    cpu_cv: Annotated[NonNegative, Field(le=10.0, description="CPU coefficient of variation (lognormal): above 10 a few "
                                         "jobs would take astronomic times")] = 0.2
    memory_mb: PositiveCount = 2000
    processors: PositiveCount = 1
    cpu_time_limit: Duration = 86400.0
    output_files: Count = 1
    output_size_mb: NonNegative = 1000.0
    output_data_type: str = "default"
    cpu_per_input: bool = False
    outputs_per_input: bool = False
    failure_prob: Probability = 0.0
    file_metadata: list[dict[str, Any]] = []
    model_query: dict[str, Any] = {}
    destination: list[str] = []  # the job's Site (Job.setDestination); [] = ANY

    @model_validator(mode="after")
    def _one_metadata_per_file(self) -> "JobModel":
        if self.file_metadata and len(self.file_metadata) != self.output_files:
            raise ValueError(f"expected one file_metadata entry per output file ({self.output_files}), got {len(self.file_metadata)}")
        return self


PluginName = Annotated[str, Field(pattern=r"^[A-Za-z]+$")]

#: plugin_params the plugins read (besides Status and TransformationID, which the system sets).
#: DIRAC stores a non-int transformation parameter as a string (TransformationDB
#: __addAdditionalTransformationParameter), so the int-typed ones raise on 2.5 or "x":
#: getPluginParam("GroupSize", 10) / ("MaxFiles", 100) cast with int(), Broadcast reads
#: int(params["Destinations"]) and hands params["GroupSize"] to breakListIntoChunks (which also
#: raises on 0).
INT_PLUGIN_PARAMS = {"GroupSize": 1, "MaxFiles": 0, "MaxFilesPerTask": 0, "Destinations": 0}
#: Plugins whose GroupSize is a size in GB, read with float() (PluginUtilities.groupBySize).
SIZE_PLUGINS = frozenset({"BySize"})
OTHER_PLUGIN_PARAMS = frozenset({"SourceSE", "TargetSE", "CalibpipeRelease", "CalibDataType"})


def _plugin_param_error(plugin: str, key: str, value: Any) -> str | None:
    """Why DIRAC would refuse `value` for plugin parameter `key` of `plugin`, or None."""
    if key == "GroupSize" and plugin in SIZE_PLUGINS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        return None if ok else f"expected a size in GB > 0, got {value!r}"
    if key in INT_PLUGIN_PARAMS:
        low = INT_PLUGIN_PARAMS[key]
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return None if ok else f"expected an integer >= {low} (DIRAC's plugins cast it with int()), got {value!r}"
    if key not in OTHER_PLUGIN_PARAMS:
        known = ", ".join(sorted({*INT_PLUGIN_PARAMS, *OTHER_PLUGIN_PARAMS}))
        return f"no plugin reads this key (known: {known})"
    return None


class Step(Strict):
    """One production step = one transformation."""

    name: str
    type: str = "MCSimulation"
    job_type: str | None = None
    plugin: PluginName = "Standard"
    plugin_source: Literal["native", "dirac"] = "native"
    plugin_class: str | None = None
    plugin_params: dict[str, Any] = {}
    group_size: Positive = 1
    max_tasks: Count | None = None
    parent: str | list[str] | None = None
    input_query: dict[str, Any] = {}
    output_metadata: dict[str, Any] = {}
    job: JobModel = JobModel()
    source_se: list[str] = []
    target_se: list[str] = []
    body: Literal["workflow", "moving", "removal_file", "removal_replica"] = "workflow"
    start_after: list[str] = []
    start_delay: Duration = 0.0
    readiness_gate: bool = False
    operator_flush: bool | None = None
    priority: JobPriority | None = None

    @property
    def parents(self) -> list[str]:
        return [self.parent] if isinstance(self.parent, str) else list(self.parent or [])

    @model_validator(mode="after")
    def _priority_needs_jobs(self) -> "Step":
        """Job.setPriority sets a job's JDL Priority; a data-manipulation step creates requests, which have none."""
        if self.priority is not None and self.body != "workflow":
            raise ValueError(f"step {self.name!r}: priority applies to the jobs of a workflow step, "
                             f"but body {self.body!r} creates requests")
        return self

    @model_validator(mode="after")
    def _plugin_params_as_dirac_reads_them(self) -> "Step":
        """A parameter DIRAC's plugin would raise on, or that no plugin reads, is refused here rather
        than truncated or ignored; a custom plugin_class may read keys of its own."""
        for key, value in self.plugin_params.items():
            error = _plugin_param_error(self.plugin, key, value)
            if error and not (self.plugin_class and key not in INT_PLUGIN_PARAMS):
                raise ValueError(f"plugin_params.{key}: {error}")
        return self


class Production(Strict):
    """A production: its steps start together (lexicographic order) unless `start_after` defers them.

    `operator_flush` (default for every step; a step may override it) models the operator's
    habit of flushing a step once its parents have finished, so held partial groups run.
    `operator_reflush`: the operator flushes such a step again whenever it is idle (no file Assigned)
    with files Unused, i.e. files whose task failed after the last flush: DIRAC's Flush is one-shot.
    """

    name: str
    start: Duration = 0.0
    operator_flush: bool = False
    operator_reflush: bool = False
    priority: JobPriority | None = None
    steps: Annotated[list[Step], Field(min_length=1), AfterValidator(_unique_names)]

    def flushes(self, step: Step) -> bool:
        return self.operator_flush if step.operator_flush is None else step.operator_flush

    def job_priority(self, step: Step) -> int:
        """The JDL Priority of the step's jobs: the step's, else the production's, else DIRAC's Job default (1)."""
        for priority in (step.priority, self.priority):
            if priority is not None:
                return priority
        return DEFAULT_JOB_PRIORITY

    @model_validator(mode="after")
    def _priority_needs_jobs(self) -> "Production":
        if self.priority is not None and all(step.body != "workflow" for step in self.steps):
            raise ValueError("priority applies to the jobs of workflow steps, but every step of this production "
                             "creates requests")
        return self

    @model_validator(mode="after")
    def _reflush_needs_a_flush(self) -> "Production":
        if self.operator_reflush and not any(self.flushes(step) for step in self.steps):
            raise ValueError("operator_reflush: flushes again after the operator's flush, but no step of this "
                             "production has operator_flush")
        return self

    @model_validator(mode="after")
    def _parents_exist(self) -> "Production":
        names = {step.name for step in self.steps}
        for step in self.steps:
            for key, others in (("parent", step.parents), ("start_after", step.start_after)):
                for other in others:
                    if other not in names:
                        raise ValueError(f"step {step.name!r}: expected {key} to name a step of this production, got {other!r}")
        return self


class InitialData(Strict):
    """Files already in the catalog when the run starts (e.g. existing DL0 for a reprocessing campaign)."""

    name: str
    count: Annotated[int, Field(ge=1, le=MAX_INITIAL_FILES, description="files in memory, ~1 kB each")]
    size_mb: NonNegative = 1000.0
    ses: Annotated[list[str], Field(min_length=1)]
    metadata: dict[str, Any] = {}
    file_metadata: list[dict[str, Any]] = []


class OperatorAction(Strict):
    """A manual intervention at a given time on one step's transformation (Transformation Monitor buttons)."""

    at: Duration
    action: Literal["flush", "stop", "start", "complete", "clean"]
    target: Annotated[str, Field(pattern=r"^[^/]+/[^/]+$")]


class Workload(Strict):
    """Productions written out, and/or cta-prod-submit workflow files imported as productions."""

    productions: Annotated[list[Production], AfterValidator(_unique_names)] = []
    workflow_files: list[str] = []
    job_models: dict[str, JobModel] = {}
    datasets: dict[str, dict[str, Any]] = {}
    initial_data: Annotated[list[InitialData], AfterValidator(_unique_names)] = []
    operator_actions: list[OperatorAction] = []


# ---------------------------------------------------------------- faults
FaultKind = Literal[
    "site_down", "se_banned", "tape_drive_lost", "db_slow", "db_down", "link_cut", "failure_spike", "server_down"
]


class NoFaultParams(Strict):
    """site_down, db_down, server_down, link_cut take no parameters."""


class SeBannedParams(Strict):
    access: Literal["read", "write", "all"] = "all"


class DbSlowParams(Strict):
    factor: Annotated[Positive, Field(le=1e6, description="service-time multiplier while active")] = 4.0


class FailureSpikeParams(Strict):
    job_failure_prob: Probability = 1.0


class TapeDriveLostParams(Strict):
    drives: PositiveCount = 1


FAULT_PARAMS: dict[str, type[Strict]] = {
    "site_down": NoFaultParams, "db_down": NoFaultParams, "server_down": NoFaultParams, "link_cut": NoFaultParams,
    "se_banned": SeBannedParams, "db_slow": DbSlowParams, "failure_spike": FailureSpikeParams,
    "tape_drive_lost": TapeDriveLostParams,
}


class Fault(Strict):
    """An injected fault; `params` are checked per kind (FAULT_PARAMS)."""

    kind: FaultKind
    target: str
    start: Duration
    end: Duration | None = None
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _end_after_start(self) -> "Fault":
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"expected end > start, got start={self.start} end={self.end}")
        return self

    @model_validator(mode="after")
    def _params_of_kind(self) -> "Fault":
        model = FAULT_PARAMS[self.kind]
        try:
            model.model_validate(self.params)  # the engine applies the defaults; the event log shows what was written
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            allowed = ", ".join(model.model_fields) or "none"
            if err["type"] == "extra_forbidden":
                raise ValueError(f"params.{key}: unknown parameter for a {self.kind} fault (expected: {allowed})") from None
            message = err["msg"].removeprefix("Value error, ").replace("Input should be", "expected")
            raise ValueError(f"params.{key}: {message} for a {self.kind} fault, got {err.get('input')!r}") from None
        return self


# ---------------------------------------------------------------- DIRAC configuration
class AgentTiming(Strict):
    polling_time: PollingTime
    enabled: bool = True


class FTS3AgentConfig(AgentTiming):
    """FTS3Agent options (DIRAC DataManagementSystem/ConfigTemplate.cfg); its MaxFilesPerJob and
    MaxAttemptsPerFile are topology.network.max_files_per_fts_job / max_attempts_per_file."""

    polling_time: PollingTime = 120.0
    max_threads: PositiveCount = 10
    operation_bulk_size: PositiveCount = 20
    job_bulk_size: PositiveCount = 20


class MatchingDelay(Strict):
    """Operations JobScheduling/MatchingDelay/<Site>/JobType/<type> (seconds) and its Burst."""

    interval: Duration
    burst: PositiveCount = 1


class DiracConfig(Strict):
    """CS options and agent defaults; every default is DIRAC 9.1.22's (see docs/fidelity.md)."""

    input_data_agent: AgentTiming = AgentTiming(polling_time=120)
    transformation_agent: AgentTiming = AgentTiming(polling_time=120)
    workflow_task_agent: AgentTiming = AgentTiming(polling_time=120)
    request_task_agent: AgentTiming = AgentTiming(polling_time=120)
    mc_extension_agent: AgentTiming = AgentTiming(polling_time=120)
    failover_agent: AgentTiming = AgentTiming(polling_time=600)
    cleaning_agent: AgentTiming = AgentTiming(polling_time=3600)
    archive_after: Duration = 7 * 86400.0
    site_director: AgentTiming = AgentTiming(polling_time=120)
    stalled_job_agent: AgentTiming = AgentTiming(polling_time=3600)
    request_executing_agent: AgentTiming = AgentTiming(polling_time=60)
    # ReplicateAndRegister: "direct" = DMMode copies file by file (FTSMode False, DIRAC's default);
    # "fts3" = FTSMode True: FTS3 operations, bulk jobs and retries by the FTS3Agent (twin/dirac/fts3.py)
    replication_mode: Literal["direct", "fts3"] = "direct"
    fts3_agent: FTS3AgentConfig = FTS3AgentConfig()
    no_unused_delay: Duration = 6 * 3600.0
    tasks_per_loop: PositiveCount = 50
    task_min_age: Duration = 30.0
    monitoring_age: Duration = 600.0
    check_reserved_age: Duration = 3600.0
    monitor_files: bool = True
    files_max_reset_counter: PositiveCount = 10
    destination_plugin: Literal["BySE", "ByJobType"] = "BySE"
    data_processing_types: list[str] = ["MCSimulation", "Merging", "DataReprocessing", "Training", "ApplyModel"]
    data_manipulation_types: list[str] = ["Replication", "Removal"]
    extendable_types: list[str] = ["MCSimulation"]
    mc_tasks_per_iteration: PositiveCount = 50
    mc_max_failure_rate: Probability = 0.3
    mc_max_waiting_jobs: PositiveCount = 1000
    failover_complete_types: list[str] = []
    failover_flush_types: list[str] = []
    failover_reassign_types: list[str] = []
    failover_max_flush: Count = 2
    failover_max_reassign: Count = 2
    max_rescheduling: Count = 3
    reschedule_delays: Annotated[list[Duration], Field(min_length=1)] = [60.0, 180.0, 300.0, 600.0]
    stalled_time: Duration = 4500.0
    failed_time: Duration = 11700.0
    matched_time: Duration = 7200.0
    max_pilots_per_cycle: PositiveCount = 100
    stop_after_failed_matches: PositiveCount = 10
    job_agent_polling: PollingTime = 20.0
    heartbeat_interval: PollingTime = 1800.0
    production_outputs: dict[str, list[str]] = {}
    production_outputs_failover: dict[str, list[str]] = {}
    ses_for_failover: list[str] = []
    ses_not_for_jobs: list[str] = []
    running_limits: dict[str, dict[str, int]] = {}
    matching_delays: dict[str, dict[str, MatchingDelay]] = {}
    group_share: Positive = 1000.0
    request_max_attempts: PositiveCount = 256
    requests_per_cycle: PositiveCount = 300
    request_workers: PositiveCount = 50
    operations: dict[str, Any] = {}
    service_cpu_ms: NonNegative = 5.0
    service_cpu_us_per_row: NonNegative = 2.0
    service_max_threads: PositiveCount = 15  # DIRAC ServiceConfiguration.getMaxThreads default
    rpc_timeout: Duration = 600.0  # DIRAC BaseClient default timeout
    rpc_connection_timeout: Positive = 10.0  # DIRAC Core/DISET DEFAULT_CONNECTION_TIMEOUT (connect + TLS handshake)
    service_max_waiting: Count = 100  # DIRAC ServiceConfiguration.getMaxWaitingPetitions default
    service_model: Literal["flow", "exact"] = "flow"  # flow-level charging, or every RPC queued exactly
    agent_threads: PositiveCount = 15  # TransformationAgent maxThreadsInPool, TaskManagerAgentBase maxNumberOfThreads
    background_rpcs: dict[str, Positive] = {}  # footprint RPC kind -> calls/s (web portal, monitoring, user jobs)

    @field_validator("background_rpcs")
    @classmethod
    def _known_rpcs(cls, value: dict[str, float]) -> dict[str, float]:
        from twin.dirac.footprint import RPCS

        unknown = sorted(set(value) - set(RPCS))
        if unknown:
            raise ValueError(f"unknown RPC kind(s) {unknown}; expected one of {sorted(RPCS)}")
        return value
    optimizer_delay: Duration = 5.0
    operator_reaction: Duration = 0.0



# ---------------------------------------------------------------- failure, supply and observed-name models (issue 15)
# Real grids fail in correlated ways; these blocks say how, as data with provenance. The logic is in
# twin/dirac/wms/failures.py and twin/dirac/transformation/supply.py; docs/calibration.md explains both.
FailurePhase = Literal["start", "payload", "upload"]


class JobCostModel(Strict):
    """What a job pays besides its work, shared by site and step failure models: CPU efficiency and
    a per-job overhead."""

    cpu_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    overhead_s: Duration = 0.0


class SiteFailureModel(JobCostModel):
    """Per site (fnmatch pattern over site names; `name` only labels it for key paths): a two-state (good/bad)
    Markov-modulated failure probability for the jobs of the steps matching `steps` (e.g. data-access
    incidents hit jobs that read input), black-hole worker nodes (every job), CPU efficiency and overhead."""

    name: str | None = None
    sites: str = "*"
    steps: str = "*"
    good_failure_prob: Probability = 0.0
    bad_failure_prob: Probability = 0.0
    mean_good: Duration = 0.0
    mean_bad: Duration = 0.0
    black_hole_fraction: Probability = 0.0
    black_hole_after_s: Duration = 30.0

    @model_validator(mode="after")
    def _both_sojourns(self) -> "SiteFailureModel":
        if (self.mean_good > 0) != (self.mean_bad > 0):
            raise ValueError("expected both mean_good and mean_bad (a two-state process) or neither")
        return self


class StepFailureModel(JobCostModel):
    """Per step (fnmatch pattern over "Production/Step"; `name` labels it for key paths): independent and input-correlated failures,
    the phase they hit, CPU efficiency and per-job overhead."""

    name: str | None = None
    steps: str = "*"
    failure_prob: Probability = 0.0
    phases: dict[FailurePhase, NonNegative] = {"payload": 1.0}
    bad_input_fraction: Probability = 0.0
    bad_input_phase: FailurePhase = "start"
    fail_prob_per_input_gb: NonNegative = 0.0
    hazard_per_cpu_hour: NonNegative = 0.0

    @model_validator(mode="after")
    def _some_phase(self) -> "StepFailureModel":
        if not sum(self.phases.values()) > 0:
            raise ValueError("expected phases with a positive total weight, e.g. {payload: 1}")
        return self


class FileSizeModel(Strict):
    """Output file sizes of one data type: lognormal around the job model's output_size_mb."""

    cv: NonNegative = 0.0


class FailureModels(Strict):
    """`stop_pilot_on_failure`: the JobAgent stops after a failed payload (DIRAC JobAgent option
    StopOnApplicationFailure, default True), applied to the failures these models cause."""

    stop_pilot_on_failure: bool = True
    sites: list[SiteFailureModel] = []
    steps: list[StepFailureModel] = []
    file_sizes: dict[str, FileSizeModel] = {}


class SupplyExtension(Strict):
    """An operator extending an MC transformation by hand (cta-prod-extend-sim-style): `tasks`
    more tasks, or "failed" for as many as have Failed by then."""

    at: Duration
    tasks: Annotated[int, Field(ge=1)] | Literal["failed"] = "failed"


class SupplyModel(Strict):
    """MC supply of the steps matching `steps`: "extension" = MCExtensionAgent replaces failed tasks
    (DIRAC); "fixed" = MaxNumberOfTasks created once, failures not replaced, operator extensions."""

    steps: str = "*"
    mode: Literal["extension", "fixed"] = "extension"
    extensions: list[SupplyExtension] = []


class ObservedNames(Strict):
    """How rows of an observed Transformation Monitor table name this scenario's steps:
    "Production/Step" -> fnmatch pattern of the DIRAC transformation name; `ignore` lists
    patterns of rows known but not modelled (say why in provenance); `file` is the observed table the
    run report compares with (relative to the scenario file that names it)."""

    file: str | None = None
    transformations: dict[str, str] = {}
    ignore: list[str] = []


# ---------------------------------------------------------------- the scenario
class Scenario(Strict):
    name: Annotated[FolderName, Field(description="also the default output folder runs/<name>: letters, digits, . _ + -")]
    description: str = ""
    run: RunSettings = RunSettings()
    topology: Topology
    workload: Workload = Workload()
    faults: list[Fault] = []
    dirac: DiracConfig = DiracConfig()
    failure_models: FailureModels = FailureModels()
    supply: list[SupplyModel] = []
    observed_names: ObservedNames = ObservedNames()
    provenance: dict[str, Annotated[str, Field(pattern=r"^(source|assumption|derived): .+")]] = {}
