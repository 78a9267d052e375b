"""The WMS running on the simulated grid: job submission, optimizers, SiteDirector,
pilots (JobAgent), job execution with CTA's in-job data management, StalledJobAgent.

Pure decisions come from the sibling modules (job_status, jobdb, taskqueue, scheduling,
stalled); this module supplies time, randomness and the grid, and decides what each phase of a
running job comes to (`match`, `plan_payload`, `download`, `upload`...). Scale choices:
- queued jobs are records in the TaskQueueDB, never processes; the optimizer and the
  hold/reschedule delays are timeout callbacks;
- running jobs are not processes either: a pilot's JobAgent and the job it runs are one
  record (twin/dirac/wms/jobagent.py) advanced by the callbacks of the events it waits on,
  one at a time (a job's run is one timeout in simpy's calendar); only the phases that may
  queue exactly (a hot service, a transfer, staging) run as generators, driven without a Process;
- heartbeats are not events: a running job's heartbeat is refreshed from its pilot's
  liveness when the StalledJobAgent looks (equivalent to DIRAC's 30-minute heartbeats
  for the 4500 s/11700 s thresholds), and freezes when its pilot dies.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from twin.dirac import footprint as fp
from twin.dirac.transformation import status as st
from twin.dirac.wms import job_status as js
from twin.dirac.wms.failures import PAYLOAD, RUNS_THROUGH, START, UPLOAD, Fate, JobFates
from twin.dirac.wms.jobagent import (JOB_CPU_LIMIT_MARGIN, MINIMUM_CPU_WORK, MODEL_LOOKUP_S, STOP_MARGIN_S,  # noqa: F401 - re-exported
                                     JobAgent, Payload, _cpu, cpu_work_left, watchdog_cpu_kill_after)
from twin.dirac.wms.jobdb import Job, JobDB
from twin.dirac.wms.scheduling import CACHED, DISK, TAPE, Fail, Hold, Stage, ToTaskQueue, by_job_type, by_se_sites, handle_destination, schedule_job, site_director_pilots
from twin.dirac.wms.stalled import StalledConfig, run_stalled_job_agent
from twin.dirac.wms.taskqueue import Limiter, TaskQueueDB, request_pilot_job
from twin.engine.alarm import call_after

if TYPE_CHECKING:
    import numpy as np

    from twin.dirac.transformation.runtime import TransformationRuntime
    from twin.grid.site import Pilot
    from twin.dirac.context import WorkloadContext

OWNER_GROUP: Final = "cta_prod"
_JOB_FINAL: Final = js.JOB_FINAL_STATES
_RECEIVED: Final = js.RECEIVED
_SUBMITTING: Final = js.SUBMITTING
MB: Final = 1e6



class _JobTemplate:
    """What WorkflowTasks puts in every job of one transformation: the step's job model (JobType, CPUTime,
    memory, processors, the body's Priority), the CPU-work distribution, and the destination per TargetSE
    (the TaskManagerPlugin's sites AND the job's Site: a function of the static CS and topology, so it is
    worked out once per TargetSE instead of once per task)."""

    __slots__ = ("job_type", "cpu_time", "memory_mb", "processors", "priority", "destination", "plugin_sites",
                 "mean", "per_input", "log_mean", "sigma2", "sigma", "by_target")

    def __init__(self, runtime: "TransformationRuntime", plugin_sites: Callable[[str, str], set[str]]) -> None:
        model = runtime.step.job
        self.job_type = runtime.job_type
        self.cpu_time = int(model.cpu_time_limit)
        self.memory_mb = model.memory_mb
        self.processors = model.processors
        self.priority = runtime.production.job_priority(runtime.step)  # the body's JDL Priority -> UserPriority
        self.destination = ";".join(model.destination) or "ANY"
        self.plugin_sites = plugin_sites
        self.mean = model.cpu_hs06s
        self.per_input = model.cpu_per_input
        self.sigma: float | None = None
        self.sigma2 = self.log_mean = 0.0
        if model.cpu_cv > 0:
            self.sigma2 = sigma2 = math.log(1 + model.cpu_cv ** 2)
            self.sigma = math.sqrt(sigma2)
            self.log_mean = math.log(self.mean) - sigma2 / 2
        self.by_target: dict[str, tuple[str, ...] | None] = {}

    def sites(self, target_se: str) -> tuple[str, ...] | None:
        """The job's Site list (empty: ANY); None when the plugin's sites and the job's Site do not meet."""
        try:
            return self.by_target[target_se]
        except KeyError:
            sites = handle_destination(self.destination, self.plugin_sites(self.job_type, target_se))
            found = self.by_target[target_se] = None if sites is None else () if sites == ["ANY"] else tuple(sites)
            return found

    def cpu_work(self, rng: "np.random.Generator", n_inputs: int) -> float:
        """The job's CPU work (HS06 s): lognormal with the step's mean (per input with cpu_per_input) and CV."""
        mean = self.mean * max(1, n_inputs) if self.per_input else self.mean
        if self.sigma is None:
            return mean
        if self.per_input:
            return float(rng.lognormal(math.log(mean) - self.sigma2 / 2, self.sigma))
        return float(rng.lognormal(self.log_mean, self.sigma))


class _UpSites:
    """The site mask as a live view of the grid: a site is in it while it is up (a Collection[str])."""

    __slots__ = ("sites",)

    def __init__(self, sites: Mapping[str, Any]) -> None:
        self.sites = sites

    def __contains__(self, name: object) -> bool:
        site = self.sites.get(name) if isinstance(name, str) else None
        return site is not None and site.up

    def __iter__(self) -> Iterator[str]:
        return (name for name, site in self.sites.items() if site.up)

    def __len__(self) -> int:
        return sum(1 for site in self.sites.values() if site.up)


class WorkloadManagement:
    def __init__(self, world: "WorkloadContext") -> None:
        self.world = world
        self.services = world.services  # what a JobAgent record charges its RPCs to (jobagent.JobAgentWMS)
        cfg = world.scenario.dirac
        self.cfg = cfg
        self.env = world.sim.env  # its clock read as `env._now`: the `now` property is one Python call more
        self.jobdb = JobDB(on_status=self._on_status, max_rescheduling=cfg.max_rescheduling, retain_final=False)
        delays = {site: {job_type: (d.interval, d.burst) for job_type, d in by_type.items()}
                  for site, by_type in cfg.matching_delays.items()}
        limiter = (Limiter(cfg.running_limits, self.jobdb.running_by_job_type, matching_delays=delays)
                   if cfg.running_limits or delays else None)
        self.tqdb = TaskQueueDB({OWNER_GROUP: cfg.group_share}, limiter=limiter, site_mask=None)
        streams = world.sim.streams
        self.rng_match = streams.get("wms.matcher")
        self.rng_cpu = streams.get("wms.job_cpu")
        self.rng_fail = streams.get("wms.job_failure")
        self.rng_upload = streams.get("wms.upload_shuffle")
        self.rng_sched = streams.get("wms.scheduling")
        self.fates = JobFates(world.scenario.failure_models, streams)
        self.stalled_config = StalledConfig(stalled_time=cfg.stalled_time, failed_time=cfg.failed_time, matched_time=cfg.matched_time)
        self.pinned: dict[tuple[str, str], float] = {}
        self.cpu_used_hs06s = 0.0
        self.cpu_wasted_hs06s = 0.0
        self.failures: Counter[str] = Counter()
        self.jobs_done_by_site: Counter[str] = Counter()
        self.outputs_registered = 0
        self.bytes_uploaded = 0.0
        self._meta_cache: dict[int, tuple[int, dict[str, Any]]] = {}
        self._local_ses_cache: dict[str, set[str]] = {}
        self._templates: dict[int, _JobTemplate] = {}
        self._up_sites = _UpSites(world.grid.sites)
        self._events = world.sim.log  # the event log (lives as long as the run)
        self._output_choices: dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str] | None]] = {}
        self._failover_choices: dict[str, tuple[str, ...]] = {}
        self._note = world.ts.note_external_status  # the task manager's memory of job statuses

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        sim, cfg = self.world.sim, self.cfg
        sim.agent("SiteDirector", cfg.site_director.polling_time, self.site_director_cycle, 11.0, cfg.site_director.enabled)
        sim.agent("StalledJobAgent", cfg.stalled_job_agent.polling_time, self.stalled_cycle, 1800.0, cfg.stalled_job_agent.enabled)
        for status in (js.WAITING, js.STAGING, js.RUNNING, js.DONE, js.FAILED):
            sim.metrics.gauge(f"wms.jobs_{status.lower()}", partial(self.jobdb.count, status))
        for site in self.world.grid.sites:
            sim.metrics.gauge(f"wms.running[{site}]", partial(self.jobdb.count_at, site, js.RUNNING))
            sim.metrics.gauge(f"wms.done[{site}]", partial(self.jobs_done_by_site.__getitem__, site))

    # ------------------------------------------------------------------ status callback
    def _on_status(self, job: Job, old: str, new: str, now: float) -> None:
        """Every job status change (six per job): its event-log row, the task manager's note, and a job
        back to Received (rescheduled) goes to the optimizers again."""
        group = job.job_group
        self._events.log(now, "job.status", f"job:{job.job_id}", new, job.minor_status, float(group))
        self._note(int(group), job.task_id, new, new in _JOB_FINAL, now)
        if new == _RECEIVED and old != _SUBMITTING:
            self._optimize_later(job, self.cfg.optimizer_delay)

    # ------------------------------------------------------------------ submission (WorkflowTaskAgent)
    def submit_task(self, trans: dict[str, Any], task: dict[str, Any]) -> Generator[Any, Any, int | None]:
        """WorkflowTasks: build the job from the task, destination (BySE/ByJobType AND the job's Site), submit; returns the JobID (None: not
        submitted). The job exists once JobManager's insertNewJobIntoDB has returned, not while the call waits;
        the task manager then records Submitted + JobID for all its submissions (updateDBAfterTaskSubmission)."""
        world = self.world
        trans_id, task_id = trans["TransformationID"], task["TaskID"]
        template = self._templates.get(trans_id) or self._template(trans_id)
        sites = template.sites(task["TargetSE"])
        if sites is None:
            return None  # empty intersection: stays Reserved, CheckReserved returns it to Created after 1 h
        inputs = task["InputData"]
        lfns = [lfn for lfn in inputs.split(";") if lfn] if inputs else []
        cpu_work = template.cpu_work(self.rng_cpu, len(lfns))
        yield from world.services.rpc(fp.SUBMIT)
        now = world.sim.now
        job = self.jobdb.submit(
            now, job_type=template.job_type, owner_group=OWNER_GROUP, job_group=trans_id,
            task_id=task_id, input_data=lfns,  # JobName "%08d_%08d" % (trans_id, task_id), kept as the TaskID
            sites=sites, cpu_work=cpu_work, cpu_time=template.cpu_time, memory_mb=template.memory_mb,
            processors=template.processors, priority=template.priority,
        )
        world.sim.log.log(now, "job.status", f"job:{job.job_id}", js.RECEIVED, "Job accepted", float(trans_id))
        self._optimize_later(job, self.cfg.optimizer_delay)
        return job.job_id

    def _template(self, trans_id: int) -> "_JobTemplate":
        """What every job of a transformation shares (its step's job model and destination rules)."""
        runtime = self.world.runtime(trans_id)
        template = self._templates[trans_id] = _JobTemplate(runtime, self._plugin_sites)
        return template

    def _plugin_sites(self, job_type: str, target_se: str) -> set[str]:
        """WorkflowTasks' TaskManagerPlugin (TaskManager/TaskManagerPlugin.py): _BySE or _ByJobType."""
        resources = self.world.resources
        if self.cfg.destination_plugin == "BySE":
            return by_se_sites(target_se, resources.sites_for)
        ops = self.world.operations
        mapping = f"JobTypeMapping/{job_type}"
        return by_job_type(
            job_type, target_se, self.world.grid.sites, resources.sites_for,
            exclude=_ops_list(ops.getValue(f"{mapping}/Exclude", [])) or [],
            allow=_allowed(ops.getOptionsDict(f"{mapping}/Allow")),
            auto_added_sites=_ops_list(ops.getValue("JobTypeMapping/AutoAddedSites", [])) or [],
            tiers_with_storage=resources.tiers_with_storage(),
            job_type_auto_added_sites=_ops_list(ops.getValue(f"{mapping}/AutoAddedSites", None)),
        )

    # ------------------------------------------------------------------ optimizers
    def _optimize_later(self, job: Job, delay: float) -> None:
        call_after(self.env, max(0.0, delay), partial(self._optimize, job))  # a Timeout's place in the calendar

    def _optimize(self, job: Job, _timeout: Any = None) -> None:
        """JobPath -> JobSanity -> InputData -> JobScheduling, as one decision."""
        now = self.env._now
        if job.status not in (js.RECEIVED, js.CHECKING):
            return
        if job.status == js.RECEIVED:
            self.jobdb.set_status(job, js.CHECKING, "JobScheduling", now, source="Optimizer")
        decision = schedule_job(job, self._replica_sites(job.input_data), self._site_mask(), now,
                                production=job.job_type in self.cfg.data_processing_types,
                                rng=self.rng_sched, reschedule_delays=self.cfg.reschedule_delays)
        self.world.services.meter_rpc("Optimizers.optimizeJob")
        self.world.services.defer("Optimizers")  # executors run on the WMS agents host; billed by its next cycle
        if isinstance(decision, ToTaskQueue):
            self.jobdb.set_status(job, js.WAITING, "Pilot Agent Submission", now, source="JobScheduling")
            self.tqdb.insert(job, decision.sites)
        elif isinstance(decision, Hold):
            self._optimize_later(job, decision.until - now)
        elif isinstance(decision, Stage):
            self.jobdb.set_status(job, js.STAGING, "Request To Be Sent", now, source="JobScheduling")
            self.env.process(self._stage(job, decision))
        elif isinstance(decision, Fail):
            self.jobdb.set_status(job, js.FAILED, decision.reason, now, source="JobScheduling")
            self.failures[decision.reason] += 1

    def _site_mask(self) -> "_UpSites":
        """The usable sites (SiteStatus Active), read when JobScheduling asks about a site: most jobs
        (no Site requirement, no input data) never do."""
        return self._up_sites

    def _replica_sites(self, lfns: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """{lfn: {site: disk|tape|cached}} over readable replicas (getReplicasForJobs view)."""
        if not lfns:
            return {}
        world, now = self.world, self.env._now
        found = world.catalog.get_replicas(lfns).successful
        out: dict[str, dict[str, str]] = {}
        for lfn, ses in found.items():
            by_site: dict[str, str] = {}
            for se in world.datamanager.job_view(ses):
                medium = DISK if world.resources.isDiskSE(se) else (CACHED if self.pinned.get((lfn, se), -1) > now else TAPE)
                for site in world.resources.sites_for(se):
                    if by_site.get(site) != DISK:
                        by_site[site] = medium
            out[lfn] = by_site
        return out

    def _stage(self, job: Job, decision: Stage) -> Generator[Any, Any, None]:
        """StageRequestAgent/StageMonitorAgent: recall the files at the chosen site, pin them, re-optimize."""
        world = self.world
        sizes = world.catalog.get_file_sizes(list(decision.files)).successful
        for lfn in decision.files:
            ses = [se for se in world.catalog.get_replicas([lfn]).successful.get(lfn, ())
                   if not world.resources.isDiskSE(se) and decision.site in world.resources.sites_for(se)]
            if not ses:
                continue
            ok = yield from world.grid.ses[ses[0]].stage(float(sizes.get(lfn, 0)))
            if ok:
                self.pinned[(lfn, ses[0])] = self.env._now + world.grid.tapes[ses[0]].pin_lifetime
        yield from world.services.pay("StorageManager")
        self.jobdb.set_status(job, js.CHECKING, "Staging complete", self.env._now, source="StageMonitor")
        self._optimize(job)

    # ------------------------------------------------------------------ SiteDirector
    def site_director_cycle(self) -> Generator[Any, Any, None]:
        submitted = 0  # one bulk addPilotReferences per CE submission
        for ce in self.world.grid.ces.values():
            if not ce.site.up:
                continue
            waiting_jobs = self.tqdb.count_matching({"Site": ce.site.name, "CPUTime": ce.queue_cpu_time,
                                                     "MaxRAM": ce.memory_mb, "NumberOfProcessors": ce.processors}, self.env._now)
            free = ce.slots - ce.running - ce.waiting
            n = site_director_pilots(free, ce.max_waiting_pilots, ce.waiting, waiting_jobs, self.cfg.max_pilots_per_cycle)
            if n:
                ce.submit_pilots(n, self._pilot_started)
                submitted += 1
        yield from self.world.services.rpc((("Matcher.getMatchingTaskQueues", 1), ("PilotManager.addPilotReferences", submitted)))
        yield from self.world.services.pay("Optimizers")

    def _pilot_started(self, pilot: "Pilot") -> None:
        JobAgent(self, pilot).start()

    # ------------------------------------------------------------------ JobAgent and JobWrapper decisions
    # (the phases run in order by twin/dirac/wms/jobagent.py)
    def match(self, pilot: "Pilot", work_left: float) -> Job | None:
        """Matcher.requestJob for the pilot's resource description (its CPU work left as CPUTime)."""
        return request_pilot_job(self.tqdb, self.jobdb, pilot.site, int(work_left), pilot.memory_mb, pilot.processors,
                                 self.rng_match, self.env._now)

    def start_job(self, job: Job) -> "TransformationRuntime":
        """The JobWrapper starts: the job is Running from now (its heartbeat too); returns its step's runtime."""
        runtime = self.world.runtime(int(job.job_group))
        start = self.env._now
        job.start_time = start
        job.heartbeat_time = start
        self.jobdb.set_status(job, js.RUNNING, "Job Initialization", start, source="JobWrapper")
        return runtime

    def model_found(self, runtime: "TransformationRuntime") -> bool:
        """The job's model files are in the catalog (a metered findFilesByMetadata, paid by the caller)."""
        return bool(self.world.fc.findFilesByMetadata(runtime.step.job.model_query)["Value"])

    def plan_payload(self, job: Job, pilot: "Pilot", runtime: "TransformationRuntime") -> Payload:
        """What the payload comes to, drawn when it starts: the Watchdog's CPU-limit kill, an application
        failure (site and step failure probabilities), else the failure models' fate; see `Payload`."""
        model = runtime.step.job
        wall = job.cpu_work / _cpu(job, pilot, 1.0)
        limit = watchdog_cpu_kill_after(job, pilot)
        p_fail = 1 - (1 - self.world.grid.sites[pilot.site].job_failure_prob()) * (1 - model.failure_prob)
        if wall > limit:
            return Payload(limit, "Job has exceeded maximum CPU time limit", _cpu(job, pilot, limit), st.UNUSED)
        if self.rng_fail.random() < p_fail:
            ran = wall * float(self.rng_fail.random())
            return Payload(ran, "Application Finished With Errors", _cpu(job, pilot, ran), st.UNUSED)
        fate, wall = self._fate(job, pilot, runtime.name, wall)
        if fate.phase in (START, PAYLOAD):
            return Payload(fate.after_s, fate.reason, _cpu(job, pilot, fate.after_s), st.UNUSED, stops_pilot=True)
        if fate.phase == UPLOAD:
            return Payload(wall, fate.reason, _cpu(job, pilot, wall), st.PROBLEMATIC, completing=True, stops_pilot=True)
        return Payload(wall)

    def job_succeeded(self, job: Job, pilot: "Pilot") -> None:
        """Outputs registered: the inputs are Processed and the job Done (reported by the JOB_END calls)."""
        self.cpu_used_hs06s += job.cpu_work
        self._set_inputs(job, st.PROCESSED)
        self.jobdb.set_status(job, js.DONE, "Execution Complete", self.env._now, source="JobWrapper")
        job.end_time = self.env._now
        self.jobs_done_by_site[pilot.site] += 1

    def _fate(self, job: Job, pilot: "Pilot", step_key: str, cpu_wall: float) -> tuple[Fate, float]:
        """The failure models' verdict on this attempt and its wall time (setup overhead + payload / efficiency)."""
        if not self.fates.enabled:
            return RUNS_THROUGH, cpu_wall
        overhead, payload = self.fates.wall_s(pilot.site, step_key, cpu_wall)
        input_bytes = 0.0
        if job.input_data and self.fates.step(step_key).fail_prob_per_input_gb:
            input_bytes = float(sum(self.world.catalog.get_file_sizes(list(job.input_data)).successful.values()))
        fate = self.fates.fate(pilot.site, pilot.id, step_key, job.input_data, input_bytes, overhead, payload, self.env._now)
        return fate, overhead + payload

    def jobs_of(self, trans_id: int) -> list[Job]:
        """The jobs of a transformation (JobGroup) still in the JobDB (not yet final), for the cleaning agent."""
        return [job for job in self.jobdb.jobs.values() if job.job_group == trans_id]

    def kill(self, job: Job, reason: str) -> None:
        """JobManager.killJob: out of its task queue, Killed; a running job stops at its next step."""
        self.tqdb.remove(job)
        if job.status in (js.RUNNING, js.COMPLETING) and job.pilot is not None and job.start_time is not None:
            self.cpu_wasted_hs06s += _cpu(job, job.pilot, self.env._now - job.start_time)
        self.jobdb.set_status(job, js.KILLED, reason, self.env._now, source="JobManager")

    def job_failed(self, job: Job, reason: str, cpu_hs06s: float, inputs: str | None) -> None:
        """A job failure seen by the job itself: CTA sets its inputs directly (not forced); reported by JOB_END."""
        self.failures[reason] += 1
        self.cpu_wasted_hs06s += cpu_hs06s
        if inputs is not None:
            self._set_inputs(job, inputs)
        self.jobdb.set_status(job, js.FAILED, reason, self.env._now, source="JobWrapper")
        job.end_time = self.env._now

    def _set_inputs(self, job: Job, status: str) -> None:
        if job.input_data:
            self.world.tsdb.setFileStatusForTransformation(int(job.job_group), status, list(job.input_data), now=self.env._now)

    # ------------------------------------------------------------------ data in and out
    def download(self, job: Job, pilot: "Pilot") -> Generator[Any, Any, bool]:
        """CTAODownloadInputData: each file from a local replica if any, else any usable one."""
        if not job.input_data:
            return True
        world = self.world
        found, known = world.catalog.get_replicas_and_sizes(job.input_data)  # getReplicas, getFileSize
        replicas, sizes = found.successful, known.successful
        local = self._local_ses(pilot.site)
        job_view = world.datamanager.job_view
        by_se: Counter[str] = Counter()
        for lfn in job.input_data:
            ses = job_view(replicas.get(lfn, ()))
            if not ses:
                return False
            chosen = next((se for se in ses if se in local), ses[0])
            by_se[chosen] += sizes.get(lfn, 0)
        yield from world.services.pay("FileCatalog")
        for se, nbytes in sorted(by_se.items()):
            ok = yield from world.grid.network.download(se, pilot.site, float(nbytes))
            if not ok or not pilot.running:
                return False
        return True

    def upload(self, job: Job, runtime: "TransformationRuntime", pilot: "Pilot") -> Generator[Any, Any, bool]:
        """cta-prod-managedata: each output to the shuffled production SEs (local first), then failover SEs,
        then one catalog registration. The registration takes effect only if the job is still alive when the
        FileCatalog call returns: a pilot that dies mid-transfer or while the catalog is down leaves no catalog
        entry (its bytes stay on the SE as dark data)."""
        world = self.world
        model = runtime.step.job
        n_files = model.output_files * (max(1, len(job.input_data)) if model.outputs_per_input else 1)
        size = model.output_size_mb * MB
        data_type = model.output_data_type
        task_id = job.task_id
        stem = "%s/%03dxxx/%08d_%08d_%d_" % (runtime.output_dir, task_id // 1000, runtime.trans_id, task_id, job.reschedule_counter)
        meta = self._output_metadata(runtime)
        placed: list[tuple[str, int, str, dict[str, Any]]] = []
        file_bytes = 0.0
        for k in range(n_files):
            if not self._alive(job, pilot):
                return False  # killed while uploading: the wrapper stops
            file_size = self.fates.file_size(data_type, size)
            se = yield from self._upload_one(pilot, data_type, file_size)
            if se is None or not self._alive(job, pilot):
                return False
            placed.append((f"{stem}{k}.dat", int(file_size), se, self._file_metadata(meta, model.file_metadata, k, task_id)))
            file_bytes += file_size
        services = world.services
        for _ in placed:  # one addFile RPC per output (DataManager.putAndRegister), then setMetadata
            services.meter("FileCatalogDB", "addFile")
        services.meter_rpc("FileCatalog.setMetadata", len(placed))
        yield from services.pay("FileCatalog")
        if not self._alive(job, pilot):
            return False
        runtime.outputs.extend_ids(world.catalog.add_files_paid(placed))  # paid just above
        self.outputs_registered += len(placed)
        self.bytes_uploaded += file_bytes
        return True

    @staticmethod
    def _file_metadata(step_meta: dict[str, Any], per_file: list[dict[str, Any]], k: int, run_number: int) -> dict[str, Any]:
        """Output `k`'s file metadata: the step's indexed fields, its `file_metadata` entry, its runNumber."""
        meta = dict(step_meta)
        if per_file:
            meta.update(per_file[k % len(per_file)])
        meta["runNumber"] = run_number
        return meta

    def _output_metadata(self, runtime: "TransformationRuntime") -> dict[str, Any]:
        """The step's output metadata that the catalog indexes per file (cached until a field is added)."""
        fields = self.world.file_fields
        cached = self._meta_cache.get(runtime.trans_id)
        if cached is None or cached[0] != len(fields):
            meta = {key: value for key, value in runtime.step.output_metadata.items()
                    if key in fields and not isinstance(value, (dict, list))}
            cached = self._meta_cache[runtime.trans_id] = (len(fields), meta)
        return cached[1]

    def _local_ses(self, site: str) -> set[str]:
        """SEs local to `site` (the topology's SiteSEMapping does not change during a run)."""
        local = self._local_ses_cache.get(site)
        if local is None:
            local = self._local_ses_cache[site] = set(self.world.grid.ses_at_site(site))
        return local

    @staticmethod
    def _alive(job: Job, pilot: "Pilot") -> bool:
        """The job wrapper still runs: its pilot is alive and nobody killed or stalled the job."""
        return pilot.running and job.status == js.COMPLETING

    def _upload_one(self, pilot: "Pilot", data_type: str, size: float) -> Generator[Any, Any, str | None]:
        """The SE that took the file (None: all refused, or the pilot died): the production SEs in their
        drawn order, then the failover SEs."""
        network, site = self.world.grid.network, pilot.site
        for ses in (self._output_ses(data_type, site), self._failover_ses(data_type)):
            for se in ses:
                if not pilot.running:
                    return None
                if (yield from network.upload(site, se, size)):
                    return se
        return None

    def _output_ses(self, data_type: str, site: str) -> list[str]:
        """The data type's production SEs shuffled (one draw from wms.upload_shuffle per file), the ones
        at `site` first, each part in drawn order."""
        choice, remote = self._output_choice(data_type, site)
        ses = list(choice)
        self.rng_upload.shuffle(ses)
        if remote:
            ses.sort(key=remote.__contains__)  # stable: local (False) first, drawn order kept within each part
        return ses

    def _output_choice(self, data_type: str, site: str) -> tuple[tuple[str, ...], frozenset[str] | None]:
        """The data type's production SEs and, if `site` holds some but not all of them, the others (the
        Operations ProductionOutputs and the topology do not change during a run: resolved once)."""
        key = (data_type, site)
        choice = self._output_choices.get(key)
        if choice is None:
            outputs = self.cfg.production_outputs
            ses = tuple(outputs.get(data_type) or outputs.get("default") or self._default_output_ses())
            local = self._local_ses(site)
            remote = frozenset(se for se in ses if se not in local)
            choice = self._output_choices[key] = (ses, remote if remote and len(remote) < len(set(ses)) else None)
        return choice

    def _failover_ses(self, data_type: str) -> tuple[str, ...]:
        """ProductionOutputsFailover for the data type (resolved once: Operations do not change during a run)."""
        ses = self._failover_choices.get(data_type)
        if ses is None:
            failover = self.cfg.production_outputs_failover
            ses = self._failover_choices[data_type] = tuple(failover.get(data_type) or failover.get("default") or ())
        return ses

    def _default_output_ses(self) -> list[str]:
        return sorted(name for name, se in self.world.grid.ses.items() if se.is_disk and not se.failover)

    # ------------------------------------------------------------------ StalledJobAgent
    def stalled_cycle(self) -> Generator[Any, Any, None]:
        now = self.env._now
        for job in list(self.jobdb.jobs_in(js.RUNNING)) + list(self.jobdb.jobs_in(js.COMPLETING)):
            if job.pilot is not None and job.pilot.running:
                job.heartbeat_time = now
        actions = run_stalled_job_agent(self.jobdb, now, self.stalled_config,
                                        pilot_running=lambda j: j.pilot is not None and j.pilot.running, tqdb=self.tqdb)
        for action in actions:
            if action.action == "Fail":
                self.failures[action.minor or "Stalled"] += 1
                job = action.job
                ran = (job.heartbeat_time or now) - (job.start_time or now)
                self.cpu_wasted_hs06s += _cpu(job, job.pilot, max(0.0, ran)) if job.pilot else 0.0
        yield from self.world.services.call("JobMonitoring", "selectJobs", max(1, self.jobdb.count(js.RUNNING)))


def _allowed(result: dict[str, Any]) -> dict[str, list[str]]:
    """JobTypeMapping/<type>/Allow: {destination: from-sites}; no section means nothing allowed."""
    if not result["OK"]:
        return {}
    return {site: _ops_list(sources) or [] for site, sources in result["Value"].items()}


def _ops_list(value: Any) -> list[str] | None:
    """Operations().getValue with a list default: a comma-separated string becomes a list."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)
